package web

import (
	"net/netip"
	"sync"
	"time"
)

// LoginLimits bound password guessing at POST /api/v1/login and the
// panel's login form, which count together when served by New. Failed
// logins are counted per client address and per account name in a fixed
// window; once either count reaches its limit, logins from that address
// or for that name answer 429 (without checking the password) until the
// window ends.
// API tokens keep working meanwhile, so an attacker who locks an account
// name out of the panel does not lock its scripts out.
type LoginLimits struct {
	// PerIP is how many failed logins one client may make per Window.
	// IPv6 clients count per /64, since one host usually holds a whole
	// /64. Zero means 20.
	PerIP int
	// PerName is how many failed logins one account name may receive per
	// Window, from anywhere: it stops guessing spread over many addresses.
	// Zero means 10.
	PerName int
	// Window is how long failures are remembered. Zero means 15 minutes.
	Window time.Duration
	// MaxEntries bounds the memory of each table (addresses, names). When
	// one is full, expired entries go first, then the oldest. Zero means
	// 10000 (about a megabyte).
	MaxEntries int
}

// DefaultLoginLimits gives the limits used for a zero LoginLimits.
func DefaultLoginLimits() LoginLimits {
	return LoginLimits{PerIP: 20, PerName: 10, Window: 15 * time.Minute, MaxEntries: 10000}
}

type throttle struct {
	limits LoginLimits
	mu     sync.Mutex
	ips    map[string]*failures
	names  map[string]*failures
}

// failures counts failed logins since start.
type failures struct {
	start time.Time
	count int
}

func newThrottle(l LoginLimits) *throttle {
	d := DefaultLoginLimits()
	if l.PerIP <= 0 {
		l.PerIP = d.PerIP
	}
	if l.PerName <= 0 {
		l.PerName = d.PerName
	}
	if l.Window <= 0 {
		l.Window = d.Window
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = d.MaxEntries
	}
	return &throttle{limits: l, ips: map[string]*failures{}, names: map[string]*failures{}}
}

// ipKey gives the address a client is counted under.
func ipKey(remote string) string {
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

// begin is called before a login is checked. It gives how long a login
// from remote for name must wait, or zero and counts the attempt as a
// failure in advance: so that a thousand guesses sent at once are counted
// before the first password check ends. succeed takes the count back.
func (t *throttle) begin(remote, name string, now time.Time) time.Duration {
	ip := ipKey(remote)
	t.mu.Lock()
	defer t.mu.Unlock()
	if wait := max(t.blocked(t.ips, ip, t.limits.PerIP, now), t.blocked(t.names, name, t.limits.PerName, now)); wait > 0 {
		return wait
	}
	t.count(t.ips, ip, now)
	t.count(t.names, name, now)
	return 0
}

func (t *throttle) blocked(m map[string]*failures, key string, limit int, now time.Time) time.Duration {
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

func (t *throttle) count(m map[string]*failures, key string, now time.Time) {
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
func (t *throttle) evict(m map[string]*failures, now time.Time) {
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

// succeed takes back what begin counted for a login that was right, and
// forgets the name's failures. The address keeps its earlier failures: one
// right password does not license guessing at other names.
func (t *throttle) succeed(remote, name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.names, name)
	if f, ok := t.ips[ipKey(remote)]; ok && f.count > 0 {
		f.count--
	}
}
