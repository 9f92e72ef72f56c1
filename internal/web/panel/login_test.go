package panel

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dkimd/dkimd/internal/store"
	"github.com/dkimd/dkimd/internal/web"
)

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

// The scenario through NewSite, as serve mounts it: ten wrong
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
	e := newPanelEnv(t, panelEnvOptions{limits: web.LoginLimits{AuditPerIP: 3, PerPair: 100, PerIP: 100, PerName: 100}})
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
	e.clk.Advance(web.DefaultLoginLimits().Window)
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
