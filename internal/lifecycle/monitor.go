package lifecycle

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dkimd/dkimd/internal/store"
)

// Defaults for zero MonitorOptions fields.
const (
	DefaultInterval        = time.Hour
	DefaultPendingInterval = 5 * time.Minute
	DefaultRetryMin        = time.Minute
	DefaultFailoverAfter   = 2
	// pollInterval bounds Run's sleep, so keys made meanwhile are
	// picked up.
	pollInterval = time.Minute
)

// MonitorOptions configure a Monitor. Service is required, and must have a
// DNS checker; the zero value of every other field is documented beside it.
type MonitorOptions struct {
	// Service reads and changes keys, checks them in DNS with its
	// checker, and keeps the history by its settings.
	Service *Service
	// Interval is how often active, retired and revoked keys are checked;
	// zero means DefaultInterval.
	Interval time.Duration
	// PendingInterval is how often pending keys are checked, sooner since
	// an administrator waits for them; zero means DefaultPendingInterval.
	PendingInterval time.Duration
	// Jitter spreads checks by up to ± this fraction of their interval,
	// so that many keys do not hit DNS at once; zero means 0.1, negative
	// none.
	Jitter float64
	// RetryMin is the first wait after a check that failed for now (DNS
	// did not answer); each further failure doubles it, up to the key's
	// interval. Zero means DefaultRetryMin.
	RetryMin time.Duration
	// Failover, when true, makes a published standby key (a pending key
	// of the same domain and algorithm whose record every server serves)
	// active in place of an active key whose record is gone or changed.
	// False (the zero value) only alerts.
	Failover bool
	// FailoverAfter is how many checks in a row must find the active
	// record wrong before failing over; zero means DefaultFailoverAfter.
	FailoverAfter int
	// Now is the clock; nil means the service's.
	Now func() time.Time
	// Rand gives numbers in [0, 1) for the jitter; nil means math/rand/v2.
	Rand func() float64
	// Log receives alerts (error), actions (info) and check failures
	// (warn); nil discards.
	Log *slog.Logger
}

// Alert says an active key's record is gone or changed: mail it signs
// fails verification.
type Alert struct {
	KeyID    int64  `json:"key_id"`
	Domain   string `json:"domain"`
	Selector string `json:"selector"`
	// Status and Summary are those of the check that found it.
	Status  string `json:"status"`
	Summary string `json:"summary"`
	// Since is when it was first found.
	Since time.Time `json:"since"`
}

// Counters count what the Monitor did since it started, for metrics.
type Counters struct {
	Checks            uint64 `json:"checks"`
	TemporaryFailures uint64 `json:"temporary_failures"`
	Alerts            uint64 `json:"alerts"`
	Activations       uint64 `json:"activations"`
	Failovers         uint64 `json:"failovers"`
	Archives          uint64 `json:"archives"`
	Errors            uint64 `json:"errors"`
}

// Monitor re-checks keys in DNS and acts on what it finds. Its methods are
// safe for concurrent use.
type Monitor struct {
	o MonitorOptions

	mu     sync.Mutex
	sched  map[int64]schedule
	alerts map[int64]Alert

	checks, temporary, alertsRaised, activations, failovers, archives, errs atomic.Uint64
}

// schedule is when a key is next due and how many temporary failures in a
// row it has had.
type schedule struct {
	next     time.Time
	failures int
}

// NewMonitor makes a Monitor; it checks nothing until Run or CheckOnce.
func NewMonitor(o MonitorOptions) (*Monitor, error) {
	if o.Service == nil {
		return nil, errors.New("lifecycle: the monitor needs the lifecycle service")
	}
	if o.Service.o.DNS == nil {
		return nil, ErrNoChecker
	}
	return &Monitor{o: o, sched: map[int64]schedule{}, alerts: map[int64]Alert{}}, nil
}

func (m *Monitor) now() time.Time {
	if m.o.Now == nil {
		return m.o.Service.now()
	}
	return m.o.Now()
}

func (m *Monitor) log() *slog.Logger {
	if m.o.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return m.o.Log
}

// interval is how often a key in state s is checked.
func (m *Monitor) interval(s store.KeyState) time.Duration {
	if s == store.KeyPending {
		return cmp.Or(max(m.o.PendingInterval, 0), DefaultPendingInterval)
	}
	return cmp.Or(max(m.o.Interval, 0), DefaultInterval)
}

// jitter spreads d by up to ± the Jitter fraction.
func (m *Monitor) jitter(d time.Duration) time.Duration {
	f := m.o.Jitter
	switch {
	case f < 0:
		return d
	case f == 0:
		f = 0.1
	}
	r := rand.Float64
	if m.o.Rand != nil {
		r = m.o.Rand
	}
	return d + time.Duration((r()*2-1)*f*float64(d))
}

// Counters gives what the Monitor did so far.
func (m *Monitor) Counters() Counters {
	return Counters{
		Checks: m.checks.Load(), TemporaryFailures: m.temporary.Load(), Alerts: m.alertsRaised.Load(),
		Activations: m.activations.Load(), Failovers: m.failovers.Load(), Archives: m.archives.Load(), Errors: m.errs.Load(),
	}
}

