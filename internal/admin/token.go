package admin

import (
	"context"
	"crypto"
	"fmt"

	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/keys/pkcs11"
	"github.com/dkimd/dkimd/internal/store"
)

// KeyToken is a PKCS#11 token keys are generated in and sign from
// (*pkcs11.Token).
type KeyToken interface {
	// Label is the token's label, as keys record it.
	Label() string
	// Generate makes a key pair that never leaves the token.
	Generate(spec keys.Spec, label string) (pkcs11.Object, crypto.PublicKey, error)
	// Signer gives the key pair o for signing.
	Signer(alg keys.Algorithm, o pkcs11.Object) (crypto.Signer, error)
	// Destroy deletes the key pair o from the token.
	Destroy(alg keys.Algorithm, o pkcs11.Object) error
}

// TokenLabel gives the label of the PKCS#11 token configured, or "" when
// there is none: whether keys can be made in a token at all.
func (s *Service) TokenLabel() string {
	if s.Token == nil {
		return ""
	}
	return s.Token.Label()
}

// generateInToken makes a key pair in the configured token and gives its
// public key and where it lives.
func (s *Service) generateInToken(d, sel string, spec keys.Spec) (crypto.PublicKey, store.KeyLocation, error) {
	if s.Token == nil {
		return nil, store.KeyLocation{}, store.Invalid("backend", "no PKCS#11 token is configured here (dkimd serve and the key commands take --pkcs11-module and --pkcs11-token)")
	}
	o, pub, err := s.Token.Generate(spec, pkcs11.ObjectLabel(d, sel))
	if err != nil {
		return nil, store.KeyLocation{}, err
	}
	return pub, store.KeyLocation{Backend: store.BackendPKCS11, Token: s.Token.Label(), Label: o.Label, ObjectID: o.ID}, nil
}

// tokenSigner opens a key that lives in the token: the token signs, and
// the key it finds must be the one whose record is published.
func (s *Service) tokenSigner(k store.Key) (crypto.Signer, error) {
	loc := k.Location
	if s.Token == nil {
		return nil, fmt.Errorf("admin: key %s lives in PKCS#11 token %q, and no token is configured (--pkcs11-module, --pkcs11-token)", keyID(k), loc.Token)
	}
	if loc.Token != s.Token.Label() {
		return nil, fmt.Errorf("admin: key %s lives in PKCS#11 token %q, and the token configured is %q", keyID(k), loc.Token, s.Token.Label())
	}
	sg, err := s.Token.Signer(k.Algorithm, pkcs11.Object{Label: loc.Label, ID: loc.ObjectID})
	if err != nil {
		return nil, err
	}
	want, err := PublicKey(k)
	if err != nil {
		return nil, err
	}
	if eq, ok := sg.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(want) {
		return nil, fmt.Errorf("admin: key %s: the token's object %q holds another key than the one stored", keyID(k), loc.Label)
	}
	return sg, nil
}

// DestroyKey deletes a revoked or archived key from its PKCS#11 token, so
// that nobody with access to the token can sign with it again. A key
// sealed in the database, or one that may still sign, is refused.
func (s *Service) DestroyKey(ctx context.Context, a Actor, domain, selector string) (store.Key, error) {
	k, err := s.GetKey(ctx, a, domain, selector)
	if err != nil {
		return k, err
	}
	if !k.Location.PKCS11() {
		return k, store.Invalid("backend", "key %s is sealed in the database: there is no token object to destroy", k.Selector)
	}
	if k.State != store.KeyRevoked && k.State != store.KeyArchived {
		return k, fmt.Errorf("%w: key %s is %s; only a revoked or archived key is destroyed", store.ErrConflict, k.Selector, k.State)
	}
	if s.Token == nil || s.Token.Label() != k.Location.Token {
		return k, store.Invalid("backend", "key %s lives in PKCS#11 token %q, which is not the token configured here", k.Selector, k.Location.Token)
	}
	s.signers.drop(k.ID)
	if err := s.Token.Destroy(k.Algorithm, pkcs11.Object{Label: k.Location.Label, ID: k.Location.ObjectID}); err != nil {
		return k, err
	}
	return k, s.audit(ctx, a, "key.destroy", "key", keyID(k), k.Domain, "deleted from PKCS#11 token "+k.Location.Token+", object "+k.Location.Label)
}
