package web

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/admin/admintest"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/store"
)

// publishKey serves the record admin says to publish for a key now.
func (e *env) publishKey(domain, selector string) {
	e.t.Helper()
	_, rec, err := e.svc.KeyRecord(e.ctx, admin.CLI(), domain, selector)
	if err != nil || rec == nil {
		e.t.Fatalf("record of %s: %v", selector, err)
	}
	e.dns.Publish(domain, rec.Name, rec.Strings...)
}

func (e *env) statusOf(role, domain, selector string) lifecycle.Status {
	e.t.Helper()
	r := e.call(role, "GET", "/api/v1/domains/"+domain+"/keys/status", nil)
	r.want(e.t, http.StatusOK, "", "")
	var sts []struct {
		lifecycle.Status
		Age int64 `json:"age"` // lifecycle.Seconds has no UnmarshalJSON
	}
	r.into(e.t, &sts)
	for _, s := range sts {
		if s.Key.Selector == selector {
			return s.Status
		}
	}
	e.t.Fatalf("no status of %s in %s", selector, r.body)
	return lifecycle.Status{}
}

func codes(ws []lifecycle.Warning) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.Code)
	}
	return out
}

func hasCode(ws []lifecycle.Warning, code string) bool {
	for _, w := range ws {
		if w.Code == code {
			return true
		}
	}
	return false
}

// TestAPIKeyChecks checks a key through the API against real DNS servers:
// each check is kept, the status reads the newest, an active key whose
// record goes away raises the alert, and another API over the same store
// (a restart, or another node) sees the same history.
func TestAPIKeyChecks(t *testing.T) {
	e := newEnv(t)
	check := func(want string, ok bool) store.DNSCheck {
		t.Helper()
		r := e.call(roleDomA, "POST", "/api/v1/domains/a.example/keys/a1/check", nil)
		r.want(t, http.StatusOK, "", "")
		var c store.DNSCheck
		r.into(t, &c)
		if c.Status != want || c.OK != ok || c.ID == 0 || c.Summary == "" || !c.Time.Equal(e.clk.Now()) {
			t.Fatalf("check %+v, want status %s ok %v at %v", c, want, ok, e.clk.Now())
		}
		return c
	}

	if st := e.statusOf(roleDomA, "a.example", "a1"); st.LastCheck != nil || st.Alert {
		t.Fatalf("status before any check: %+v", st)
	}
	first := check("not_found", false)
	e.clk.Advance(time.Minute)
	e.publishKey("a.example", "a1")
	second := check("match", true)

	st := e.statusOf(roleDomA, "a.example", "a1")
	if st.LastCheck == nil || st.LastCheck.ID != second.ID || st.Alert {
		t.Fatalf("status after the second check: %+v", st)
	}
	if !hasCode(st.Warnings, lifecycle.WarnReady) {
		t.Errorf("a pending key seen in DNS, domain not auto-activating: warnings %v, want %s", codes(st.Warnings), lifecycle.WarnReady)
	}

	var hist []store.DNSCheck
	r := e.call(roleDomA, "GET", "/api/v1/domains/a.example/keys/a1/checks", nil)
	r.want(t, http.StatusOK, "", "")
	r.into(t, &hist)
	if len(hist) != 2 || hist[0].ID != second.ID || hist[1].ID != first.ID {
		t.Fatalf("history %+v, want the two checks newest first", hist)
	}
	e.call(roleDomA, "GET", "/api/v1/domains/a.example/keys/a1/checks?limit=1", nil).into(t, &hist)
	if len(hist) != 1 || hist[0].ID != second.ID {
		t.Fatalf("history with limit=1: %+v", hist)
	}
	// A key never checked has an empty history, not null.
	r = e.call(roleAdmin, "GET", "/api/v1/domains/b.example/keys/b1/checks", nil)
	if r.status != http.StatusOK || string(r.body) != "[]\n" {
		t.Errorf("empty history: %d %s", r.status, r.body)
	}

	// Active, then the record goes: the alert.
	e.call(roleDomA, "POST", "/api/v1/domains/a.example/keys/a1/state", map[string]any{"state": "active"}).want(t, http.StatusOK, "", "")
	e.clk.Advance(time.Minute)
	e.dns.Publish("a.example", "a1._domainkey.a.example")
	check("not_found", false)
	st = e.statusOf(roleDomA, "a.example", "a1")
	if !st.Alert || !hasCode(st.Warnings, lifecycle.WarnRecord) {
		t.Errorf("active key without its record: alert %v warnings %v, want the alert and %s", st.Alert, codes(st.Warnings), lifecycle.WarnRecord)
	}

	// Another process over the same store answers the same history.
	other := httptest.NewServer(NewAPI(Options{Admin: admintest.New(t, admintest.Options{Store: e.db, Master: e.mk, Now: e.clk.Now}).Admin, Now: e.clk.Now}))
	defer other.Close()
	mine := e.srv
	e.srv = other
	defer func() { e.srv = mine }()
	var again []store.DNSCheck
	e.call(roleDomA, "GET", "/api/v1/domains/a.example/keys/a1/checks", nil).into(t, &again)
	// Four: the activation's own check is kept too.
	if len(again) != 4 || again[2].ID != second.ID || !again[1].OK {
		t.Errorf("another node sees %+v, want the four checks", again)
	}
	// It has no DNS checker: check now is unavailable there, not a 500.
	e.call(roleDomA, "POST", "/api/v1/domains/a.example/keys/a1/check", nil).want(t, http.StatusServiceUnavailable, codeUnavailable, "")
}

