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

// func scanPairsAVX2(p []byte, relaxed bool) int
//
// For i = 0, 32, 64, ... while i+33 <= len(p), it compares the 32 bytes
// a = p[i:i+32] and the 32 bytes after each of them, b = p[i+1:i+33], with
// CR, LF, SP and HTAB, and forms a mask of the pairs that pairProblem
// reports:
//
//	(a == CR) != (b == LF)                                   always
//	a == HTAB || a == SP && (b == SP || b == CR)             relaxed only
//
// It returns i plus the index of the lowest bit of the first non-zero mask,
// or, when every mask is zero, the first i it did not test. The caller
// ensures len(p) >= 33.
TEXT ·scanPairsAVX2(SB), NOSPLIT, $0-40
	MOVQ    p_base+0(FP), SI
	MOVQ    p_len+8(FP), DX
	MOVBLZX relaxed+24(FP), AX
	XORQ    BX, BX
	SUBQ    $33, DX                 // the last i to test

	VMOVDQU pairBytes<>+0(SB), Y0   // CR
	VMOVDQU pairBytes<>+32(SB), Y1  // LF
	VMOVDQU pairBytes<>+64(SB), Y2  // SP
	VMOVDQU pairBytes<>+96(SB), Y3  // HTAB

	TESTB AX, AX
	JZ    simple

relaxed:
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
	TESTL     CX, CX
	JNZ       found
	ADDQ      $32, BX
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
	TESTL     CX, CX
	JNZ       found
	ADDQ      $32, BX
	CMPQ      BX, DX
	JLE       simple
	JMP       done

found:
	BSFL CX, CX
	ADDQ CX, BX

done:
	VZEROUPPER
	MOVQ BX, ret+32(FP)
	RET
