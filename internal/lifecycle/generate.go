package lifecycle

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/dkimd/dkimd/internal/dkim"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/mailaddr"
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
	// configured token (ServiceOptions.Token).
	Backend store.KeyBackend
}

// GeneratedKey is a new key with its record and what to know before
// publishing it.
type GeneratedKey struct {
	Key      store.Key         `json:"key"`
	Record   *dkim.Publication `json:"record"`
	Warnings []string          `json:"warnings,omitempty"`
}

// Generate makes a key pair and stores it, pending, with its private half
// sealed under the master key, in one transaction, or (Backend pkcs11)
// inside the configured token with only its location stored.
func (s *Service) Generate(ctx context.Context, by By, r NewKeyRequest) (*GeneratedKey, error) {
	pd, err := mailaddr.ParseDomain(r.Domain)
	if err != nil {
		return nil, &store.FieldError{Field: "domain", Err: err}
	}
	d := pd.String()
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
	return g, s.audit(ctx, by, "key.create", g.Key, spec.String()+" selector "+sel+where(g.Key))
}

// generate makes a key pair and stores it, pending, with its private half
// sealed, in one transaction, or (backend pkcs11) in the token with only
// its location stored; replaces, if not zero, links it to the key it is to
// take over from (rotation). A taken selector fails before the slow
// generation.
func (s *Service) generate(ctx context.Context, d, selector string, spec keys.Spec, backend store.KeyBackend, replaces int64) (*GeneratedKey, error) {
	sel, err := s.freeSelector(ctx, d, selector)
	if err != nil {
		return nil, err
	}
	switch backend {
	case "", store.BackendSealed:
		priv, err := keys.Generate(s.o.Rand, spec)
		if err != nil {
			return nil, err
		}
		return s.keep(ctx, d, sel, spec, priv, replaces, false)
	case store.BackendPKCS11:
		pub, loc, err := s.generateInToken(d, sel, spec)
		if err != nil {
			return nil, err
		}
		g, err := s.save(ctx, d, sel, spec, pub, nil, loc, replaces, false)
		if err != nil {
			s.forget(d, sel, spec.Algorithm, loc)
		}
		return g, err
	}
	return nil, store.Invalid("backend", "unknown key backend %q (want %s or %s)", backend, store.BackendSealed, store.BackendPKCS11)
}

