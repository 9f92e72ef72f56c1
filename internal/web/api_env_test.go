package web

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/admin/admintest"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/queue"
	"github.com/dkimd/dkimd/internal/store"
	"github.com/dkimd/dkimd/internal/store/sqlite"
	"github.com/dkimd/dkimd/internal/store/storetest"
)

// The roles every route is tried with.
const (
	roleAdmin    = "admin"    // root: an admin
	roleDomA     = "domA"     // alice: domain admin of a.example
	roleDomB     = "domB"     // bob: domain admin of b.example
	roleNone     = "none"     // no credentials
	roleBad      = "bad"      // a bearer token nobody has
	roleDisabled = "disabled" // dave: a disabled domain admin of a.example
)

// roles lists them with those that must change nothing first.
var roles = []string{roleNone, roleBad, roleDisabled, roleDomB, roleDomA, roleAdmin}

// env is a dkimd API on 127.0.0.1 over a fresh SQLite store holding two
// tenants, with DNS answered by real DNS servers on loopback (nothing
// published) and a real mail spool holding one message:
//
//	a.example: key a1 (ed25519, pending), user ua@a.example (ip 192.0.2.1)
//	b.example: key b1 (ed25519, pending), user ub@b.example (ip 192.0.2.2)
//	accounts root (admin), alice (a.example), bob (b.example),
//	dave (a.example, disabled), each with an API token
//	queue: message msgID from ann@a.example to two recipients
type env struct {
	t      *testing.T
	ctx    context.Context
	clk    *storetest.Clock
	db     *sqlite.DB
	svc    *admin.Service
	keys   *keys.Source // the key source the relay would sign with
	mk     *keys.MasterKey
	srv    *httptest.Server
	tokens map[string]string
	dns    *testDNS
	spool  *queue.Spool
	msgID  string

	mu      sync.Mutex
	bodies  [][]byte
	secrets []string // passwords and tokens that must never be logged
	logs    *lockedBuffer
	// closed is set by a test that closes the store itself.
	closed bool
}

type envOptions struct {
	tls    bool
	limits LoginLimits
	// token is the PKCS#11 token keys may be made in; nil means none.
	token admintest.Token
}

func newEnv(t *testing.T) *env { return newEnvWith(t, envOptions{}) }

