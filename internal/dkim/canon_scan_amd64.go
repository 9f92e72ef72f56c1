package dkim

import "golang.org/x/sys/cpu"

// fastScan reports whether scanBlocks is vectorised here, which is what
// makes the fast path of bodyCanon pay.
func fastScan() bool { return cpu.X86.HasAVX2 }

// scanBlocks tests the pairs of p (pairProblem) 64 at a time from the start,
// while 65 bytes are left. At the first block of 64 pairs that holds a
// problem it returns the block's offset and its mask, bit j standing for
// the pair p[i+j], p[i+j+1]. Without a problem it returns where it stopped,
// fewer than 65 bytes before the end of p, and 0.
func scanBlocks(p []byte, relaxed bool) (i int, mask uint64) {
	if len(p) < scanBlock || !cpu.X86.HasAVX2 {
		return 0, 0
	}
	return scanBlocksAVX2(p, relaxed)
}

// scanBlocksAVX2 is scanBlocks for len(p) >= 65 with AVX2.
//
//go:noescape
func scanBlocksAVX2(p []byte, relaxed bool) (i int, mask uint64)
