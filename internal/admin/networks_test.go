package admin_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/store"
)

// tenants makes a.example and b.example, with b's server "ub" on
// 192.0.2.0/28 and 2001:db8:b::/48, and the actors of issue 10.
func tenants(t *testing.T) (svc *testService, alice, root admin.Actor) {
	t.Helper()
	ctx := context.Background()
	svc = newService(t)
	for _, d := range []string{"a.example", "b.example"} {
		if _, err := svc.AddDomain(ctx, admin.CLI(), store.Domain{Name: d}); err != nil {
			t.Fatal(err)
		}
	}
	ip := store.AuthIP
	nets := []string{"192.0.2.0/28", "2001:db8:b::/48"}
	if _, err := svc.AddUser(ctx, admin.CLI(), "ub", "b.example", admin.UserChange{Auth: &ip, Networks: &nets}); err != nil {
		t.Fatal(err)
	}
	alice = admin.Actor{Name: "alice", Account: &store.Account{Name: "alice", Role: store.RoleDomain, Domains: []string{"a.example"}, Enabled: true}}
	root = admin.Actor{Name: "root", Account: &store.Account{Name: "root", Role: store.RoleAdmin, Enabled: true}}
	return svc, alice, root
}

// TestUserNetworkRules: the networks a user is recognised by may not reach
// into another tenant's, nor be wider than the limit for a domain admin,
// nor be every address without an admin's override; no refusal names the
// other tenant or its user.
func TestUserNetworkRules(t *testing.T) {
	ip, reauth, pw := store.AuthIP, store.AuthReauth, store.AuthPassword
	secret := "correct horse battery"
	tests := []struct {
		name     string
		actor    string // alice (domain admin of a.example), root or cli
		auth     *store.AuthKind
		password *string
		nets     []string
		allowAny bool
		err      error
	}{
		{"a server of her own", "alice", &ip, nil, []string{"198.51.100.7", "2001:db8:a::/48"}, false, nil},
		{"issue 10: every address", "alice", &ip, nil, []string{"0.0.0.0/0", "::/0"}, false, admin.ErrAnyNetwork},
		{"issue 10: every address, override asked by a domain admin", "alice", &ip, nil, []string{"0.0.0.0/0", "::/0"}, true, admin.ErrForbidden},
		{"every address, admin without override", "root", &ip, nil, []string{"0.0.0.0/0"}, false, admin.ErrAnyNetwork},
		{"every IPv6 address, command line without override", "cli", &ip, nil, []string{"::/0"}, false, admin.ErrAnyNetwork},
		{"every address, admin with override", "root", &ip, nil, []string{"0.0.0.0/0", "::/0"}, true, nil},
		{"at the IPv4 limit", "alice", &ip, nil, []string{"198.51.100.0/24"}, false, nil},
		{"wider than the IPv4 limit", "alice", &ip, nil, []string{"198.51.100.0/23"}, false, admin.ErrNetworkTooWide},
		{"wider than the IPv6 limit", "alice", &reauth, nil, []string{"2001:db8:a::/47"}, false, admin.ErrNetworkTooWide},
		{"wider than the limit, by an admin", "root", &ip, nil, []string{"198.51.0.0/16"}, false, nil},
		{"equal to another tenant's", "alice", &ip, nil, []string{"192.0.2.0/28"}, false, admin.ErrNetworkTaken},
		{"inside another tenant's", "alice", &ip, nil, []string{"192.0.2.5"}, false, admin.ErrNetworkTaken},
		{"around another tenant's", "alice", &ip, nil, []string{"192.0.2.0/24"}, false, admin.ErrNetworkTaken},
		{"inside another tenant's IPv6", "alice", &reauth, nil, []string{"2001:db8:b:1::/64"}, false, admin.ErrNetworkTaken},
		{"beside another tenant's", "alice", &ip, nil, []string{"192.0.2.16/28"}, false, nil},
		{"around another tenant's, by an admin", "root", &ip, nil, []string{"192.0.2.0/24"}, false, admin.ErrNetworkTaken},
		{"around another tenant's, admin override", "root", &ip, nil, []string{"192.0.2.0/24"}, true, nil},
		{"equal to another tenant's, admin override", "root", &ip, nil, []string{"192.0.2.0/28"}, true, admin.ErrNetworkTaken},
		// A password user's networks only narrow where its password works.
		{"password user limited to every address", "alice", &pw, &secret, []string{"0.0.0.0/0"}, false, nil},
		{"password user limited to another tenant's", "alice", &pw, &secret, []string{"192.0.2.0/28"}, false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			svc, alice, root := tenants(t)
			actor := map[string]admin.Actor{"alice": alice, "root": root, "cli": admin.CLI()}[tc.actor]
			nets := tc.nets
			_, err := svc.AddUser(ctx, actor, "new", "a.example", admin.UserChange{Auth: tc.auth, Password: tc.password, Networks: &nets, AllowAnyNetwork: tc.allowAny})
			if tc.err == nil {
				if err != nil {
					t.Fatalf("AddUser: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("AddUser: %v, want %v", err, tc.err)
			}
			if strings.Contains(err.Error(), "ub") || strings.Contains(err.Error(), "b.example") {
				t.Errorf("the refusal names the other tenant: %v", err)
			}
			if _, err := svc.Store.GetUser(ctx, "new"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("the refused user was stored (%v)", err)
			}
		})
	}
}

// TestUserNetworkRulesOnUpdate: a change is checked like a new user, but
// only for the networks it adds, so a user an admin set up wide stays
// editable by its domain admin; switching a password user to IP makes its
// networks claims, checked then.
func TestUserNetworkRulesOnUpdate(t *testing.T) {
	ctx := context.Background()
	svc, alice, root := tenants(t)
	ip, pw := store.AuthIP, store.AuthPassword
	wide := []string{"10.0.0.0/8"}
	if _, err := svc.AddUser(ctx, root, "wide", "a.example", admin.UserChange{Auth: &ip, Networks: &wide}); err != nil {
		t.Fatal(err)
	}
	off := false
	if _, err := svc.UpdateUser(ctx, alice, "wide", admin.UserChange{Enabled: &off}); err != nil {
		t.Errorf("disabling an admin's wide user: %v", err)
	}
	more := []string{"10.0.0.0/8", "198.51.100.0/24"}
	if _, err := svc.UpdateUser(ctx, alice, "wide", admin.UserChange{Networks: &more}); err != nil {
		t.Errorf("adding a narrow network beside an admin's wide one: %v", err)
	}
	wider := []string{"10.0.0.0/7"}
	if _, err := svc.UpdateUser(ctx, alice, "wide", admin.UserChange{Networks: &wider}); !errors.Is(err, admin.ErrNetworkTooWide) {
		t.Errorf("widening: %v, want %v", err, admin.ErrNetworkTooWide)
	}

	secret := "correct horse battery"
	theirs := []string{"192.0.2.0/28"}
	if _, err := svc.AddUser(ctx, alice, "pw", "a.example", admin.UserChange{Auth: &pw, Password: &secret, Networks: &theirs}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.UpdateUser(ctx, alice, "pw", admin.UserChange{Auth: &ip}); !errors.Is(err, admin.ErrNetworkTaken) {
		t.Errorf("switching a password user on another tenant's network to IP: %v, want %v", err, admin.ErrNetworkTaken)
	}
	if u, _ := svc.Store.GetUser(ctx, "pw"); u.Auth != store.AuthPassword {
		t.Errorf("the refused change was stored: %+v", u)
	}
}

// TestUserNetworkSameDomain: a tenant may nest its own servers' networks
// (the most specific wins), but not give two of them the same network,
// which store.Users.UserByIP answers with ErrConflict for every address in
// it; that refusal may name the tenant's own user.
func TestUserNetworkSameDomain(t *testing.T) {
	ctx := context.Background()
	svc, alice, _ := tenants(t)
	ip := store.AuthIP
	add := func(name string, nets ...string) error {
		_, err := svc.AddUser(ctx, alice, name, "a.example", admin.UserChange{Auth: &ip, Networks: &nets})
		return err
	}
	if err := add("lan", "198.51.100.0/24"); err != nil {
		t.Fatal(err)
	}
	if err := add("host", "198.51.100.7"); err != nil {
		t.Errorf("a host inside her own network: %v", err)
	}
	err := add("twin", "198.51.100.0/24")
	if !errors.Is(err, admin.ErrNetworkTaken) || !strings.Contains(err.Error(), "lan") {
		t.Errorf("the same network twice: %v, want %v naming lan", err, admin.ErrNetworkTaken)
	}
	// Editing a user keeps its own network.
	off := false
	if _, err := svc.UpdateUser(ctx, alice, "lan", admin.UserChange{Enabled: &off}); err != nil {
		t.Errorf("editing lan: %v", err)
	}
}

// TestUserNameNotProbed: a name taken in another tenant answers as one
// taken in her own, without saying where; the other tenant's user stays
// not found.
func TestUserNameNotProbed(t *testing.T) {
	ctx := context.Background()
	svc, alice, _ := tenants(t)
	ip := store.AuthIP
	mine := []string{"198.51.100.1"}
	if _, err := svc.AddUser(ctx, alice, "ua", "a.example", admin.UserChange{Auth: &ip, Networks: &mine}); err != nil {
		t.Fatal(err)
	}
	other := []string{"198.51.100.2"}
	_, errMine := svc.AddUser(ctx, alice, "UA", "a.example", admin.UserChange{Auth: &ip, Networks: &other})
	_, errTheirs := svc.AddUser(ctx, alice, "ub", "a.example", admin.UserChange{Auth: &ip, Networks: &other})
	for _, err := range []error{errMine, errTheirs} {
		if !errors.Is(err, store.ErrExists) {
			t.Fatalf("AddUser of a taken name: %v, want %v", err, store.ErrExists)
		}
	}
	if errMine.Error() != errTheirs.Error() {
		t.Errorf("a name taken in her domain answers %q, one taken elsewhere %q", errMine, errTheirs)
	}
	if strings.Contains(errTheirs.Error(), "b.example") {
		t.Errorf("the answer names the other tenant: %v", errTheirs)
	}
	if _, err := svc.GetUser(ctx, alice, "ub"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetUser of the other tenant's user: %v, want %v", err, store.ErrNotFound)
	}
}

// TestNetworkOverlaps: the report lists pairs of users of different
// domains whose networks overlap, for admins only.
func TestNetworkOverlaps(t *testing.T) {
	ctx := context.Background()
	svc, alice, root := tenants(t)
	ip := store.AuthIP
	add := func(name, domain string, nets ...string) {
		t.Helper()
		if _, err := svc.AddUser(ctx, root, name, domain, admin.UserChange{Auth: &ip, Networks: &nets, AllowAnyNetwork: true}); err != nil {
			t.Fatal(err)
		}
	}
	add("ua", "a.example", "192.0.2.0/24")
	add("ua2", "a.example", "192.0.2.128/25") // same domain as ua: not reported
	add("uc", "b.example", "203.0.113.1")     // overlaps nothing
	got, err := svc.NetworkOverlaps(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].A.User != "ua" || got[0].B.User != "ub" || got[0].B.Network.String() != "192.0.2.0/28" {
		t.Errorf("NetworkOverlaps = %+v, want ua 192.0.2.0/24 with ub 192.0.2.0/28", got)
	}
	if _, err := svc.NetworkOverlaps(ctx, alice); !errors.Is(err, admin.ErrForbidden) {
		t.Errorf("NetworkOverlaps as a domain admin: %v, want %v", err, admin.ErrForbidden)
	}
}
