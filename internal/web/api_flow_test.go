package web

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/policy"
	"github.com/dkimd/dkimd/internal/store"
)

// TestKeyLifecycle makes an RSA 2048 key (the one RSA key of these tests:
// its record is longer than 255 bytes) and walks it to archived, checking
// the record at each step.
func TestKeyLifecycle(t *testing.T) {
	e := newEnv(t)
	r := e.call(roleDomA, "POST", "/api/v1/domains/a.example/keys", `{"selector":"2026-01","algorithm":"RSA","bits":2048}`)
	r.want(t, http.StatusCreated, "", "")
	if loc := r.header.Get("Location"); loc != "/api/v1/domains/a.example/keys/2026-01" {
		t.Errorf("Location %q", loc)
	}
	var g lifecycle.GeneratedKey
	r.into(t, &g)
	rec := g.Record
	if g.Key.State != store.KeyPending || g.Key.Bits != 2048 || rec == nil {
		t.Fatalf("generated %s", r.body)
	}
	// The three forms: host for a web form, the value whole, the zone line
	// with the value cut into strings of at most 255 bytes (RFC 1035
	// §3.3.14).
	if rec.Host != "2026-01._domainkey" || rec.Name != "2026-01._domainkey.a.example" {
		t.Errorf("host %q name %q", rec.Host, rec.Name)
	}
	if !strings.HasPrefix(rec.Value, "v=DKIM1; k=rsa; p=") || len(rec.Value) <= 255 {
		t.Errorf("value %q", rec.Value)
	}
	if len(rec.Strings) < 2 || strings.Join(rec.Strings, "") != rec.Value {
		t.Errorf("strings %q do not join to the value", rec.Strings)
	}
	for _, s := range rec.Strings {
		if len(s) > 255 {
			t.Errorf("a string of %d bytes", len(s))
		}
	}
	if !strings.Contains(rec.Zone, `"`+rec.Strings[0]+`"`) || !strings.HasPrefix(rec.Zone, rec.Name+".") {
		t.Errorf("zone %q", rec.Zone)
	}

	path := "/api/v1/domains/a.example/keys/2026-01"
	var k store.Key
	e.call(roleDomA, "GET", "/api/v1/domains/A.EXAMPLE/keys/2026-01", nil).into(t, &k)
	if k.ID != g.Key.ID {
		t.Errorf("key by another spelling %+v", k)
	}
	var kr keyRecordResponse
	e.call(roleDomA, "GET", path+"/record", nil).into(t, &kr)
	if kr.Record == nil || kr.Record.Value != rec.Value {
		t.Errorf("record %+v, want the generated one", kr.Record)
	}

	for _, step := range []struct {
		body   string
		state  store.KeyState
		record string // prefix of the record value; "" for none
	}{
		{`{"state":"active","force":true}`, store.KeyActive, "v=DKIM1; k=rsa; p=MII"},
		{`{"state":"retired"}`, store.KeyRetired, "v=DKIM1; k=rsa; p=MII"},
		// Just retired: its signatures may still be checked, so only
		// force revokes it now (a compromised key).
		{`{"state":"revoked","force":true}`, store.KeyRevoked, "v=DKIM1; k=rsa; p="},
		{`{"state":"archived"}`, store.KeyArchived, ""},
	} {
		if step.state == store.KeyRevoked {
			e.call(roleDomA, "POST", path+"/state", `{"state":"revoked"}`).want(t, http.StatusConflict, "conflict", "")
		}
		r := e.call(roleDomA, "POST", path+"/state", step.body)
		r.want(t, http.StatusOK, "", "")
		r.into(t, &k)
		if k.State != step.state {
			t.Fatalf("state %s, want %s", k.State, step.state)
		}
		kr = keyRecordResponse{}
		e.call(roleDomA, "GET", path+"/record", nil).into(t, &kr)
		switch {
		case step.record == "" && kr.Record != nil:
			t.Errorf("%s: record %+v, want null", step.state, kr.Record)
		case step.record != "" && (kr.Record == nil || !strings.HasPrefix(kr.Record.Value, step.record)):
			t.Errorf("%s: record %+v, want %q…", step.state, kr.Record, step.record)
		case step.state == store.KeyRevoked && !strings.HasSuffix(kr.Record.Value, "p="):
			t.Errorf("revoked record %q, want an empty p= (RFC 6376 §3.6.1)", kr.Record.Value)
		}
	}
	var ks []store.Key
	e.call(roleDomA, "GET", "/api/v1/domains/a.example/keys", nil).into(t, &ks)
	if len(ks) != 2 {
		t.Errorf("%d keys, want a1 and 2026-01", len(ks))
	}
	// Selectors are never reused, even once archived.
	e.call(roleDomA, "POST", "/api/v1/domains/a.example/keys", `{"selector":"2026-01","algorithm":"ed25519"}`).want(t, http.StatusConflict, codeExists, "")
}

