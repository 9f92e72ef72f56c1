package storetest

import (
	"encoding/json"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/auth"
	"github.com/dkimd/dkimd/internal/store"
)

func mustPrefixes(t *testing.T, ss ...string) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, s := range ss {
		p, err := store.ParseNetwork(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func userEqual(a, b store.OutgoingUser) bool {
	return a.Name == b.Name && a.Domain == b.Domain && a.Auth == b.Auth && a.PasswordHash == b.PasswordHash &&
		slices.Equal(a.Networks, b.Networks) && a.IdentityHeader == b.IdentityHeader && a.Enabled == b.Enabled &&
		a.Selector == b.Selector && slices.Equal(a.GrantedDomains, b.GrantedDomains) &&
		a.AllowForeignFrom == b.AllowForeignFrom && a.Created.Equal(b.Created) && a.Updated.Equal(b.Updated)
}

func testUsers(t *testing.T, e *env) {
	e.domain("example.com")
	e.domain("example.org")
	e.domain("example.net")
	created := e.clk.Now()
	pw := hash(t, "s3cret")
	u, err := e.s.AddUser(e.ctx, store.OutgoingUser{
		Name: "Alice@Example.COM", Domain: "EXAMPLE.com", Auth: store.AuthPassword, PasswordHash: pw,
		Networks: mustPrefixes(t, "2001:db8::/32", "192.0.2.77/24", "192.0.2.0/24"), Enabled: true, Selector: "S1",
		GrantedDomains: []string{"example.org", "EXAMPLE.NET", "example.com", "example.org"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := store.OutgoingUser{
		Name: "alice@example.com", Domain: "example.com", Auth: store.AuthPassword, PasswordHash: pw,
		Networks: mustPrefixes(t, "192.0.2.0/24", "2001:db8::/32"), Enabled: true, Selector: "s1",
		GrantedDomains: []string{"example.net", "example.org"}, Created: created, Updated: created,
	}
	if !userEqual(u, want) {
		t.Fatalf("AddUser = %+v\nwant %+v", u, want)
	}
	got, err := e.s.GetUser(e.ctx, "ALICE@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !userEqual(got, want) {
		t.Fatalf("GetUser = %+v\nwant %+v", got, want)
	}
	if err := auth.CheckPassword(got.PasswordHash, "s3cret"); err != nil {
		t.Fatalf("stored hash does not check: %v", err)
	}
	j, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(j), "argon2") || strings.Contains(string(j), "password_hash") {
		t.Fatalf("user JSON carries the password hash: %s", j)
	}

	// Re-authenticating server with the default header, and an IP user.
	r, err := e.s.AddUser(e.ctx, store.OutgoingUser{Name: "relay", Domain: "example.org", Auth: store.AuthReauth,
		Networks: mustPrefixes(t, "198.51.100.1")})
	if err != nil {
		t.Fatal(err)
	}
	if r.IdentityHeader != "" || r.EffectiveIdentityHeader() != "X-AuthUser" || r.Enabled {
		t.Fatalf("reauth user = %+v", r)
	}
	if _, err := e.s.AddUser(e.ctx, store.OutgoingUser{Name: "ipuser", Domain: "example.com", Auth: store.AuthIP,
		Networks: mustPrefixes(t, "203.0.113.0/24"), Enabled: true, AllowForeignFrom: true}); err != nil {
		t.Fatal(err)
	}

	names := func(us []store.OutgoingUser, err error) []string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, u := range us {
			out = append(out, u.Name)
		}
		return out
	}
	if got, want := names(e.s.ListUsers(e.ctx, "example.com")), []string{"alice@example.com", "ipuser"}; !slices.Equal(got, want) {
		t.Fatalf("ListUsers(example.com) = %v, want %v (granted users are not listed)", got, want)
	}
	if got, want := names(e.s.ListUsers(e.ctx, "")), []string{"alice@example.com", "ipuser", "relay"}; !slices.Equal(got, want) {
		t.Fatalf("ListUsers() = %v, want %v", got, want)
	}
	all, _ := e.s.ListUsers(e.ctx, "")
	if !userEqual(all[0], want) {
		t.Fatalf("ListUsers gives %+v, GetUser %+v", all[0], want)
	}
	if got := names(e.s.ListUsers(e.ctx, "missing.example")); got != nil {
		t.Fatalf("ListUsers(missing) = %v", got)
	}

	// Update: read, change, write.
	e.clk.Advance(time.Minute)
	got.Enabled = false
	got.Selector = ""
	got.GrantedDomains = []string{"example.net"}
	got.Networks = nil
	got.Domain = "example.org"
	got.Created = time.Time{} // ignored
	up, err := e.s.UpdateUser(e.ctx, got)
	if err != nil {
		t.Fatal(err)
	}
	want.Enabled, want.Selector, want.GrantedDomains, want.Networks, want.Domain = false, "", []string{"example.net"}, nil, "example.org"
	want.Updated = created.Add(time.Minute)
	if !userEqual(up, want) {
		t.Fatalf("UpdateUser = %+v\nwant %+v", up, want)
	}
	if got, _ := e.s.GetUser(e.ctx, want.Name); !userEqual(got, want) {
		t.Fatalf("GetUser after update = %+v\nwant %+v", got, want)
	}

	if err := e.s.RemoveUser(e.ctx, "Relay"); err != nil {
		t.Fatal(err)
	}
	_, err = e.s.GetUser(e.ctx, "relay")
	wantErr(t, "GetUser after remove", err, store.ErrNotFound)
	wantErr(t, "RemoveUser again", e.s.RemoveUser(e.ctx, "relay"), store.ErrNotFound)
	_, err = e.s.UpdateUser(e.ctx, store.OutgoingUser{Name: "relay", Domain: "example.org", Auth: store.AuthIP,
		Networks: mustPrefixes(t, "198.51.100.1")})
	wantErr(t, "UpdateUser missing", err, store.ErrNotFound)
	// The name is free again.
	if _, err := e.s.AddUser(e.ctx, store.OutgoingUser{Name: "relay", Domain: "example.com", Auth: store.AuthIP,
		Networks: mustPrefixes(t, "198.51.100.1")}); err != nil {
		t.Fatal(err)
	}
}

func testUserErrors(t *testing.T, e *env) {
	e.domain("example.com")
	e.domain("tenant-b.example")
	if _, err := e.s.AddUser(e.ctx, store.OutgoingUser{Name: "taken", Domain: "tenant-b.example", Auth: store.AuthIP,
		Networks: mustPrefixes(t, "192.0.2.1")}); err != nil {
		t.Fatal(err)
	}
	pw := hash(t, "pw")
	valid := func() store.OutgoingUser {
		return store.OutgoingUser{Name: "new", Domain: "example.com", Auth: store.AuthPassword, PasswordHash: pw, Enabled: true}
	}
	tests := []struct {
		name   string
		change func(u *store.OutgoingUser)
		want   error
		field  string
	}{
		{"valid", func(u *store.OutgoingUser) {}, nil, ""},
		{"password user with networks", func(u *store.OutgoingUser) { u.Networks = mustPrefixes(t, "192.0.2.0/24") }, nil, ""},
		{"ip user", func(u *store.OutgoingUser) {
			u.Auth, u.PasswordHash, u.Networks = store.AuthIP, "", mustPrefixes(t, "192.0.2.9")
		}, nil, ""},
		{"reauth by password", func(u *store.OutgoingUser) { u.Auth, u.IdentityHeader = store.AuthReauth, "X-Sender-Id" }, nil, ""},
		{"granted domain", func(u *store.OutgoingUser) { u.GrantedDomains = []string{"tenant-b.example"} }, nil, ""},
		{"name taken in another domain", func(u *store.OutgoingUser) { u.Name = "taken" }, store.ErrExists, ""},
		{"name taken, other case", func(u *store.OutgoingUser) { u.Name = "TAKEN" }, store.ErrExists, ""},
		{"owner domain missing", func(u *store.OutgoingUser) { u.Domain = "missing.example" }, store.ErrNotFound, ""},
		{"granted domain missing", func(u *store.OutgoingUser) { u.GrantedDomains = []string{"missing.example"} }, store.ErrInvalid, "granted_domains[0]"},
		{"granted domain invalid", func(u *store.OutgoingUser) { u.GrantedDomains = []string{"x"} }, store.ErrInvalid, "granted_domains[0]"},
		{"name empty", func(u *store.OutgoingUser) { u.Name = "" }, store.ErrInvalid, "name"},
		{"name with space", func(u *store.OutgoingUser) { u.Name = "a b" }, store.ErrInvalid, "name"},
		{"name with control", func(u *store.OutgoingUser) { u.Name = "a\x00b" }, store.ErrInvalid, "name"},
		{"name too long", func(u *store.OutgoingUser) { u.Name = strings.Repeat("n", 256) }, store.ErrInvalid, "name"},
		{"domain invalid", func(u *store.OutgoingUser) { u.Domain = "bad_domain" }, store.ErrInvalid, "domain"},
		{"auth unknown", func(u *store.OutgoingUser) { u.Auth = "kerberos" }, store.ErrInvalid, "auth"},
		{"password user without hash", func(u *store.OutgoingUser) { u.PasswordHash = "" }, store.ErrInvalid, "password"},
		{"hash not argon2id", func(u *store.OutgoingUser) { u.PasswordHash = "plaintext" }, store.ErrInvalid, "password"},
		{"ip user without networks", func(u *store.OutgoingUser) { u.Auth, u.PasswordHash = store.AuthIP, "" }, store.ErrInvalid, "networks"},
		{"ip user with password", func(u *store.OutgoingUser) {
			u.Auth, u.Networks = store.AuthIP, mustPrefixes(t, "192.0.2.9")
		}, store.ErrInvalid, "password"},
		{"reauth without networks or password", func(u *store.OutgoingUser) { u.Auth, u.PasswordHash = store.AuthReauth, "" }, store.ErrInvalid, "networks"},
		{"reauth with selector", func(u *store.OutgoingUser) { u.Auth, u.Selector = store.AuthReauth, "s1" }, store.ErrReauthSelector, "selector"},
		{"header on non-reauth", func(u *store.OutgoingUser) { u.IdentityHeader = "X-AuthUser" }, store.ErrInvalid, "identity_header"},
		{"header with colon", func(u *store.OutgoingUser) { u.Auth, u.IdentityHeader = store.AuthReauth, "X-A:B" }, store.ErrInvalid, "identity_header"},
		{"selector invalid", func(u *store.OutgoingUser) { u.Selector = "s_1" }, store.ErrInvalid, "selector"},
		{"network invalid", func(u *store.OutgoingUser) { u.Networks = []netip.Prefix{{}} }, store.ErrInvalid, "networks[0]"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := valid()
			u.Name = u.Name + string(rune('a'+i))
			tc.change(&u)
			_, err := e.s.AddUser(e.ctx, u)
			wantErr(t, "AddUser", err, tc.want)
			if tc.field != "" {
				wantField(t, "AddUser", err, tc.field)
			}
			if err != nil && !errors.Is(err, store.ErrExists) {
				if _, gerr := e.s.GetUser(e.ctx, u.Name); !errors.Is(gerr, store.ErrNotFound) {
					t.Fatalf("refused user was stored (GetUser: %v)", gerr)
				}
			}
		})
	}
	// UpdateUser validates the same way, and a missing owner domain is a
	// bad field there (the user is what is addressed).
	u, err := e.s.GetUser(e.ctx, "taken")
	if err != nil {
		t.Fatal(err)
	}
	u.Domain = "missing.example"
	_, err = e.s.UpdateUser(e.ctx, u)
	wantField(t, "UpdateUser missing domain", err, "domain")
	u.Domain, u.Auth, u.Selector, u.PasswordHash = "tenant-b.example", store.AuthReauth, "s1", ""
	_, err = e.s.UpdateUser(e.ctx, u)
	wantErr(t, "UpdateUser reauth with selector", err, store.ErrReauthSelector)
	if got, _ := e.s.GetUser(e.ctx, "taken"); got.Auth != store.AuthIP {
		t.Fatalf("refused update was stored: %+v", got)
	}
}

func testUserByIP(t *testing.T, e *env) {
	e.domain("example.com")
	add := func(name string, kind store.AuthKind, enabled bool, nets ...string) {
		t.Helper()
		u := store.OutgoingUser{Name: name, Domain: "example.com", Auth: kind, Enabled: enabled, Networks: mustPrefixes(t, nets...)}
		if kind == store.AuthPassword {
			u.PasswordHash = hash(t, "pw")
		}
		if _, err := e.s.AddUser(e.ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	add("lan", store.AuthIP, true, "192.0.2.0/24", "2001:db8::/32")
	add("host", store.AuthIP, false, "192.0.2.7")
	add("relay", store.AuthReauth, true, "198.51.100.0/25")
	add("pw", store.AuthPassword, true, "203.0.113.0/24")
	add("twin1", store.AuthIP, true, "10.0.0.0/8")
	add("twin2", store.AuthIP, true, "10.0.0.0/8")
	add("inner", store.AuthIP, true, "10.1.0.0/16")

	tests := []struct {
		addr string
		want string
		err  error
	}{
		{"192.0.2.8", "lan", nil},
		{"192.0.2.7", "host", nil}, // most specific wins, even disabled
		{"::ffff:192.0.2.8", "lan", nil},
		{"2001:db8::1", "lan", nil},
		{"fe80::1%eth0", "", store.ErrNotFound},
		{"198.51.100.1", "relay", nil},
		{"198.51.100.200", "", store.ErrNotFound},
		{"203.0.113.1", "", store.ErrNotFound}, // password users are not found by address
		{"10.1.2.3", "inner", nil},
		{"10.2.3.4", "", store.ErrConflict},
		{"127.0.0.1", "", store.ErrNotFound},
	}
	for _, tc := range tests {
		u, err := e.s.UserByIP(e.ctx, netip.MustParseAddr(tc.addr))
		wantErr(t, "UserByIP("+tc.addr+")", err, tc.err)
		if tc.err == nil && u.Name != tc.want {
			t.Errorf("UserByIP(%s) = %s, want %s", tc.addr, u.Name, tc.want)
		}
	}
	_, err := e.s.UserByIP(e.ctx, netip.Addr{})
	wantErr(t, "UserByIP(invalid)", err, store.ErrNotFound)
}

// testNetworkClaims: the networks of IP and re-authenticating users, with
// their owner domains, are claims whether the user is enabled or not; a
// password user's networks are not; changing a user's kind or removing it
// changes its claims.
func testNetworkClaims(t *testing.T, e *env) {
	e.domain("example.com")
	e.domain("example.org")
	claims := func() []store.NetworkClaim {
		t.Helper()
		cs, err := e.s.NetworkClaims(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	if cs := claims(); len(cs) != 0 {
		t.Fatalf("NetworkClaims on an empty store = %+v", cs)
	}
	add := func(name, domain string, kind store.AuthKind, enabled bool, nets ...string) {
		t.Helper()
		u := store.OutgoingUser{Name: name, Domain: domain, Auth: kind, Enabled: enabled, Networks: mustPrefixes(t, nets...)}
		if kind == store.AuthPassword {
			u.PasswordHash = hash(t, "pw")
		}
		if _, err := e.s.AddUser(e.ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	add("lan", "example.com", store.AuthIP, true, "2001:db8::/32", "192.0.2.9/24", "10.0.0.1")
	add("off", "example.org", store.AuthIP, false, "198.51.100.7")
	add("relay", "example.org", store.AuthReauth, true, "203.0.113.0/25")
	add("pw", "example.com", store.AuthPassword, true, "192.0.2.0/24")
	want := []store.NetworkClaim{
		{User: "lan", Domain: "example.com", Network: netip.MustParsePrefix("10.0.0.1/32")},
		{User: "lan", Domain: "example.com", Network: netip.MustParsePrefix("192.0.2.0/24")},
		{User: "lan", Domain: "example.com", Network: netip.MustParsePrefix("2001:db8::/32")},
		{User: "off", Domain: "example.org", Network: netip.MustParsePrefix("198.51.100.7/32")},
		{User: "relay", Domain: "example.org", Network: netip.MustParsePrefix("203.0.113.0/25")},
	}
	if got := claims(); !slices.Equal(got, want) {
		t.Fatalf("NetworkClaims = %+v\nwant %+v", got, want)
	}

	pw, err := e.s.GetUser(e.ctx, "pw")
	if err != nil {
		t.Fatal(err)
	}
	pw.Auth, pw.PasswordHash = store.AuthIP, ""
	if _, err := e.s.UpdateUser(e.ctx, pw); err != nil {
		t.Fatal(err)
	}
	if err := e.s.RemoveUser(e.ctx, "lan"); err != nil {
		t.Fatal(err)
	}
	want = []store.NetworkClaim{
		{User: "off", Domain: "example.org", Network: netip.MustParsePrefix("198.51.100.7/32")},
		{User: "pw", Domain: "example.com", Network: netip.MustParsePrefix("192.0.2.0/24")},
		{User: "relay", Domain: "example.org", Network: netip.MustParsePrefix("203.0.113.0/25")},
	}
	if got := claims(); !slices.Equal(got, want) {
		t.Fatalf("NetworkClaims after a change of kind and a removal = %+v\nwant %+v", got, want)
	}
}
