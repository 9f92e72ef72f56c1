package admin

import (
	"context"
	"errors"
	"fmt"

	"github.com/dkimd/dkimd/internal/dkim"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/store"
)

// RotationKeeper gives the keeper the rotation scheduler makes its changes
// through, as dkimd itself (actor "system"), each one audited.
func (s *Service) RotationKeeper() lifecycle.RotationKeeper { return rotationKeeper{keeper{s}} }

type rotationKeeper struct{ keeper }

// NewRotationKey implements lifecycle.RotationKeeper.
func (k rotationKeeper) NewRotationKey(ctx context.Context, domain, selector string, spec keys.Spec, replaces *store.Key, note string) (store.Key, error) {
	s := k.s
	sel, err := store.NormalizeSelector(selector)
	if err != nil {
		return store.Key{}, &store.FieldError{Field: "selector", Err: err}
	}
	if spec, err = spec.Normalize(); err != nil {
		return store.Key{}, err
	}
	priv, err := keys.Generate(s.Rand, spec)
	if err != nil {
		return store.Key{}, err
	}
	pub, err := publicKeyBytes(priv.Public())
	if err != nil {
		return store.Key{}, err
	}
	sealed, err := s.Master.SealSigner(priv, store.KeyAssociatedData(domain, sel))
	if err != nil {
		return store.Key{}, err
	}
	nk := store.NewKey{Domain: domain, Selector: sel, Algorithm: spec.Algorithm, Bits: spec.Bits,
		PublicKey: pub, Sealed: sealed, ReuseSelector: true}
	if replaces != nil {
		nk.Replaces = replaces.ID
	}
	created, err := s.Store.CreateKey(ctx, nk)
	if err != nil {
		return store.Key{}, err
	}
	if _, err := dkim.Publish(sel, domain, priv.Public()); err != nil {
		return created, err
	}
	detail := fmt.Sprintf("%s selector %s: %s", spec, sel, note)
	if replaces != nil {
		detail += " (replacing " + replaces.Selector + ")"
	}
	return created, s.audit(ctx, System(), "key.rotate", "key", keyID(created), domain, detail)
}

// RevokeExpired implements lifecycle.RotationKeeper: only a retired key
// whose signatures have expired (Policy.SafeToRevoke) is revoked.
func (k rotationKeeper) RevokeExpired(ctx context.Context, key store.Key, note string) (store.Key, error) {
	if key.State != store.KeyRetired || k.s.now().Before(k.s.Lifecycle.SafeToRevoke(key)) {
		return key, fmt.Errorf("%w: key %s may still have signatures to verify", ErrTooEarly, key.Selector)
	}
	changed, err := k.s.changeStates(ctx, System(), note, store.KeyStateChange{ID: key.ID, From: store.KeyRetired, To: store.KeyRevoked})
	if len(changed) == 0 {
		if err == nil {
			err = errors.New("admin: no key revoked")
		}
		return key, err
	}
	return changed[0], err
}
