package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/store"
)

func testDomains(t *testing.T, e *env) {
	created := e.clk.Now()
	d, err := e.s.AddDomain(e.ctx, store.Domain{Name: "Bücher.Example.", AutoActivate: true})
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "xn--bcher-kva.example" || !d.AutoActivate || !d.Created.Equal(created) || !d.Updated.Equal(created) {
		t.Fatalf("AddDomain = %+v", d)
	}
	if d.Unicode() != "bücher.example" {
		t.Fatalf("Unicode() = %q", d.Unicode())
	}
	for _, spelling := range []string{"xn--bcher-kva.example", "BÜCHER.example", "bücher.example."} {
		got, err := e.s.GetDomain(e.ctx, spelling)
		if err != nil {
			t.Fatalf("GetDomain(%q): %v", spelling, err)
		}
		if got != d {
			t.Fatalf("GetDomain(%q) = %+v, want %+v", spelling, got, d)
		}
	}
	for _, dup := range []string{"xn--bcher-kva.example", "BÜCHER.EXAMPLE"} {
		_, err := e.s.AddDomain(e.ctx, store.Domain{Name: dup})
		wantErr(t, "AddDomain duplicate "+dup, err, store.ErrExists)
	}
	// A sub-domain and a parent are domains of their own.
	e.domain("sub.xn--bcher-kva.example")
	e.domain("a.example")

	list, err := e.s.ListDomains(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range list {
		names = append(names, l.Name)
	}
	if want := []string{"a.example", "sub.xn--bcher-kva.example", "xn--bcher-kva.example"}; !slices.Equal(names, want) {
		t.Fatalf("ListDomains = %v, want %v", names, want)
	}

	e.clk.Advance(time.Minute)
	up, err := e.s.UpdateDomain(e.ctx, store.Domain{Name: "bücher.example", AutoActivate: false})
	if err != nil {
		t.Fatal(err)
	}
	if up.AutoActivate || !up.Created.Equal(created) || !up.Updated.Equal(created.Add(time.Minute)) {
		t.Fatalf("UpdateDomain = %+v", up)
	}
	if got, _ := e.s.GetDomain(e.ctx, d.Name); got != up {
		t.Fatalf("GetDomain after update = %+v, want %+v", got, up)
	}

	_, err = e.s.GetDomain(e.ctx, "missing.example")
	wantErr(t, "GetDomain missing", err, store.ErrNotFound)
	_, err = e.s.GetDomain(e.ctx, "not a domain")
	wantErr(t, "GetDomain invalid name", err, store.ErrNotFound)
	_, err = e.s.UpdateDomain(e.ctx, store.Domain{Name: "missing.example"})
	wantErr(t, "UpdateDomain missing", err, store.ErrNotFound)
	_, err = e.s.UpdateDomain(e.ctx, store.Domain{Name: "bad_name.example"})
	wantField(t, "UpdateDomain invalid", err, "name")
	err = e.s.RemoveDomain(e.ctx, "missing.example", store.RemoveOptions{})
	wantErr(t, "RemoveDomain missing", err, store.ErrNotFound)
}

func testDomainNames(t *testing.T, e *env) {
	tests := []struct {
		in   string
		want string // "" means invalid
	}{
		{"example.com", "example.com"},
		{"EXAMPLE.COM", "example.com"},
		{"example.com.", "example.com"},
		{" example.com ", "example.com"},
		{"münchen.de", "xn--mnchen-3ya.de"},
		{"xn--mnchen-3ya.de", "xn--mnchen-3ya.de"},
		{"a-b.example", "a-b.example"},
		{"1example.com", "1example.com"},
		{"", ""},
		{".", ""},
		{"com", ""},
		{"a..example", ""},
		{".example.com", ""},
		{"-a.example", ""},
		{"a-.example", ""},
		{"under_score.example", ""},
		{"sp ace.example", ""},
		{"user@example.com", ""},
		{"192.0.2.1", ""},
		{"[192.0.2.1]", ""},
		{"example.com/x", ""},
		{strings.Repeat("a", 63) + ".example", strings.Repeat("a", 63) + ".example"},
		{strings.Repeat("a", 64) + ".example", ""},
		{strings.Repeat("a.", 124) + "example", ""},
		{"xn--zz.example", ""},
	}
	for _, tc := range tests {
		d, err := e.s.AddDomain(e.ctx, store.Domain{Name: tc.in})
		if tc.want == "" {
			wantField(t, fmt.Sprintf("AddDomain(%q)", tc.in), err, "name")
			continue
		}
		if errors.Is(err, store.ErrExists) {
			// Added before under another spelling: it must be the same.
			d, err = e.s.GetDomain(e.ctx, tc.in)
		}
		if err != nil {
			t.Fatalf("AddDomain(%q): %v", tc.in, err)
		}
		if d.Name != tc.want {
			t.Fatalf("AddDomain(%q) = %q, want %q", tc.in, d.Name, tc.want)
		}
	}
	list, err := e.s.ListDomains(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 5 {
		t.Fatalf("ListDomains gives %d domains, want the 5 distinct valid ones: %v", len(list), list)
	}
}

func testRemoveDomain(t *testing.T, e *env) {
	// Each dependency alone blocks removal without Force.
	tests := []struct {
		name  string
		setup func(dom string)
	}{
		{"key", func(dom string) { e.key(dom, "s1") }},
		{"archived key", func(dom string) {
			k := e.key(dom, "s1")
			e.setState(k.ID, store.KeyRevoked, store.KeyArchived)
		}},
		{"user", func(dom string) {
			if _, err := e.s.AddUser(e.ctx, store.OutgoingUser{Name: "u@" + dom, Domain: dom, Auth: store.AuthPassword,
				PasswordHash: hash(t, "pw"), Enabled: true}); err != nil {
				t.Fatal(err)
			}
		}},
		{"grant to another domain's user", func(dom string) {
			other := "other-" + dom
			e.domain(other)
			if _, err := e.s.AddUser(e.ctx, store.OutgoingUser{Name: "g@" + other, Domain: other, Auth: store.AuthPassword,
				PasswordHash: hash(t, "pw"), GrantedDomains: []string{dom}}); err != nil {
				t.Fatal(err)
			}
		}},
		{"domain admin", func(dom string) {
			if _, err := e.s.AddAccount(e.ctx, store.Account{Name: "admin-" + dom, Role: store.RoleDomain, Domains: []string{dom}}); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for i, tc := range tests {
		dom := []string{"k.example", "ak.example", "u.example", "g.example", "a.example"}[i]
		e.domain(dom)
		tc.setup(dom)
		err := e.s.RemoveDomain(e.ctx, dom, store.RemoveOptions{})
		wantErr(t, "RemoveDomain with "+tc.name, err, store.ErrConflict)
		if _, err := e.s.GetDomain(e.ctx, dom); err != nil {
			t.Fatalf("%s: domain gone after refused removal: %v", tc.name, err)
		}
	}

	// An empty domain goes without Force.
	e.domain("empty.example")
	if err := e.s.RemoveDomain(e.ctx, "EMPTY.example", store.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := e.s.GetDomain(e.ctx, "empty.example")
	wantErr(t, "GetDomain after remove", err, store.ErrNotFound)

	// Force takes everything that refers to the domain with it.
	dom := "force.example"
	e.domain(dom)
	k := e.key(dom, "s1")
	if _, err := e.s.AddUser(e.ctx, store.OutgoingUser{Name: "owned", Domain: dom, Auth: store.AuthIP,
		Networks: mustPrefixes(t, "192.0.2.0/24")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.AddUser(e.ctx, store.OutgoingUser{Name: "granted", Domain: "k.example", Auth: store.AuthPassword,
		PasswordHash: hash(t, "pw"), GrantedDomains: []string{dom, "u.example"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.AddAccount(e.ctx, store.Account{Name: "fa", Role: store.RoleDomain, Domains: []string{dom, "k.example"}}); err != nil {
		t.Fatal(err)
	}
	if err := e.s.RemoveDomain(e.ctx, dom, store.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	_, err = e.s.GetKey(e.ctx, k.ID)
	wantErr(t, "GetKey after forced remove", err, store.ErrNotFound)
	_, err = e.s.SealedKey(e.ctx, k.ID)
	wantErr(t, "SealedKey after forced remove", err, store.ErrNotFound)
	_, err = e.s.GetUser(e.ctx, "owned")
	wantErr(t, "GetUser after forced remove", err, store.ErrNotFound)
	g, err := e.s.GetUser(e.ctx, "granted")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(g.GrantedDomains, []string{"u.example"}) {
		t.Fatalf("grants after forced remove = %v, want [u.example]", g.GrantedDomains)
	}
	a, err := e.s.GetAccount(e.ctx, "fa")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.Domains, []string{"k.example"}) {
		t.Fatalf("account domains after forced remove = %v, want [k.example]", a.Domains)
	}
	// The selector is free again in a re-added domain of that name.
	e.domain(dom)
	e.key(dom, "s1")
}

// testDomainOversign checks that a domain keeps its oversigning choice in
// canonical form through add, get, list and update, and that a value which
// cannot go into h= is refused naming the field.
func testDomainOversign(t *testing.T, e *env) {
	d, err := e.s.AddDomain(e.ctx, store.Domain{Name: "over.example", Oversign: " from, Subject ,FROM,list-id "})
	if err != nil {
		t.Fatal(err)
	}
	if d.Oversign != "from,Subject,list-id" {
		t.Fatalf("AddDomain oversign = %q", d.Oversign)
	}
	if got, err := e.s.GetDomain(e.ctx, d.Name); err != nil || got != d {
		t.Fatalf("GetDomain = %+v, %v; want %+v", got, err, d)
	}
	plain := e.domain("plain.example")
	if got, _ := e.s.GetDomain(e.ctx, plain.Name); got.Oversign != store.OversignDefault || got.OversignFields() != nil {
		t.Fatalf("a domain added without a choice has oversign %q", got.Oversign)
	}
	for _, tt := range []struct {
		in, want string
		fields   []string
	}{
		{"none", store.OversignNone, []string{}},
		{"from-only", store.OversignFromOnly, []string{"From"}},
		{"default", store.OversignDefault, nil},
		{"Reply-To,To", "Reply-To,To", []string{"Reply-To", "To"}},
	} {
		d.Oversign = tt.in
		up, err := e.s.UpdateDomain(e.ctx, d)
		if err != nil {
			t.Fatalf("UpdateDomain(%q): %v", tt.in, err)
		}
		got, err := e.s.GetDomain(e.ctx, d.Name)
		if err != nil {
			t.Fatal(err)
		}
		if up.Oversign != tt.want || got != up {
			t.Fatalf("UpdateDomain(%q) = %q, GetDomain %q; want %q", tt.in, up.Oversign, got.Oversign, tt.want)
		}
		if f := got.OversignFields(); !slices.Equal(f, tt.fields) || (f == nil) != (tt.fields == nil) {
			t.Fatalf("OversignFields after %q = %#v, want %#v", tt.in, f, tt.fields)
		}
	}
	list, err := e.s.ListDomains(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range list {
		if l.Name == d.Name && l.Oversign != "Reply-To,To" {
			t.Fatalf("ListDomains oversign = %q", l.Oversign)
		}
	}
	for _, bad := range []string{"From,Sub ject", "X:Y", "a;b", "From,\x00", strings.Repeat("x", 65)} {
		_, err := e.s.UpdateDomain(e.ctx, store.Domain{Name: d.Name, Oversign: bad})
		wantField(t, fmt.Sprintf("UpdateDomain oversign %q", bad), err, "oversign")
		_, err = e.s.AddDomain(e.ctx, store.Domain{Name: "bad-over.example", Oversign: bad})
		wantField(t, fmt.Sprintf("AddDomain oversign %q", bad), err, "oversign")
	}
	if got, _ := e.s.GetDomain(e.ctx, d.Name); got.Oversign != "Reply-To,To" {
		t.Fatalf("a refused update changed oversign to %q", got.Oversign)
	}
}
