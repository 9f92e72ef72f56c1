package admin_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/store"
	"github.com/dkimd/dkimd/internal/store/sqlite"
)

// TestSignerOpensOnce: the relay asks for a key's signer per message; the
// key is read and opened once, and a key that does not open (sealed under
// another master key) fails every time rather than being remembered.
func TestSignerOpensOnce(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "dkimd.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mk, _ := keys.NewMasterKey(nil)
	svc := &admin.Service{Store: db, Master: mk}
	if _, err := svc.AddDomain(ctx, admin.CLI(), store.Domain{Name: "example.com"}); err != nil {
		t.Fatal(err)
	}
	g, err := svc.GenerateKey(ctx, admin.CLI(), admin.NewKeyRequest{Domain: "example.com", Selector: "s1", Spec: keys.Spec{Algorithm: keys.RSA, Bits: 1024}})
	if err != nil {
		t.Fatal(err)
	}
	a, err := svc.Signer(ctx, g.Key)
	if err != nil {
		t.Fatal(err)
	}
	b, err := svc.Signer(ctx, g.Key)
	if err != nil || a != b {
		t.Errorf("second Signer: %v, same key %v", err, a == b)
	}
	// Once the key stops signing it is not kept open.
	if _, err := svc.SetKeyState(ctx, admin.CLI(), "example.com", "s1", store.KeyActive, true); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetKeyState(ctx, admin.CLI(), "example.com", "s1", store.KeyRetired, false); err != nil {
		t.Fatal(err)
	}
	if c, err := svc.Signer(ctx, g.Key); err != nil || c == a {
		t.Errorf("after retiring, Signer gave the cached key (%v)", err)
	}
	other, _ := keys.NewMasterKey(nil)
	wrong := &admin.Service{Store: db, Master: other}
	for i := range 2 {
		if _, err := wrong.Signer(ctx, g.Key); err == nil {
			t.Fatalf("try %d: a key sealed under another master key opened", i)
		}
	}
}

// TestAccountNamesNotProbed: a domain admin asking for another account's
// token or password change is refused the same way whether the name
// exists or not.
func TestAccountNamesNotProbed(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "dkimd.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mk, _ := keys.NewMasterKey(nil)
	svc := &admin.Service{Store: db, Master: mk}
	if _, err := svc.AddDomain(ctx, admin.CLI(), store.Domain{Name: "a.example"}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []admin.NewAccountRequest{{Name: "root", Role: store.RoleAdmin}, {Name: "alice", Role: store.RoleDomain, Domains: []string{"a.example"}}} {
		if _, err := svc.AddAccount(ctx, admin.CLI(), r); err != nil {
			t.Fatal(err)
		}
	}
	alice, _ := db.GetAccount(ctx, "alice")
	as := admin.Actor{Name: "alice", Account: &alice}
	for _, name := range []string{"root", "nosuch"} {
		if _, _, err := svc.NewToken(ctx, as, name, "", 0); !errors.Is(err, admin.ErrForbidden) {
			t.Errorf("token for %s: %v, want forbidden", name, err)
		}
		if err := svc.SetAccountPassword(ctx, as, name, "a long enough password"); !errors.Is(err, admin.ErrForbidden) {
			t.Errorf("password of %s: %v, want forbidden", name, err)
		}
	}
	if _, _, err := svc.NewToken(ctx, as, "Alice", "mine", 0); err != nil {
		t.Errorf("own token: %v", err)
	}
}
