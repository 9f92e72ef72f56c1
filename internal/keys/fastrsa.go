package keys

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
)

// ErrNoOpenSSL means RSA cannot be signed through OpenSSL here: the library
// is missing, or dkimd was built without cgo.
var ErrNoOpenSSL = errors.New("keys: OpenSSL unavailable")

// OpenSSL signs RSA through the system's libcrypto, which on x86-64 is two
// to three times faster than Go's crypto/rsa (see docs/performance.md).
// Get it from LoadOpenSSL; a nil *OpenSSL signs with Go.
type OpenSSL struct {
	version string
}

// Version is the library's own version line, such as "OpenSSL 3.0.19 ...".
func (o *OpenSSL) Version() string {
	if o == nil {
		return ""
	}
	return o.version
}

// Signer returns a signer for k that signs through OpenSSL when k is an RSA
// key, or k itself otherwise (Ed25519 is faster in Go). The OpenSSL signer
// is checked once with a signature that Go must verify, so a library that
// misbehaves is never used; its error says so, and callers may go on with k.
func (o *OpenSSL) Signer(k crypto.Signer) (crypto.Signer, error) {
	rk, ok := k.(*rsa.PrivateKey)
	if o == nil || !ok {
		return k, nil
	}
	s, err := o.rsaSigner(rk)
	if err != nil {
		return nil, err
	}
	// The check also lets libcrypto do its one-time set-up of the key
	// (OpenSSL 3 caches a provider copy in it) here, on one thread, before
	// concurrent sessions share the signer.
	digest := sha256.Sum256([]byte("dkimd: OpenSSL signer self-check"))
	sig, err := s.Sign(nil, digest[:], crypto.SHA256)
	if err != nil {
		return nil, err
	}
	if err := rsa.VerifyPKCS1v15(&rk.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
		return nil, fmt.Errorf("%w: its signature does not verify", ErrNoOpenSSL)
	}
	return s, nil
}
