// Package pkcs11 keeps DKIM private keys inside a PKCS#11 token (an HSM, a
// cloud HSM's PKCS#11 library, SoftHSM): keys are generated in the token,
// marked sensitive and not extractable, and every signature is made by the
// token. dkimd keeps only the public key and the object's label and ID.
//
// RSA signs with CKM_RSA_PKCS over a DigestInfo through
// github.com/ThalesGroup/crypto11; Ed25519 (which crypto11 lacks) signs with
// CKM_EDDSA through github.com/miekg/pkcs11 directly, over the 32-byte
// SHA-256 digest RFC 8463 makes the message.
//
// PKCS#11 needs cgo. Built without it (CGO_ENABLED=0), the package still
// compiles and every operation fails with ErrUnavailable.
//
// It imports keys only; it must not import the store, admin, web, relay or
// cli packages.
package pkcs11
