package dkim

// fastScan reports whether scanBlocks is vectorised here, which is what
// makes the fast path of bodyCanon pay.
func fastScan() bool { return hasAVX2 }

// hasAVX2 reports whether the CPU has AVX2 and the operating system saves
// the YMM registers (dkim imports only the standard library, which does
// not export its own answer; this is the test golang.org/x/sys/cpu makes).
var hasAVX2 = func() bool {
	if max, _, _, _ := cpuid(0, 0); max < 7 {
		return false
	}
	const osxsave, avx = 1 << 27, 1 << 28
	if _, _, ecx, _ := cpuid(1, 0); ecx&osxsave == 0 || ecx&avx == 0 {
		return false
	}
	const xmmYMM = 1<<1 | 1<<2 // XCR0: the OS saves the SSE and AVX state
	if xgetbv0()&xmmYMM != xmmYMM {
		return false
	}
	_, ebx, _, _ := cpuid(7, 0)
	return ebx&(1<<5) != 0
}()

// cpuid executes CPUID for leaf and subleaf (cpu_amd64.s).
func cpuid(leaf, subleaf uint32) (eax, ebx, ecx, edx uint32)

// xgetbv0 gives the low half of XCR0 (cpu_amd64.s).
func xgetbv0() uint32

// scanBlocks tests the pairs of p (pairProblem) 64 at a time from the start,
// while 65 bytes are left. At the first block of 64 pairs that holds a
// problem it returns the block's offset and its mask, bit j standing for
// the pair p[i+j], p[i+j+1]. Without a problem it returns where it stopped,
// fewer than 65 bytes before the end of p, and 0.
func scanBlocks(p []byte, relaxed bool) (i int, mask uint64) {
	if len(p) < scanBlock || !hasAVX2 {
		return 0, 0
	}
	return scanBlocksAVX2(p, relaxed)
}

// scanBlocksAVX2 is scanBlocks for len(p) >= 65 with AVX2.
//
//go:noescape
func scanBlocksAVX2(p []byte, relaxed bool) (i int, mask uint64)
