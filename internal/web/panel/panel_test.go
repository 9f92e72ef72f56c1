package panel

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/store"
	"github.com/dkimd/dkimd/internal/web"
)

func TestPanelLogin(t *testing.T) {
	e := newPanelEnv(t, panelEnvOptions{})
	b := e.browser()

	r := b.get("/domains/a.example/keys")
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/login?next=%2Fdomains%2Fa.example%2Fkeys" {
		t.Fatalf("without a session: %d %q, want 303 to the login page and back", r.status, r.header.Get("Location"))
	}
	lp := b.get("/login?next=%2Fdomains%2Fa.example%2Fkeys")
	lp.want(t, http.StatusOK, `<label for="name">`, `<label for="password">`)
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options"} {
		if lp.header.Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}
	csrf := lp.csrf(t)

	r = b.post("/login", url.Values{"csrf": {csrf}, "name": {"alice"}, "password": {"wrong password"}, "next": {"/domains/a.example/keys"}}, nil)
	r.want(t, http.StatusUnauthorized, "Wrong name or password.")

	r = b.post("/login", url.Values{"csrf": {b.get("/login").csrf(t)}, "name": {"Alice"}, "password": {alicePassword}, "next": {"/domains/a.example/keys"}}, nil)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/domains/a.example/keys" {
		t.Fatalf("login: %d %q", r.status, r.header.Get("Location"))
	}
	var session *http.Cookie
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == web.SessionCookie {
			session = c
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Path != "/" || session.MaxAge != int(web.DefaultSessionTTL/time.Second) {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/, Max-Age of the session", session)
	}
	b.get("/domains/a.example/keys").want(t, http.StatusOK, "alice", "a1")

	// One login serves the API too.
	b.get("/api/v1/whoami").want(t, http.StatusOK, `"via":"session"`)

	// Only local targets after login.
	for _, next := range []string{"//evil.example/", "https://evil.example/", "/\\evil.example"} {
		if got := safeNext(next); got != "/" {
			t.Errorf("safeNext(%q) = %q", next, got)
		}
	}

	// Logging out needs the token, ends the session, and clears the cookie.
	csrf = b.get("/").csrf(t)
	b.post("/logout", url.Values{}, nil).want(t, http.StatusForbidden)
	b.get("/").want(t, http.StatusOK)
	r = b.post("/logout", url.Values{"csrf": {csrf}}, nil)
	if r.status != http.StatusSeeOther {
		t.Fatalf("logout: %d", r.status)
	}
	if r := b.get("/"); r.status != http.StatusSeeOther {
		t.Fatalf("after logout: %d", r.status)
	}
	if _, _, err := e.svc.Authenticate(e.ctx, session.Value); err == nil {
		t.Errorf("the session still works after logout")
	}
}

func TestPanelSecureCookie(t *testing.T) {
	e := newPanelEnv(t, panelEnvOptions{tls: true})
	b := e.browser()
	lp := b.get("/login")
	r := b.post("/login", url.Values{"csrf": {lp.csrf(t)}, "name": {"root"}, "password": {rootPassword}}, nil)
	found := false
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == web.SessionCookie {
			found = true
			if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
				t.Errorf("over TLS: %+v, want Secure, HttpOnly, SameSite=Strict", c)
			}
		}
	}
	if !found {
		t.Fatalf("no session cookie: %d %v", r.status, r.header)
	}
}

// TestPanelLoginCSRF: a login form posted from another site (no login
// cookie, or another's token) logs nobody in.
func TestPanelLoginCSRF(t *testing.T) {
	e := newPanelEnv(t, panelEnvOptions{})
	for name, form := range map[string]url.Values{
		"no token":    {"name": {"root"}, "password": {rootPassword}},
		"wrong token": {"csrf": {web.CSRFToken("dkimd_other")}, "name": {"root"}, "password": {rootPassword}},
	} {
		t.Run(name, func(t *testing.T) {
			b := e.browser()
			b.get("/login")
			r := b.post("/login", form, nil)
			r.want(t, http.StatusForbidden, "did not come from this site")
			if strings.Contains(strings.Join(r.header.Values("Set-Cookie"), ";"), web.SessionCookie+"=dkimd_") {
				t.Errorf("a session was started")
			}
		})
	}
}

