package lifecycle_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/dnscheck/dnstest"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/store"
)

var ed = keys.Spec{Algorithm: keys.Ed25519}

// activeKey makes a key, publishes it and forces it active.
func activeKey(t *testing.T, w *world, sel string) store.Key {
	t.Helper()
	k := w.generate(sel, ed)
	w.publishKey(k)
	if _, err := w.lc.Activate(w.ctx, cli, w.key(sel), false); err != nil {
		t.Fatal(err)
	}
	return w.key(sel)
}

func TestMonitorAlerts(t *testing.T) {
	w := newWorld(t, worldOptions{})
	k := activeKey(t, w, "main")
	other := w.generate("other", ed)
	otherRec, err := lifecycle.Record(other)
	if err != nil {
		t.Fatal(err)
	}
	mainRec, err := lifecycle.Record(k)
	if err != nil {
		t.Fatal(err)
	}
	w.checkOnce()
	if a := w.mon.Alerts(); len(a) != 0 {
		t.Fatalf("alerts with the record in place: %+v", a)
	}
	// One change to DNS per row; each expects its alert (or none).
	for _, tc := range []struct {
		name   string
		value  string
		status string
	}{
		{"record removed", "", "not_found"},
		{"record changed to another key", otherRec.Value, "wrong_key"},
		{"record restored", mainRec.Value, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := w.mon.Counters().Alerts
			w.publish(map[string]string{"main": tc.value})
			w.checkOnce()
			alerts := w.mon.Alerts()
			st := status(t, w, "main")
			if tc.status == "" {
				if len(alerts) != 0 || st.Alert || !strings.Contains(w.logs.String(), "active_key_record_restored") {
					t.Fatalf("alerts %+v, status alert %v after the record came back", alerts, st.Alert)
				}
				return
			}
			if len(alerts) != 1 || alerts[0].Selector != "main" || alerts[0].Status != tc.status {
				t.Fatalf("alerts %+v, want one for main with %s", alerts, tc.status)
			}
			if !st.Alert || !hasWarning(st, lifecycle.WarnRecord) || st.LastCheck.Status != tc.status {
				t.Fatalf("status %+v, want the alert", st)
			}
			if tc.status == "not_found" && w.mon.Counters().Alerts != before+1 {
				t.Fatalf("alert counter %d, want %d", w.mon.Counters().Alerts, before+1)
			}
			if !strings.Contains(w.logs.String(), "level=ERROR msg=active_key_record_problem") {
				t.Fatalf("no error log line:\n%s", w.logs.String())
			}
		})
	}
	// No fail-over unless asked: the key is still active.
	w.wantStates("after alerts", map[string]store.KeyState{"main": store.KeyActive, "other": store.KeyPending})
}

func TestMonitorFailover(t *testing.T) {
	w := newWorld(t, worldOptions{monitor: lifecycle.MonitorOptions{Failover: true, FailoverAfter: 2}})
	activeKey(t, w, "main")
	w.publishKey(w.generate("standby", ed))
	w.publishKey(w.generate("unpublished", ed))
	w.checkOnce()
	w.signAndVerify("before", "main")

	w.publish(map[string]string{"main": ""})
	w.checkOnce()
	w.wantStates("first failure", map[string]store.KeyState{"main": store.KeyActive, "standby": store.KeyPending})
	w.checkOnce()
	w.wantStates("second failure", map[string]store.KeyState{"main": store.KeyRetired, "standby": store.KeyActive, "unpublished": store.KeyPending})
	if c := w.mon.Counters(); c.Failovers != 1 || len(w.mon.Alerts()) != 0 {
		t.Fatalf("counters %+v alerts %+v", c, w.mon.Alerts())
	}
	w.signAndVerify("after fail-over", "standby")
	es, err := w.db.ListAudit(w.ctx, store.AuditFilter{Domain: domain, Actor: "system"})
	if err != nil || len(es) != 2 || !strings.Contains(es[0].Detail+es[1].Detail, "fail-over") {
		t.Fatalf("audit of the fail-over: %+v %v", es, err)
	}
}

func TestMonitorFailoverNeedsStandby(t *testing.T) {
	w := newWorld(t, worldOptions{monitor: lifecycle.MonitorOptions{Failover: true, FailoverAfter: 1}})
	activeKey(t, w, "main")
	w.generate("unpublished", ed)
	w.publish(map[string]string{"main": ""})
	w.checkOnce()
	w.wantStates("no standby", map[string]store.KeyState{"main": store.KeyActive, "unpublished": store.KeyPending})
	if !strings.Contains(w.logs.String(), "failover_no_standby") {
		t.Fatalf("log:\n%s", w.logs.String())
	}
}

