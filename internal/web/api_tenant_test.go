package web

import (
	"net/http"
	"slices"
	"testing"

	"github.com/dkimd/dkimd/internal/store"
)

// TestCrossTenant has alice, domain admin of a.example, try everything on
// b.example and its keys and users, and on granting b.example to her own
// users. Each attempt is refused as if b.example's objects did not exist
// (404), or as forbidden (403) where the object is hers but the change
// reaches into b.example; nothing changes.
func TestCrossTenant(t *testing.T) {
	e := newEnv(t)
	const notFound, forbidden = http.StatusNotFound, http.StatusForbidden
	cases := []struct {
		name         string
		method, path string
		body         string
		status       int
		code         string
	}{
		{"read B's domain", "GET", "/api/v1/domains/b.example", "", notFound, codeNotFound},
		{"read B's domain in another spelling", "GET", "/api/v1/domains/B.EXAMPLE.", "", notFound, codeNotFound},
		{"change B's domain", "PATCH", "/api/v1/domains/b.example", `{"auto_activate":true}`, notFound, codeNotFound},
		{"change B's oversigning", "PATCH", "/api/v1/domains/b.example", `{"oversign":"none"}`, notFound, codeNotFound},
		{"remove B's domain", "DELETE", "/api/v1/domains/b.example?force=true", "", forbidden, codeForbidden},
		{"list B's keys", "GET", "/api/v1/domains/b.example/keys", "", notFound, codeNotFound},
		{"make a key in B", "POST", "/api/v1/domains/b.example/keys", `{"selector":"evil","algorithm":"ed25519"}`, notFound, codeNotFound},
		{"read B's key", "GET", "/api/v1/domains/b.example/keys/b1", "", notFound, codeNotFound},
		{"read B's record", "GET", "/api/v1/domains/b.example/keys/b1/record", "", notFound, codeNotFound},
		{"activate B's key", "POST", "/api/v1/domains/b.example/keys/b1/state", `{"state":"active","force":true}`, notFound, codeNotFound},
		{"revoke B's key", "POST", "/api/v1/domains/b.example/keys/b1/state", `{"state":"revoked"}`, notFound, codeNotFound},
		{"list B's users", "GET", "/api/v1/domains/b.example/users", "", notFound, codeNotFound},
		{"add a user to B", "POST", "/api/v1/domains/b.example/users", `{"name":"evil@b.example","auth":"ip","networks":["192.0.2.66"]}`, notFound, codeNotFound},
		{"read B's user", "GET", "/api/v1/users/ub@b.example", "", notFound, codeNotFound},
		{"change B's user", "PATCH", "/api/v1/users/ub@b.example", `{"enabled":false}`, notFound, codeNotFound},
		{"remove B's user", "DELETE", "/api/v1/users/ub@b.example", "", notFound, codeNotFound},
		{"grant B to her user", "PATCH", "/api/v1/users/ua@a.example", `{"granted_domains":["b.example"]}`, forbidden, codeForbidden},
		{"grant B to a new user", "POST", "/api/v1/domains/a.example/users", `{"name":"uc@a.example","auth":"ip","networks":["192.0.2.67"],"granted_domains":["b.example"]}`, forbidden, codeForbidden},
		{"let her user send as anyone", "PATCH", "/api/v1/users/ua@a.example", `{"allow_foreign_from":true}`, forbidden, codeForbidden},
		{"read B's audit", "GET", "/api/v1/audit?domain=b.example", "", notFound, codeNotFound},
		{"explain for B's user", "POST", "/api/v1/policy/explain", `{"user":"ub@b.example","from":"x@b.example"}`, notFound, codeNotFound},
		{"make a token for bob", "POST", "/api/v1/accounts/bob/tokens", `{"label":"mine now"}`, forbidden, codeForbidden},
		{"give herself B", "POST", "/api/v1/accounts", `{"name":"alice2","role":"domain","domains":["b.example"]}`, forbidden, codeForbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.snapshot()
			var body any
			if c.body != "" {
				body = c.body
			}
			e.call(roleDomA, c.method, c.path, body).want(t, c.status, c.code, "")
			if e.snapshot() != before {
				t.Errorf("the refused request changed the store")
			}
		})
	}

	t.Run("a domain that does not exist looks the same", func(t *testing.T) {
		a := e.call(roleDomA, "GET", "/api/v1/domains/b.example/keys/b1", nil).apiErr()
		b := e.call(roleDomA, "GET", "/api/v1/domains/c.example/keys/b1", nil).apiErr()
		if a.Code != b.Code || len(a.Message) == 0 || len(b.Message) == 0 {
			t.Errorf("B's domain %+v, no domain %+v", a, b)
		}
	})

	t.Run("lists hold only her own", func(t *testing.T) {
		var ds []store.Domain
		e.call(roleDomA, "GET", "/api/v1/domains", nil).into(t, &ds)
		if len(ds) != 1 || ds[0].Name != "a.example" {
			t.Errorf("domains %+v, want a.example alone", ds)
		}
		var as []store.AuditEntry
		r := e.call(roleDomA, "GET", "/api/v1/audit", nil)
		r.into(t, &as)
		if len(as) == 0 {
			t.Fatalf("no audit entries for a.example: %s", r.body)
		}
		for _, a := range as {
			if a.Domain != "a.example" {
				t.Errorf("alice sees an audit entry of %q", a.Domain)
			}
		}
	})

	t.Run("granting her own domain works", func(t *testing.T) {
		// The case beside the refusals: the same request for a domain she
		// manages succeeds, so the 403 above is about b.example.
		r := e.call(roleDomA, "POST", "/api/v1/domains/a.example/users", `{"name":"uc@a.example","auth":"ip","networks":["192.0.2.67"],"granted_domains":["a.example"]}`)
		r.want(t, http.StatusCreated, "", "")
		var u userView
		r.into(t, &u)
		if u.Domain != "a.example" || slices.Contains(u.GrantedDomains, "b.example") {
			t.Errorf("user %+v", u)
		}
	})
}
