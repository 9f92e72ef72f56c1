package lifecycle

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/store"
)

// Publisher puts a key's record into DNS and takes it out, for the
// domains dkimd publishes itself.
type Publisher interface {
	// Publish makes DNS serve k's record as its state says (for a
	// delegated domain the zone reads the store: this only hastens it).
	Publish(ctx context.Context, d store.Domain, k store.Key) error
	// Unpublish removes k's record.
	Unpublish(ctx context.Context, d store.Domain, k store.Key) error
}

// SchedulerStore is what the Scheduler reads and writes; a store.Store is
// one.
type SchedulerStore interface {
	ListDomains(ctx context.Context) ([]store.Domain, error)
	ListKeys(ctx context.Context, f store.KeyFilter) ([]store.Key, error)
	AddDNSCheck(ctx context.Context, c store.DNSCheck, keep int) (store.DNSCheck, error)
	ListDNSChecks(ctx context.Context, f store.DNSCheckFilter) ([]store.DNSCheck, error)
}

// Defaults for zero SchedulerOptions fields.
const (
	// DefaultRecordTTL is how long after every server serves a new record
	// the Scheduler waits before signing with it, so that resolvers that
	// cached "no such record" have forgotten it: the delegated zone's TTL
	// (dnsserver.DefaultTTL).
	DefaultRecordTTL = 5 * time.Minute
	// DefaultRotationInterval is how often the Scheduler looks at the
	// rotated domains.
	DefaultRotationInterval = time.Minute
	// DefaultStuckAfter is how long a new key may wait for its record
	// before the rotation is said blocked.
	DefaultStuckAfter = time.Hour
)

// SchedulerOptions configure a Scheduler. Store, Checker, Service and
// Publisher are required.
type SchedulerOptions struct {
	Store   SchedulerStore
	Checker Checker
	// Service makes every change to a key, as System, audited; its
	// Settings give the signature and queue lifetimes that say when a
	// retired key's record may go, and the DNS history kept.
	Service   *Service
	Publisher Publisher
	// RecordTTL is the wait after a record is seen everywhere; zero
	// means DefaultRecordTTL.
	RecordTTL time.Duration
	// Interval is how often Run steps; zero means DefaultRotationInterval.
	Interval time.Duration
	// StuckAfter: zero means DefaultStuckAfter.
	StuckAfter time.Duration
	// Selectors gives a delegated domain's two selectors; nil means
	// store.DelegatedSelectors. A domain published by UPDATE gets a new date-based selector
	// each rotation (DefaultSelector).
	Selectors []string
	// Spec is the first key's algorithm and length; the zero value is
	// RSA 2048. Later keys take the spec of the key they replace.
	Spec keys.Spec
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log gets every step (info) and blocked rotations (error); nil
	// discards.
	Log *slog.Logger
}

// RotationStatus is where a domain's rotation stands.
type RotationStatus struct {
	Domain string `json:"domain"`
	// Step says what the Scheduler is waiting for, in words.
	Step string `json:"step"`
	// Blocked says the rotation cannot proceed; Step says why. It is
	// raised as an alert.
	Blocked bool `json:"blocked,omitempty"`
	// Next is when the active key is due to be replaced.
	Next time.Time `json:"next,omitzero"`
	// Since is when Step began.
	Since time.Time `json:"since"`
}

// Scheduler rotates the keys of domains published by delegation or DNS
// UPDATE on their schedule: it publishes the next key at the idle
// selector, waits until every authoritative server serves it and one TTL
// has passed, switches signing to it when the active key is due, keeps the
// old key published until its last signature has expired and left every
// queue, then revokes and archives it and publishes the following key in
// its place. Its methods are safe for concurrent use.
type Scheduler struct {
	o  SchedulerOptions
	mu sync.Mutex
	st map[string]RotationStatus
}