func newEnvWith(t *testing.T, o envOptions) *env {
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
	e := &env{t: t, ctx: ctx, clk: clk, db: db, tokens: map[string]string{}, logs: &lockedBuffer{}}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.dns = newTestDNS(t, "a.example", "b.example")
	e.spool = testQueue(t, clk.Now)
	all := admintest.New(t, admintest.Options{Store: db, Master: mk, Now: clk.Now, Log: log, DNS: e.dns.Checker(clk.Now), Queue: e.spool, Token: o.token})
	e.svc, e.keys, e.mk = all.Admin, all.Keys, mk
	api := NewAPI(Options{Admin: e.svc, Log: log, Now: clk.Now, LoginLimits: o.limits})
	if o.tls {
		e.srv = httptest.NewTLSServer(api)
	} else {
		e.srv = httptest.NewServer(api)
	}
	t.Cleanup(func() {
		e.srv.Close()
		if e.closed {
			return
		}
		e.scanForSecrets()
		if err := db.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	e.seed()
	return e
}

func (e *env) seed() {
	t, cli := e.t, admin.CLI()
	t.Helper()
	seedTenants(t, e.ctx, e.svc)
	accounts := []struct {
		role, name string
		r          store.Role
		domains    []string
	}{
		{roleAdmin, "root", store.RoleAdmin, nil},
		{roleDomA, "alice", store.RoleDomain, []string{"a.example"}},
		{roleDomB, "bob", store.RoleDomain, []string{"b.example"}},
		{roleDisabled, "dave", store.RoleDomain, []string{"a.example"}},
	}
	for _, a := range accounts {
		if _, err := e.svc.AddAccount(e.ctx, cli, admin.NewAccountRequest{Name: a.name, Role: a.r, Domains: a.domains}); err != nil {
			t.Fatal(err)
		}
		tok, _, err := e.svc.NewToken(e.ctx, cli, a.name, "test", 0)
		if err != nil {
			t.Fatal(err)
		}
		e.tokens[a.role] = tok
		e.secrets = append(e.secrets, tok)
	}
	e.setEnabled("dave", false)
	e.tokens[roleBad] = "dkimd_" + strings.Repeat("A", 43)
	e.msgID = enqueue(t, e.spool)
}

func (e *env) setEnabled(name string, on bool) {
	e.t.Helper()
	acc, err := e.db.GetAccount(e.ctx, name)
	if err != nil {
		e.t.Fatal(err)
	}
	acc.Enabled = on
	if _, err := e.db.UpdateAccount(e.ctx, acc); err != nil {
		e.t.Fatal(err)
	}
}

// addPasswordAccount makes an account that can log in. Hashing costs tens
// of milliseconds, so only the tests that log in call it.
func (e *env) addPasswordAccount(name string, r store.Role, domains []string, password string) {
	e.t.Helper()
	if _, err := e.svc.AddAccount(e.ctx, admin.CLI(), admin.NewAccountRequest{Name: name, Role: r, Domains: domains, Password: password}); err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	e.secrets = append(e.secrets, password)
	e.mu.Unlock()
}

// resp is an answer, read in full.
type resp struct {
	status  int
	header  http.Header
	body    []byte
	cookies []*http.Cookie
}

// req is a request to make; body is sent as is when a string or []byte,
// else marshalled. A body is sent as application/json unless contentType
// says otherwise.
type req struct {
	method, path string
	body         any
	contentType  *string
	role         string // bearer token of this role; "" sends none
	header       map[string]string
	cookie       *http.Cookie
}

func (e *env) do(r req) *resp {
	e.t.Helper()
	var body io.Reader
	if r.body != nil {
		switch b := r.body.(type) {
		case string:
			body = strings.NewReader(b)
		case []byte:
			body = bytes.NewReader(b)
		default:
			j, err := json.Marshal(b)
			if err != nil {
				e.t.Fatal(err)
			}
			body = bytes.NewReader(j)
		}
	}
	hr, err := http.NewRequestWithContext(e.ctx, r.method, e.srv.URL+r.path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if r.body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.contentType != nil {
		hr.Header.Set("Content-Type", *r.contentType)
		if *r.contentType == "" {
			hr.Header.Del("Content-Type")
		}
	}
	if r.role != "" && r.role != roleNone {
		tok, ok := e.tokens[r.role]
		if !ok {
			e.t.Fatalf("no token for role %q", r.role)
		}
		hr.Header.Set("Authorization", "Bearer "+tok)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	if r.cookie != nil {
		hr.AddCookie(r.cookie)
	}
	res, err := e.srv.Client().Do(hr)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	e.bodies = append(e.bodies, b)
	e.mu.Unlock()
	return &resp{status: res.StatusCode, header: res.Header, body: b, cookies: res.Cookies()}
}

// call is do for the common case.
func (e *env) call(role, method, path string, body any) *resp {
	e.t.Helper()
	return e.do(req{method: method, path: path, body: body, role: role})
}

// into decodes the body, failing the test if it does not decode.
func (r *resp) into(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// apiErr gives the error body, or the zero value for a success.
func (r *resp) apiErr() errorDetail {
	var b errorBody
	_ = json.Unmarshal(r.body, &b)
	return b.Error
}

// want checks the status, and for an error the code and field.
func (r *resp) want(t *testing.T, status int, code, field string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if status < 300 {
		return
	}
	got := r.apiErr()
	if got.Code != code || got.Field != field {
		t.Fatalf("error code %q field %q, want %q %q; body %s", got.Code, got.Field, code, field, r.body)
	}
	if p := sentenceProblem(got.Message); p != "" {
		t.Fatalf("error message %q %s (issue 12 point 6); body %s", got.Message, p, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("error Content-Type %q", ct)
	}
}

// snapshot gives everything the store holds, to show a refused request
// changed nothing.
func (e *env) snapshot() string {
	e.t.Helper()
	var out struct {
		Domains  []store.Domain
		Keys     []store.Key
		Users    []store.OutgoingUser
		Accounts []store.Account
		Tokens   map[string][]store.Token
		Audit    []store.AuditEntry
		Checks   []store.DNSCheck
		Queue    []queue.Message
	}
	var err error
	check := func(err error) {
		if err != nil {
			e.t.Fatal(err)
		}
	}
	out.Domains, err = e.db.ListDomains(e.ctx)
	check(err)
	out.Keys, err = e.db.ListKeys(e.ctx, store.KeyFilter{})
	check(err)
	out.Users, err = e.db.ListUsers(e.ctx, "")
	check(err)
	out.Accounts, err = e.db.ListAccounts(e.ctx)
	check(err)
	out.Tokens = map[string][]store.Token{}
	for _, a := range out.Accounts {
		out.Tokens[a.Name], err = e.db.ListTokens(e.ctx, a.Name)
		check(err)
	}
	all, err := e.db.ListAudit(e.ctx, store.AuditFilter{Limit: store.MaxAuditLimit})
	check(err)
	for _, a := range all {
		// A refused login is audited, and changes nothing else.
		if a.Action != "account.login_failed" {
			out.Audit = append(out.Audit, a)
		}
	}
	out.Checks, err = e.db.ListDNSChecks(e.ctx, store.DNSCheckFilter{Limit: store.MaxDNSCheckLimit})
	check(err)
	qs, err := e.spool.List(e.ctx)
	check(err)
	for _, q := range qs {
		m, err := e.spool.Get(e.ctx, q.ID)
		check(err)
		out.Queue = append(out.Queue, m)
	}
	// Hashes are not marshalled; compare them too.
	b, err := json.Marshal(out)
	check(err)
	var hashes []string
	for _, a := range out.Accounts {
		hashes = append(hashes, a.PasswordHash)
	}
	for _, u := range out.Users {
		hashes = append(hashes, u.PasswordHash)
	}
	return string(b) + strings.Join(hashes, "|")
}

// scanForSecrets fails the test if any answer or log line carries a
// private key (in PEM, DER or base64), a sealed key, a password hash, or
// (in the log) a password or token.
func (e *env) scanForSecrets() {
	for _, p := range e.findSecrets() {
		e.t.Error(p)
	}
}

func (e *env) findSecrets() []string {
	ks, err := e.db.ListKeys(e.ctx, store.KeyFilter{})
	if err != nil {
		return []string{"list keys: " + err.Error()}
	}
	if len(ks) == 0 {
		return []string{"no keys to look for: the scan would prove nothing"}
	}
	needles := []string{"PRIVATE KEY", "$argon2id$"}
	window := func(b []byte) []string {
		// A window of up to 24 bytes from inside, raw and in hex, and a run of
		// the whole in base64 as JSON and logs would write it.
		n := min(24, len(b)/2)
		mid := b[len(b)/4 : len(b)/4+n]
		std, url := base64.StdEncoding.EncodeToString(b), base64.URLEncoding.EncodeToString(b)
		return []string{string(mid), hex.EncodeToString(mid), std[4 : 4+n], url[4 : 4+n]}
	}
	var problems []string
	for _, k := range ks {
		// A key in a token has no sealed copy (its stand-in's private
		// key is still looked for below).
		if !k.Location.PKCS11() {
			sealed, err := e.db.SealedKey(e.ctx, k.ID)
			if err != nil {
				problems = append(problems, fmt.Sprintf("sealed key %d: %v", k.ID, err))
				continue
			}
			needles = append(needles, window(sealed)...)
		}
		signer, err := e.keys.Signer(e.ctx, k.Ref())
		if err != nil {
			problems = append(problems, fmt.Sprintf("open key %d: %v", k.ID, err))
			continue
		}
		der, err := x509.MarshalPKCS8PrivateKey(signer)
		if err != nil {
			problems = append(problems, fmt.Sprintf("marshal key %d: %v", k.ID, err))
			continue
		}
		needles = append(needles, window(der)...)
		if ed, ok := signer.(ed25519.PrivateKey); ok {
			needles = append(needles, window(ed.Seed())...)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, b := range e.bodies {
		for _, n := range needles {
			if bytes.Contains(b, []byte(n)) {
				problems = append(problems, fmt.Sprintf("an answer carries secret material (%.20q…): %.200s", n, b))
			}
		}
	}
	logs := e.logs.String()
	for _, n := range append(needles, e.secrets...) {
		if strings.Contains(logs, n) {
			problems = append(problems, fmt.Sprintf("the log carries secret material (%.20q…)", n))
		}
	}
	return problems
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func ptr[T any](v T) *T { return &v }

// seedTenants gives the API and panel tests their two tenants: domains
// a.example and b.example, an Ed25519 key a1 and b1 in each, and an
// IP-authenticated user in each.
func seedTenants(t *testing.T, ctx context.Context, svc *admin.Service) {
	t.Helper()
	cli := admin.CLI()
	for _, d := range []string{"a.example", "b.example"} {
		if _, err := svc.AddDomain(ctx, cli, store.Domain{Name: d}); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range [][2]string{{"a.example", "a1"}, {"b.example", "b1"}} {
		if _, err := svc.GenerateKey(ctx, cli, lifecycle.NewKeyRequest{Domain: k[0], Selector: k[1], Spec: keys.Spec{Algorithm: keys.Ed25519}}); err != nil {
			t.Fatal(err)
		}
	}
	ip := store.AuthIP
	for _, u := range [][3]string{{"ua@a.example", "a.example", "192.0.2.1"}, {"ub@b.example", "b.example", "192.0.2.2"}} {
		nets := []string{u[2]}
		if _, err := svc.AddUser(ctx, cli, u[0], u[1], admin.UserChange{Auth: &ip, Networks: &nets}); err != nil {
			t.Fatal(err)
		}
	}
}

// tokenID gives the ID of the API token seed made for an account.
func (e *env) tokenID(account string) int64 {
	e.t.Helper()
	ts, err := e.db.ListTokens(e.ctx, account)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, t := range ts {
		if t.Kind == store.TokenAPI && t.Label == "test" {
			return t.ID
		}
	}
	e.t.Fatalf("no test token for %s", account)
	return 0
}