func TestPanelLoginThrottle(t *testing.T) {
	e := newPanelEnv(t, panelEnvOptions{limits: web.LoginLimits{PerPair: 2, Window: time.Minute}})
	b := e.browser()
	for range 2 {
		b.post("/login", url.Values{"csrf": {b.get("/login").csrf(t)}, "name": {"alice"}, "password": {"wrong password"}}, nil).want(t, http.StatusUnauthorized)
	}
	// Now even the right password waits, and the page says how long.
	r := b.post("/login", url.Values{"csrf": {b.get("/login").csrf(t)}, "name": {"alice"}, "password": {alicePassword}}, nil)
	r.want(t, http.StatusTooManyRequests, "Too many failed logins. Try again in 1 minute.")
	if r.header.Get("Retry-After") != "60" {
		t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
	}
	e.clk.Advance(time.Minute)
	r = b.post("/login", url.Values{"csrf": {b.get("/login").csrf(t)}, "name": {"alice"}, "password": {alicePassword}}, nil)
	if r.status != http.StatusSeeOther {
		t.Fatalf("after the window: %d", r.status)
	}
}

// TestLoginThrottleShared alternates logins between POST /api/v1/login and
// the panel's form: the two count failures together, per account name and
// per client address, so the throttle engages after as many failures as
// at one endpoint alone, and a right password at either forgets the name's
// failures made at both.
func TestLoginThrottleShared(t *testing.T) {
	const wrong = "not the password at all"
	perName := web.LoginLimits{PerPair: 3, PerIP: 100, Window: time.Minute}
	// A step logs in (via "api" or "panel") and expects "ok", "wrong" or
	// "throttled"; via "wait" lets the window pass.
	type step struct{ via, name, password, want string }
	waitWindow := step{via: "wait"}
	for _, c := range []struct {
		name   string
		limits web.LoginLimits
		steps  []step
	}{
		{"api alone", perName, []step{
			{"api", "alice", wrong, "wrong"}, {"api", "alice", wrong, "wrong"}, {"api", "alice", wrong, "wrong"},
			{"api", "alice", alicePassword, "throttled"},
			waitWindow, {"api", "alice", alicePassword, "ok"},
		}},
		{"panel alone", perName, []step{
			{"panel", "alice", wrong, "wrong"}, {"panel", "alice", wrong, "wrong"}, {"panel", "alice", wrong, "wrong"},
			{"panel", "alice", alicePassword, "throttled"},
			waitWindow, {"panel", "alice", alicePassword, "ok"},
		}},
		{"alternating, per name", perName, []step{
			{"api", "alice", wrong, "wrong"}, {"panel", "ALICE", wrong, "wrong"}, {"api", "alice", wrong, "wrong"},
			{"panel", "alice", alicePassword, "throttled"}, {"api", "alice", alicePassword, "throttled"},
			waitWindow, {"api", "alice", alicePassword, "ok"}, {"panel", "alice", alicePassword, "ok"},
		}},
		{"alternating, per address", web.LoginLimits{PerIP: 3, PerPair: 100, Window: time.Minute}, []step{
			{"panel", "nobody1", wrong, "wrong"}, {"api", "nobody2", wrong, "wrong"}, {"panel", "nobody3", wrong, "wrong"},
			{"api", "alice", alicePassword, "throttled"}, {"panel", "alice", alicePassword, "throttled"},
			waitWindow, {"panel", "alice", alicePassword, "ok"}, {"api", "alice", alicePassword, "ok"},
		}},
		{"success at the panel forgets the api's failures", perName, []step{
			{"api", "alice", wrong, "wrong"}, {"api", "alice", wrong, "wrong"}, {"panel", "alice", alicePassword, "ok"},
			{"api", "alice", wrong, "wrong"}, {"panel", "alice", wrong, "wrong"}, {"api", "alice", wrong, "wrong"},
			{"panel", "alice", alicePassword, "throttled"},
		}},
		{"success at the api forgets the panel's failures", perName, []step{
			{"panel", "alice", wrong, "wrong"}, {"panel", "alice", wrong, "wrong"}, {"api", "alice", alicePassword, "ok"},
			{"panel", "alice", wrong, "wrong"}, {"api", "alice", wrong, "wrong"}, {"panel", "alice", wrong, "wrong"},
			{"api", "alice", alicePassword, "throttled"},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newPanelEnv(t, panelEnvOptions{limits: c.limits})
			for i, s := range c.steps {
				var got string
				switch s.via {
				case "wait":
					e.clk.Advance(c.limits.Window)
					continue
				case "api":
					got = e.apiLogin(t, s.name, s.password)
				case "panel":
					got = e.formLogin(t, s.name, s.password)
				}
				if got != s.want {
					t.Fatalf("step %d: %s login as %s: %s, want %s", i, s.via, s.name, got, s.want)
				}
			}
		})
	}
}

