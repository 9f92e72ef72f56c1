package web

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// roleCase is one route tried by every role. Body and path may hold
// {role} and {n}, replaced per role so that two successful creations do
// not collide; path may hold {id}, the queued message of the env.
type roleCase struct {
	method, path string
	body         string
	// admin, domA and domB are the statuses for those roles. The others
	// (no credentials, a bad token, a disabled account) get 401 on every
	// authenticated route; public routes say what they get in anon.
	admin, domA, domB int
	anon              int
	// fresh runs each role on a store of its own: the first success would
	// change what the next role sees.
	fresh bool
}

func roleCases() []roleCase {
	const ok, created, gone = http.StatusOK, http.StatusCreated, http.StatusNoContent
	const forbidden, notFound, unauth = http.StatusForbidden, http.StatusNotFound, http.StatusUnauthorized
	return []roleCase{
		{method: "GET", path: "/api/v1/openapi.json", admin: ok, domA: ok, domB: ok, anon: ok},
		{method: "POST", path: "/api/v1/login", body: `{"name":"root","password":"not the password"}`, admin: unauth, domA: unauth, domB: unauth, anon: unauth},
		{method: "POST", path: "/api/v1/logout", admin: gone, domA: gone, domB: gone, anon: gone, fresh: true},
		{method: "GET", path: "/api/v1/whoami", admin: ok, domA: ok, domB: ok},

		{method: "GET", path: "/api/v1/domains", admin: ok, domA: ok, domB: ok},
		{method: "POST", path: "/api/v1/domains", body: `{"name":"new-{role}.example"}`, admin: created, domA: forbidden, domB: forbidden},
		{method: "GET", path: "/api/v1/domains/a.example", admin: ok, domA: ok, domB: notFound},
		{method: "PATCH", path: "/api/v1/domains/a.example", body: `{"auto_activate":true}`, admin: ok, domA: ok, domB: notFound},
		{method: "DELETE", path: "/api/v1/domains/a.example?force=true", admin: gone, domA: forbidden, domB: forbidden, fresh: true},

		{method: "GET", path: "/api/v1/domains/a.example/keys", admin: ok, domA: ok, domB: notFound},
		{method: "POST", path: "/api/v1/domains/a.example/keys", body: `{"selector":"s-{role}","algorithm":"ed25519"}`, admin: created, domA: created, domB: notFound},
		{method: "GET", path: "/api/v1/domains/a.example/keys/a1", admin: ok, domA: ok, domB: notFound},
		{method: "DELETE", path: "/api/v1/domains/a.example/keys/a1", admin: gone, domA: gone, domB: notFound, fresh: true},
		{method: "GET", path: "/api/v1/domains/a.example/keys/a1/record", admin: ok, domA: ok, domB: notFound},
		{method: "POST", path: "/api/v1/domains/a.example/keys/a1/state", body: `{"state":"active","force":true}`, admin: ok, domA: ok, domB: notFound, fresh: true},
		{method: "GET", path: "/api/v1/domains/a.example/keys/status", admin: ok, domA: ok, domB: notFound},
		{method: "POST", path: "/api/v1/domains/a.example/keys/rotate", body: `{"selector":"r-{role}","algorithm":"ed25519"}`, admin: created, domA: created, domB: notFound},
		{method: "GET", path: "/api/v1/domains/a.example/keys/a1/checks?limit=5", admin: ok, domA: ok, domB: notFound},
		{method: "POST", path: "/api/v1/domains/a.example/keys/a1/check", admin: ok, domA: ok, domB: notFound},

		{method: "GET", path: "/api/v1/domains/a.example/users", admin: ok, domA: ok, domB: notFound},
		{method: "POST", path: "/api/v1/domains/a.example/users", body: `{"name":"u-{role}@a.example","auth":"ip","networks":["198.51.100.{n}"]}`, admin: created, domA: created, domB: notFound},
		{method: "GET", path: "/api/v1/users/ua@a.example", admin: ok, domA: ok, domB: notFound},
		{method: "PATCH", path: "/api/v1/users/ua@a.example", body: `{"enabled":false}`, admin: ok, domA: ok, domB: notFound},
		{method: "DELETE", path: "/api/v1/users/ua@a.example", admin: gone, domA: gone, domB: notFound, fresh: true},

		{method: "GET", path: "/api/v1/accounts", admin: ok, domA: forbidden, domB: forbidden},
		{method: "POST", path: "/api/v1/accounts", body: `{"name":"acct-{role}","role":"domain","domains":["a.example"]}`, admin: created, domA: forbidden, domB: forbidden},
		{method: "DELETE", path: "/api/v1/accounts/bob", admin: gone, domA: forbidden, domB: forbidden, fresh: true},
		{method: "PATCH", path: "/api/v1/accounts/bob", body: `{"domains":["a.example","b.example"]}`, admin: ok, domA: forbidden, domB: forbidden},
		{method: "PUT", path: "/api/v1/accounts/alice/password", body: `{"password":"a new password for {role}"}`, admin: gone, domA: gone, domB: forbidden},
		{method: "GET", path: "/api/v1/accounts/alice/tokens", admin: ok, domA: ok, domB: forbidden},
		{method: "POST", path: "/api/v1/accounts/alice/tokens", body: `{"label":"ci","ttl":"24h"}`, admin: created, domA: created, domB: forbidden},
		{method: "DELETE", path: "/api/v1/accounts/alice/tokens/{alicetoken}", admin: gone, domA: gone, domB: forbidden, fresh: true},

		// The queue holds every tenant's mail: admins only.
		{method: "GET", path: "/api/v1/queue", admin: ok, domA: forbidden, domB: forbidden},
		{method: "GET", path: "/api/v1/queue/{id}", admin: ok, domA: forbidden, domB: forbidden},
		{method: "POST", path: "/api/v1/queue/{id}/retry", admin: gone, domA: forbidden, domB: forbidden},
		{method: "DELETE", path: "/api/v1/queue/{id}", admin: gone, domA: forbidden, domB: forbidden, fresh: true},

		{method: "GET", path: "/api/v1/audit?domain=a.example", admin: ok, domA: ok, domB: notFound},
		{method: "POST", path: "/api/v1/policy/explain", body: `{"user":"ua@a.example","from":"Ann <ann@a.example>"}`, admin: ok, domA: ok, domB: notFound},
	}
}