// NewScheduler makes a Scheduler; it does nothing until Run or Step.
func NewScheduler(o SchedulerOptions) (*Scheduler, error) {
	if o.Store == nil || o.Checker == nil || o.Service == nil || o.Publisher == nil {
		return nil, errors.New("lifecycle: the scheduler needs a store, a checker, the lifecycle service and a publisher")
	}
	if o.RecordTTL <= 0 {
		o.RecordTTL = DefaultRecordTTL
	}
	if o.Interval <= 0 {
		o.Interval = DefaultRotationInterval
	}
	if o.StuckAfter <= 0 {
		o.StuckAfter = DefaultStuckAfter
	}
	if len(o.Selectors) != 2 {
		o.Selectors = store.DelegatedSelectors()
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{o: o, st: map[string]RotationStatus{}}, nil
}

func (s *Scheduler) now() time.Time {
	if s.o.Now != nil {
		return s.o.Now()
	}
	return time.Now()
}

// Run steps every Interval until ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	t := time.NewTicker(s.o.Interval)
	defer t.Stop()
	for {
		if err := s.Step(ctx); err != nil && ctx.Err() == nil {
			s.o.Log.Warn("rotation_step_failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Status gives where each rotated domain stands, sorted by domain.
func (s *Scheduler) Status() []RotationStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RotationStatus, 0, len(s.st))
	for _, st := range s.st {
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b RotationStatus) int { return cmp.Compare(a.Domain, b.Domain) })
	return out
}

// Alerts gives the blocked rotations, as Monitor alerts.
func (s *Scheduler) Alerts() []Alert {
	var out []Alert
	for _, st := range s.Status() {
		if st.Blocked {
			out = append(out, Alert{Domain: st.Domain, Status: "rotation_blocked", Summary: st.Step, Since: st.Since})
		}
	}
	return out
}

func (s *Scheduler) set(domain, step string, blocked bool, next time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.st[domain]
	since := s.now()
	if ok && old.Step == step {
		since = old.Since
	}
	if blocked && (!ok || !old.Blocked || old.Step != step) {
		s.o.Log.Error("rotation_blocked", "domain", domain, "detail", step)
	}
	s.st[domain] = RotationStatus{Domain: domain, Step: step, Blocked: blocked, Next: next, Since: since}
}

// Step looks at every rotated domain once and takes the steps that are
// due. An error for one domain does not stop the others.
func (s *Scheduler) Step(ctx context.Context) error {
	// On a cluster only the leader runs a Scheduler (serve takes the
	// "dns-rotation" lock around it), so every step here is this node's.
	ds, err := s.o.Store.ListDomains(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range ds {
		if !d.Rotated() {
			continue
		}
		if err := s.stepDomain(ctx, d); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d.Name, err))
			s.set(d.Name, "error: "+err.Error(), true, time.Time{})
		}
	}
	return errors.Join(errs...)
}

// stepDomain takes one domain as far as it can go now.
func (s *Scheduler) stepDomain(ctx context.Context, d store.Domain) error {
	now := s.now()
	all, active, pending, err := s.keys(ctx, d)
	if err != nil {
		return err
	}
	// Old keys first: a retired key whose last signature has expired
	// leaves DNS, freeing its selector for the next key.
	changed := false
	for _, k := range all {
		switch {
		case k.State == store.KeyRetired && !now.Before(s.o.Service.Settings().SafeToRevoke(k)):
			rk, err := s.o.Service.revokeExpired(ctx, k, "scheduled rotation: its last signatures have expired")
			if err != nil {
				return err
			}
			if err := s.retire(ctx, d, rk); err != nil {
				return err
			}
			changed = true
		case k.State == store.KeyRevoked:
			if err := s.retire(ctx, d, k); err != nil {
				return err
			}
			changed = true
		}
	}
	if changed {
		if all, active, pending, err = s.keys(ctx, d); err != nil {
			return err
		}
	}
	var next time.Time
	if active != nil {
		next = active.Activated.Add(d.RotationPeriod())
	}
	if pending == nil && (active == nil || !now.Before(next) || s.preparable(d, all, active, now)) {
		k, blocked, err := s.newKey(ctx, d, all, active)
		if err != nil {
			return err
		}
		if blocked != "" {
			s.set(d.Name, blocked, active == nil || !now.Before(next), next)
			return nil
		}
		pending = &k
	}
	if pending == nil {
		s.set(d.Name, fmt.Sprintf("key %s signs until %s", active.Selector, next.UTC().Format(time.RFC3339)), false, next)
		return nil
	}
	return s.advance(ctx, d, *pending, active, next, now)
}

