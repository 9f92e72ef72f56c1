package admin_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/admin/admintest"
	"github.com/dkimd/dkimd/internal/dkim"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/store"
	"github.com/dkimd/dkimd/internal/store/sqlite"
)

// newServices wires the services on a new SQLite database and master key,
// signing RSA through lib when not nil.
func newServices(t *testing.T, lib *keys.OpenSSL) (admintest.Services, *sqlite.DB) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "dkimd.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	mk, err := keys.NewMasterKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return admintest.New(t, admintest.Options{Store: db, Master: mk, OpenSSL: lib}), db
}

// testService is the admin Service of newServices with the store under
// it, for tests that look behind the service.
type testService struct {
	*admin.Service
	Store *sqlite.DB
}

func newService(t *testing.T) *testService {
	t.Helper()
	s, db := newServices(t, nil)
	return &testService{Service: s.Admin, Store: db}
}

// TestSignerOpensOnce: the relay asks for a key's signer per message; the
// key is read and opened once, and a key that does not open (sealed under
// another master key) fails every time rather than being remembered.
func TestSignerOpensOnce(t *testing.T) {
	ctx := context.Background()
	all, db := newServices(t, nil)
	svc, src := all.Admin, all.Keys
	if _, err := svc.AddDomain(ctx, admin.CLI(), store.Domain{Name: "example.com"}); err != nil {
		t.Fatal(err)
	}
	g, err := svc.GenerateKey(ctx, admin.CLI(), lifecycle.NewKeyRequest{Domain: "example.com", Selector: "s1", Spec: keys.Spec{Algorithm: keys.RSA, Bits: 1024}})
	if err != nil {
		t.Fatal(err)
	}
	a, err := src.Signer(ctx, g.Key.Ref())
	if err != nil {
		t.Fatal(err)
	}
	b, err := src.Signer(ctx, g.Key.Ref())
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
	if c, err := src.Signer(ctx, g.Key.Ref()); err != nil || c == a {
		t.Errorf("after retiring, Signer gave the cached key (%v)", err)
	}
	other, _ := keys.NewMasterKey(nil)
	wrong, err := keys.NewSource(keys.SourceOptions{Sealed: db, Master: other})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := wrong.Signer(ctx, g.Key.Ref()); err == nil {
			t.Fatalf("try %d: a key sealed under another master key opened", i)
		}
	}
}

// TestAccountNamesNotProbed: a domain admin asking for another account's
// token or password change is refused the same way whether the name
// exists or not.
func TestAccountNamesNotProbed(t *testing.T) {
	ctx := context.Background()
	svc := newService(t)
	db := svc.Store
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

// TestSignerThroughOpenSSL: with OpenSSL set, an RSA key signs through it,
// and the signatures are the key's; Ed25519 keys stay with Go.
func TestSignerThroughOpenSSL(t *testing.T) {
	lib, err := keys.LoadOpenSSL()
	if err != nil {
		if os.Getenv("DKIMD_REQUIRE_PEERS") == "1" {
			t.Fatalf("OpenSSL required (DKIMD_REQUIRE_PEERS=1): %v", err)
		}
		t.Skipf("OpenSSL not loadable here: %v", err)
	}
	ctx := context.Background()
	all, _ := newServices(t, lib)
	svc, src := all.Admin, all.Keys
	if _, err := svc.AddDomain(ctx, admin.CLI(), store.Domain{Name: "example.com"}); err != nil {
		t.Fatal(err)
	}
	r, err := svc.GenerateKey(ctx, admin.CLI(), lifecycle.NewKeyRequest{Domain: "example.com", Selector: "rsa", Spec: keys.Spec{Algorithm: keys.RSA, Bits: 1024}})
	if err != nil {
		t.Fatal(err)
	}
	e, err := svc.GenerateKey(ctx, admin.CLI(), lifecycle.NewKeyRequest{Domain: "example.com", Selector: "ed", Spec: keys.Spec{Algorithm: keys.Ed25519}})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := src.Signer(ctx, r.Key.Ref())
	if err != nil {
		t.Fatal(err)
	}
	if _, isGo := rs.(*rsa.PrivateKey); isGo {
		t.Error("RSA key signs with Go although OpenSSL is set")
	}
	digest := sha256.Sum256([]byte("hello"))
	sig, err := rs.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	// The key published for the selector must verify what OpenSSL signed.
	rec, err := dkim.ParseRecord(r.Record.Value)
	if err != nil {
		t.Fatal(err)
	}
	if err := rsa.VerifyPKCS1v15(rec.PublicKey.(*rsa.PublicKey), crypto.SHA256, digest[:], sig); err != nil {
		t.Errorf("OpenSSL signature does not verify under the published key: %v", err)
	}
	es, err := src.Signer(ctx, e.Key.Ref())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := es.(ed25519.PrivateKey); !ok {
		t.Errorf("Ed25519 key became %T", es)
	}
}
