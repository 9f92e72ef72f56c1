package lifecycle

import (
	"context"
	"crypto"

	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/store"
)

// Token is a PKCS#11 token keys are generated in and destroyed from
// (*pkcs11.Token is one).
type Token interface {
	// Label is the token's label, as keys record it.
	Label() string
	// Generate makes a key pair that never leaves the token.
	Generate(spec keys.Spec, label string) (keys.TokenObject, crypto.PublicKey, error)
	// Destroy deletes the key pair o from the token.
	Destroy(alg keys.Algorithm, o keys.TokenObject) error
}

// TokenLabel gives the label of the PKCS#11 token configured, or "" when
// there is none: whether keys can be made in a token at all.
func (s *Service) TokenLabel() string {
	if s.o.Token == nil {
		return ""
	}
	return s.o.Token.Label()
}

// generateInToken makes a key pair in the configured token and gives its
// public key and where it lives.
func (s *Service) generateInToken(d, sel string, spec keys.Spec) (crypto.PublicKey, store.KeyLocation, error) {
	if s.o.Token == nil {
		return nil, store.KeyLocation{}, store.Invalid("backend", "no PKCS#11 token is configured here (dkimd serve and the key commands take --pkcs11-module and --pkcs11-token)")
	}
	o, pub, err := s.o.Token.Generate(spec, keys.TokenObjectLabel(d, sel))
	if err != nil {
		return nil, store.KeyLocation{}, err
	}
	return pub, store.KeyLocation{Backend: store.BackendPKCS11, Token: s.o.Token.Label(), Label: o.Label, ObjectID: o.ID}, nil
}

// forget removes a key pair just made in the token whose row could not be
// stored: no token object without its row.
func (s *Service) forget(d, sel string, alg keys.Algorithm, loc store.KeyLocation) {
	if err := s.o.Token.Destroy(alg, keys.TokenObject{Label: loc.Label, ID: loc.ObjectID}); err != nil {
		s.log.Error("pkcs11_orphan_key", "domain", d, "selector", sel, "token", loc.Token, "object", loc.Label, "object_id", loc.ObjectID, "err", err)
	}
}

// Destroy deletes a revoked or archived key from its PKCS#11 token, so
// that nobody with access to the token can sign with it again, and audits
// it. A key sealed in the database, or one that may still sign, is
// refused.
func (s *Service) Destroy(ctx context.Context, by By, k store.Key) (store.Key, error) {
	if !k.Location.PKCS11() {
		return k, store.Invalid("backend", "key %s is sealed in the database: there is no token object to destroy", k.Selector)
	}
	if k.State != store.KeyRevoked && k.State != store.KeyArchived {
		return k, store.Explain(store.ErrConflict, "Key %s is %s; only a revoked or archived key is destroyed.", k.Selector, k.State)
	}
	if s.o.Token == nil || s.o.Token.Label() != k.Location.Token {
		return k, store.Invalid("backend", "key %s lives in PKCS#11 token %q, which is not the token configured here", k.Selector, k.Location.Token)
	}
	if s.o.Signers != nil {
		s.o.Signers.Drop(k.ID)
	}
	if err := s.o.Token.Destroy(k.Algorithm, keys.TokenObject{Label: k.Location.Label, ID: k.Location.ObjectID}); err != nil {
		return k, err
	}
	return k, s.audit(ctx, by, "key.destroy", k, "deleted from PKCS#11 token "+k.Location.Token+", object "+k.Location.Label)
}

// where says, for the audit log, where a key lives if not in the database.
func where(k store.Key) string {
	if k.Location.PKCS11() {
		return " in PKCS#11 token " + k.Location.Token
	}
	return ""
}
