#include "textflag.h"

// pairBytes holds CR, LF, SP and HTAB, each 32 times.
DATA pairBytes<>+0(SB)/8, $0x0d0d0d0d0d0d0d0d
DATA pairBytes<>+8(SB)/8, $0x0d0d0d0d0d0d0d0d
DATA pairBytes<>+16(SB)/8, $0x0d0d0d0d0d0d0d0d
DATA pairBytes<>+24(SB)/8, $0x0d0d0d0d0d0d0d0d
DATA pairBytes<>+32(SB)/8, $0x0a0a0a0a0a0a0a0a
DATA pairBytes<>+40(SB)/8, $0x0a0a0a0a0a0a0a0a
DATA pairBytes<>+48(SB)/8, $0x0a0a0a0a0a0a0a0a
DATA pairBytes<>+56(SB)/8, $0x0a0a0a0a0a0a0a0a
DATA pairBytes<>+64(SB)/8, $0x2020202020202020
DATA pairBytes<>+72(SB)/8, $0x2020202020202020
DATA pairBytes<>+80(SB)/8, $0x2020202020202020
DATA pairBytes<>+88(SB)/8, $0x2020202020202020
DATA pairBytes<>+96(SB)/8, $0x0909090909090909
DATA pairBytes<>+104(SB)/8, $0x0909090909090909
DATA pairBytes<>+112(SB)/8, $0x0909090909090909
DATA pairBytes<>+120(SB)/8, $0x0909090909090909
GLOBL pairBytes<>(SB), RODATA|NOPTR, $128

// func scanBlocksAVX2(p []byte, relaxed bool) (i int, mask uint64)
//
// For i = 0, 64, 128, ... while i+65 <= len(p), it compares the 64 bytes
// a = p[i:i+64] and the 64 bytes after each of them, b = p[i+1:i+65], with
// CR, LF, SP and HTAB, 32 at a time, and forms the mask of the pairs that
// pairProblem reports:
//
//	(a == CR) != (b == LF)                                   always
//	a == HTAB || a == SP && (b == SP || b == CR)             relaxed only
//
// It returns i and the mask of the first block whose mask is not zero, or,
// when every mask is zero, the first i it did not test and 0. The caller
// ensures len(p) >= 65.
TEXT ·scanBlocksAVX2(SB), NOSPLIT, $0-48
	MOVQ    p_base+0(FP), SI
	MOVQ    p_len+8(FP), DX
	MOVBLZX relaxed+24(FP), AX
	XORQ    BX, BX
	SUBQ    $65, DX                 // the last i to test

	VMOVDQU pairBytes<>+0(SB), Y0   // CR
	VMOVDQU pairBytes<>+32(SB), Y1  // LF
	VMOVDQU pairBytes<>+64(SB), Y2  // SP
	VMOVDQU pairBytes<>+96(SB), Y3  // HTAB

	TESTB AX, AX
	JZ    simple

relaxed:
	// Pairs i to i+31: mask in CX.
	VMOVDQU   (SI)(BX*1), Y4        // a
	VMOVDQU   1(SI)(BX*1), Y5       // b
	VPCMPEQB  Y0, Y4, Y6            // a == CR
	VPCMPEQB  Y1, Y5, Y7            // b == LF
	VPXOR     Y6, Y7, Y8            // CR and LF not paired
	VPCMPEQB  Y3, Y4, Y6            // a == HTAB
	VPOR      Y6, Y8, Y8
	VPCMPEQB  Y2, Y5, Y7            // b == SP
	VPCMPEQB  Y0, Y5, Y9            // b == CR
	VPOR      Y7, Y9, Y7
	VPCMPEQB  Y2, Y4, Y6            // a == SP
	VPAND     Y6, Y7, Y6            // a == SP && (b == SP || b == CR)
	VPOR      Y6, Y8, Y8
	VPMOVMSKB Y8, CX
	// Pairs i+32 to i+63: mask in R8.
	VMOVDQU   32(SI)(BX*1), Y4
	VMOVDQU   33(SI)(BX*1), Y5
	VPCMPEQB  Y0, Y4, Y6
	VPCMPEQB  Y1, Y5, Y7
	VPXOR     Y6, Y7, Y8
	VPCMPEQB  Y3, Y4, Y6
	VPOR      Y6, Y8, Y8
	VPCMPEQB  Y2, Y5, Y7
	VPCMPEQB  Y0, Y5, Y9
	VPOR      Y7, Y9, Y7
	VPCMPEQB  Y2, Y4, Y6
	VPAND     Y6, Y7, Y6
	VPOR      Y6, Y8, Y8
	VPMOVMSKB Y8, R8
	SHLQ      $32, R8
	ORQ       R8, CX                // VPMOVMSKB zeroed the upper half of CX
	JNZ       found
	ADDQ      $64, BX
	CMPQ      BX, DX
	JLE       relaxed
	JMP       done

simple:
	VMOVDQU   (SI)(BX*1), Y4
	VMOVDQU   1(SI)(BX*1), Y5
	VPCMPEQB  Y0, Y4, Y6
	VPCMPEQB  Y1, Y5, Y7
	VPXOR     Y6, Y7, Y8
	VPMOVMSKB Y8, CX
	VMOVDQU   32(SI)(BX*1), Y4
	VMOVDQU   33(SI)(BX*1), Y5
	VPCMPEQB  Y0, Y4, Y6
	VPCMPEQB  Y1, Y5, Y7
	VPXOR     Y6, Y7, Y8
	VPMOVMSKB Y8, R8
	SHLQ      $32, R8
	ORQ       R8, CX
	JNZ       found
	ADDQ      $64, BX
	CMPQ      BX, DX
	JLE       simple

done:
	XORQ CX, CX

found:
	VZEROUPPER
	MOVQ BX, i+32(FP)
	MOVQ CX, mask+40(FP)
	RET