// TestUserPatch checks that a PATCH changes what it names and nothing
// else, and that passwords are write-only.
func TestUserPatch(t *testing.T) {
	e := newEnv(t)
	r := e.call(roleDomA, "POST", "/api/v1/domains/a.example/users",
		`{"name":"Relay@a.example","auth":"password","password":"a long enough password","networks":["192.0.2.0/24"],"selector":"a1"}`)
	r.want(t, http.StatusCreated, "", "")
	if strings.Contains(string(r.body), "password\":\"") {
		t.Errorf("the answer carries the password: %s", r.body)
	}
	var u userView
	r.into(t, &u)
	if u.Name != "relay@a.example" || !u.HasPassword || u.Selector != "a1" || !u.Enabled {
		t.Fatalf("created %s", r.body)
	}
	hash := func() string {
		su, err := e.db.GetUser(e.ctx, "relay@a.example")
		if err != nil {
			t.Fatal(err)
		}
		return su.PasswordHash
	}
	h0 := hash()

	steps := []struct {
		body  string
		check func(u userView) bool
	}{
		{`{"enabled":false}`, func(u userView) bool {
			return !u.Enabled && u.Selector == "a1" && len(u.Networks) == 1 && u.HasPassword
		}},
		{`{"selector":""}`, func(u userView) bool { return u.Selector == "" && !u.Enabled }},
		{`{"networks":["192.0.2.7","2001:db8::/48"]}`, func(u userView) bool { return len(u.Networks) == 2 && !u.Enabled }},
		{`{"granted_domains":["a.example"],"selector":null}`, func(u userView) bool { return u.Selector == "" && len(u.Networks) == 2 }},
		{`{}`, func(u userView) bool { return !u.Enabled && len(u.Networks) == 2 && u.HasPassword }},
	}
	for _, s := range steps {
		r := e.call(roleDomA, "PATCH", "/api/v1/users/relay@a.example", s.body)
		r.want(t, http.StatusOK, "", "")
		var u userView
		r.into(t, &u)
		if !s.check(u) {
			t.Errorf("after %s: %s", s.body, r.body)
		}
	}
	if hash() != h0 {
		t.Errorf("a PATCH without password changed the password")
	}
	e.call(roleDomA, "PATCH", "/api/v1/users/relay@a.example", `{"password":"another long password"}`).want(t, http.StatusOK, "", "")
	if hash() == h0 {
		t.Errorf("the password did not change")
	}
	e.call(roleDomA, "DELETE", "/api/v1/users/relay@a.example", nil).want(t, http.StatusNoContent, "", "")
	e.call(roleDomA, "GET", "/api/v1/users/relay@a.example", nil).want(t, http.StatusNotFound, codeNotFound, "")
}

func TestAccountsAndTokens(t *testing.T) {
	e := newEnv(t)
	r := e.call(roleAdmin, "POST", "/api/v1/accounts", `{"name":"Eve","role":"domain","domains":["b.example","B.example."]}`)
	r.want(t, http.StatusCreated, "", "")
	var acc accountView
	r.into(t, &acc)
	if acc.Name != "eve" || len(acc.Domains) != 1 || acc.HasPassword {
		t.Errorf("account %s", r.body)
	}

	// A token is shown once, works at once, and says when it ends.
	r = e.call(roleAdmin, "POST", "/api/v1/accounts/eve/tokens", `{"label":"deploy","ttl":"1h"}`)
	r.want(t, http.StatusCreated, "", "")
	var nt newTokenResponse
	r.into(t, &nt)
	if !strings.HasPrefix(nt.Token, "dkimd_") || nt.Info.Account != "eve" || nt.Info.Label != "deploy" ||
		!nt.Info.Expires.Equal(e.clk.Now().Add(time.Hour)) {
		t.Fatalf("token %s", r.body)
	}
	e.tokens["eve"] = nt.Token
	var who whoamiResponse
	e.call("eve", "GET", "/api/v1/whoami", nil).into(t, &who)
	if who.Account.Name != "eve" || who.Via != "bearer" || who.Token.ID != nt.Info.ID {
		t.Errorf("whoami %+v", who)
	}
	var ds []store.Domain
	e.call("eve", "GET", "/api/v1/domains", nil).into(t, &ds)
	if len(ds) != 1 || ds[0].Name != "b.example" {
		t.Errorf("eve's domains %+v", ds)
	}
	// Her own token she may make; with no ttl it never expires.
	r = e.call("eve", "POST", "/api/v1/accounts/eve/tokens", `{"label":"own"}`)
	r.want(t, http.StatusCreated, "", "")
	var own newTokenResponse
	r.into(t, &own)
	if own.Token == "" || !own.Info.Expires.IsZero() {
		t.Errorf("token without ttl: %s", r.body)
	}
	e.clk.Advance(time.Hour + time.Second)
	e.call("eve", "GET", "/api/v1/whoami", nil).want(t, http.StatusUnauthorized, codeUnauthorized, "")

	var as []accountView
	e.call(roleAdmin, "GET", "/api/v1/accounts", nil).into(t, &as)
	if len(as) != 5 {
		t.Errorf("%d accounts, want 5", len(as))
	}
	e.call(roleAdmin, "DELETE", "/api/v1/accounts/eve", nil).want(t, http.StatusNoContent, "", "")
	e.call(roleAdmin, "DELETE", "/api/v1/accounts/eve", nil).want(t, http.StatusNotFound, codeNotFound, "")
}

