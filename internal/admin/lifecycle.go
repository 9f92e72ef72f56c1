package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dkimd/dkimd/internal/dkim"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/store"
)

// ErrTooEarly means a retired key's signatures may still be checked:
// revoking it now would make them fail (lifecycle.Policy.SafeToRevoke). It
// is a store.ErrConflict: the request is sound, the key's state forbids it.
var ErrTooEarly = fmt.Errorf("%w: too early to revoke", store.ErrConflict)

// ErrNoChecker means the DNS checker configured here cannot report what
// it found (it is not a lifecycle.Checker), or none is configured.
var ErrNoChecker = errors.New("admin: no DNS checker that reports")

// RotateRequest asks for a new key to replace one of a domain's active
// keys.
type RotateRequest struct {
	Domain string
	// Selector of the new key; empty means a date-based one
	// (lifecycle.DefaultSelector).
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

// RotateKey makes a pending key on a new selector to replace an active
// key. Once its record is seen everywhere it becomes active (by itself or
// through ActivateKey, as the domain says) and the key it replaces retires
// in the same transaction.
func (s *Service) RotateKey(ctx context.Context, a Actor, r RotateRequest) (*Rotation, error) {
	d, err := s.manage(ctx, a, r.Domain)
	if err != nil {
		return nil, err
	}
	all, err := s.Store.ListKeys(ctx, store.KeyFilter{Domain: d})
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
		sel, err = lifecycle.DefaultSelector(ctx, s.now(), func(ctx context.Context, sel string) (bool, error) {
			_, err := s.Store.KeyBySelector(ctx, d, sel)
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
	return rot, s.audit(ctx, a, "key.rotate", "key", keyID(g.Key), d, detail)
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
					return nil, fmt.Errorf("%w: key %s is %s; only an active key is replaced", store.ErrConflict, sel, k.State)
				}
				return &k, rotating(all, k)
			}
		}
		return nil, fmt.Errorf("%w: key %s", store.ErrNotFound, sel)
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
	return nil, fmt.Errorf("%w: several active keys (%s): say which one to replace, or the algorithm", store.ErrConflict, strings.Join(names, ", "))
}

// rotating refuses a second rotation of a key while one is pending.
func rotating(all []store.Key, old store.Key) error {
	for _, k := range all {
		if k.Replaces == old.ID && k.State == store.KeyPending {
			return fmt.Errorf("%w: key %s is being replaced already by pending key %s (activate or revoke it first)", store.ErrConflict, old.Selector, k.Selector)
		}
	}
	return nil
}

// ActivateKey makes a pending key active once the DNS checker sees its
// record everywhere (or at once with force) and, in the same transaction,
// retires the key it replaces. It gives every key changed, the activated
// one first, and audits each.
func (s *Service) ActivateKey(ctx context.Context, a Actor, domain, selector string, force bool) ([]store.Key, error) {
	k, err := s.GetKey(ctx, a, domain, selector)
	if err != nil {
		return nil, err
	}
	if err := store.CheckTransition(k.State, store.KeyActive); err != nil {
		return nil, err
	}
	note := "record seen in DNS"
	switch {
	case force:
		note = "forced, DNS not checked"
	case s.DNS == nil:
		return nil, fmt.Errorf("%w: no DNS check is configured here; check the record yourself and activate with force", ErrNotPublished)
	default:
		if err := s.DNS.KeyPublished(ctx, k); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNotPublished, err)
		}
	}
	return s.changeStates(ctx, a, note, store.KeyStateChange{ID: k.ID, From: store.KeyPending, To: store.KeyActive})
}

// changeStates applies changes in one transaction and audits every key
// changed, those the store retired as replaced too.
func (s *Service) changeStates(ctx context.Context, a Actor, note string, changes ...store.KeyStateChange) ([]store.Key, error) {
	from := map[int64]store.KeyState{}
	for _, c := range changes {
		k, err := s.Store.GetKey(ctx, c.ID)
		if err != nil {
			return nil, err
		}
		from[c.ID] = k.State
	}
	changed, err := s.Store.SetKeyStates(ctx, changes...)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, k := range changed {
		if k.State != store.KeyActive {
			s.signers.drop(k.ID) // it signs no more: do not keep it open
		}
		detail := fmt.Sprintf("%s → %s (%s)", from[k.ID], k.State, note)
		if _, named := from[k.ID]; !named {
			detail = fmt.Sprintf("active → retired (replaced by %s, %s)", changed[0].Selector, note)
		}
		errs = append(errs, s.audit(ctx, a, "key.state", "key", keyID(k), k.Domain, detail))
	}
	return changed, errors.Join(errs...)
}