// TestAPIRotate rotates an active key through the API: the new key waits
// pending, activating it retires the old one in the same step, and the
// old one may be revoked only once its signatures have expired.
func TestAPIRotate(t *testing.T) {
	e := newEnv(t)
	e.call(roleDomA, "POST", "/api/v1/domains/a.example/keys/a1/state", map[string]any{"state": "active", "force": true}).want(t, http.StatusOK, "", "")

	r := e.call(roleDomA, "POST", "/api/v1/domains/a.example/keys/rotate", map[string]any{})
	r.want(t, http.StatusCreated, "", "")
	var rot lifecycle.Rotation
	r.into(t, &rot)
	wantSel := "s" + e.clk.Now().UTC().Format("200601")
	if rot.Key.Selector != wantSel || rot.Key.State != store.KeyPending || rot.Key.Algorithm != "ed25519" ||
		rot.Replaces == nil || rot.Replaces.Selector != "a1" || rot.Record == nil {
		t.Fatalf("rotation %s: want pending ed25519 %s replacing a1, with its record", r.body, wantSel)
	}
	if loc := r.header.Get("Location"); loc != "/api/v1/domains/a.example/keys/"+wantSel {
		t.Errorf("Location %q", loc)
	}
	// One rotation of a key at a time.
	e.call(roleDomA, "POST", "/api/v1/domains/a.example/keys/rotate", map[string]any{"selector": "s-other"}).want(t, http.StatusConflict, codeConflict, "")

	e.clk.Advance(time.Hour)
	e.call(roleDomA, "POST", "/api/v1/domains/a.example/keys/"+wantSel+"/state", map[string]any{"state": "active", "force": true}).want(t, http.StatusOK, "", "")
	old := e.statusOf(roleDomA, "a.example", "a1")
	if old.Key.State != store.KeyRetired {
		t.Fatalf("a1 is %s after its successor activated, want retired", old.Key.State)
	}
	safe := e.clk.Now().Add(lifecycle.DefaultSignatureLifetime + lifecycle.DefaultQueueLifetime)
	if !old.SafeToRevoke.Equal(safe) || hasCode(old.Warnings, lifecycle.WarnSafeToRevoke) {
		t.Errorf("safe to revoke %v (warnings %v), want %v and no warning yet", old.SafeToRevoke, codes(old.Warnings), safe)
	}
	// Too early: its signatures may still be checked (lifecycle.ErrTooEarly).
	e.call(roleDomA, "POST", "/api/v1/domains/a.example/keys/a1/state", map[string]any{"state": "revoked"}).want(t, http.StatusConflict, codeConflict, "")
	e.clk.Advance(lifecycle.DefaultSignatureLifetime + lifecycle.DefaultQueueLifetime)
	if old = e.statusOf(roleDomA, "a.example", "a1"); !hasCode(old.Warnings, lifecycle.WarnSafeToRevoke) {
		t.Errorf("warnings %v once safe, want %s", codes(old.Warnings), lifecycle.WarnSafeToRevoke)
	}
	e.call(roleDomA, "POST", "/api/v1/domains/a.example/keys/a1/state", map[string]any{"state": "revoked"}).want(t, http.StatusOK, "", "")

	// Old and weak keys are warned about.
	e.clk.Advance(lifecycle.DefaultMaxAge + 24*time.Hour)
	if st := e.statusOf(roleDomA, "a.example", wantSel); !hasCode(st.Warnings, lifecycle.WarnOld) {
		t.Errorf("warnings %v of a key active for over DefaultMaxAge, want %s", codes(st.Warnings), lifecycle.WarnOld)
	}
	e.call(roleAdmin, "POST", "/api/v1/domains/b.example/keys", map[string]any{"selector": "weak", "algorithm": "rsa", "bits": 1024}).want(t, http.StatusCreated, "", "")
	if st := e.statusOf(roleAdmin, "b.example", "weak"); !hasCode(st.Warnings, lifecycle.WarnWeak) {
		t.Errorf("warnings %v of RSA 1024, want %s", codes(st.Warnings), lifecycle.WarnWeak)
	}

	// Two active keys: say which one, or the algorithm; a key replaces
	// one of its own algorithm only.
	for _, sel := range []string{"e2"} {
		e.call(roleAdmin, "POST", "/api/v1/domains/a.example/keys", map[string]any{"selector": sel, "algorithm": "ed25519"}).want(t, http.StatusCreated, "", "")
		e.call(roleAdmin, "POST", "/api/v1/domains/a.example/keys/"+sel+"/state", map[string]any{"state": "active", "force": true}).want(t, http.StatusOK, "", "")
	}
	e.call(roleDomA, "POST", "/api/v1/domains/a.example/keys/rotate", map[string]any{}).want(t, http.StatusConflict, codeConflict, "")
	e.call(roleDomA, "POST", "/api/v1/domains/a.example/keys/rotate", map[string]any{"replaces": "e2", "algorithm": "rsa"}).want(t, http.StatusUnprocessableEntity, codeInvalid, "algorithm")
	r = e.call(roleDomA, "POST", "/api/v1/domains/a.example/keys/rotate", map[string]any{"replaces": "e2", "selector": "e3"})
	r.want(t, http.StatusCreated, "", "")
	r.into(t, &rot)
	if rot.Key.Selector != "e3" || rot.Replaces == nil || rot.Replaces.Selector != "e2" {
		t.Errorf("rotation of e2: %s", r.body)
	}
}