// apiLogin logs in at POST /api/v1/login and says how it went: "ok",
// "wrong" or "throttled".
func (e *panelEnv) apiLogin(t *testing.T, name, password string) string {
	t.Helper()
	body, err := json.Marshal(map[string]string{"name": name, "password": password})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.srv.Client().Post(e.srv.URL+"/api/v1/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var eb struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	switch res.StatusCode {
	case http.StatusOK:
		return "ok"
	case http.StatusUnauthorized:
		return "wrong"
	case http.StatusTooManyRequests:
		if err := json.NewDecoder(res.Body).Decode(&eb); err != nil || eb.Error.Code != "too_many_requests" {
			t.Fatalf("api 429 body: %+v, %v", eb, err)
		}
		return "throttled"
	}
	t.Fatalf("api login: status %d", res.StatusCode)
	return ""
}

// formLogin logs in through the panel's form, from a fresh browser, and
// says how it went: "ok", "wrong" or "throttled".
func (e *panelEnv) formLogin(t *testing.T, name, password string) string {
	t.Helper()
	b := e.browser()
	r := b.post("/login", url.Values{"csrf": {b.get("/login").csrf(t)}, "name": {name}, "password": {password}}, nil)
	switch r.status {
	case http.StatusSeeOther:
		return "ok"
	case http.StatusUnauthorized:
		r.want(t, r.status, "Wrong name or password.")
		return "wrong"
	case http.StatusTooManyRequests:
		r.want(t, r.status, "Too many failed logins.")
		return "throttled"
	}
	t.Fatalf("panel login: status %d", r.status)
	return ""
}

func TestPanelSessionExpiry(t *testing.T) {
	e := newPanelEnv(t, panelEnvOptions{})
	b := e.browser()
	csrf := b.login("alice", alicePassword)
	e.clk.Advance(web.DefaultSessionTTL + time.Second)
	r := b.get("/domains/a.example/keys")
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/login?done=expired") {
		t.Fatalf("expired session: %d %q", r.status, r.header.Get("Location"))
	}
	// A form of the old session changes nothing.
	before := e.snapshot()
	r = b.post("/domains/a.example/outgoing/dkim", url.Values{"csrf": {csrf}, "length": {"rsa1024"}, "selector": {"late"}}, nil)
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/login") {
		t.Fatalf("post with an expired session: %d %q", r.status, r.header.Get("Location"))
	}
	if e.snapshot() != before {
		t.Errorf("a post of an expired session changed the store")
	}
	b.get("/login?done=expired").want(t, http.StatusOK, "Your session has ended.")
}

// TestPanelCSRF: every form needs the session's token; a forged post
// changes nothing.
func TestPanelCSRF(t *testing.T) {
	e := newPanelEnv(t, panelEnvOptions{})
	b := e.browser()
	csrf := b.login("root", rootPassword)
	other := e.browser()
	otherCSRF := other.login("alice", alicePassword)

	forms := []struct {
		path string
		form url.Values
	}{
		{"/domains", url.Values{"name": {"c.example"}}},
		{"/domains/a.example/outgoing/dkim", url.Values{"length": {"rsa1024"}, "selector": {"forged"}}},
		{"/domains/a.example/outgoing/users/new", url.Values{"name": {"forged@a.example"}, "auth": {"ip"}, "networks": {"192.0.2.9"}, "enabled": {"on"}}},
		{"/domains/a.example/outgoing/users/ua@a.example", url.Values{"auth": {"ip"}, "networks": {"192.0.2.9"}, "selector": {"a1"}}},
		{"/domains/a.example/keys/a1/revoke", url.Values{}},
		{"/domains/a.example/settings", url.Values{"auto_activate": {"on"}}},
	}
	tokens := []struct {
		name   string
		token  string
		header bool
	}{
		{"no token", "", false},
		{"wrong token", csrf[1:] + "A", false},
		{"another session's token", otherCSRF, false},
		{"the session token itself", "", false},
		{"wrong header", "x", true},
	}
	for _, f := range forms {
		for _, tk := range tokens {
			t.Run(f.path+"/"+tk.name, func(t *testing.T) {
				before := e.snapshot()
				form := url.Values{}
				for k, v := range f.form {
					form[k] = v
				}
				var hdr map[string]string
				switch {
				case tk.header:
					hdr = map[string]string{web.CSRFHeader: tk.token}
				case tk.token != "":
					form.Set("csrf", tk.token)
				}
				r := b.post(f.path, form, hdr)
				r.want(t, http.StatusForbidden, "Nothing was changed")
				if e.snapshot() != before {
					t.Errorf("a forged post changed the store")
				}
			})
		}
	}
	// The same form with the token goes through: the test above could fail.
	r := b.post("/domains/a.example/settings", url.Values{"csrf": {csrf}, "auto_activate": {"on"}}, nil)
	if r.status != http.StatusSeeOther {
		t.Fatalf("with the token: %d %.500s", r.status, r.body)
	}
	// The API's header works for the script's posts.
	r = b.post("/domains/a.example/settings", url.Values{}, map[string]string{web.CSRFHeader: csrf})
	if r.status != http.StatusSeeOther {
		t.Fatalf("with the header: %d", r.status)
	}
}

