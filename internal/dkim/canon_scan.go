package dkim

// The fast path of the body canonicalizer (bodyCanon.fast) needs one thing
// from a scan of the input: where the first byte pair is that it cannot
// pass on unchanged. firstProblem finds it; on amd64 with AVX2 it tests 32
// pairs per step (canon_scan_amd64.s), elsewhere the fast path is off and
// bodyCanon keeps to its line-by-line path (see newBodyCanon).

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

// firstProblem returns the smallest i such that pairProblem(p[i], p[i+1])
// holds, or max(len(p)-1, 0) when no pair does (the last byte, which has no
// pair in p, is not tested as a).
func firstProblem(p []byte, relaxed bool) int {
	i := scanPairs(p, relaxed)
	for ; i+1 < len(p); i++ {
		if pairProblem(p[i], p[i+1], relaxed) {
			return i
		}
	}
	return max(len(p)-1, 0)
}
