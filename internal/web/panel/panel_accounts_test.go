package panel

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/store"
	"github.com/dkimd/dkimd/internal/web"
)

// whoami calls the API with the browser's session cookie and gives the
// status: 200 while the session lives, 401 once it has ended.
func (b *browser) whoami() int {
	b.e.t.Helper()
	return b.get("/api/v1/whoami").status
}

// Issue 10, point 6: a password changed in the panel ends the account's
// other sessions (their cookies get 401) but not the one that changed it,
// and keeps its API tokens.
func TestPasswordChangeEndsOtherSessions(t *testing.T) {
	e := newPanelEnv(t, panelEnvOptions{})
	tok, _, err := e.svc.NewToken(e.ctx, admin.CLI(), "alice", "backup script", 0)
	if err != nil {
		t.Fatal(err)
	}
	here, elsewhere := e.browser(), e.browser()
	csrf := here.login("alice", alicePassword)
	elsewhere.login("alice", alicePassword)
	if here.whoami() != http.StatusOK || elsewhere.whoami() != http.StatusOK {
		t.Fatal("sessions do not work")
	}

	const newPassword = "alice's brand new password"
	// Two different entries change nothing.
	r := here.post("/accounts/alice/password", url.Values{"csrf": {csrf}, "password": {newPassword}, "confirm": {"something else entirely"}}, nil)
	r.want(t, http.StatusUnprocessableEntity, "The two passwords differ.")
	if elsewhere.whoami() != http.StatusOK {
		t.Fatal("a refused change ended a session")
	}
	r = here.post("/accounts/alice/password", url.Values{"csrf": {csrf}, "password": {"short"}, "confirm": {"short"}}, nil)
	r.want(t, http.StatusUnprocessableEntity, "at least 12 characters")

	r = here.post("/accounts/alice/password", url.Values{"csrf": {csrf}, "password": {newPassword}, "confirm": {newPassword}}, nil)
	if r.status != http.StatusSeeOther {
		t.Fatalf("change: status %d: %.500s", r.status, r.body)
	}
	if got := elsewhere.whoami(); got != http.StatusUnauthorized {
		t.Errorf("the other session after the change: status %d, want 401", got)
	}
	if p := elsewhere.get("/domains/a.example"); p.status != http.StatusSeeOther || !strings.Contains(p.header.Get("Location"), "/login") {
		t.Errorf("the other session's panel page: %d %s, want a redirect to log in", p.status, p.header.Get("Location"))
	}
	if got := here.whoami(); got != http.StatusOK {
		t.Errorf("the changing session: status %d, want 200", got)
	}
	if _, _, err := e.svc.Authenticate(e.ctx, tok); err != nil {
		t.Errorf("the API token after the change: %v, want it kept", err)
	}
	if e.formLogin(t, "alice", alicePassword) != "wrong" || e.formLogin(t, "alice", newPassword) != "ok" {
		t.Error("the new password is not the one that works")
	}
}

// The command line (dkimd account password) ends every session.
func TestCLIPasswordChangeEndsSessions(t *testing.T) {
	e := newPanelEnv(t, panelEnvOptions{})
	b := e.browser()
	b.login("root", rootPassword)
	if err := e.svc.SetAccountPassword(e.ctx, admin.CLI(), "root", "root's new password, long"); err != nil {
		t.Fatal(err)
	}
	if got := b.whoami(); got != http.StatusUnauthorized {
		t.Errorf("old session cookie after the CLI change: status %d, want 401", got)
	}
}