// keys gives a domain's keys not archived, its newest active key and its
// newest pending key.
func (s *Scheduler) keys(ctx context.Context, d store.Domain) (all []store.Key, active, pending *store.Key, err error) {
	all, err = s.o.Store.ListKeys(ctx, store.KeyFilter{Domain: d.Name,
		States: []store.KeyState{store.KeyPending, store.KeyActive, store.KeyRetired, store.KeyRevoked}})
	if err != nil {
		return nil, nil, nil, err
	}
	for i := range all {
		k := &all[i]
		switch k.State {
		case store.KeyActive:
			if active == nil || k.Activated.After(active.Activated) {
				active = k
			}
		case store.KeyPending:
			if pending == nil || k.ID > pending.ID {
				pending = k
			}
		}
	}
	return all, active, pending, nil
}

// preparable reports whether the next key may be made now: a delegated
// domain's idle selector is free (the key there has gone), or an UPDATE
// domain's rotation is due within one check interval plus the TTL wait.
func (s *Scheduler) preparable(d store.Domain, all []store.Key, active *store.Key, now time.Time) bool {
	if d.Publish == store.PublishDelegated {
		idle := s.idle(active)
		for _, k := range all {
			if k.Selector == idle {
				return false
			}
		}
		return true
	}
	return !now.Before(active.Activated.Add(d.RotationPeriod()).Add(-s.o.RecordTTL - s.o.StuckAfter))
}

// idle gives the delegated selector the active key does not use.
func (s *Scheduler) idle(active *store.Key) string {
	if active != nil && active.Selector == s.o.Selectors[0] {
		return s.o.Selectors[1]
	}
	return s.o.Selectors[0]
}

// newKey makes the next key, or says in words why it cannot yet.
func (s *Scheduler) newKey(ctx context.Context, d store.Domain, all []store.Key, active *store.Key) (store.Key, string, error) {
	spec := s.o.Spec
	if active != nil {
		spec = active.Spec()
	}
	var sel string
	if d.Publish == store.PublishDelegated {
		sel = s.idle(active)
		for _, k := range all {
			if k.Selector == sel {
				safe := s.o.Service.Settings().SafeToRevoke(k)
				return store.Key{}, fmt.Sprintf("selector %s still holds key %d (%s) until its signatures expire at %s", sel, k.ID, k.State, safe.UTC().Format(time.RFC3339)), nil
			}
		}
	} else {
		var err error
		sel, err = DefaultSelector(ctx, s.now(), func(ctx context.Context, sel string) (bool, error) {
			ks, err := s.o.Store.ListKeys(ctx, store.KeyFilter{Domain: d.Name})
			if err != nil {
				return false, err
			}
			return slices.ContainsFunc(ks, func(k store.Key) bool { return k.Selector == sel }), nil
		})
		if err != nil {
			return store.Key{}, "", err
		}
	}
	note := "scheduled rotation: the next key"
	if active == nil {
		note = "scheduled rotation: the first key"
	}
	k, err := s.o.Service.newRotationKey(ctx, d.Name, sel, spec, active, note)
	if err != nil {
		return store.Key{}, "", err
	}
	s.o.Log.Info("rotation_key_made", "domain", d.Name, "selector", sel, "key_id", k.ID)
	return k, "", nil
}

// advance publishes the pending key, checks it, and switches signing to it
// once it is seen everywhere, a TTL has passed and the active key is due.
func (s *Scheduler) advance(ctx context.Context, d store.Domain, pending store.Key, active *store.Key, next, now time.Time) error {
	c, err := s.o.Checker.CheckKey(ctx, pending)
	if err != nil {
		return err
	}
	c.KeyID = pending.ID
	if c.Time.IsZero() {
		c.Time = now
	}
	if _, err := s.o.Store.AddDNSCheck(ctx, c, s.o.Service.Settings().HistoryCap()); err != nil {
		return err
	}
	if !c.OK {
		// (Re)publish only what DNS does not serve right, so that a
		// customer's server gets one UPDATE, not one a minute.
		stuck := now.Sub(pending.Created) > s.o.StuckAfter
		if err := s.o.Publisher.Publish(ctx, d, pending); err != nil {
			s.set(d.Name, fmt.Sprintf("cannot publish key %s: %v", pending.Selector, err), stuck, next)
			return nil
		}
		s.set(d.Name, fmt.Sprintf("waiting for key %s to be served everywhere: %s", pending.Selector, c.Summary), stuck, next)
		return nil
	}
	seen, err := s.seenSince(ctx, pending, now)
	if err != nil {
		return err
	}
	ready := seen.Add(s.o.RecordTTL)
	switch {
	case now.Before(ready):
		s.set(d.Name, fmt.Sprintf("key %s is served everywhere; waiting one TTL, until %s", pending.Selector, ready.UTC().Format(time.RFC3339)), false, next)
		return nil
	case active != nil && now.Before(next):
		s.set(d.Name, fmt.Sprintf("key %s signs until %s; key %s is published and ready", active.Selector, next.UTC().Format(time.RFC3339), pending.Selector), false, next)
		return nil
	}
	note := "scheduled rotation: served by every authoritative server since " + seen.UTC().Format(time.RFC3339)
	if _, err := s.o.Service.activateSeen(ctx, pending, note); err != nil {
		return err
	}
	s.o.Log.Info("rotation_switched", "domain", d.Name, "selector", pending.Selector, "key_id", pending.ID)
	s.set(d.Name, fmt.Sprintf("key %s signs", pending.Selector), false, now.Add(d.RotationPeriod()))
	return nil
}