// freeSelector normalises selector and fails with store.ErrExists when the
// domain used it already (by a key in any state: selectors are never
// reused). A delegated domain's keys live only at store.DelegatedSelectors,
// behind its CNAMEs, and the Scheduler makes them.
func (s *Service) freeSelector(ctx context.Context, d, selector string) (string, error) {
	sel, err := store.NormalizeSelector(selector)
	if err != nil {
		return "", &store.FieldError{Field: "selector", Err: err}
	}
	if dom, err := s.o.Store.GetDomain(ctx, d); err != nil {
		return "", err
	} else if dom.Publish == store.PublishDelegated && !store.IsDelegatedSelector(sel) {
		return "", &store.FieldError{Field: "selector", Err: fmt.Errorf(
			"%s is delegated: its keys live at the selectors %s behind its CNAMEs, and dkimd rotates them itself",
			d, strings.Join(store.DelegatedSelectors(), " and "))}
	}
	if _, err := s.o.Store.KeyBySelector(ctx, d, sel); err == nil {
		return "", store.Explain(store.ErrExists, "Selector %s is already used in %s (selectors are never reused).", sel, d)
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	return sel, nil
}

// keep stores a private key, pending, sealed under the master key, in one
// transaction with its public half. reuse allows a selector whose keys
// are all archived (store.NewKey.ReuseSelector).
func (s *Service) keep(ctx context.Context, d, sel string, spec keys.Spec, priv crypto.Signer, replaces int64, reuse bool) (*GeneratedKey, error) {
	sealed, err := s.o.Master.SealSigner(priv, store.KeyAssociatedData(d, sel))
	if err != nil {
		return nil, err
	}
	return s.save(ctx, d, sel, spec, priv.Public(), sealed, store.KeyLocation{}, replaces, reuse)
}

// save writes a new key's row, pending, with its sealed private half, or
// (loc in a token) with where the token keeps it, and gives its record.
func (s *Service) save(ctx context.Context, d, sel string, spec keys.Spec, pub crypto.PublicKey, sealed []byte, loc store.KeyLocation, replaces int64, reuse bool) (*GeneratedKey, error) {
	pubBytes, err := publicKeyBytes(pub)
	if err != nil {
		return nil, err
	}
	k, err := s.o.Store.CreateKey(ctx, store.NewKey{
		Domain: d, Selector: sel, Algorithm: spec.Algorithm, Bits: spec.Bits,
		PublicKey: pubBytes, Sealed: sealed, Location: loc, Replaces: replaces, ReuseSelector: reuse,
	})
	if err != nil {
		return nil, err
	}
	rec, err := dkim.Publish(sel, d, pub)
	if err != nil {
		return nil, err
	}
	return &GeneratedKey{Key: k, Record: rec, Warnings: spec.Warnings()}, nil
}

// ImportKeyRequest brings an existing private key into dkimd, so that a
// site moving from OpenDKIM keeps the records it has published.
type ImportKeyRequest struct {
	Domain   string
	Selector string
	// Key is the private key (keys.ParsePEM reads PKCS#1 as
	// opendkim-genkey writes it, and PKCS#8).
	Key crypto.Signer
}

// Import stores an existing private key, pending, sealed under the master
// key like a generated one; it activates as usual, once its record
// (already published, typically) is seen in DNS. The audit log records the
// import, never the key.
func (s *Service) Import(ctx context.Context, by By, r ImportKeyRequest) (*GeneratedKey, error) {
	d, err := mailaddr.ParseDomain(r.Domain)
	if err != nil {
		return nil, &store.FieldError{Field: "domain", Err: err}
	}
	if r.Key == nil {
		return nil, &store.FieldError{Field: "key", Err: keys.ErrBadKey}
	}
	spec, err := keys.SpecOf(r.Key)
	if err == nil {
		spec, err = spec.Normalize()
	}
	if err != nil {
		return nil, &store.FieldError{Field: "key", Err: err}
	}
	sel, err := s.freeSelector(ctx, d.String(), r.Selector)
	if err != nil {
		return nil, err
	}
	g, err := s.keep(ctx, d.String(), sel, spec, r.Key, 0, false)
	if err != nil {
		return nil, err
	}
	return g, s.audit(ctx, by, "key.import", g.Key, spec.String()+" selector "+sel)
}

// RotateRequest asks for a new key to replace one of a domain's active
// keys.
type RotateRequest struct {
	Domain string
	// Selector of the new key; empty means a date-based one
	// (DefaultSelector).
	Selector string
	// Spec of the new key. An empty Algorithm means that of the key
	// replaced (RSA when there is none); zero Bits, those of the key
	// replaced but at least 2048.
	Spec keys.Spec
	// Replaces is the selector of the active key to replace; empty means
	// the domain's only active key of the new key's algorithm.
	Replaces string
	// Backend is where the new key is to live; empty means where the key
	// replaced lives (the database when there is none), so a key in a
	// PKCS#11 token is replaced by another in the token.
	Backend store.KeyBackend
}

// Rotation is a new pending key and the key it replaces, if any.
type Rotation struct {
	GeneratedKey
	// Replaces is the active key retired when the new key activates; nil
	// when the domain had none to replace.
	Replaces *store.Key `json:"replaces,omitempty"`
}

// Rotate makes a pending key on a new selector to replace an active
// key. Once its record is seen everywhere it becomes active (by itself or
// through Activate, as the domain says) and the key it replaces retires
// in the same transaction.
func (s *Service) Rotate(ctx context.Context, by By, r RotateRequest) (*Rotation, error) {
	pd, err := mailaddr.ParseDomain(r.Domain)
	if err != nil {
		return nil, &store.FieldError{Field: "domain", Err: err}
	}
	d := pd.String()
	all, err := s.o.Store.ListKeys(ctx, store.KeyFilter{Domain: d})
	if err != nil {
		return nil, err
	}
	old, err := replaced(all, r)
	if err != nil {
		return nil, err
	}
	spec := r.Spec
	if old != nil {
		if spec.Algorithm == "" {
			spec.Algorithm = old.Algorithm
		}
		if spec.Algorithm == keys.RSA && old.Algorithm == keys.RSA && spec.Bits == 0 {
			spec.Bits = max(old.Bits, keys.DefaultRSABits)
		}
	}
	if spec, err = spec.Normalize(); err != nil {
		field := "bits"
		if errors.Is(err, keys.ErrUnknownAlgorithm) {
			field = "algorithm"
		}
		return nil, &store.FieldError{Field: field, Err: err}
	}
	if old != nil && old.Algorithm != spec.Algorithm {
		return nil, store.Invalid("algorithm", "key %s is %s: a key replaces one of its own algorithm", old.Selector, old.Algorithm)
	}
	sel := r.Selector
	if sel == "" {
		sel, err = DefaultSelector(ctx, s.now(), func(ctx context.Context, sel string) (bool, error) {
			_, err := s.o.Store.KeyBySelector(ctx, d, sel)
			if errors.Is(err, store.ErrNotFound) {
				return false, nil
			}
			return err == nil, err
		})
		if err != nil {
			return nil, err
		}
	}
	var replaces int64
	backend := r.Backend
	if old != nil {
		replaces = old.ID
		if backend == "" {
			backend = old.Location.Backend
		}
	}
	g, err := s.generate(ctx, d, sel, spec, backend, replaces)
	if err != nil {
		return nil, err
	}
	rot := &Rotation{GeneratedKey: *g, Replaces: old}
	detail := spec.String() + " selector " + g.Key.Selector + where(g.Key)
	if old != nil {
		detail += " replacing " + old.Selector
	}
	return rot, s.audit(ctx, by, "key.rotate", g.Key, detail)
}

// replaced finds the active key a rotation replaces.
func replaced(all []store.Key, r RotateRequest) (*store.Key, error) {
	if r.Replaces != "" {
		sel, err := store.NormalizeSelector(r.Replaces)
		if err != nil {
			return nil, &store.FieldError{Field: "replaces", Err: err}
		}
		for _, k := range all {
			if k.Selector == sel {
				if k.State != store.KeyActive {
					return nil, store.Explain(store.ErrConflict, "Key %s is %s; only an active key is replaced.", sel, k.State)
				}
				return &k, rotating(all, k)
			}
		}
		return nil, store.Explain(store.ErrNotFound, "Key %s was not found.", sel)
	}
	var cands []store.Key
	for _, k := range all {
		if k.State == store.KeyActive && (r.Spec.Algorithm == "" || k.Algorithm == r.Spec.Algorithm) {
			cands = append(cands, k)
		}
	}
	switch len(cands) {
	case 0:
		return nil, nil
	case 1:
		return &cands[0], rotating(all, cands[0])
	}
	var names []string
	for _, k := range cands {
		names = append(names, k.Selector+" ("+string(k.Algorithm)+")")
	}
	return nil, store.Explain(store.ErrConflict, "There are several active keys (%s): say which one to replace, or the algorithm.", strings.Join(names, ", "))
}

// rotating refuses a second rotation of a key while one is pending.
func rotating(all []store.Key, old store.Key) error {
	for _, k := range all {
		if k.Replaces == old.ID && k.State == store.KeyPending {
			return store.Explain(store.ErrConflict, "Key %s is being replaced already by pending key %s (activate or revoke it first).", old.Selector, k.Selector)
		}
	}
	return nil
}

// publicKeyBytes gives what p= carries, decoded (store.Key.PublicKey).
func publicKeyBytes(pub crypto.PublicKey) ([]byte, error) {
	if ed, ok := pub.(ed25519.PublicKey); ok {
		return []byte(ed), nil
	}
	return x509.MarshalPKIXPublicKey(pub)
}

// PublicKey decodes a stored key's public half (store.Key.PublicKey).
func PublicKey(k store.Key) (crypto.PublicKey, error) {
	if k.Algorithm == keys.Ed25519 {
		if len(k.PublicKey) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("lifecycle: key %s: bad Ed25519 public key", k.RecordName())
		}
		return ed25519.PublicKey(k.PublicKey), nil
	}
	return x509.ParsePKIXPublicKey(k.PublicKey)
}

// Record gives the record to publish for a key in its current state: the
// key for pending, active and retired keys, an empty p= for a revoked key,
// and nil for an archived one (remove the record).
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
