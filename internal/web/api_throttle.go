package web

import (
	"net/netip"
	"sync"
	"time"
)

// LoginThrottle decides whether a login may be checked, before its
// password is. POST /api/v1/login and the panel's login form share one
// when they share one Logins (panel.NewSite). memThrottle keeps its
// counts in this process; a cluster of dkimd nodes can share one behind
// this interface instead (in the database), so that a guesser gains
// nothing by spreading over nodes.
type LoginThrottle interface {
	// Begin is called before a login for name (lower case, as typed)
	// from the client at remote is checked. Unless it refuses the login
	// (Wait > 0), it counts the attempt as a failure in advance, so that
	// a thousand guesses sent at once are counted before the first
	// password check ends; Succeed takes the count back.
	Begin(remote, name string, now time.Time) LoginDecision
	// Succeed is called after a right password.
	Succeed(remote, name string, now time.Time)
	// AuditFailure reports whether a failed login from remote may still
	// be written to the audit log: it caps what one source can write, so
	// that an attack cannot flood the audit table.
	AuditFailure(remote string, now time.Time) bool
}

// LoginDecision is what LoginThrottle.Begin decides.
type LoginDecision struct {
	// Wait, when positive, refuses the login without checking its
	// password: this name from this client address, or this client
	// address across names, has failed too often. It is the time until
	// the refusal ends.
	Wait time.Duration
	// Delay, when positive, holds the login that long before its password
	// is checked: the name has failed too often across all addresses. It
	// slows guessing spread over many addresses without locking out the
	// owner, who logs in from an address of their own.
	Delay time.Duration
}

// LoginLimits bound password guessing at POST /api/v1/login and the
// panel's login form, which count together when they share one Logins
// (panel.NewSite). Failed logins are counted in a fixed window per (account name, client
// address) pair, per client address and per account name.
//
// A pair or an address that reaches its limit is refused (429) until its
// window ends. A name is never refused for failures from other
// addresses, which would let anyone lock its owner out: past PerName, its
// logins are only slowed. API tokens keep working meanwhile.
//
// IPv6 clients count per /64, since one host usually holds a whole /64.
type LoginLimits struct {
	// PerPair is how many failed logins for one account name from one
	// client address are allowed per Window. Zero means 10.
	PerPair int
	// PerIP is how many failed logins one client address may make per
	// Window, across all names: it stops one address guessing at many
	// names. Zero means 20.
	PerIP int
	// PerName is how many failed logins one account name may receive per
	// Window, from all addresses together, before each further login for
	// it is slowed by NameDelay per failure over the limit, up to
	// MaxNameDelay. Zero means 20.
	PerName int
	// NameDelay is the delay added per failure over PerName. Zero means
	// 250 milliseconds.
	NameDelay time.Duration
	// MaxNameDelay caps the delay. Zero means 5 seconds.
	MaxNameDelay time.Duration
	// AuditPerIP is how many failed logins from one client address are
	// written to the audit log per Window; the rest are only logged.
	// Zero means 20.
	AuditPerIP int
	// AuditTotal is how many failed logins from all addresses together
	// are written to the audit log per Window, against an attack from
	// many addresses. Zero means 1000.
	AuditTotal int
	// Window is how long failures are remembered. Zero means 15 minutes.
	Window time.Duration
	// MaxEntries bounds the memory of each table (pairs, addresses,
	// names, audit counts). When one is full, expired entries go first,
	// then the oldest. Zero means 10000: a few megabytes in all, since a
	// name counts at most store.MaxNameLen bytes.
	MaxEntries int
}

// DefaultLoginLimits gives the limits used for a zero LoginLimits.
func DefaultLoginLimits() LoginLimits {
	return LoginLimits{PerPair: 10, PerIP: 20, PerName: 20, NameDelay: 250 * time.Millisecond,
		MaxNameDelay: 5 * time.Second, AuditPerIP: 20, AuditTotal: 1000, Window: 15 * time.Minute, MaxEntries: 10000}
}

// withDefaults gives l with its zero fields set to the defaults.
func (l LoginLimits) withDefaults() LoginLimits {
	d := DefaultLoginLimits()
	for _, f := range []struct{ v, d *int }{
		{&l.PerPair, &d.PerPair}, {&l.PerIP, &d.PerIP}, {&l.PerName, &d.PerName},
		{&l.AuditPerIP, &d.AuditPerIP}, {&l.AuditTotal, &d.AuditTotal}, {&l.MaxEntries, &d.MaxEntries},
	} {
		if *f.v <= 0 {
			*f.v = *f.d
		}
	}
	for _, f := range []struct{ v, d *time.Duration }{
		{&l.NameDelay, &d.NameDelay}, {&l.MaxNameDelay, &d.MaxNameDelay}, {&l.Window, &d.Window},
	} {
		if *f.v <= 0 {
			*f.v = *f.d
		}
	}
	return l
}

