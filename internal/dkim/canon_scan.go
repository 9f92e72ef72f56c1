package dkim

import "math/bits"

// The fast path of the body canonicalizer (bodyCanon.passClean) needs one
// thing from a scan of the input: where the next byte pair is that it
// cannot pass on unchanged. pairScan finds it; on amd64 with AVX2 it tests
// 64 pairs a step (scanBlocks, canon_scan_amd64.s), elsewhere the fast path
// is off and bodyCanon keeps to its line-by-line path (see newBodyCanon).

// pairProblem reports whether the byte pair a, b (b right after a) stops
// the fast path:
//
//   - a CR not followed by LF, or an LF not preceded by CR: a lone CR is
//     content and a bare LF a line end that canonicalization writes as CRLF
//     (both rare; the exact path takes them);
//   - relaxed only: a tab, two SP in a row, or a SP before a CR: the start
//     of a run of white space that becomes one SP, or white space that may
//     end a line and be removed (RFC 6376 §3.4.4 a, b).
//
// Input in which no pair stops it is, line for line, its own canonical form,
// except for empty lines at its end (they may end the body) and its last,
// unfinished line.
func pairProblem(a, b byte, relaxed bool) bool {
	if (a == '\r') != (b == '\n') {
		return true
	}
	return relaxed && (a == '\t' || a == ' ' && (b == ' ' || b == '\r'))
}

// pairScan finds the problem pairs of p (pairProblem) left to right. It
// keeps the mask of the last block of 64 pairs scanBlocks reported, so that
// the problems close together (indented lines: one a line) cost a few bit
// operations each instead of a call.
type pairScan struct {
	p       []byte
	relaxed bool
	base    int    // the pairs of mask begin at p[base]
	known   int    // the pairs before p[known] are scanned: problems in mask
	mask    uint64 // bit j: the pair p[base+j], p[base+j+1] is a problem
}

// scanBlock is the length of the input scanBlocks needs for one step: 64
// pairs.
const scanBlock = 65

// next returns the smallest i >= from such that the pair p[i], p[i+1] is a
// problem, or max(len(p)-1, from) if there is none (the last byte, which has
// no pair in p, is not tested as a). Calls must not go back: from never
// decreases.
func (s *pairScan) next(from int) int {
	if from < s.known {
		if m := s.mask >> uint(from-s.base); m != 0 {
			return from + bits.TrailingZeros64(m)
		}
		from = s.known
	}
	if len(s.p)-from >= scanBlock {
		i, m := scanBlocks(s.p[from:], s.relaxed)
		s.base, s.mask = from+i, m
		s.known = s.base
		if m != 0 {
			s.known += 64
			return s.base + bits.TrailingZeros64(m)
		}
		from = s.base
	}
	// Fewer than 64 pairs left, or no vectors: one pair at a time.
	for ; from+1 < len(s.p); from++ {
		if pairProblem(s.p[from], s.p[from+1], s.relaxed) {
			return from
		}
	}
	return max(len(s.p)-1, from)
}
