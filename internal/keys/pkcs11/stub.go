//go:build !cgo

package pkcs11

import (
	"crypto"

	"github.com/dkimd/dkimd/internal/keys"
)

// Token is a PKCS#11 token. Built without cgo, every operation fails with
// ErrUnavailable.
type Token struct{ cfg Config }

// New fails with ErrUnavailable: this dkimd has no PKCS#11 support.
func New(cfg Config) (*Token, error) { return nil, ErrUnavailable }

// Open fails with ErrUnavailable: this dkimd has no PKCS#11 support.
func Open(cfg Config) (*Token, error) { return nil, ErrUnavailable }

// Label gives the token's label.
func (t *Token) Label() string { return t.cfg.Token }

// Connect fails with ErrUnavailable.
func (t *Token) Connect() error { return ErrUnavailable }

// Generate fails with ErrUnavailable.
func (t *Token) Generate(spec keys.Spec, label string) (Object, crypto.PublicKey, error) {
	return Object{}, nil, ErrUnavailable
}

// Signer fails with ErrUnavailable.
func (t *Token) Signer(alg keys.Algorithm, o Object) (crypto.Signer, error) {
	return nil, ErrUnavailable
}

// Destroy fails with ErrUnavailable.
func (t *Token) Destroy(alg keys.Algorithm, o Object) error { return ErrUnavailable }

// Close does nothing.
func (t *Token) Close() error { return nil }