// memThrottle is the LoginThrottle of one process, in memory.
type memThrottle struct {
	limits LoginLimits
	mu     sync.Mutex
	pairs  counts
	ips    counts
	names  counts
	audits counts
	// audited counts audit entries from all addresses.
	audited failures
}

// newMemThrottle gives a LoginThrottle in memory under l (zero fields
// meaning the defaults).
func newMemThrottle(l LoginLimits) *memThrottle {
	l = l.withDefaults()
	return &memThrottle{limits: l, pairs: counts{}, ips: counts{}, names: counts{}, audits: counts{}}
}

// counts holds a count per key in a fixed window from start.
type counts map[string]*failures

// failures counts failed logins since start.
type failures struct {
	start time.Time
	count int
}

// ClientKey gives the address a login client is counted under: the
// address itself, or its /64 for IPv6 (one host often holds a whole /64).
// The panel's throttle and the cluster's shared one count alike.
func ClientKey(remote string) string {
	a, err := netip.ParseAddr(remote)
	if err != nil {
		return remote
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		return netip.PrefixFrom(a, 64).Masked().String()
	}
	return a.String()
}

// pairKey joins a name and an address key; NUL is in neither.
func pairKey(ip, name string) string { return name + "\x00" + ip }

// Begin implements LoginThrottle.
func (t *memThrottle) Begin(remote, name string, now time.Time) LoginDecision {
	ip := ClientKey(remote)
	pair := pairKey(ip, name)
	t.mu.Lock()
	defer t.mu.Unlock()
	if wait := max(t.blocked(t.pairs, pair, t.limits.PerPair, now), t.blocked(t.ips, ip, t.limits.PerIP, now)); wait > 0 {
		return LoginDecision{Wait: wait}
	}
	var d LoginDecision
	if over := t.current(t.names, name, now) - t.limits.PerName; over >= 0 {
		d.Delay = min(time.Duration(over+1)*t.limits.NameDelay, t.limits.MaxNameDelay)
	}
	t.count(t.pairs, pair, now)
	t.count(t.ips, ip, now)
	t.count(t.names, name, now)
	return d
}

// current gives the count of key in its window.
func (t *memThrottle) current(m counts, key string, now time.Time) int {
	f, ok := m[key]
	if !ok || !now.Before(f.start.Add(t.limits.Window)) {
		return 0
	}
	return f.count
}

func (t *memThrottle) blocked(m counts, key string, limit int, now time.Time) time.Duration {
	f, ok := m[key]
	if !ok {
		return 0
	}
	end := f.start.Add(t.limits.Window)
	if !now.Before(end) {
		delete(m, key)
		return 0
	}
	if f.count < limit {
		return 0
	}
	return end.Sub(now)
}

func (t *memThrottle) count(m counts, key string, now time.Time) {
	if f, ok := m[key]; ok && now.Before(f.start.Add(t.limits.Window)) {
		f.count++
		return
	}
	if _, ok := m[key]; !ok && len(m) >= t.limits.MaxEntries {
		t.evict(m, now)
	}
	m[key] = &failures{start: now, count: 1}
}

// evict makes room in a full table: every expired entry, or else the
// oldest one. It is linear, but runs only when the table is full.
func (t *memThrottle) evict(m counts, now time.Time) {
	var oldest string
	var oldestStart time.Time
	found := false
	for k, f := range m {
		if !now.Before(f.start.Add(t.limits.Window)) {
			delete(m, k)
			continue
		}
		if !found || f.start.Before(oldestStart) {
			oldest, oldestStart, found = k, f.start, true
		}
	}
	if len(m) >= t.limits.MaxEntries {
		delete(m, oldest)
	}
}

// Succeed takes back what Begin counted for a login that was right, and
// forgets the pair's and the name's failures: the owner is in. The
// address keeps its earlier failures: one right password does not license
// guessing at other names.
func (t *memThrottle) Succeed(remote, name string, now time.Time) {
	ip := ClientKey(remote)
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.pairs, pairKey(ip, name))
	delete(t.names, name)
	if f, ok := t.ips[ip]; ok && f.count > 0 {
		f.count--
	}
}

// AuditFailure implements LoginThrottle: AuditPerIP entries per address
// and AuditTotal in all per Window.
func (t *memThrottle) AuditFailure(remote string, now time.Time) bool {
	ip := ClientKey(remote)
	t.mu.Lock()
	defer t.mu.Unlock()
	if !now.Before(t.audited.start.Add(t.limits.Window)) {
		t.audited = failures{start: now}
	}
	if t.audited.count >= t.limits.AuditTotal || t.blocked(t.audits, ip, t.limits.AuditPerIP, now) > 0 {
		return false
	}
	t.audited.count++
	t.count(t.audits, ip, now)
	return true
}