// TestAPIKeyStatusAfterRevoke: a check made while a key still signed
// looked for the key; once it is revoked the record should have an empty
// p=, and that old check must not read as "DNS serves the revoked record".
func TestAPIKeyStatusAfterRevoke(t *testing.T) {
	e := newEnv(t)
	e.publishKey("a.example", "a1")
	e.call(roleDomA, "POST", "/api/v1/domains/a.example/keys/a1/check", nil).want(t, http.StatusOK, "", "")
	e.clk.Advance(time.Minute)
	e.call(roleDomA, "POST", "/api/v1/domains/a.example/keys/a1/state", map[string]any{"state": "revoked"}).want(t, http.StatusOK, "", "")
	st := e.statusOf(roleDomA, "a.example", "a1")
	if st.LastCheck != nil || hasCode(st.Warnings, lifecycle.WarnReadyToArchive) {
		t.Errorf("revoked key: last check %+v, warnings %v: an older check says nothing about the revoked record", st.LastCheck, codes(st.Warnings))
	}
	// Checked now, DNS still holds the key: still_published.
	e.clk.Advance(time.Minute)
	var c store.DNSCheck
	e.call(roleDomA, "POST", "/api/v1/domains/a.example/keys/a1/check", nil).into(t, &c)
	if c.Status != "still_published" || c.OK {
		t.Errorf("check of the revoked key while DNS holds it: %+v", c)
	}
	e.publishKey("a.example", "a1") // the empty p= record now
	e.clk.Advance(time.Minute)
	e.call(roleDomA, "POST", "/api/v1/domains/a.example/keys/a1/check", nil).into(t, &c)
	if st := e.statusOf(roleDomA, "a.example", "a1"); !c.OK || !hasCode(st.Warnings, lifecycle.WarnReadyToArchive) {
		t.Errorf("revoked record published: check %+v warnings %v, want %s", c, codes(st.Warnings), lifecycle.WarnReadyToArchive)
	}
}

// TestAPIDeletePendingKey: DELETE on a pending key that never signed
// removes it; another tenant gets 404; a key that signs gets 409.
func TestAPIDeletePendingKey(t *testing.T) {
	e := newEnv(t)
	e.call(roleDomA, "POST", "/api/v1/domains/a.example/keys", `{"selector":"oops","algorithm":"ed25519"}`).want(t, http.StatusCreated, "", "")
	e.call(roleDomB, "DELETE", "/api/v1/domains/a.example/keys/oops", nil).want(t, http.StatusNotFound, codeNotFound, "")
	e.call(roleDomA, "DELETE", "/api/v1/domains/a.example/keys/oops", nil).want(t, http.StatusNoContent, "", "")
	e.call(roleDomA, "GET", "/api/v1/domains/a.example/keys/oops", nil).want(t, http.StatusNotFound, codeNotFound, "")
	e.call(roleDomA, "POST", "/api/v1/domains/a.example/keys/a1/state", `{"state":"active","force":true}`).want(t, http.StatusOK, "", "")
	e.call(roleDomA, "DELETE", "/api/v1/domains/a.example/keys/a1", nil).want(t, http.StatusConflict, codeConflict, "")
}
