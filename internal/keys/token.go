package keys

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/x509"
	"fmt"
)

// TokenObject names a key pair in a PKCS#11 token: both halves carry the
// same label (CKA_LABEL) and ID (CKA_ID).
type TokenObject struct {
	// Label is the object label, TokenObjectLabel of the key's domain and
	// selector.
	Label string `json:"label"`
	// ID is the object ID in hexadecimal; dkimd makes it random, so that
	// a label reused by hand never names the wrong key.
	ID string `json:"id"`
}

// TokenObjectLabel gives the label dkimd puts on a key pair it generates
// in a token: the name of the key's DNS record, which names domain and
// selector.
func TokenObjectLabel(domain, selector string) string {
	return "dkimd " + selector + "._domainkey." + domain
}

// Token is the PKCS#11 token a Source signs with (*pkcs11.Token is one).
type Token interface {
	// Label is the token's label, as keys record it.
	Label() string
	// Signer gives the key pair o for signing; the token makes every
	// signature.
	Signer(alg Algorithm, o TokenObject) (crypto.Signer, error)
}

// TokenKey says where in a PKCS#11 token a key lives, and which public
// key the token's object must hold.
type TokenKey struct {
	// Token is the token's label.
	Token string
	// Object names the key pair in the token.
	Object TokenObject
	// Algorithm is the key's algorithm.
	Algorithm Algorithm
	// PublicKey is the public half as stored (PKIX DER for RSA, the 32
	// raw bytes for Ed25519): the token's key must be this one.
	PublicKey []byte
}

// tokenSigner opens a key that lives in the token: the token signs, and
// the key it finds must be the one whose record is published.
func (s *Source) tokenSigner(r Ref) (crypto.Signer, error) {
	tk := r.Token
	if s.o.Token == nil {
		return nil, fmt.Errorf("keys: key %d lives in PKCS#11 token %q, and no token is configured (--pkcs11-module, --pkcs11-token)", r.ID, tk.Token)
	}
	if tk.Token != s.o.Token.Label() {
		return nil, fmt.Errorf("keys: key %d lives in PKCS#11 token %q, and the token configured is %q", r.ID, tk.Token, s.o.Token.Label())
	}
	sg, err := s.o.Token.Signer(tk.Algorithm, tk.Object)
	if err != nil {
		return nil, err
	}
	got, err := storedPublicKey(sg.Public())
	if err != nil || !bytes.Equal(got, tk.PublicKey) {
		return nil, fmt.Errorf("keys: key %d: the token's object %q holds another key than the one stored", r.ID, tk.Object.Label)
	}
	return sg, nil
}

// storedPublicKey encodes a public key as the store keeps it.
func storedPublicKey(pub crypto.PublicKey) ([]byte, error) {
	if ed, ok := pub.(ed25519.PublicKey); ok {
		return []byte(ed), nil
	}
	return x509.MarshalPKIXPublicKey(pub)
}
