package panel

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/admin/admintest"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/queue"
	"github.com/dkimd/dkimd/internal/store"
	"github.com/dkimd/dkimd/internal/store/sqlite"
	"github.com/dkimd/dkimd/internal/store/storetest"
	"github.com/dkimd/dkimd/internal/web"
)

// Panel accounts with passwords (hashing costs tens of milliseconds, so
// there are two).
const (
	rootPassword  = "root password for tests"
	alicePassword = "alice password for tests"
)

// panelEnv is dkimd's HTTP side as serve wires it (the API under /api/v1/,
// the panel at /) on 127.0.0.1, over a fresh SQLite store, with DNS
// answered by real DNS servers on loopback (a resolver and the zones'
// name server) and a real mail spool holding one message:
//
//	a.example: key a1 (ed25519, pending), user ua@a.example (ip 192.0.2.1)
//	b.example: key b1 (ed25519, pending), user ub@b.example (ip 192.0.2.2)
//	accounts root (admin) and alice (domain admin of a.example)
//	queue: message msgID from ann@a.example to two recipients
type panelEnv struct {
	t   *testing.T
	ctx context.Context
	clk *storetest.Clock
	db  *sqlite.DB
	svc *admin.Service
	srv *httptest.Server
	// h is the handler srv serves, for requests from other addresses.
	h     http.Handler
	dns   *testDNS
	spool *queue.Spool
	msgID string
	logs  *lockedBuffer
}

type panelEnvOptions struct {
	limits web.LoginLimits
	tls    bool
	// token is the PKCS#11 token keys may be made in; nil means none.
	token admintest.Token
}

func newPanelEnv(t *testing.T, o panelEnvOptions) *panelEnv {
	t.Helper()
	ctx := context.Background()
	clk := storetest.NewClock(time.Now().UTC().Truncate(time.Second))
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "dkimd.db"), sqlite.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	mk, err := keys.NewMasterKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &panelEnv{t: t, ctx: ctx, clk: clk, db: db, logs: &lockedBuffer{}}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.dns = newTestDNS(t, "a.example", "b.example")
	e.spool = testQueue(t, clk.Now)
	// As internal/server wires the service.
	e.svc = admintest.New(t, admintest.Options{Store: db, Master: mk, Now: clk.Now, Log: log, DNS: e.dns.Checker(clk.Now), Queue: e.spool, Token: o.token}).Admin
	opts := web.Options{Admin: e.svc, Log: log, Now: clk.Now, LoginLimits: o.limits}
	// The API and the panel with one login throttle, as NewSite gives them
	// to serve.
	h := NewSite(opts)
	e.h = h
	if o.tls {
		e.srv = httptest.NewTLSServer(h)
	} else {
		e.srv = httptest.NewServer(h)
	}
	t.Cleanup(func() {
		e.srv.Close()
		if logs := e.logs.String(); strings.Contains(logs, rootPassword) || strings.Contains(logs, alicePassword) {
			t.Error("a password reached the log")
		}
		if err := db.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	e.seed()
	return e
}

func (e *panelEnv) seed() {
	t, cli := e.t, admin.CLI()
	t.Helper()
	seedTenants(t, e.ctx, e.svc)
	for _, a := range []admin.NewAccountRequest{
		{Name: "root", Role: store.RoleAdmin, Password: rootPassword},
		{Name: "alice", Role: store.RoleDomain, Domains: []string{"a.example"}, Password: alicePassword},
	} {
		if _, err := e.svc.AddAccount(e.ctx, cli, a); err != nil {
			t.Fatal(err)
		}
	}
	e.msgID = enqueue(t, e.spool)
}

// publish puts a key's record into DNS, as its admin would.
func (e *panelEnv) publish(domain, selector string) {
	e.t.Helper()
	_, rec, err := e.svc.KeyRecord(e.ctx, admin.CLI(), domain, selector)
	if err != nil || rec == nil {
		e.t.Fatalf("record of %s: %v", selector, err)
	}
	e.dns.Publish(domain, rec.Name, rec.Strings...)
}

// unpublish removes a key's record from DNS.
func (e *panelEnv) unpublish(domain, selector string) {
	e.dns.Publish(domain, selector+"._domainkey."+domain)
}

// snapshot gives what the store holds, to show a refused request changed
// nothing. Logins add sessions and audit entries, so tests take it after
// logging in.
func (e *panelEnv) snapshot() string {
	e.t.Helper()
	var b strings.Builder
	ds, err := e.db.ListDomains(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	ks, err := e.db.ListKeys(e.ctx, store.KeyFilter{})
	if err != nil {
		e.t.Fatal(err)
	}
	us, err := e.db.ListUsers(e.ctx, "")
	if err != nil {
		e.t.Fatal(err)
	}
	au, err := e.db.ListAudit(e.ctx, store.AuditFilter{Limit: store.MaxAuditLimit})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, x := range []any{ds, ks, us, au} {
		b.WriteString(strings.ReplaceAll(strings.TrimSpace(fmtAny(x)), "\n", " "))
		b.WriteByte('|')
	}
	for _, u := range us {
		b.WriteString(u.PasswordHash)
	}
	return b.String()
}

// browser is a plain HTTP client with a cookie jar that does not follow
// redirects, so tests see each answer.
type browser struct {
	e *panelEnv
	c *http.Client
}

func (e *panelEnv) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	c := *e.srv.Client()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{e: e, c: &c}
}

// page is an answer, read in full.
type page struct {
	status int
	header http.Header
	body   string
}

func (b *browser) get(path string) *page {
	b.e.t.Helper()
	return b.do("GET", path, nil, nil)
}

func (b *browser) post(path string, form url.Values, header map[string]string) *page {
	b.e.t.Helper()
	return b.do("POST", path, form, header)
}

func (b *browser) do(method, path string, form url.Values, header map[string]string) *page {
	b.e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r, err := http.NewRequestWithContext(b.e.ctx, method, b.e.srv.URL+path, body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		r.Header.Set(k, v)
	}
	res, err := b.c.Do(r)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer res.Body.Close()
	bb, err := io.ReadAll(res.Body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	return &page{status: res.StatusCode, header: res.Header, body: string(bb)}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf gives the CSRF token of a page's forms.
func (p *page) csrf(t *testing.T) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no CSRF token on the page (status %d): %.300s", p.status, p.body)
	}
	return m[1]
}

func (p *page) want(t *testing.T, status int, contains ...string) {
	t.Helper()
	if p.status != status {
		t.Fatalf("status %d, want %d; body %.2000s", p.status, status, p.body)
	}
	for _, c := range contains {
		if !strings.Contains(p.body, c) {
			t.Fatalf("page lacks %q: %.3000s", c, p.body)
		}
	}
}

// login logs in through the login form and gives the CSRF token of the
// session's forms.
func (b *browser) login(name, password string) string {
	b.e.t.Helper()
	lp := b.get("/login")
	lp.want(b.e.t, http.StatusOK, `name="password"`)
	r := b.post("/login", url.Values{"csrf": {lp.csrf(b.e.t)}, "name": {name}, "password": {password}, "next": {"/"}}, nil)
	if r.status != http.StatusSeeOther {
		b.e.t.Fatalf("login: status %d: %.500s", r.status, r.body)
	}
	return b.get("/").csrf(b.e.t)
}

func fmtAny(v any) string { return fmt.Sprintf("%+v", v) }