// TestPanelTenants: a domain admin sees its own domains only; another's
// pages answer 404 and show nothing of it, and its forms change nothing.
func TestPanelTenants(t *testing.T) {
	e := newPanelEnv(t, panelEnvOptions{})
	b := e.browser()
	csrf := b.login("alice", alicePassword)

	home := b.get("/")
	home.want(t, http.StatusOK, "a.example")
	if strings.Contains(home.body, "b.example") || strings.Contains(home.body, "Add a domain") {
		t.Errorf("alice's domain list shows b.example or the admin's form")
	}
	for _, path := range []string{
		"/domains/b.example",
		"/domains/b.example/outgoing/dkim",
		"/domains/b.example/outgoing/users",
		"/domains/b.example/outgoing/users/new",
		"/domains/b.example/outgoing/users/ub@b.example",
		"/domains/a.example/outgoing/users/ub@b.example",
		"/domains/b.example/keys",
		"/domains/b.example/keys/b1",
		"/domains/b.example/keys/b1/revoke",
		"/domains/nonexistent.example/keys",
		"/domains/a.example/outgoing/users?user=ub@b.example&from=x@b.example",
		"/audit?domain=b.example",
	} {
		t.Run("GET "+path, func(t *testing.T) {
			r := b.get(path)
			want := http.StatusNotFound
			if strings.Contains(path, "?user=") {
				want = http.StatusOK // the page of a.example, with the box refusing
			}
			if r.status != want {
				t.Fatalf("status %d, want %d", r.status, want)
			}
			// The CSRF token and asset versions are random or hashed
			// text, which may hold "b1" by chance.
			body := csrfRE.ReplaceAllString(r.body, "")
			body = regexp.MustCompile(`\?v=[0-9a-f]+`).ReplaceAllString(body, "")
			for _, leak := range []string{"b1", "ub@b.example", "b.example"} {
				if want == http.StatusNotFound && strings.Contains(body, leak) {
					t.Errorf("the page shows %q", leak)
				}
			}
		})
	}
	before := e.snapshot()
	for _, f := range []struct {
		path   string
		form   url.Values
		status int
	}{
		{"/domains", url.Values{"name": {"c.example"}}, http.StatusForbidden},
		{"/domains/b.example/outgoing/dkim", url.Values{"length": {"rsa1024"}, "selector": {"x1"}}, http.StatusNotFound},
		{"/domains/b.example/keys/b1/revoke", url.Values{}, http.StatusNotFound},
		{"/domains/b.example/keys/b1/check", url.Values{}, http.StatusNotFound},
		{"/domains/b.example/outgoing/users/ub@b.example", url.Values{"auth": {"ip"}, "networks": {"192.0.2.7"}}, http.StatusNotFound},
		{"/domains/a.example/outgoing/users/ub@b.example", url.Values{"auth": {"ip"}, "networks": {"192.0.2.7"}}, http.StatusNotFound},
		{"/domains/b.example/settings", url.Values{"auto_activate": {"on"}}, http.StatusNotFound},
	} {
		f.form.Set("csrf", csrf)
		r := b.post(f.path, f.form, nil)
		if r.status != f.status {
			t.Errorf("POST %s: %d, want %d", f.path, r.status, f.status)
		}
	}
	// A grant of a domain alice does not manage is refused, beside nothing
	// (it is a right, not a field).
	r := b.post("/domains/a.example/outgoing/users/ua@a.example", url.Values{"csrf": {csrf}, "auth": {"ip"}, "networks": {"192.0.2.1"},
		"granted_domains": {"b.example"}, "enabled": {"on"}}, nil)
	r.want(t, http.StatusForbidden, "do not manage b.example")
	if e.snapshot() != before {
		t.Errorf("a refused post changed the store")
	}
}

