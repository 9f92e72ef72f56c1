package storetest

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/auth"
	"github.com/dkimd/dkimd/internal/store"
)

func testAccounts(t *testing.T, e *env) {
	e.domain("a.example")
	e.domain("b.example")
	pw := hash(t, "panel")
	admin, err := e.s.AddAccount(e.ctx, store.Account{Name: "Root", Role: store.RoleAdmin, PasswordHash: pw, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if admin.Name != "root" || !admin.Created.Equal(e.clk.Now()) || !admin.Manages("anything.example") {
		t.Fatalf("AddAccount = %+v", admin)
	}
	da, err := e.s.AddAccount(e.ctx, store.Account{Name: "tenant", Role: store.RoleDomain, Enabled: true,
		Domains: []string{"B.example", "a.example", "b.example"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(da.Domains, []string{"a.example", "b.example"}) || da.Manages("c.example") || !da.Manages("a.example") {
		t.Fatalf("domain admin = %+v", da)
	}
	got, err := e.s.GetAccount(e.ctx, "TENANT")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != da.Name || !slices.Equal(got.Domains, da.Domains) || got.Role != store.RoleDomain || !got.Created.Equal(da.Created) {
		t.Fatalf("GetAccount = %+v, want %+v", got, da)
	}
	j, _ := json.Marshal(admin)
	if strings.Contains(string(j), "argon2") {
		t.Fatalf("account JSON carries the password hash: %s", j)
	}

	tests := []struct {
		name  string
		a     store.Account
		want  error
		field string
	}{
		{"name taken", store.Account{Name: "ROOT", Role: store.RoleAdmin}, store.ErrExists, ""},
		{"admin with domains", store.Account{Name: "x1", Role: store.RoleAdmin, Domains: []string{"a.example"}}, store.ErrInvalid, "domains"},
		{"unknown role", store.Account{Name: "x2", Role: "owner"}, store.ErrInvalid, "role"},
		{"domain missing", store.Account{Name: "x3", Role: store.RoleDomain, Domains: []string{"c.example"}}, store.ErrInvalid, "domains[0]"},
		{"bad hash", store.Account{Name: "x4", Role: store.RoleAdmin, PasswordHash: "$2y$10$x"}, store.ErrInvalid, "password"},
		{"empty name", store.Account{Role: store.RoleAdmin}, store.ErrInvalid, "name"},
	}
	for _, tc := range tests {
		_, err := e.s.AddAccount(e.ctx, tc.a)
		wantErr(t, "AddAccount "+tc.name, err, tc.want)
		if tc.field != "" {
			wantField(t, "AddAccount "+tc.name, err, tc.field)
		}
	}

	e.clk.Advance(time.Hour)
	got.Domains = []string{"b.example"}
	got.Enabled = false
	up, err := e.s.UpdateAccount(e.ctx, got)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(up.Domains, []string{"b.example"}) || up.Enabled || !up.Updated.Equal(e.clk.Now()) || !up.Created.Equal(da.Created) {
		t.Fatalf("UpdateAccount = %+v", up)
	}
	if up.Manages("b.example") {
		t.Fatal("a disabled account manages a domain")
	}
	_, err = e.s.UpdateAccount(e.ctx, store.Account{Name: "ghost", Role: store.RoleAdmin})
	wantErr(t, "UpdateAccount missing", err, store.ErrNotFound)

	list, err := e.s.ListAccounts(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "root" || list[1].Name != "tenant" || !slices.Equal(list[1].Domains, []string{"b.example"}) {
		t.Fatalf("ListAccounts = %+v", list)
	}
	if err := e.s.RemoveAccount(e.ctx, "tenant"); err != nil {
		t.Fatal(err)
	}
	_, err = e.s.GetAccount(e.ctx, "tenant")
	wantErr(t, "GetAccount removed", err, store.ErrNotFound)
	wantErr(t, "RemoveAccount again", e.s.RemoveAccount(e.ctx, "tenant"), store.ErrNotFound)
}

func testTokens(t *testing.T, e *env) {
	if _, err := e.s.AddAccount(e.ctx, store.Account{Name: "ops", Role: store.RoleAdmin, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.AddAccount(e.ctx, store.Account{Name: "other", Role: store.RoleAdmin, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	newToken := func(account string, kind store.TokenKind, expires time.Time) (string, store.Token) {
		t.Helper()
		plain, h, err := auth.NewToken()
		if err != nil {
			t.Fatal(err)
		}
		tok, err := e.s.AddToken(e.ctx, store.Token{Account: account, Kind: kind, Label: "ci", Hash: h, Expires: expires})
		if err != nil {
			t.Fatal(err)
		}
		return plain, tok
	}
	apiPlain, api := newToken("OPS", store.TokenAPI, time.Time{})
	sessPlain, sess := newToken("ops", store.TokenSession, e.clk.Now().Add(time.Hour))
	_, otherTok := newToken("other", store.TokenAPI, time.Time{})
	if api.ID == 0 || api.ID == sess.ID || api.Account != "ops" || !api.Created.Equal(e.clk.Now()) {
		t.Fatalf("AddToken = %+v", api)
	}
	j, _ := json.Marshal(api)
	if strings.Contains(string(j), "hash") || strings.Contains(string(j), apiPlain) {
		t.Fatalf("token JSON carries the hash or token: %s", j)
	}

	a, tok, err := e.s.AccountByToken(e.ctx, auth.HashToken(apiPlain))
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != "ops" || tok.ID != api.ID {
		t.Fatalf("AccountByToken = %+v, %+v", a, tok)
	}
	if _, _, err := e.s.AccountByToken(e.ctx, auth.HashToken(sessPlain)); err != nil {
		t.Fatalf("session before expiry: %v", err)
	}
	_, _, err = e.s.AccountByToken(e.ctx, auth.HashToken(apiPlain+"x"))
	wantErr(t, "AccountByToken unknown", err, store.ErrNotFound)

	_, err = e.s.AddToken(e.ctx, store.Token{Account: "ops", Kind: store.TokenAPI, Hash: auth.HashToken(apiPlain)})
	wantErr(t, "AddToken same hash", err, store.ErrExists)
	_, err = e.s.AddToken(e.ctx, store.Token{Account: "ghost", Kind: store.TokenAPI, Hash: auth.HashToken("x")})
	wantErr(t, "AddToken no account", err, store.ErrNotFound)
	_, err = e.s.AddToken(e.ctx, store.Token{Account: "ops", Kind: "cookie", Hash: auth.HashToken("y")})
	wantField(t, "AddToken bad kind", err, "kind")
	_, err = e.s.AddToken(e.ctx, store.Token{Account: "ops", Kind: store.TokenAPI, Hash: []byte("short")})
	wantField(t, "AddToken bad hash", err, "hash")

	list, err := e.s.ListTokens(e.ctx, "ops")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != sess.ID || list[1].ID != api.ID || !list[0].Expires.Equal(sess.Expires) {
		t.Fatalf("ListTokens = %+v, want session then api", list)
	}
	_, err = e.s.ListTokens(e.ctx, "ghost")
	wantErr(t, "ListTokens no account", err, store.ErrNotFound)

	// Expiry is by the store's clock.
	e.clk.Advance(time.Hour)
	_, _, err = e.s.AccountByToken(e.ctx, auth.HashToken(sessPlain))
	wantErr(t, "AccountByToken expired", err, store.ErrNotFound)
	if n, err := e.s.RemoveExpiredTokens(e.ctx); err != nil || n != 1 {
		t.Fatalf("RemoveExpiredTokens = %d, %v; want 1", n, err)
	}
	if list, _ := e.s.ListTokens(e.ctx, "ops"); len(list) != 1 {
		t.Fatalf("%d tokens left, want 1", len(list))
	}

	// A disabled account's tokens stop working.
	ops, _ := e.s.GetAccount(e.ctx, "ops")
	ops.Enabled = false
	if _, err := e.s.UpdateAccount(e.ctx, ops); err != nil {
		t.Fatal(err)
	}
	_, _, err = e.s.AccountByToken(e.ctx, auth.HashToken(apiPlain))
	wantErr(t, "AccountByToken disabled account", err, store.ErrNotFound)

	// Tokens belong to their account.
	wantErr(t, "RemoveToken of another account", e.s.RemoveToken(e.ctx, "ops", otherTok.ID), store.ErrNotFound)
	if err := e.s.RemoveToken(e.ctx, "ops", api.ID); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "RemoveToken again", e.s.RemoveToken(e.ctx, "ops", api.ID), store.ErrNotFound)

	// Removing an account removes its tokens.
	if err := e.s.RemoveAccount(e.ctx, "other"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.AddAccount(e.ctx, store.Account{Name: "other", Role: store.RoleAdmin, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	if list, _ := e.s.ListTokens(e.ctx, "other"); len(list) != 0 {
		t.Fatalf("re-created account inherits %d tokens", len(list))
	}
}
