package web

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/store"
)

const carolPassword = "correct horse battery staple"

// login logs carol in and gives the session cookie and CSRF token.
func (e *env) login(t *testing.T, name, password string) (*http.Cookie, string, *resp) {
	t.Helper()
	r := e.do(req{method: "POST", path: "/api/v1/login", body: map[string]string{"name": name, "password": password}})
	if r.status != http.StatusOK {
		return nil, "", r
	}
	var lr loginResponse
	r.into(t, &lr)
	for _, c := range r.cookies {
		if c.Name == SessionCookie {
			return &http.Cookie{Name: c.Name, Value: c.Value}, lr.CSRFToken, r
		}
	}
	t.Fatalf("login set no session cookie: %v", r.header["Set-Cookie"])
	return nil, "", r
}

func TestLoginSession(t *testing.T) {
	e := newEnv(t)
	e.addPasswordAccount("carol", store.RoleDomain, []string{"a.example"}, carolPassword)

	ck, csrf, r := e.login(t, "Carol", carolPassword)
	r.want(t, http.StatusOK, "", "")
	set := r.cookies[0]
	if !set.HttpOnly || set.SameSite != http.SameSiteStrictMode || set.Path != "/" || set.Secure || set.MaxAge != int(DefaultSessionTTL/time.Second) {
		t.Errorf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/, not Secure over plain HTTP, Max-Age of the session", set)
	}
	if csrf == "" || strings.Contains(string(r.body), ck.Value) {
		t.Errorf("login answer %s: want a CSRF token and not the session token", r.body)
	}
	var who whoamiResponse
	e.do(req{method: "GET", path: "/api/v1/whoami", cookie: ck}).into(t, &who)
	if who.Account.Name != "carol" || who.Via != "session" || who.Token.Kind != store.TokenSession {
		t.Errorf("whoami %+v", who)
	}

	keys := "/api/v1/domains/a.example/keys"
	t.Run("CSRF", func(t *testing.T) {
		cases := []struct {
			name   string
			r      req
			status int
			code   string
		}{
			{"cookie without header", req{cookie: ck}, http.StatusForbidden, codeForbidden},
			{"cookie with a wrong header", req{cookie: ck, header: map[string]string{CSRFHeader: csrf[1:] + "A"}}, http.StatusForbidden, codeForbidden},
			{"cookie with the session token as header", req{cookie: ck, header: map[string]string{CSRFHeader: ck.Value}}, http.StatusForbidden, codeForbidden},
			{"cookie with another session's header", req{cookie: ck, header: map[string]string{CSRFHeader: csrfToken("dkimd_other")}}, http.StatusForbidden, codeForbidden},
			{"cookie with the header", req{cookie: ck, header: map[string]string{CSRFHeader: csrf}}, http.StatusCreated, ""},
			{"bearer needs no header", req{role: roleDomA}, http.StatusCreated, ""},
			{"bearer wins over a cookie without header", req{role: roleDomA, cookie: ck}, http.StatusCreated, ""},
		}
		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				before := e.snapshot()
				c.r.method, c.r.path = "POST", keys
				c.r.body = `{"selector":"csrf` + strconv.Itoa(i) + `","algorithm":"ed25519"}`
				e.do(c.r).want(t, c.status, c.code, "")
				if c.status >= 400 && e.snapshot() != before {
					t.Errorf("a refused request changed the store")
				}
			})
		}
		// Safe methods need no token.
		e.do(req{method: "GET", path: keys, cookie: ck}).want(t, http.StatusOK, "", "")
	})

	t.Run("an API token is no session cookie", func(t *testing.T) {
		api := &http.Cookie{Name: SessionCookie, Value: e.tokens[roleDomA]}
		e.do(req{method: "GET", path: "/api/v1/whoami", cookie: api}).want(t, http.StatusUnauthorized, codeUnauthorized, "")
	})

	t.Run("audit names the account and address", func(t *testing.T) {
		es, err := e.db.ListAudit(e.ctx, store.AuditFilter{Action: "key.create", Actor: "carol"})
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 1 || es[0].Remote != "127.0.0.1" || es[0].Domain != "a.example" {
			t.Errorf("audit %+v, want one key.create by carol from 127.0.0.1", es)
		}
		logins, err := e.db.ListAudit(e.ctx, store.AuditFilter{Action: "account.login"})
		if err != nil {
			t.Fatal(err)
		}
		if len(logins) != 1 || logins[0].Actor != "carol" || logins[0].Remote != "127.0.0.1" {
			t.Errorf("login audit %+v", logins)
		}
	})

	t.Run("logout", func(t *testing.T) {
		e.do(req{method: "POST", path: "/api/v1/logout", cookie: ck}).want(t, http.StatusForbidden, codeForbidden, "")
		e.do(req{method: "GET", path: "/api/v1/whoami", cookie: ck}).want(t, http.StatusOK, "", "")
		r := e.do(req{method: "POST", path: "/api/v1/logout", cookie: ck, header: map[string]string{CSRFHeader: csrf}})
		r.want(t, http.StatusNoContent, "", "")
		if len(r.cookies) != 1 || r.cookies[0].MaxAge >= 0 {
			t.Errorf("logout cookies %v, want the session cookie cleared", r.cookies)
		}
		e.do(req{method: "GET", path: "/api/v1/whoami", cookie: ck}).want(t, http.StatusUnauthorized, codeUnauthorized, "")
		// Twice is fine.
		e.do(req{method: "POST", path: "/api/v1/logout", cookie: ck, header: map[string]string{CSRFHeader: csrf}}).want(t, http.StatusNoContent, "", "")
		// Logging out with an API token leaves it working.
		e.call(roleDomA, "POST", "/api/v1/logout", nil).want(t, http.StatusNoContent, "", "")
		e.call(roleDomA, "GET", "/api/v1/whoami", nil).want(t, http.StatusOK, "", "")
	})

	t.Run("session expires", func(t *testing.T) {
		ck, _, _ := e.login(t, "carol", carolPassword)
		e.do(req{method: "GET", path: "/api/v1/whoami", cookie: ck}).want(t, http.StatusOK, "", "")
		e.clk.Advance(DefaultSessionTTL + time.Second)
		e.do(req{method: "GET", path: "/api/v1/whoami", cookie: ck}).want(t, http.StatusUnauthorized, codeUnauthorized, "")
	})

	t.Run("disabled account", func(t *testing.T) {
		ck, _, _ := e.login(t, "carol", carolPassword)
		e.setEnabled("carol", false)
		e.do(req{method: "GET", path: "/api/v1/whoami", cookie: ck}).want(t, http.StatusUnauthorized, codeUnauthorized, "")
		_, _, r := e.login(t, "carol", carolPassword)
		r.want(t, http.StatusUnauthorized, codeUnauthorized, "")
		e.setEnabled("carol", true)
	})
}