// TestPanelBadInput: each bad value is shown beside its field, and nothing
// is saved.
func TestPanelBadInput(t *testing.T) {
	e := newPanelEnv(t, panelEnvOptions{})
	b := e.browser()
	csrf := b.login("root", rootPassword)
	if _, err := e.svc.AddUser(e.ctx, admin.CLI(), "relay@a.example", "a.example", admin.UserChange{
		Auth: ptr(store.AuthReauth), Networks: &[]string{"198.51.100.1"}}); err != nil {
		t.Fatal(err)
	}
	gen := url.Values{"csrf": {csrf}, "length": {"rsa1024"}, "selector": {"good"}}
	user := url.Values{"csrf": {csrf}, "name": {"new@a.example"}, "auth": {"password"}, "password": {"twelve chars ok"}, "enabled": {"on"}}
	with := func(base url.Values, kv ...string) url.Values {
		v := url.Values{}
		for k, x := range base {
			v[k] = x
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "\x00" {
				v.Del(kv[i])
			} else {
				v.Set(kv[i], kv[i+1])
			}
		}
		return v
	}
	cases := []struct {
		name   string
		path   string
		form   url.Values
		status int
		// errID is the id of the message beside the field; want is in it.
		errID, want string
	}{
		{"selector with a leading hyphen", "/domains/a.example/outgoing/dkim", with(gen, "selector", "-bad"), 422, "selector-error", "selector"},
		{"empty selector", "/domains/a.example/outgoing/dkim", with(gen, "selector", ""), 422, "selector-error", ""},
		{"unknown key length", "/domains/a.example/outgoing/dkim", with(gen, "length", "rsa999"), 422, "length-error", "Choose one"},
		{"taken selector", "/domains/a.example/outgoing/dkim", with(gen, "selector", "a1"), 409, "selector-error", "never reused"},
		{"Ed25519 on the same selector", "/domains/a.example/outgoing/dkim", with(gen, "ed25519", "on", "ed_selector", "good"), 422, "ed-selector-error", "of its own"},
		{"Ed25519 on a taken selector", "/domains/a.example/outgoing/dkim", with(gen, "ed25519", "on", "ed_selector", "a1"), 409, "ed-selector-error", "already used"},
		{"Ed25519 on a bad selector", "/domains/a.example/outgoing/dkim", with(gen, "ed25519", "on", "ed_selector", "a b"), 422, "ed-selector-error", ""},
		{"short password", "/domains/a.example/outgoing/users/new", with(user, "password", "short"), 422, "password-error", "12 characters"},
		{"no password", "/domains/a.example/outgoing/users/new", with(user, "password", ""), 422, "password-error", "needs a password"},
		{"bad network", "/domains/a.example/outgoing/users/new", with(user, "networks", "192.0.2.1\n300.1.1.1"), 422, "networks-error", "300.1.1.1"},
		{"ip user without network", "/domains/a.example/outgoing/users/new", with(user, "auth", "ip", "password", ""), 422, "networks-error", "at least one"},
		{"bad name", "/domains/a.example/outgoing/users/new", with(user, "name", "has space"), 422, "name-error", ""},
		{"taken name", "/domains/a.example/outgoing/users/new", with(user, "name", "ub@b.example"), 409, "name-error", "not available"},
		{"selector of no key", "/domains/a.example/outgoing/users/new", with(user, "selector", "nokey"), 422, "selector-error", "No pending or active key"},
		{"selector of another domain's key", "/domains/a.example/outgoing/users/new", with(user, "selector", "b1"), 422, "selector-error", "No pending or active key"},
		{"selector on a new re-authenticating user", "/domains/a.example/outgoing/users/new", with(user, "auth", "reauth", "selector", "a1"), 422, "selector-error", store.ReauthSelectorMessage},
		{"selector on a re-authenticating user", "/domains/a.example/outgoing/users/relay@a.example", url.Values{"csrf": {csrf}, "auth": {"reauth"}, "networks": {"198.51.100.1"}, "selector": {"a1"}, "enabled": {"on"}}, 422, "selector-error", store.ReauthSelectorMessage},
		{"bad identity header", "/domains/a.example/outgoing/users/relay@a.example", url.Values{"csrf": {csrf}, "auth": {"reauth"}, "networks": {"198.51.100.1"}, "identity_header": {"X Auth"}, "enabled": {"on"}}, 422, "identity-header-error", ""},
		{"bad domain name", "/domains", url.Values{"csrf": {csrf}, "name": {"not a domain"}}, 422, "domain-name-error", ""},
		{"taken domain", "/domains", url.Values{"csrf": {csrf}, "name": {"A.example"}}, 409, "domain-name-error", "already in dkimd"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.snapshot()
			r := b.post(c.path, c.form, nil)
			r.want(t, c.status)
			if c.errID != "" {
				i := strings.Index(r.body, `id="`+c.errID+`"`)
				if i < 0 {
					t.Fatalf("no message beside the field (%s): %.4000s", c.errID, r.body)
				}
				msg := r.body[i:min(len(r.body), i+400)]
				msg = msg[:strings.Index(msg, "</p>")]
				if !strings.Contains(msg, c.want) {
					t.Errorf("message %q lacks %q", msg, c.want)
				}
				// The field points at its message.
				if !strings.Contains(r.body, `aria-describedby="`) || !strings.Contains(r.body, c.errID) {
					t.Errorf("the field is not described by its message")
				}
			} else if !strings.Contains(r.body, c.want) {
				i := strings.Index(r.body, "Nothing was saved")
				t.Errorf("page lacks %q: %.300s", c.want, r.body[max(i, 0):])
			}
			if strings.Contains(r.body, "twelve chars ok") {
				t.Errorf("the password was sent back")
			}
			if e.snapshot() != before {
				t.Errorf("a refused form saved something")
			}
		})
	}
}