func TestDomains(t *testing.T) {
	e := newEnv(t)
	r := e.call(roleAdmin, "POST", "/api/v1/domains", `{"name":"Bücher.Example","auto_activate":true}`)
	r.want(t, http.StatusCreated, "", "")
	var d store.Domain
	r.into(t, &d)
	if d.Name != "xn--bcher-kva.example" || !d.AutoActivate || r.header.Get("Location") != "/api/v1/domains/xn--bcher-kva.example" {
		t.Errorf("domain %s, Location %q", r.body, r.header.Get("Location"))
	}
	e.call(roleAdmin, "GET", "/api/v1/domains/b%C3%BCcher.example", nil).want(t, http.StatusOK, "", "")
	r = e.call(roleAdmin, "PATCH", "/api/v1/domains/xn--bcher-kva.example", `{"auto_activate":false}`)
	r.into(t, &d)
	if d.AutoActivate {
		t.Errorf("auto_activate still on")
	}
	if d.Oversign != store.OversignDefault {
		t.Errorf("a new domain oversigns %q, want the default", d.Oversign)
	}
	r = e.call(roleAdmin, "PATCH", "/api/v1/domains/xn--bcher-kva.example", `{"oversign":"from-only"}`)
	r.want(t, http.StatusOK, "", "")
	r.into(t, &d)
	if d.Oversign != "From" || d.AutoActivate {
		t.Errorf("after PATCH oversign from-only: %s", r.body)
	}
	// A domain admin sets its own domain's choice; a refused value changes
	// nothing, auto_activate in the same PATCH included.
	e.call(roleDomA, "PATCH", "/api/v1/domains/a.example", `{"oversign":" Subject , list-id"}`).into(t, &d)
	if d.Oversign != "Subject,list-id" {
		t.Errorf("domain admin's PATCH: oversign %q", d.Oversign)
	}
	e.call(roleDomA, "PATCH", "/api/v1/domains/a.example", `{"oversign":"a b","auto_activate":true}`).want(t, http.StatusUnprocessableEntity, codeInvalid, "oversign")
	e.call(roleDomA, "GET", "/api/v1/domains/a.example", nil).into(t, &d)
	if d.Oversign != "Subject,list-id" || d.AutoActivate {
		t.Errorf("a refused PATCH changed the domain: %+v", d)
	}
	r = e.call(roleAdmin, "PATCH", "/api/v1/domains/xn--bcher-kva.example", `{}`)
	r.want(t, http.StatusOK, "", "")
	e.call(roleAdmin, "DELETE", "/api/v1/domains/xn--bcher-kva.example", nil).want(t, http.StatusNoContent, "", "")
	// force removes a domain with keys and users.
	e.call(roleAdmin, "DELETE", "/api/v1/domains/b.example", nil).want(t, http.StatusConflict, codeConflict, "")
	e.call(roleAdmin, "DELETE", "/api/v1/domains/b.example?force=true", nil).want(t, http.StatusNoContent, "", "")
	e.call(roleDomB, "GET", "/api/v1/domains/b.example", nil).want(t, http.StatusNotFound, codeNotFound, "")
}

