package admin

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/dkimd/dkimd/internal/dkim"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/keys/pkcs11"
	"github.com/dkimd/dkimd/internal/store"
)

// NewKeyRequest asks for a new key pair.
type NewKeyRequest struct {
	Domain   string
	Selector string
	// Spec is the kind of key; the zero value is RSA 2048.
	Spec keys.Spec
	// Backend is where the private half is to live: empty or
	// store.BackendSealed for the database, store.BackendPKCS11 for the
	// configured token (Service.Token).
	Backend store.KeyBackend
}

// GeneratedKey is a new key with its record and what to know before
// publishing it.
type GeneratedKey struct {
	Key      store.Key         `json:"key"`
	Record   *dkim.Publication `json:"record"`
	Warnings []string          `json:"warnings,omitempty"`
}

// GenerateKey makes a key pair and stores it, pending, with its private half
// sealed under the master key, in one transaction.
func (s *Service) GenerateKey(ctx context.Context, a Actor, r NewKeyRequest) (*GeneratedKey, error) {
	d, err := s.manage(ctx, a, r.Domain)
	if err != nil {
		return nil, err
	}
	sel, err := store.NormalizeSelector(r.Selector)
	if err != nil {
		return nil, &store.FieldError{Field: "selector", Err: err}
	}
	spec, err := r.Spec.Normalize()
	if err != nil {
		field := "bits"
		if errors.Is(err, keys.ErrUnknownAlgorithm) {
			field = "algorithm"
		}
		return nil, &store.FieldError{Field: field, Err: err}
	}
	g, err := s.generate(ctx, d, sel, spec, r.Backend, 0)
	if err != nil {
		return nil, err
	}
	return g, s.audit(ctx, a, "key.create", "key", keyID(g.Key), d, spec.String()+" selector "+sel+where(g.Key))
}

// where says, for the audit log, where a key lives if not in the database.
func where(k store.Key) string {
	if k.Location.PKCS11() {
		return " in PKCS#11 token " + k.Location.Token
	}
	return ""
}

// generate makes a key pair and stores it, pending, with its private half
// sealed, in one transaction, or (backend pkcs11) in the token with only
// its location stored; replaces, if not zero, links it to the key it is to
// take over from (rotation). A taken selector fails before the slow
// generation.
func (s *Service) generate(ctx context.Context, d, selector string, spec keys.Spec, backend store.KeyBackend, replaces int64) (*GeneratedKey, error) {
	sel, err := store.NormalizeSelector(selector)
	if err != nil {
		return nil, &store.FieldError{Field: "selector", Err: err}
	}
	if _, err := s.Store.KeyBySelector(ctx, d, sel); err == nil {
		return nil, fmt.Errorf("%w: selector %s is already used in %s (selectors are never reused)", store.ErrExists, sel, d)
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	var pub crypto.PublicKey
	var loc store.KeyLocation
	var sealed []byte
	switch backend {
	case "", store.BackendSealed:
		priv, err := keys.Generate(s.Rand, spec)
		if err != nil {
			return nil, err
		}
		pub = priv.Public()
		if sealed, err = s.Master.SealSigner(priv, store.KeyAssociatedData(d, sel)); err != nil {
			return nil, err
		}
	case store.BackendPKCS11:
		if pub, loc, err = s.generateInToken(d, sel, spec); err != nil {
			return nil, err
		}
	default:
		return nil, store.Invalid("backend", "unknown key backend %q (want %s or %s)", backend, store.BackendSealed, store.BackendPKCS11)
	}
	pubBytes, err := publicKeyBytes(pub)
	if err != nil {
		return nil, err
	}
	k, err := s.Store.CreateKey(ctx, store.NewKey{
		Domain: d, Selector: sel, Algorithm: spec.Algorithm, Bits: spec.Bits,
		PublicKey: pubBytes, Sealed: sealed, Location: loc, Replaces: replaces,
	})
	if err != nil {
		if loc.PKCS11() {
			// No token object without its row.
			if derr := s.Token.Destroy(spec.Algorithm, pkcs11.Object{Label: loc.Label, ID: loc.ObjectID}); derr != nil {
				s.log().Error("pkcs11_orphan_key", "domain", d, "selector", sel, "token", loc.Token, "object", loc.Label, "object_id", loc.ObjectID, "err", derr)
			}
		}
		return nil, err
	}
	rec, err := dkim.Publish(sel, d, pub)
	if err != nil {
		return nil, err
	}
	return &GeneratedKey{Key: k, Record: rec, Warnings: spec.Warnings()}, nil
}

// publicKeyBytes gives what p= carries, decoded (store.Key.PublicKey).
func publicKeyBytes(pub crypto.PublicKey) ([]byte, error) {
	if ed, ok := pub.(ed25519.PublicKey); ok {
		return []byte(ed), nil
	}
	return x509.MarshalPKIXPublicKey(pub)
}

// PublicKey decodes a stored key's public half.
func PublicKey(k store.Key) (crypto.PublicKey, error) {
	if k.Algorithm == keys.Ed25519 {
		if len(k.PublicKey) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("admin: key %s: bad Ed25519 public key", keyID(k))
		}
		return ed25519.PublicKey(k.PublicKey), nil
	}
	return x509.ParsePKIXPublicKey(k.PublicKey)
}