func TestAutoActivatePerDomain(t *testing.T) {
	w := newWorld(t, worldOptions{autoActivate: false})
	w.publishKey(w.generate("k", ed))
	w.checkOnce()
	w.wantStates("manual domain", map[string]store.KeyState{"k": store.KeyPending})
	if st := status(t, w, "k"); !hasWarning(st, lifecycle.WarnReady) {
		t.Fatalf("status %+v, want ready_to_activate", st.Warnings)
	}
	d, err := w.db.GetDomain(w.ctx, domain)
	if err != nil {
		t.Fatal(err)
	}
	d.AutoActivate = true
	if _, err := w.db.UpdateDomain(w.ctx, d); err != nil {
		t.Fatal(err)
	}
	w.checkOnce()
	w.wantStates("automatic domain", map[string]store.KeyState{"k": store.KeyActive})
	if c := w.mon.Counters(); c.Activations != 1 {
		t.Fatalf("counters %+v", c)
	}
	// An admin's activation still needs the record, unless forced.
	w.generate("late", ed)
	if _, err := w.lc.Activate(w.ctx, cli, w.key("late"), false); !errors.Is(err, lifecycle.ErrNotPublished) {
		t.Fatalf("activate unpublished: %v", err)
	}
	if _, err := w.lc.Activate(w.ctx, cli, w.key("late"), true); err != nil {
		t.Fatal(err)
	}
}

func TestHistoryCapAndCheckNow(t *testing.T) {
	w := newWorld(t, worldOptions{settings: lifecycle.Settings{History: 3}})
	k := w.generate("k", ed)
	for range 5 {
		w.clk.Advance(time.Minute)
		w.checkOnce()
	}
	if cs, err := w.lc.History(w.ctx, w.key("k"), 100); err != nil || len(cs) != 3 || !cs[0].Time.Equal(w.clk.Now()) {
		t.Fatalf("history %+v %v, want the newest 3", cs, err)
	}
	w.publishKey(k)
	c, err := w.lc.CheckNow(w.ctx, w.key("k"))
	if err != nil || !c.OK || c.Status != "match" || c.ID == 0 {
		t.Fatalf("CheckKeyNow = %+v %v", c, err)
	}
	if cs, _ := w.lc.History(w.ctx, w.key("k"), 100); len(cs) != 3 || cs[0].ID != c.ID {
		t.Fatalf("history after CheckKeyNow: %+v", cs)
	}
}

func TestMonitorBackoff(t *testing.T) {
	w := newWorld(t, worldOptions{monitor: lifecycle.MonitorOptions{RetryMin: time.Minute, Interval: time.Hour}})
	k := activeKey(t, w, "main")
	w.publish(nil, map[string]dnstest.Fault{"*": dnstest.ServFail})
	for i, want := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute} {
		w.checkOnce()
		if got := w.mon.NextCheck(k.ID).Sub(w.clk.Now()); got != want {
			t.Fatalf("failure %d: next check in %v, want %v", i+1, got, want)
		}
	}
	if a := w.mon.Alerts(); len(a) != 0 {
		t.Fatalf("a temporary failure raised an alert: %+v", a)
	}
	if c := w.mon.Counters(); c.TemporaryFailures != 3 {
		t.Fatalf("counters %+v", c)
	}
	w.publish(nil)
	w.checkOnce()
	if got := w.mon.NextCheck(k.ID).Sub(w.clk.Now()); got != time.Hour {
		t.Fatalf("after recovery: next check in %v, want the interval", got)
	}
}

// TestMonitorRun: Run checks at once, acts, and returns when told to stop.
func TestMonitorRun(t *testing.T) {
	w := newWorld(t, worldOptions{autoActivate: true})
	w.publishKey(w.generate("k", ed))
	ctx, cancel := context.WithCancel(w.ctx)
	done := make(chan error, 1)
	go func() { done <- w.mon.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for w.key("k").State != store.KeyActive {
		if time.Now().After(deadline) {
			t.Fatal("Run did not activate the published key")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if next := w.mon.NextCheck(w.key("k").ID); !next.Equal(w.clk.Now().Add(lifecycle.DefaultPendingInterval)) {
		t.Fatalf("next check %v, want the pending interval after the check", next)
	}
}