// TestAudit checks that API changes are audited with the account and the
// client's address, and the query filters.
func TestAudit(t *testing.T) {
	e := newEnv(t)
	since := e.clk.Now()
	e.clk.Advance(time.Second)
	e.call(roleDomA, "POST", "/api/v1/domains/a.example/keys", `{"selector":"s2","algorithm":"ed25519"}`).want(t, http.StatusCreated, "", "")
	e.call(roleAdmin, "PATCH", "/api/v1/domains/b.example", `{"auto_activate":true}`).want(t, http.StatusOK, "", "")

	var es []store.AuditEntry
	e.call(roleAdmin, "GET", "/api/v1/audit?since="+since.Add(time.Second).Format(time.RFC3339), nil).into(t, &es)
	if len(es) != 2 {
		t.Fatalf("%d entries since the requests, want 2: %+v", len(es), es)
	}
	// Newest first.
	if es[0].Actor != "root" || es[0].Action != "domain.update" || es[0].Remote != "127.0.0.1" ||
		es[1].Actor != "alice" || es[1].Action != "key.create" || es[1].Remote != "127.0.0.1" || es[1].Domain != "a.example" {
		t.Errorf("entries %+v", es)
	}
	for _, c := range []struct {
		query string
		n     int
	}{
		{"?actor=alice", 1},
		{"?action=key.create&domain=a.example", 2}, // a1 by the CLI, s2 by alice
		{"?domain=b.example&action=domain.update", 1},
		{"?limit=1", 1},
		{"?before=" + itoa(es[0].ID) + "&actor=alice", 1},
		{"?before=" + itoa(es[1].ID) + "&actor=alice", 0},
	} {
		var got []store.AuditEntry
		r := e.call(roleAdmin, "GET", "/api/v1/audit"+c.query, nil)
		r.into(t, &got)
		if len(got) != c.n || got == nil {
			t.Errorf("%s: %d entries, want %d: %s", c.query, len(got), c.n, r.body)
		}
	}
	// bob manages one domain: his view is b.example's.
	var bs []store.AuditEntry
	e.call(roleDomB, "GET", "/api/v1/audit", nil).into(t, &bs)
	for _, b := range bs {
		if b.Domain != "b.example" {
			t.Errorf("bob sees %+v", b)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestExplain(t *testing.T) {
	e := newEnv(t)
	e.call(roleDomA, "POST", "/api/v1/domains/a.example/keys/a1/state", `{"state":"active","force":true}`).want(t, http.StatusOK, "", "")
	var d policy.Decision
	r := e.call(roleDomA, "POST", "/api/v1/policy/explain", `{"user":"ua@a.example","from":"Ann <ann@A.example>"}`)
	r.want(t, http.StatusOK, "", "")
	r.into(t, &d)
	if d.Reason != policy.ReasonFromDomain || d.Outcome != policy.OutcomeSigned || d.Domain.String() != "a.example" || len(d.Sign) != 1 || d.Sign[0].Selector != "a1" || d.Message == "" {
		t.Errorf("decision %s", r.body)
	}
	// Activated by force, a1's record was never checked: the signature
	// may fail, and the answer says so (issue 12.1).
	if len(d.Warnings) != 1 || d.Warnings[0].Selector != "a1" || d.Warnings[0].Bad || !strings.Contains(d.Warnings[0].Message, "never checked") {
		t.Errorf("warnings of %s: want one that a1 was never checked", r.body)
	}
	// Never signing as a domain the user does not own: the relay refuses
	// such mail (550 5.7.1), and the explainer says it.
	var foreign policy.Decision
	r = e.call(roleAdmin, "POST", "/api/v1/policy/explain", `{"user":"ua@a.example","from":"x@b.example"}`)
	r.into(t, &foreign)
	if foreign.Signs() || foreign.Sign == nil || foreign.Outcome != policy.OutcomeRefused || foreign.Reason != policy.ReasonFromNotPermitted {
		t.Errorf("decision for b.example %s: want refused, no signature, as an empty list", r.body)
	}
}

// TestInternalError closes the store under the API: the answer is a 500
// with a generic message and the request ID, and the details are in the log.
func TestInternalError(t *testing.T) {
	e := newEnv(t)
	// The secret scan needs the store: run it now, not at cleanup.
	e.scanForSecrets()
	e.closed = true
	if err := e.db.Close(); err != nil {
		t.Fatal(err)
	}
	r := e.call(roleAdmin, "GET", "/api/v1/domains", nil)
	r.want(t, http.StatusInternalServerError, codeInternal, "")
	detail := r.apiErr()
	if detail.RequestID == "" || detail.RequestID != r.header.Get("X-Request-ID") {
		t.Errorf("request_id %q, header %q", detail.RequestID, r.header.Get("X-Request-ID"))
	}
	if strings.Contains(strings.ToLower(string(r.body)), "sql") || strings.Contains(string(r.body), "closed") {
		t.Errorf("the answer tells internals: %s", r.body)
	}
	if !strings.Contains(e.logs.String(), `"request_id":"`+detail.RequestID+`"`) || !strings.Contains(e.logs.String(), `"level":"ERROR"`) {
		t.Errorf("the log has no error line for the request")
	}
}
