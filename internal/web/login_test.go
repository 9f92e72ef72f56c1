package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/store"
)

// Issue 10, point 5: ten wrong passwords for a name from one address lock
// that (name, address) pair, not the name: its owner elsewhere gets in.
func TestThrottlePairNotName(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	th := newMemThrottle(LoginLimits{})
	const attacker, owner = "203.0.113.5", "198.51.100.7"
	for i := range 10 {
		if d := th.Begin(attacker, "admin", now); d != (LoginDecision{}) {
			t.Fatalf("attempt %d: %+v, want neither refused nor slowed", i+1, d)
		}
	}
	if d := th.Begin(attacker, "admin", now); d.Wait != 15*time.Minute {
		t.Errorf("attacker's 11th attempt: %+v, want refused for the 15-minute window", d)
	}
	// Another host of the attacker's IPv6 /64 counts as the same source;
	// another /64 does not.
	for i := range 10 {
		th.Begin(fmt.Sprintf("2001:db8:1:2::%x", i+1), "admin", now)
	}
	if d := th.Begin("2001:db8:1:2::ffff", "admin", now); d.Wait == 0 {
		t.Errorf("same /64: %+v, want refused", d)
	}
	if d := th.Begin(owner, "admin", now.Add(time.Minute)); d.Wait != 0 {
		t.Errorf("owner from another address: %+v, want let through", d)
	}
	th.Succeed(owner, "admin", now.Add(time.Minute))
	// The window ends for the attacker too.
	if d := th.Begin(attacker, "admin", now.Add(15*time.Minute)); d.Wait != 0 {
		t.Errorf("after the window: %+v", d)
	}
}

// The per-name ceiling across addresses slows logins for the name, by
// NameDelay per failure over PerName up to MaxNameDelay, and never
// refuses a fresh address.
func TestThrottleNameCeilingSlows(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	th := newMemThrottle(LoginLimits{PerName: 20, NameDelay: time.Second, MaxNameDelay: 4 * time.Second})
	addr := func(i int) string { return fmt.Sprintf("192.0.2.%d", i) }
	for i := range 20 {
		if d := th.Begin(addr(i), "admin", now); d != (LoginDecision{}) {
			t.Fatalf("failure %d from a fresh address: %+v", i+1, d)
		}
	}
	for i, want := range []time.Duration{1, 2, 3, 4, 4, 4} {
		d := th.Begin(addr(100+i), "admin", now)
		if d.Wait != 0 || d.Delay != want*time.Second {
			t.Errorf("attempt %d over the ceiling: %+v, want a delay of %v and no refusal", i+1, d, want*time.Second)
		}
	}
	// Other names are not slowed.
	if d := th.Begin(addr(200), "alice", now); d != (LoginDecision{}) {
		t.Errorf("another name: %+v", d)
	}
	// The window ends the slowing.
	if d := th.Begin(addr(201), "admin", now.Add(15*time.Minute)); d != (LoginDecision{}) {
		t.Errorf("after the window: %+v", d)
	}
}

// login holds a login for the delay the throttle asks, before checking
// its password.
func TestLoginWaitsForDelay(t *testing.T) {
	e := newPanelEnv(t, panelEnvOptions{})
	l := newLogins(Options{Admin: e.svc, Now: e.clk.Now, SessionTTL: time.Hour,
		LoginLimits: LoginLimits{PerName: 1, NameDelay: 3 * time.Second}}.withDefaults())
	var slept []time.Duration
	l.sleep = func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }
	log := slog.New(slog.DiscardHandler)
	if _, err := l.login(e.ctx, log, "192.0.2.1", "root", "wrong password here"); err == nil {
		t.Fatal("a wrong password logged in")
	}
	if _, err := l.login(e.ctx, log, "192.0.2.2", "root", rootPassword); err != nil {
		t.Fatalf("owner: %v", err)
	}
	if len(slept) != 1 || slept[0] != 3*time.Second {
		t.Errorf("slept %v, want [3s] before the second login", slept)
	}
	// A client that gives up while held is not logged in.
	l.sleep = func(ctx context.Context, d time.Duration) error { return context.Canceled }
	l.login(e.ctx, log, "192.0.2.1", "root", "wrong password here")
	if _, err := l.login(e.ctx, log, "192.0.2.3", "root", rootPassword); err == nil {
		t.Error("logged in though the wait was cut short")
	}
}

