package dkim

import "golang.org/x/sys/cpu"

// fastScan reports whether scanPairs is vectorised here, which is what makes
// the fast path of bodyCanon pay.
func fastScan() bool { return cpu.X86.HasAVX2 }

// scanPairs returns an index i such that no pair p[j], p[j+1] with j < i is
// a problem (pairProblem): the first problem pair if it finds one in its
// steps of 32 pairs, else where its steps end, at most 32 pairs before the
// end of p. firstProblem tests the pairs from i on one by one.
func scanPairs(p []byte, relaxed bool) int {
	if len(p) < 33 || !cpu.X86.HasAVX2 {
		return 0
	}
	return scanPairsAVX2(p, relaxed)
}

// scanPairsAVX2 is scanPairs for len(p) >= 33 with AVX2.
//
//go:noescape
func scanPairsAVX2(p []byte, relaxed bool) int