func keyID(k store.Key) string { return k.Selector + "._domainkey." + k.Domain }

// ListKeys gives the keys of a domain the actor manages, or of every domain
// it manages for "".
func (s *Service) ListKeys(ctx context.Context, a Actor, domain string) ([]store.Key, error) {
	f := store.KeyFilter{}
	if domain != "" {
		d, err := s.manage(ctx, a, domain)
		if err != nil {
			return nil, err
		}
		f.Domain = d
	}
	all, err := s.Store.ListKeys(ctx, f)
	if err != nil {
		return nil, err
	}
	out := []store.Key{}
	for _, k := range all {
		if a.Manages(k.Domain) {
			out = append(out, k)
		}
	}
	return out, nil
}

// GetKey finds a key by domain and selector.
func (s *Service) GetKey(ctx context.Context, a Actor, domain, selector string) (store.Key, error) {
	d, err := s.manage(ctx, a, domain)
	if err != nil {
		return store.Key{}, err
	}
	sel, err := store.NormalizeSelector(selector)
	if err != nil {
		return store.Key{}, &store.FieldError{Field: "selector", Err: err}
	}
	return s.Store.KeyBySelector(ctx, d, sel)
}

// KeyRecord gives the record to publish for a key in its current state:
// the key for pending, active and retired keys, an empty p= for a revoked
// key, and nil for an archived one (remove the record).
func (s *Service) KeyRecord(ctx context.Context, a Actor, domain, selector string) (store.Key, *dkim.Publication, error) {
	k, err := s.GetKey(ctx, a, domain, selector)
	if err != nil {
		return k, nil, err
	}
	p, err := Record(k)
	return k, p, err
}

// Record gives the record to publish for a key in its current state (see
// KeyRecord).
func Record(k store.Key) (*dkim.Publication, error) {
	switch k.State {
	case store.KeyArchived:
		return nil, nil
	case store.KeyRevoked:
		return dkim.PublishValue(k.Selector, k.Domain, dkim.RevokedRecordValue(string(k.Algorithm))), nil
	}
	pub, err := PublicKey(k)
	if err != nil {
		return nil, err
	}
	return dkim.Publish(k.Selector, k.Domain, pub)
}

// SetKeyState moves a key along its lifecycle, by the rules of ActivateKey
// (a key signs only once its record is seen in DNS, unless force) and
// RevokeKey (not while its signatures may still be checked, unless force);
// retiring and archiving need no check.
func (s *Service) SetKeyState(ctx context.Context, a Actor, domain, selector string, to store.KeyState, force bool) (store.Key, error) {
	switch to {
	case store.KeyActive:
		changed, err := s.ActivateKey(ctx, a, domain, selector, force)
		if len(changed) == 0 {
			return store.Key{}, err
		}
		return changed[0], err
	case store.KeyRevoked:
		k, _, err := s.RevokeKey(ctx, a, domain, selector, force, s.Lifecycle)
		return k, err
	}
	k, err := s.GetKey(ctx, a, domain, selector)
	if err != nil {
		return k, err
	}
	if err := store.CheckTransition(k.State, to); err != nil {
		return k, err
	}
	changed, err := s.changeStates(ctx, a, "by hand", store.KeyStateChange{ID: k.ID, From: k.State, To: to})
	if len(changed) == 0 {
		return k, err
	}
	return changed[0], err
}