// RevokeKey revokes a key and gives the record to publish in its place,
// with an empty p=. A retired key is refused with ErrTooEarly before
// p.SafeToRevoke, and an active one always, unless force (a compromised
// key is revoked at once, whatever signatures it breaks).
func (s *Service) RevokeKey(ctx context.Context, a Actor, domain, selector string, force bool, p lifecycle.Policy) (store.Key, *dkim.Publication, error) {
	k, err := s.GetKey(ctx, a, domain, selector)
	if err != nil {
		return k, nil, err
	}
	if err := store.CheckTransition(k.State, store.KeyRevoked); err != nil {
		return k, nil, err
	}
	note := "revoked"
	switch safe := p.SafeToRevoke(k); {
	case force:
		note = "forced"
	case k.State == store.KeyActive:
		return k, nil, fmt.Errorf("%w: key %s still signs; rotate it first, or revoke with force if it is compromised", ErrTooEarly, k.Selector)
	case k.State == store.KeyRetired && s.now().Before(safe):
		return k, nil, fmt.Errorf("%w: signatures made with key %s may be checked until %s", ErrTooEarly, k.Selector, safe.UTC().Format("2006-01-02 15:04 MST"))
	}
	changed, err := s.changeStates(ctx, a, note, store.KeyStateChange{ID: k.ID, From: k.State, To: store.KeyRevoked})
	if len(changed) == 0 {
		return k, nil, err
	}
	rec, rerr := Record(changed[0])
	return changed[0], rec, errors.Join(err, rerr)
}

// KeyStatus gives the status of every key of a domain the actor manages:
// state, age, last DNS check, warnings and the time it is safe to revoke.
func (s *Service) KeyStatus(ctx context.Context, a Actor, domain string, p lifecycle.Policy) ([]lifecycle.Status, error) {
	d, err := s.manage(ctx, a, domain)
	if err != nil {
		return nil, err
	}
	dom, err := s.Store.GetDomain(ctx, d)
	if err != nil {
		return nil, err
	}
	ks, err := s.Store.ListKeys(ctx, store.KeyFilter{Domain: d})
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := []lifecycle.Status{}
	for _, k := range ks {
		cs, err := s.Store.ListDNSChecks(ctx, store.DNSCheckFilter{KeyID: k.ID, Limit: 1})
		if err != nil {
			return nil, err
		}
		var last *store.DNSCheck
		if len(cs) > 0 {
			last = &cs[0]
		}
		out = append(out, p.Status(k, last, dom.AutoActivate, now))
	}
	return out, nil
}

// CheckHistory gives a key's DNS checks, newest first, at most limit
// (store.DNSCheckFilter.Limit).
func (s *Service) CheckHistory(ctx context.Context, a Actor, domain, selector string, limit int) ([]store.DNSCheck, error) {
	k, err := s.GetKey(ctx, a, domain, selector)
	if err != nil {
		return nil, err
	}
	cs, err := s.Store.ListDNSChecks(ctx, store.DNSCheckFilter{KeyID: k.ID, Limit: limit})
	if cs == nil && err == nil {
		cs = []store.DNSCheck{}
	}
	return cs, err
}

// CheckKeyNow checks a key's record at once with the DNS checker (which
// must be a lifecycle.Checker) and keeps the outcome in its history. It
// changes no state.
func (s *Service) CheckKeyNow(ctx context.Context, a Actor, domain, selector string, p lifecycle.Policy) (store.DNSCheck, error) {
	k, err := s.GetKey(ctx, a, domain, selector)
	if err != nil {
		return store.DNSCheck{}, err
	}
	c, ok := s.DNS.(lifecycle.Checker)
	if !ok {
		return store.DNSCheck{}, ErrNoChecker
	}
	res, err := c.CheckKey(ctx, k)
	if err != nil {
		return store.DNSCheck{}, err
	}
	res.KeyID = k.ID
	return s.Store.AddDNSCheck(ctx, res, p.HistoryCap())
}

// Keeper gives the lifecycle.Keeper through which the lifecycle monitor
// changes keys, as the System actor.
func (s *Service) Keeper() lifecycle.Keeper { return keeper{s} }

type keeper struct{ s *Service }

func (k keeper) ActivateSeen(ctx context.Context, key store.Key, note string) ([]store.Key, error) {
	return k.s.changeStates(ctx, System(), note, store.KeyStateChange{ID: key.ID, From: store.KeyPending, To: store.KeyActive})
}

func (k keeper) FailOver(ctx context.Context, broken, standby store.Key, note string) ([]store.Key, error) {
	return k.s.changeStates(ctx, System(), "fail-over: "+note,
		store.KeyStateChange{ID: standby.ID, From: store.KeyPending, To: store.KeyActive},
		store.KeyStateChange{ID: broken.ID, From: store.KeyActive, To: store.KeyRetired})
}

func (k keeper) ArchiveSeen(ctx context.Context, key store.Key, note string) (store.Key, error) {
	changed, err := k.s.changeStates(ctx, System(), note, store.KeyStateChange{ID: key.ID, From: store.KeyRevoked, To: store.KeyArchived})
	if len(changed) == 0 {
		return key, err
	}
	return changed[0], err
}