// Alerts gives the open alerts, by key ID.
func (m *Monitor) Alerts() []Alert {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Alert, 0, len(m.alerts))
	for _, a := range m.alerts {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b Alert) int { return cmp.Compare(a.KeyID, b.KeyID) })
	return out
}

// NextCheck gives when a key is next due; zero for a key not yet seen,
// which is due at once.
func (m *Monitor) NextCheck(id int64) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sched[id].next
}

// Run checks keys as they fall due until ctx ends, and returns nil then.
func (m *Monitor) Run(ctx context.Context) error {
	for {
		next, err := m.round(ctx, false)
		if err != nil && ctx.Err() == nil {
			// round counted each failing domain in m.errs already.
			m.log().Error("lifecycle_round_failed", "err", err)
		}
		wait := min(max(next.Sub(m.now()), time.Second), pollInterval)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// CheckOnce checks every pending, active, retired and revoked key now,
// whether due or not, and acts on the outcome as Run does.
func (m *Monitor) CheckOnce(ctx context.Context) error {
	_, err := m.round(ctx, true)
	return err
}

// watched are the states whose records are checked.
var watched = []store.KeyState{store.KeyPending, store.KeyActive, store.KeyRetired, store.KeyRevoked}

// round checks the keys due (all of them if all) and acts, domain by
// domain. It gives when the next key falls due.
func (m *Monitor) round(ctx context.Context, all bool) (time.Time, error) {
	ks, err := m.o.Service.o.Store.ListKeys(ctx, store.KeyFilter{States: slices.Clone(watched)})
	if err != nil {
		return m.now().Add(pollInterval), fmt.Errorf("lifecycle: list keys: %w", err)
	}
	m.forget(ks)
	now := m.now()
	byDomain := map[string][]store.Key{}
	var domains []string
	for _, k := range ks {
		if _, ok := byDomain[k.Domain]; !ok {
			domains = append(domains, k.Domain)
		}
		byDomain[k.Domain] = append(byDomain[k.Domain], k)
	}
	var errs []error
	for _, d := range domains {
		if ctx.Err() != nil {
			break
		}
		if err := m.domain(ctx, d, byDomain[d], now, all); err != nil {
			m.errs.Add(1)
			errs = append(errs, err)
		}
	}
	next := now.Add(pollInterval)
	m.mu.Lock()
	for _, s := range m.sched {
		if s.next.Before(next) {
			next = s.next
		}
	}
	m.mu.Unlock()
	return next, errors.Join(errs...)
}

// forget drops the schedule and alerts of keys no longer watched.
func (m *Monitor) forget(ks []store.Key) {
	live := map[int64]bool{} // watched key ID → active
	for _, k := range ks {
		live[k.ID] = k.State == store.KeyActive
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for id := range m.sched {
		if _, ok := live[id]; !ok {
			delete(m.sched, id)
		}
	}
	for id := range m.alerts {
		if !live[id] {
			delete(m.alerts, id)
		}
	}
}

// domain checks the due keys of one domain, then acts: fail-over for
// broken active keys, activation of published pending keys (when the
// domain says so), archiving of revoked keys whose empty p= is out.
func (m *Monitor) domain(ctx context.Context, domain string, ks []store.Key, now time.Time, all bool) error {
	fresh := map[int64]store.DNSCheck{}
	var errs []error
	for _, k := range ks {
		m.mu.Lock()
		s := m.sched[k.ID]
		m.mu.Unlock()
		if !all && now.Before(s.next) {
			continue
		}
		c, err := m.check(ctx, k, s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fresh[k.ID] = c
	}
	if len(fresh) == 0 {
		return errors.Join(errs...)
	}
	dom, err := m.o.Service.o.Store.GetDomain(ctx, domain)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("lifecycle: domain %s: %w", domain, err))...)
	}
	used := map[int64]bool{}
	for _, k := range ks {
		c, ok := fresh[k.ID]
		if !ok || k.State != store.KeyActive {
			continue
		}
		if err := m.watchActive(ctx, k, c, ks, fresh, used); err != nil {
			errs = append(errs, err)
		}
	}
	for _, k := range ks {
		c, ok := fresh[k.ID]
		if !ok || !c.OK || used[k.ID] {
			continue
		}
		log := m.log().With("domain", k.Domain, "selector", k.Selector)
		switch {
		case k.State == store.KeyPending && dom.AutoActivate:
			changed, err := m.o.Service.activateSeen(ctx, k, "record seen on every server; the domain activates keys by itself")
			if err != nil {
				errs = append(errs, fmt.Errorf("lifecycle: activate %s: %w", k.RecordName(), err))
				continue
			}
			m.activations.Add(1)
			log.Info("key_activated", "changed", describe(changed))
		case k.State == store.KeyRevoked:
			if _, err := m.o.Service.archiveSeen(ctx, k, "DNS serves the revoked record (empty p=)"); err != nil {
				errs = append(errs, fmt.Errorf("lifecycle: archive %s: %w", k.RecordName(), err))
				continue
			}
			m.archives.Add(1)
			log.Info("key_archived")
		}
	}
	return errors.Join(errs...)
}

// check checks one key, keeps the outcome and reschedules the key.
func (m *Monitor) check(ctx context.Context, k store.Key, s schedule) (store.DNSCheck, error) {
	c, err := m.o.Service.o.DNS.CheckKey(ctx, k)
	now := m.now()
	if err == nil {
		m.checks.Add(1)
		c.KeyID = k.ID
		c, err = m.o.Service.o.Store.AddDNSCheck(ctx, c, m.o.Service.o.Settings.HistoryCap())
	}
	if err != nil || Temporary(c) {
		// Back off: RetryMin, doubling, up to the key's interval.
		s.failures++
		wait := cmp.Or(max(m.o.RetryMin, 0), DefaultRetryMin) << min(s.failures-1, 20)
		s.next = now.Add(m.jitter(min(wait, m.interval(k.State))))
	} else {
		s.failures = 0
		s.next = now.Add(m.jitter(m.interval(k.State)))
	}
	m.mu.Lock()
	m.sched[k.ID] = s
	m.mu.Unlock()
	if err != nil {
		return c, fmt.Errorf("lifecycle: check %s: %w", k.RecordName(), err)
	}
	if Temporary(c) {
		m.temporary.Add(1)
		m.log().Warn("dns_check_temporary_failure", "domain", k.Domain, "selector", k.Selector, "state", string(k.State),
			"failures", s.failures, "next_check", s.next, "summary", c.Summary)
	}
	return c, nil
}

// watchActive raises or clears an active key's alert, and fails over to a
// standby when told to.
func (m *Monitor) watchActive(ctx context.Context, k store.Key, c store.DNSCheck, ks []store.Key, fresh map[int64]store.DNSCheck, used map[int64]bool) error {
	log := m.log().With("domain", k.Domain, "selector", k.Selector)
	if c.OK {
		m.mu.Lock()
		_, was := m.alerts[k.ID]
		delete(m.alerts, k.ID)
		m.mu.Unlock()
		if was {
			log.Info("active_key_record_restored")
		}
		return nil
	}
	if Temporary(c) {
		return nil // says nothing about the record
	}
	m.mu.Lock()
	a, was := m.alerts[k.ID]
	if !was {
		a = Alert{KeyID: k.ID, Domain: k.Domain, Selector: k.Selector, Since: c.Time}
	}
	prev := a.Status
	a.Status, a.Summary = c.Status, c.Summary // the newest finding
	m.alerts[k.ID] = a
	m.mu.Unlock()
	if !was {
		m.alertsRaised.Add(1)
	}
	if prev != c.Status {
		// Once per finding, not once per check.
		log.Error("active_key_record_problem", "status", c.Status, "summary", c.Summary, "since", a.Since)
	}
	if !m.o.Failover {
		return nil
	}
	after := cmp.Or(max(m.o.FailoverAfter, 0), DefaultFailoverAfter)
	hist, err := m.o.Service.o.Store.ListDNSChecks(ctx, store.DNSCheckFilter{KeyID: k.ID, Limit: after})
	if err != nil {
		return fmt.Errorf("lifecycle: history of %s: %w", k.RecordName(), err)
	}
	if len(hist) < after || slices.ContainsFunc(hist, func(h store.DNSCheck) bool { return h.OK || Temporary(h) }) {
		return nil
	}
	standby, ok := pickStandby(k, ks, fresh, used)
	if !ok {
		log.Error("failover_no_standby", "status", c.Status)
		return nil
	}
	changed, err := m.o.Service.failOver(ctx, k, standby,
		fmt.Sprintf("record of the active key %s is %s on %d checks in a row; standby %s is published", k.Selector, c.Status, after, standby.Selector))
	if err != nil {
		return fmt.Errorf("lifecycle: fail over from %s: %w", k.RecordName(), err)
	}
	used[standby.ID] = true
	m.failovers.Add(1)
	m.mu.Lock()
	delete(m.alerts, k.ID)
	m.mu.Unlock()
	log.Error("key_failed_over", "standby", standby.Selector, "changed", describe(changed))
	return nil
}

// pickStandby finds a pending key of broken's domain and algorithm whose
// record this round found published, preferring the one made to replace
// broken, then the oldest.
func pickStandby(broken store.Key, ks []store.Key, fresh map[int64]store.DNSCheck, used map[int64]bool) (store.Key, bool) {
	var best store.Key
	found := false
	for _, k := range ks {
		c, ok := fresh[k.ID]
		if !ok || !c.OK || used[k.ID] || k.State != store.KeyPending || k.Algorithm != broken.Algorithm || k.Domain != broken.Domain {
			continue
		}
		if !found || (k.Replaces == broken.ID && best.Replaces != broken.ID) {
			best, found = k, true
		}
	}
	return best, found
}

// describe gives "selector:state" for each key changed, for the log.
func describe(ks []store.Key) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.Selector + ":" + string(k.State)
	}
	return out
}