// apiLoginFrom logs in at POST /api/v1/login from the client address
// remote and gives the status.
func (e *panelEnv) apiLoginFrom(t *testing.T, remote, name, password string) int {
	t.Helper()
	body := `{"name":` + jsonString(name) + `,"password":` + jsonString(password) + `}`
	r := httptest.NewRequestWithContext(e.ctx, "POST", "/api/v1/login", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.RemoteAddr = remote + ":40000"
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	_, _ = io.Copy(io.Discard, w.Body)
	return w.Code
}

func jsonString(s string) string {
	b, _ := json.Marshal(s) // a string always marshals
	return string(b)
}

// The scenario through New, as serve mounts it: ten wrong
// passwords for root from one address; root from another address still
// gets in; the attacker's address stays throttled; every failure is in
// the audit log with the name as typed, the address and the reason, and
// no password.
func TestLoginLockoutScenario(t *testing.T) {
	e := newPanelEnv(t, panelEnvOptions{})
	const attacker, owner = "203.0.113.5", "198.51.100.7"
	wrong := func(i int) string { return "wrong guess number " + string(rune('a'+i)) }
	for i := range 10 {
		if got := e.apiLoginFrom(t, attacker, "root", wrong(i)); got != http.StatusUnauthorized {
			t.Fatalf("guess %d: status %d, want 401", i+1, got)
		}
	}
	if got := e.apiLoginFrom(t, attacker, "Root", rootPassword); got != http.StatusTooManyRequests {
		t.Errorf("attacker's address after 10 failures: status %d, want 429", got)
	}
	if got := e.apiLoginFrom(t, owner, "root", rootPassword); got != http.StatusOK {
		t.Errorf("owner from another address: status %d, want 200", got)
	}
	if got := e.apiLoginFrom(t, attacker, "root", rootPassword); got != http.StatusTooManyRequests {
		t.Errorf("attacker's address after the owner's login: status %d, want still 429", got)
	}
	if got := e.apiLoginFrom(t, owner, "nosuchaccount", "some password"); got != http.StatusUnauthorized {
		t.Errorf("unknown account: status %d", got)
	}

	es, err := e.db.ListAudit(e.ctx, store.AuditFilter{Action: "account.login_failed", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, a := range es {
		count[a.Remote+" "+a.ObjectID+" "+a.Detail]++
		if a.Actor != "anonymous" || a.ObjectKind != "account" {
			t.Errorf("entry %+v: want actor anonymous, object an account", a)
		}
		for i := range 10 {
			if strings.Contains(a.Detail+a.ObjectID, wrong(i)) || strings.Contains(a.Detail+a.ObjectID, rootPassword) {
				t.Errorf("a password reached the audit log: %+v", a)
			}
		}
	}
	want := map[string]int{
		attacker + " root bad password":          10,
		attacker + " Root throttled":             1,
		attacker + " root throttled":             1,
		owner + " nosuchaccount unknown account": 1,
	}
	for k, n := range want {
		if count[k] != n {
			t.Errorf("%d audit entries %q, want %d (all: %v)", count[k], k, n, count)
		}
	}
	if len(es) != 13 {
		t.Errorf("%d failed-login entries, want 13", len(es))
	}
}

// One address cannot flood the audit table: past AuditPerIP failures a
// window, its failures are only logged; another address is still audited.
func TestLoginFailureAuditCapped(t *testing.T) {
	e := newPanelEnv(t, panelEnvOptions{limits: LoginLimits{AuditPerIP: 3, PerPair: 100, PerIP: 100, PerName: 100}})
	for range 6 {
		e.apiLoginFrom(t, "203.0.113.5", "ghost", "wrong password here")
	}
	e.apiLoginFrom(t, "198.51.100.7", "ghost", "wrong password here")
	es, err := e.db.ListAudit(e.ctx, store.AuditFilter{Action: "account.login_failed", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]int{}
	for _, a := range es {
		by[a.Remote]++
	}
	if by["203.0.113.5"] != 3 || by["198.51.100.7"] != 1 {
		t.Errorf("audit entries per address %v, want 3 and 1", by)
	}
	// The next window audits again.
	e.clk.Advance(DefaultLoginLimits().Window)
	e.apiLoginFrom(t, "203.0.113.5", "ghost", "wrong password here")
	if es, _ := e.db.ListAudit(e.ctx, store.AuditFilter{Action: "account.login_failed", Limit: 100}); len(es) != 5 {
		t.Errorf("%d entries after the window, want 5", len(es))
	}
}

func TestTypedNameInAudit(t *testing.T) {
	e := newPanelEnv(t, panelEnvOptions{})
	e.apiLoginFrom(t, "192.0.2.1", "sys\ttem\u0000"+strings.Repeat("x", 400), "wrong password here")
	es, err := e.db.ListAudit(e.ctx, store.AuditFilter{Action: "account.login_failed"})
	if err != nil || len(es) != 1 {
		t.Fatalf("%v %v", es, err)
	}
	if id := es[0].ObjectID; !strings.HasPrefix(id, "system") || len(id) != store.MaxNameLen || es[0].Actor != "anonymous" {
		t.Errorf("audited %q as %q: want control characters dropped, cut to %d bytes, by anonymous", id, es[0].Actor, store.MaxNameLen)
	}
}