// seenSince gives the start of the run of good checks the key has now.
func (s *Scheduler) seenSince(ctx context.Context, k store.Key, now time.Time) (time.Time, error) {
	cs, err := s.o.Store.ListDNSChecks(ctx, store.DNSCheckFilter{KeyID: k.ID, Limit: s.o.Service.Settings().HistoryCap()})
	if err != nil {
		return time.Time{}, err
	}
	seen := now
	for _, c := range cs { // newest first
		if !c.OK {
			break
		}
		seen = c.Time
	}
	return seen, nil
}

// retire takes a revoked key's record out of DNS and archives it: its
// signatures have expired, and its selector is free again.
func (s *Scheduler) retire(ctx context.Context, d store.Domain, k store.Key) error {
	if err := s.o.Publisher.Unpublish(ctx, d, k); err != nil {
		return fmt.Errorf("remove the record of key %s: %w", k.Selector, err)
	}
	if _, err := s.o.Service.archiveSeen(ctx, k, "scheduled rotation: record removed"); err != nil {
		return err
	}
	s.o.Log.Info("rotation_old_key_removed", "domain", d.Name, "selector", k.Selector, "key_id", k.ID)
	return nil
}

// The steps the Scheduler takes by itself, as System.

// newRotationKey makes a pending key of spec at selector for a rotated
// domain, replacing replaces (nil for none). A selector whose keys are all
// archived is taken again: a delegated domain's two selectors come back in
// turn, behind its customer's CNAMEs.
func (s *Service) newRotationKey(ctx context.Context, domain, selector string, spec keys.Spec, replaces *store.Key, note string) (store.Key, error) {
	sel, err := store.NormalizeSelector(selector)
	if err != nil {
		return store.Key{}, &store.FieldError{Field: "selector", Err: err}
	}
	if spec, err = spec.Normalize(); err != nil {
		return store.Key{}, err
	}
	priv, err := keys.Generate(s.o.Rand, spec)
	if err != nil {
		return store.Key{}, err
	}
	var rid int64
	if replaces != nil {
		rid = replaces.ID
	}
	g, err := s.keep(ctx, domain, sel, spec, priv, rid, true)
	if err != nil {
		return store.Key{}, err
	}
	detail := fmt.Sprintf("%s selector %s: %s", spec, sel, note)
	if replaces != nil {
		detail += " (replacing " + replaces.Selector + ")"
	}
	return g.Key, s.audit(ctx, System, "key.rotate", g.Key, detail)
}

// revokeExpired revokes a retired key whose signatures have expired
// (Settings.SafeToRevoke), and no other.
func (s *Service) revokeExpired(ctx context.Context, k store.Key, note string) (store.Key, error) {
	if k.State != store.KeyRetired || s.now().Before(s.o.Settings.SafeToRevoke(k)) {
		return k, store.Explain(ErrTooEarly, "Key %s may still have signatures to verify.", k.Selector)
	}
	changed, err := s.apply(ctx, System, note, store.KeyStateChange{ID: k.ID, From: store.KeyRetired, To: store.KeyRevoked})
	if len(changed) == 0 {
		if err == nil {
			err = errors.New("lifecycle: no key revoked")
		}
		return k, err
	}
	return changed[0], err
}