func TestBearer(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name, header string
		status       int
	}{
		{"valid", "Bearer " + e.tokens[roleDomA], http.StatusOK},
		{"scheme in lower case", "bearer " + e.tokens[roleDomA], http.StatusOK},
		{"unknown token", "Bearer " + e.tokens[roleBad], http.StatusUnauthorized},
		{"disabled account", "Bearer " + e.tokens[roleDisabled], http.StatusUnauthorized},
		{"empty token", "Bearer ", http.StatusUnauthorized},
		{"basic auth", "Basic cm9vdDpwYXNzd29yZA==", http.StatusUnauthorized},
		{"token without scheme", e.tokens[roleDomA], http.StatusUnauthorized},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(req{method: "GET", path: "/api/v1/whoami", header: map[string]string{"Authorization": c.header}})
			code := ""
			if c.status != http.StatusOK {
				code = codeUnauthorized
				if r.header.Get("WWW-Authenticate") == "" {
					t.Errorf("401 without WWW-Authenticate")
				}
			}
			r.want(t, c.status, code, "")
		})
	}
}

func TestSecureCookieOverTLS(t *testing.T) {
	e := newEnvWith(t, envOptions{tls: true})
	e.addPasswordAccount("carol", store.RoleAdmin, nil, carolPassword)
	_, _, r := e.login(t, "carol", carolPassword)
	r.want(t, http.StatusOK, "", "")
	if len(r.cookies) != 1 || !r.cookies[0].Secure || !r.cookies[0].HttpOnly {
		t.Errorf("cookie over TLS %+v, want Secure and HttpOnly", r.cookies)
	}
}