// A change of an account's role, domains or enabled flag, made by an
// admin through the API, ends that account's sessions; the admin's own
// session goes on.
func TestAccountChangeEndsSessions(t *testing.T) {
	for _, c := range []struct{ name, body string }{
		{"role", `{"role":"admin","domains":[]}`},
		{"domains", `{"domains":["a.example","b.example"]}`},
		{"disabled", `{"enabled":false}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newPanelEnv(t, panelEnvOptions{})
			alice, root := e.browser(), e.browser()
			alice.login("alice", alicePassword)
			csrf := root.login("root", rootPassword)
			req := root.doJSON("PATCH", "/api/v1/accounts/alice", c.body, csrf)
			if req.status != http.StatusOK {
				t.Fatalf("PATCH: status %d: %s", req.status, req.body)
			}
			if got := alice.whoami(); got != http.StatusUnauthorized {
				t.Errorf("alice's session after the change: status %d, want 401", got)
			}
			if got := root.whoami(); got != http.StatusOK {
				t.Errorf("the admin's own session: status %d, want 200", got)
			}
		})
	}
	// Nobody demotes the last admin.
	e := newPanelEnv(t, panelEnvOptions{})
	_, err := e.svc.UpdateAccount(e.ctx, admin.CLI(), "root", admin.AccountUpdate{Enabled: new(bool)})
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("disable the last admin: %v, want a conflict", err)
	}
}

// doJSON sends a JSON body with the session cookie and its CSRF header.
func (b *browser) doJSON(method, path, body, csrf string) *page {
	b.e.t.Helper()
	r, err := http.NewRequestWithContext(b.e.ctx, method, b.e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		b.e.t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set(web.CSRFHeader, csrf)
	res, err := b.c.Do(r)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer res.Body.Close()
	var sb strings.Builder
	if _, err := io.Copy(&sb, res.Body); err != nil {
		b.e.t.Fatal(err)
	}
	return &page{status: res.StatusCode, header: res.Header, body: sb.String()}
}

// The panel lists an account's API tokens and sessions, and its owner or
// an admin revokes them; another domain admin may not see them.
func TestPanelTokens(t *testing.T) {
	e := newPanelEnv(t, panelEnvOptions{})
	tok1, t1, err := e.svc.NewToken(e.ctx, admin.CLI(), "alice", "backup script", 0)
	if err != nil {
		t.Fatal(err)
	}
	tok2, t2, err := e.svc.NewToken(e.ctx, admin.CLI(), "alice", "deploy hook", 0)
	if err != nil {
		t.Fatal(err)
	}
	alice := e.browser()
	csrf := alice.login("alice", alicePassword)
	p := alice.get("/accounts/alice")
	p.want(t, http.StatusOK, "backup script", "deploy hook", "this one", "/accounts/alice/tokens/")
	if strings.Contains(p.body, tok1) || strings.Contains(p.body, tok2) {
		t.Fatal("the page shows a token's secret")
	}
	r := alice.post("/accounts/alice/tokens/"+itoa(t1.ID)+"/revoke", url.Values{"csrf": {csrf}}, nil)
	if r.status != http.StatusSeeOther {
		t.Fatalf("revoke: status %d: %.500s", r.status, r.body)
	}
	if _, _, err := e.svc.Authenticate(e.ctx, tok1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoked token: %v, want it gone", err)
	}
	alice.get("/accounts/alice?done=token_revoked").want(t, http.StatusOK, "The token was revoked", "deploy hook")
	// Without the CSRF token nothing is revoked.
	alice.post("/accounts/alice/tokens/"+itoa(t2.ID)+"/revoke", url.Values{}, nil).want(t, http.StatusForbidden)
	// Alice may not see or revoke root's tokens.
	alice.get("/accounts/root").want(t, http.StatusForbidden)

	// An admin sees and revokes alice's.
	root := e.browser()
	rcsrf := root.login("root", rootPassword)
	root.get("/accounts/alice").want(t, http.StatusOK, "deploy hook")
	if r := root.post("/accounts/alice/tokens/"+itoa(t2.ID)+"/revoke", url.Values{"csrf": {rcsrf}}, nil); r.status != http.StatusSeeOther {
		t.Fatalf("admin revoke: status %d", r.status)
	}
	if _, _, err := e.svc.Authenticate(e.ctx, tok2); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("token revoked by the admin: %v, want it gone", err)
	}
	// A token of another account, named under alice's page, is not found.
	ts, _ := e.db.ListTokens(e.ctx, "root")
	alice.post("/accounts/alice/tokens/"+itoa(ts[0].ID)+"/revoke", url.Values{"csrf": {csrf}}, nil).want(t, http.StatusNotFound)
	if got := root.whoami(); got != http.StatusOK {
		t.Errorf("root's session after alice's attempt: %d", got)
	}
	es, _ := e.db.ListAudit(e.ctx, store.AuditFilter{Action: "token.remove"})
	if len(es) != 2 {
		t.Errorf("%d token.remove audit entries, want 2", len(es))
	}
}

// An oversized form gets 413, as an oversized JSON body does.
func TestPanelFormTooLarge(t *testing.T) {
	e := newPanelEnv(t, panelEnvOptions{})
	b := e.browser()
	csrf := b.login("alice", alicePassword)
	b.post("/accounts/alice/password", url.Values{"csrf": {csrf}, "password": {strings.Repeat("x", maxFormBytes)}}, nil).
		want(t, http.StatusRequestEntityTooLarge)
}