// TestPanelPages renders every page, as an admin and as a domain admin, in
// every state a key can be in: a template that fails shows here first.
func TestPanelPages(t *testing.T) {
	e := newPanelEnv(t, panelEnvOptions{})
	cli := admin.CLI()
	if _, err := e.svc.AddUser(e.ctx, cli, "relay@a.example", "a.example", admin.UserChange{
		Auth: ptr(store.AuthReauth), Networks: &[]string{"198.51.100.0/24"}}); err != nil {
		t.Fatal(err)
	}
	for _, st := range []store.KeyState{store.KeyActive, store.KeyRetired, store.KeyRevoked, store.KeyArchived} {
		if _, err := e.svc.SetKeyState(e.ctx, cli, "b.example", "b1", st, true); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.SetKeyState(e.ctx, cli, "a.example", "a1", store.KeyActive, true); err != nil {
		t.Fatal(err)
	}
	pages := []string{
		"/", "/audit", "/audit?domain=a.example&tab=1&action=key.create&actor=cli",
		"/domains/a.example/outgoing/dkim", "/domains/a.example/outgoing/users", "/domains/a.example/outgoing/users/new",
		"/domains/a.example/outgoing/users/relay@a.example", "/domains/a.example/outgoing/users/ua@a.example",
		"/domains/a.example/outgoing/users?user=ua@a.example&from=x%40a.example",
		"/domains/a.example/outgoing/users?user=relay@a.example&from=x%40a.example",
		"/domains/a.example/outgoing/users?user=ua@a.example&from=not+an+address",
		"/domains/a.example/keys", "/domains/a.example/keys/a1",
		"/domains/a.example/keys/a1/rotate", "/domains/a.example/keys/a1/retire", "/domains/a.example/keys/a1/revoke",
		"/domains/b.example/keys", "/domains/b.example/keys/b1",
	}
	for _, who := range []struct{ name, password string }{{"root", rootPassword}, {"alice", alicePassword}} {
		b := e.browser()
		b.login(who.name, who.password)
		for _, p := range pages {
			want := http.StatusOK
			if who.name == "alice" && strings.Contains(p, "b.example") {
				want = http.StatusNotFound
			}
			r := b.get(p)
			if r.status != want || !strings.Contains(r.body, "</html>") {
				t.Errorf("%s: GET %s: %d, want %d: %.300s", who.name, p, r.status, want, r.body)
			}
		}
	}
	b := e.browser()
	b.login("root", rootPassword)
	b.get("/domains/b.example/keys/b1").want(t, http.StatusOK, "archived", "remove its record")
	b.get("/domains/b.example/keys/b1/revoke").want(t, http.StatusConflict)
	b.get("/domains/a.example/keys/a1/explode").want(t, http.StatusNotFound)
	b.get("/no/such/page").want(t, http.StatusNotFound, "There is no such page")
	css := b.get("/static/panel.css")
	if css.status != http.StatusOK || !strings.HasPrefix(css.header.Get("Content-Type"), "text/css") {
		t.Errorf("panel.css: %d %q", css.status, css.header.Get("Content-Type"))
	}
}

// TestPanelKeyFlow goes through the seed's flow without a browser: RSA
// 1024 with an Ed25519 second key, the record, the checks, activation.
func TestPanelKeyFlow(t *testing.T) {
	e := newPanelEnv(t, panelEnvOptions{})
	b := e.browser()
	csrf := b.login("alice", alicePassword)
	b.get("/domains/a.example/outgoing/dkim").want(t, http.StatusOK, `value="rsa2048" checked`)
	r := b.post("/domains/a.example/outgoing/dkim", url.Values{"csrf": {csrf}, "length": {"rsa1024"}, "selector": {"k1"}, "ed25519": {"on"}}, nil)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/domains/a.example/keys/k1?done=generated2&also=k1e" {
		t.Fatalf("generate: %d %q %.500s", r.status, r.header.Get("Location"), r.body)
	}
	for sel, alg := range map[string]string{"k1": "rsa", "k1e": "ed25519"} {
		k, err := e.svc.GetKey(e.ctx, admin.CLI(), "a.example", sel)
		if err != nil || string(k.Algorithm) != alg || k.State != store.KeyPending {
			t.Fatalf("key %s: %+v %v", sel, k, err)
		}
	}
	kp := b.get("/domains/a.example/keys/k1?done=generated2&also=k1e")
	kp.want(t, http.StatusOK, "k1._domainkey", "v=DKIM1; k=rsa; p=", "k1._domainkey.a.example. IN TXT", "Not checked yet", "k1e", "Both key pairs")

	check := "/domains/a.example/keys/k1/check"
	b.post(check, url.Values{"csrf": {csrf}}, nil).want(t, http.StatusOK, "Not found in DNS", "What to do", "<html")
	// The script asks for the status part alone.
	part := b.post(check, url.Values{"csrf": {csrf}}, map[string]string{"X-Panel-Part": "dns-status"})
	part.want(t, http.StatusOK, `id="dns-status"`, "Not found in DNS")
	if strings.Contains(part.body, "<html") {
		t.Errorf("the part is a whole page")
	}
	// Activation waits for DNS.
	r = b.post("/domains/a.example/keys/k1/activate", url.Values{"csrf": {csrf}}, nil)
	r.want(t, http.StatusConflict, "Nothing was saved")
	e.publish("a.example", "k1")
	b.post(check, url.Values{"csrf": {csrf}}, nil).want(t, http.StatusOK, "Published, matches this key")
	b.get("/domains/a.example/keys").want(t, http.StatusOK, "Published, matches this key", "Not checked yet")
	r = b.post("/domains/a.example/keys/k1/activate", url.Values{"csrf": {csrf}}, nil)
	if r.status != http.StatusSeeOther {
		t.Fatalf("activate: %d %.500s", r.status, r.body)
	}
	// The checks are kept in the store: the key page lists them, newest
	// first, and the keys page says the key is weak.
	kp = b.get("/domains/a.example/keys/k1")
	kp.want(t, http.StatusOK, `id="dns-history"`, "Recent checks")
	hist := kp.body[strings.Index(kp.body, `id="dns-history"`):]
	if n := strings.Count(hist, `<tr><td data-label="When"`); n != 4 {
		t.Errorf("history lists %d checks, want 4 (two not found, one match, and the activation's match)", n)
	}
	if i, j := strings.Index(hist, "Published, matches this key"), strings.Index(hist, "Not found in DNS"); i < 0 || j < 0 || i > j {
		t.Errorf("history not newest first")
	}
	b.get("/domains/a.example/keys").want(t, http.StatusOK, "weak key")
	// The record of the active key goes away: the alert.
	e.clk.Advance(time.Minute)
	e.unpublish("a.example", "k1")
	b.post(check, url.Values{"csrf": {csrf}}, nil).want(t, http.StatusOK, "Not found in DNS", "Mail signed now fails DKIM: the record of k1 is missing")
	b.get("/domains/a.example/keys").want(t, http.StatusOK, `id="domain-status" data-level="bad"`, "Mail signed now fails DKIM", "record problem")
	e.publish("a.example", "k1")
	e.clk.Advance(time.Minute)
	b.post(check, url.Values{"csrf": {csrf}}, nil).want(t, http.StatusOK, "Published, matches this key")
	if strings.Contains(b.get("/domains/a.example/keys").body, `data-level="bad"`) {
		t.Errorf("the alert stays once the record is back")
	}
	// Revoked: the record and the check expect an empty p= now, and
	// the checks made before say nothing about that.
	// An active key is revoked only by force (lifecycle.ErrTooEarly).
	e.clk.Advance(time.Minute)
	b.post("/domains/a.example/keys/k1/revoke", url.Values{"csrf": {csrf}}, nil).want(t, http.StatusConflict, "Nothing was saved", "still signs", `name="force"`)
	if r := b.post("/domains/a.example/keys/k1/revoke", url.Values{"csrf": {csrf}, "force": {"on"}}, nil); r.status != http.StatusSeeOther {
		t.Fatalf("revoke: %d %.3000s", r.status, r.body[strings.Index(r.body, "<main"):])
	}
	b.get("/domains/a.example/keys/k1").want(t, http.StatusOK, "v=DKIM1; k=rsa; p=</textarea>", "Not checked yet")
	b.post(check, url.Values{"csrf": {csrf}}, nil).want(t, http.StatusOK, "Still published, should be revoked")

	// Rotate: a new key of the same kind; a taken selector is refused
	// beside the field.
	b.post("/domains/a.example/keys/a1/activate", url.Values{"csrf": {csrf}, "force": {"on"}}, nil)
	b.post("/domains/a.example/keys/a1/rotate", url.Values{"csrf": {csrf}, "selector": {"k1"}}, nil).want(t, http.StatusConflict, `id="selector-error"`)
	r = b.post("/domains/a.example/keys/a1/rotate", url.Values{"csrf": {csrf}, "selector": {"a2"}}, nil)
	if r.status != http.StatusSeeOther {
		t.Fatalf("rotate: %d", r.status)
	}
	if k, err := e.svc.GetKey(e.ctx, admin.CLI(), "a.example", "a2"); err != nil || k.Algorithm != "ed25519" {
		t.Errorf("rotated key %+v %v", k, err)
	}
	// Once the new key is active the old one retires, and its page says
	// from when it may be revoked.
	b.post("/domains/a.example/keys/a2/activate", url.Values{"csrf": {csrf}, "force": {"on"}}, nil)
	safe := e.clk.Now().Add(lifecycle.DefaultSignatureLifetime + lifecycle.DefaultQueueLifetime).UTC().Format("2006-01-02 15:04 UTC")
	b.get("/domains/a.example/keys/a1").want(t, http.StatusOK, "retired", `id="safe-to-revoke"`, safe)
}

