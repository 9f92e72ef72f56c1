package web

import (
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/store"
)

// TestUserNetworksAsTenant is issue 10 point 1 through the API: bob,
// domain admin of b.example, may neither make dkimd an open relay nor
// claim addresses of a.example's servers, and no refusal names a.example
// or its users. An admin may, with the explicit override.
func TestUserNetworksAsTenant(t *testing.T) {
	e := newEnv(t)
	ip := store.AuthIP
	lan := []string{"198.51.100.0/24"}
	if _, err := e.svc.AddUser(e.ctx, admin.CLI(), "lan@a.example", "a.example", admin.UserChange{Auth: &ip, Networks: &lan}); err != nil {
		t.Fatal(err)
	}
	const unprocessable, forbidden = http.StatusUnprocessableEntity, http.StatusForbidden
	cases := []struct {
		name         string
		role         string
		method, path string
		body         string
		status       int
		code, field  string
	}{
		{"issue 10: every address", roleDomB, "POST", "/api/v1/domains/b.example/users",
			`{"name":"w","auth":"ip","networks":["0.0.0.0/0","::/0"]}`, unprocessable, codeInvalid, "networks"},
		{"every address with the override", roleDomB, "POST", "/api/v1/domains/b.example/users",
			`{"name":"w","auth":"ip","networks":["0.0.0.0/0","::/0"],"allow_any_network":true}`, forbidden, codeForbidden, ""},
		{"every address as a re-authenticating server", roleDomB, "POST", "/api/v1/domains/b.example/users",
			`{"name":"w","auth":"reauth","networks":["0.0.0.0/0"]}`, unprocessable, codeInvalid, "networks"},
		{"wider than /24", roleDomB, "POST", "/api/v1/domains/b.example/users",
			`{"name":"w","auth":"ip","networks":["203.0.112.0/23"]}`, unprocessable, codeInvalid, "networks"},
		{"wider than /48", roleDomB, "POST", "/api/v1/domains/b.example/users",
			`{"name":"w","auth":"ip","networks":["2001:db8::/47"]}`, unprocessable, codeInvalid, "networks"},
		{"equal to a.example's", roleDomB, "POST", "/api/v1/domains/b.example/users",
			`{"name":"w","auth":"ip","networks":["198.51.100.0/24"]}`, unprocessable, codeInvalid, "networks"},
		{"inside a.example's", roleDomB, "POST", "/api/v1/domains/b.example/users",
			`{"name":"w","auth":"ip","networks":["198.51.100.7"]}`, unprocessable, codeInvalid, "networks"},
		{"around a.example's", roleDomB, "POST", "/api/v1/domains/b.example/users",
			`{"name":"w","auth":"ip","networks":["192.0.2.0/24"]}`, unprocessable, codeInvalid, "networks"},
		{"her server's address given to his", roleDomB, "PATCH", "/api/v1/users/ub@b.example",
			`{"networks":["192.0.2.2","192.0.2.1"]}`, unprocessable, codeInvalid, "networks"},
		{"a re-authenticating server with a password, on her address", roleDomB, "POST", "/api/v1/domains/b.example/users",
			`{"name":"w","auth":"reauth","password":"a long enough password","networks":["192.0.2.1"]}`, unprocessable, codeInvalid, "networks"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.snapshot()
			r := e.call(c.role, c.method, c.path, c.body)
			r.want(t, c.status, c.code, c.field)
			for _, leak := range []string{"a.example", "lan@", "ua@", "alice"} {
				if strings.Contains(string(r.body), leak) {
					t.Errorf("the answer names %q: %s", leak, r.body)
				}
			}
			if e.snapshot() != before {
				t.Errorf("the refused request changed the store")
			}
		})
	}

	t.Run("no address relays but the servers'", func(t *testing.T) {
		for _, a := range []string{"203.0.113.9", "2001:db8:ffff::1", "127.0.0.1"} {
			if u, err := e.db.UserByIP(e.ctx, netip.MustParseAddr(a)); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("UserByIP(%s) = %q, %v; want no user", a, u.Name, err)
			}
		}
		if u, err := e.db.UserByIP(e.ctx, netip.MustParseAddr("192.0.2.1")); err != nil || u.Name != "ua@a.example" {
			t.Errorf("UserByIP(192.0.2.1) = %q, %v; want ua@a.example", u.Name, err)
		}
	})

	t.Run("his own server, at the limits", func(t *testing.T) {
		e.call(roleDomB, "POST", "/api/v1/domains/b.example/users",
			`{"name":"edge@b.example","auth":"ip","networks":["203.0.113.0/24","2001:db8:b::/48"]}`).want(t, http.StatusCreated, "", "")
	})

	t.Run("an admin with the override", func(t *testing.T) {
		e.call(roleAdmin, "POST", "/api/v1/domains/b.example/users",
			`{"name":"any@b.example","auth":"ip","networks":["0.0.0.0/0"]}`).want(t, unprocessable, codeInvalid, "networks")
		e.call(roleAdmin, "POST", "/api/v1/domains/b.example/users",
			`{"name":"shared@b.example","auth":"ip","networks":["192.0.2.0/24"]}`).want(t, unprocessable, codeInvalid, "networks")
		e.call(roleAdmin, "POST", "/api/v1/domains/b.example/users",
			`{"name":"any@b.example","auth":"ip","networks":["0.0.0.0/0"],"allow_any_network":true}`).want(t, http.StatusCreated, "", "")
		e.call(roleAdmin, "POST", "/api/v1/domains/b.example/users",
			`{"name":"wide@b.example","auth":"ip","networks":["10.0.0.0/8"]}`).want(t, http.StatusCreated, "", "")
		// His domain admin may still edit the users the admin set up.
		e.call(roleDomB, "PATCH", "/api/v1/users/any@b.example", `{"enabled":false}`).want(t, http.StatusOK, "", "")
	})
}

// TestUserNameTakenAsTenant is issue 10 point 8 (user names): a name taken
// in another tenant answers exactly as one taken in his own, and the other
// tenant's user stays not found.
func TestUserNameTakenAsTenant(t *testing.T) {
	e := newEnv(t)
	theirs := e.call(roleDomB, "POST", "/api/v1/domains/b.example/users", `{"name":"ua@a.example","auth":"ip","networks":["203.0.113.1"]}`)
	theirs.want(t, http.StatusConflict, codeExists, "")
	mine := e.call(roleDomB, "POST", "/api/v1/domains/b.example/users", `{"name":"UB@b.example","auth":"ip","networks":["203.0.113.1"]}`)
	mine.want(t, http.StatusConflict, codeExists, "")
	if string(theirs.body) != string(mine.body) {
		t.Errorf("taken elsewhere %s, taken in his domain %s", theirs.body, mine.body)
	}
	if got := theirs.apiErr().Message; got != "That user name is not available; choose another." {
		t.Errorf("message %q", got)
	}
	e.call(roleDomB, "GET", "/api/v1/users/ua@a.example", nil).want(t, http.StatusNotFound, codeNotFound, "")
}