// TestRoutesByRole tries every route with every role: what each may do,
// and that a domain admin sees nothing of another tenant.
func TestRoutesByRole(t *testing.T) {
	cases := roleCases()
	// The table must cover the API: a new route needs a row here.
	var covered []string
	for _, c := range cases {
		covered = append(covered, c.method+" "+strings.Split(c.path, "?")[0])
	}
	for _, rt := range routes() {
		// Row paths name real objects; compare by pattern shape.
		if !slices.ContainsFunc(covered, func(s string) bool { return matchesPattern(rt.method+" "+rt.path, s) }) {
			t.Errorf("no role case for %s %s", rt.method, rt.path)
		}
	}

	var shared *env
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			if !c.fresh {
				shared = newEnv(t)
			}
			for i, role := range roles {
				e := shared
				if c.fresh {
					e = newEnv(t)
				}
				want := map[string]int{roleAdmin: c.admin, roleDomA: c.domA, roleDomB: c.domB}[role]
				if want == 0 {
					want = http.StatusUnauthorized
					if c.anon != 0 {
						want = c.anon
					}
				}
				path := strings.NewReplacer("{role}", role, "{n}", fmt.Sprint(i+1), "{id}", e.msgID,
					"{alicetoken}", fmt.Sprint(e.tokenID("alice"))).Replace(c.path)
				var body any
				if c.body != "" {
					body = strings.NewReplacer("{role}", strings.ToLower(role), "{n}", fmt.Sprint(i+1)).Replace(c.body)
				}
				before := e.snapshot()
				r := e.call(role, c.method, path, body)
				if r.status != want {
					t.Errorf("%s: status %d, want %d; body %s", role, r.status, want, r.body)
					continue
				}
				if want >= 400 {
					if r.apiErr().Code == "" {
						t.Errorf("%s: error without a code: %s", role, r.body)
					}
					if after := e.snapshot(); after != before {
						t.Errorf("%s: a refused request changed the store", role)
					}
				}
			}
		})
	}
}

// matchesPattern reports whether a concrete "METHOD /path" fits a route
// pattern "METHOD /path/{wildcard}".
func matchesPattern(pattern, concrete string) bool {
	p, c := strings.Split(pattern, "/"), strings.Split(concrete, "/")
	if len(p) != len(c) {
		return false
	}
	for i := range p {
		if p[i] != c[i] && !(strings.HasPrefix(p[i], "{") && strings.HasSuffix(p[i], "}")) {
			return false
		}
	}
	return true
}