// TestPanelOversign: a domain admin sees the domain's oversigning choice on
// its keys page and changes it with the settings form; a value that cannot
// go into h= is refused and changes nothing, auto-activation included; a
// form without the field (a page from before it) leaves the choice alone.
func TestPanelOversign(t *testing.T) {
	e := newPanelEnv(t, panelEnvOptions{})
	b := e.browser()
	csrf := b.login("alice", alicePassword)
	b.get("/domains/a.example/keys").want(t, http.StatusOK, `name="oversign"`, `value="default"`)

	b.post("/domains/a.example/settings", url.Values{"csrf": {csrf}, "oversign": {"from-only"}}, nil).want(t, http.StatusSeeOther)
	oversign := func() string {
		t.Helper()
		d, err := e.db.GetDomain(e.ctx, "a.example")
		if err != nil {
			t.Fatal(err)
		}
		return d.Oversign
	}
	if got := oversign(); got != "From" {
		t.Fatalf("after from-only: %q", got)
	}
	b.get("/domains/a.example/keys").want(t, http.StatusOK, `value="From"`)

	before := e.snapshot()
	b.post("/domains/a.example/settings", url.Values{"csrf": {csrf}, "oversign": {"Sub ject"}, "auto_activate": {"on"}}, nil).
		want(t, http.StatusUnprocessableEntity, "Not a header field name")
	if e.snapshot() != before {
		t.Errorf("a refused oversign value changed the store")
	}
	b.post("/domains/a.example/settings", url.Values{"csrf": {csrf}, "auto_activate": {"on"}}, nil).want(t, http.StatusSeeOther)
	if got := oversign(); got != "From" {
		t.Errorf("a form without the field changed oversign to %q", got)
	}
}

// The key page and the keys list say where the private key lives: sealed
// in the database, or in a PKCS#11 token (issue 16).
func TestPanelKeyLocation(t *testing.T) {
	e := newPanelEnv(t, panelEnvOptions{})
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.CreateKey(e.ctx, store.NewKey{Domain: "a.example", Selector: "hsm1", Algorithm: keys.Ed25519, PublicKey: pub,
		Location: store.KeyLocation{Backend: store.BackendPKCS11, Token: "bank-hsm", Label: "dkimd hsm1._domainkey.a.example", ObjectID: "0102"}}); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.login("alice", alicePassword)
	b.get("/domains/a.example/keys/hsm1").want(t, http.StatusOK, `id="key-location"`, "In PKCS#11 token <code>bank-hsm</code>, object <code>dkimd hsm1._domainkey.a.example</code>")
	b.get("/domains/a.example/keys/a1").want(t, http.StatusOK, `id="key-location"`, "Sealed in the database")
	b.get("/domains/a.example/keys").want(t, http.StatusOK, `title="in PKCS#11 token bank-hsm">HSM</span>`)
}