func TestLoginThrottle(t *testing.T) {
	e := newEnvWith(t, envOptions{limits: LoginLimits{PerIP: 4, PerPair: 2, Window: time.Minute}})
	e.addPasswordAccount("carol", store.RoleAdmin, nil, carolPassword)
	wrong := "not the password at all"

	// Per name from this address: two failures, then even the right
	// password waits.
	for range 2 {
		_, _, r := e.login(t, "carol", wrong)
		r.want(t, http.StatusUnauthorized, codeUnauthorized, "")
	}
	_, _, r := e.login(t, "CAROL", carolPassword)
	r.want(t, http.StatusTooManyRequests, codeTooManyRequests, "")
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Errorf("Retry-After %q, want 1–60 seconds", r.header.Get("Retry-After"))
	}
	e.clk.Advance(time.Minute)
	_, _, r = e.login(t, "carol", carolPassword)
	r.want(t, http.StatusOK, "", "")

	// Per address: failures on different names add up (the window of the
	// two above has passed), and then another name is refused too.
	for _, n := range []string{"nobody1", "nobody2", "nobody3", "nobody4"} {
		_, _, r := e.login(t, n, wrong)
		r.want(t, http.StatusUnauthorized, codeUnauthorized, "")
	}
	_, _, r = e.login(t, "nobody7", wrong)
	r.want(t, http.StatusTooManyRequests, codeTooManyRequests, "")
	// API tokens keep working while logins are throttled.
	e.call(roleAdmin, "GET", "/api/v1/whoami", nil).want(t, http.StatusOK, "", "")
}

func TestThrottleBounded(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	th := newMemThrottle(LoginLimits{PerIP: 1000, PerPair: 1, Window: time.Minute, MaxEntries: 3})
	for i := range 10 {
		if d := th.Begin("192.0.2.1", "name"+strconv.Itoa(i), now.Add(time.Duration(i)*time.Second)); d.Wait != 0 {
			t.Fatalf("attempt %d refused", i)
		}
	}
	if len(th.names) != 3 || len(th.pairs) != 3 {
		t.Errorf("%d names and %d pairs remembered, want at most 3", len(th.names), len(th.pairs))
	}
	// The newest stay: they are the ones still being guessed.
	if th.Begin("192.0.2.1", "name9", now.Add(10*time.Second)).Wait == 0 {
		t.Errorf("the newest pair was forgotten")
	}
	if th.Begin("192.0.2.1", "name0", now.Add(10*time.Second)).Wait != 0 {
		t.Errorf("the oldest pair was kept")
	}
}

func TestIPKey(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"192.0.2.1", "192.0.2.1"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
	} {
		if got := ClientKey(c.in); got != c.want {
			t.Errorf("ClientKey(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestLoginThrottleConcurrent sends many wrong logins at once: no more
// than the limit get their password checked, however many are in flight.
func TestLoginThrottleConcurrent(t *testing.T) {
	e := newEnvWith(t, envOptions{limits: LoginLimits{PerIP: 100, PerPair: 3, Window: time.Minute}})
	e.addPasswordAccount("carol", store.RoleAdmin, nil, carolPassword)
	const n = 12
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			statuses <- e.do(req{method: "POST", path: "/api/v1/login", body: `{"name":"carol","password":"wrong guess, wrong guess"}`}).status
		})
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	if count[http.StatusUnauthorized] != 3 || count[http.StatusTooManyRequests] != n-3 {
		t.Errorf("statuses %v, want 3 checked (401) and %d throttled (429)", count, n-3)
	}
}
