package web

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/admin"
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
	e := newEnv(t)
	const rootPassword = "owner password for tests"
	if _, err := e.svc.AddAccount(e.ctx, admin.CLI(), admin.NewAccountRequest{Name: "owner", Role: store.RoleAdmin, Password: rootPassword}); err != nil {
		t.Fatal(err)
	}
	l := newLogins(Options{Admin: e.svc, Now: e.clk.Now, SessionTTL: time.Hour,
		LoginLimits: LoginLimits{PerName: 1, NameDelay: 3 * time.Second}}.WithDefaults())
	var slept []time.Duration
	l.sleep = func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }
	log := slog.New(slog.DiscardHandler)
	if _, err := l.Login(e.ctx, log, "192.0.2.1", "owner", "wrong password here"); err == nil {
		t.Fatal("a wrong password logged in")
	}
	if _, err := l.Login(e.ctx, log, "192.0.2.2", "owner", rootPassword); err != nil {
		t.Fatalf("owner: %v", err)
	}
	if len(slept) != 1 || slept[0] != 3*time.Second {
		t.Errorf("slept %v, want [3s] before the second login", slept)
	}
	// A client that gives up while held is not logged in.
	l.sleep = func(ctx context.Context, d time.Duration) error { return context.Canceled }
	l.Login(e.ctx, log, "192.0.2.1", "owner", "wrong password here")
	if _, err := l.Login(e.ctx, log, "192.0.2.3", "owner", rootPassword); err == nil {
		t.Error("logged in though the wait was cut short")
	}
}
