//go:build cgo

package admin_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/admin/admintest"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/keys/pkcs11"
	"github.com/dkimd/dkimd/internal/keys/pkcs11/pkcs11test"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/store"
	"github.com/dkimd/dkimd/internal/store/sqlite"
)

// hsmService is a Service with a SoftHSM token, the key source signing
// with it, and the same store and master key wired without a token.
type hsmService struct {
	*admin.Service
	Store *sqlite.DB
	Keys  *keys.Source
	// Plain is the Service over the same store with no token configured.
	Plain admintest.Services
}

func newHSMService(t *testing.T) (*hsmService, *pkcs11.Token) {
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
	tok, err := pkcs11.Open(pkcs11test.Token(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tok.Close() })
	all := admintest.New(t, admintest.Options{Store: db, Master: mk, Token: tok})
	svc := &hsmService{Service: all.Admin, Store: db, Keys: all.Keys,
		Plain: admintest.New(t, admintest.Options{Store: db, Master: mk})}
	if _, err := svc.AddDomain(context.Background(), admin.CLI(), store.Domain{Name: "example.com"}); err != nil {
		t.Fatal(err)
	}
	return svc, tok
}

func signVerify(t *testing.T, sg crypto.Signer) {
	t.Helper()
	d := sha256.Sum256([]byte("header hash"))
	switch pub := sg.Public().(type) {
	case *rsa.PublicKey:
		sig, err := sg.Sign(nil, d[:], crypto.SHA256)
		if err != nil || rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig) != nil {
			t.Fatalf("RSA signature through the token: %v", err)
		}
	case ed25519.PublicKey:
		sig, err := sg.Sign(nil, d[:], crypto.Hash(0))
		if err != nil || !ed25519.Verify(pub, d[:], sig) {
			t.Fatalf("Ed25519 signature through the token: %v", err)
		}
	}
}

// A key generated with backend pkcs11 lives in the token: the store has
// its location and public key and no secret, and it signs through the
// token. Rotation keeps it there; revocation and destruction remove it.
func TestKeyInToken(t *testing.T) {
	ctx := context.Background()
	svc, tok := newHSMService(t)
	for _, alg := range []keys.Algorithm{keys.RSA, keys.Ed25519} {
		t.Run(string(alg), func(t *testing.T) {
			sel := "hsm-" + string(alg)
			g, err := svc.GenerateKey(ctx, admin.CLI(), lifecycle.NewKeyRequest{Domain: "example.com", Selector: sel,
				Spec: keys.Spec{Algorithm: alg}, Backend: store.BackendPKCS11})
			if err != nil {
				t.Fatal(err)
			}
			loc := g.Key.Location
			if !loc.PKCS11() || loc.Token != tok.Label() || loc.Label != pkcs11.ObjectLabel("example.com", sel) || loc.ObjectID == "" {
				t.Fatalf("location = %+v", loc)
			}
			if _, err := svc.Store.SealedKey(ctx, g.Key.ID); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("SealedKey of a token key: %v, want ErrNotFound (no copy in the database)", err)
			}
			if !strings.Contains(g.Record.Value, "k="+string(alg)) {
				t.Fatalf("record %q", g.Record.Value)
			}
			if _, err := svc.ActivateKey(ctx, admin.CLI(), "example.com", sel, true); err != nil {
				t.Fatal(err)
			}
			sg, err := svc.Keys.Signer(ctx, g.Key.Ref())
			if err != nil {
				t.Fatalf("Signer: %v", err)
			}
			signVerify(t, sg)

			rot, err := svc.RotateKey(ctx, admin.CLI(), lifecycle.RotateRequest{Domain: "example.com", Selector: sel + "-next", Replaces: sel})
			if err != nil {
				t.Fatal(err)
			}
			if !rot.Key.Location.PKCS11() || rot.Key.Location.ObjectID == loc.ObjectID {
				t.Fatalf("rotation of a token key made %+v, want a new key in the token", rot.Key.Location)
			}
			if _, err := svc.ActivateKey(ctx, admin.CLI(), "example.com", sel+"-next", true); err != nil {
				t.Fatal(err)
			}
			if _, _, err := svc.RevokeKey(ctx, admin.CLI(), "example.com", sel, true); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.DestroyKey(ctx, admin.CLI(), "example.com", sel); err != nil {
				t.Fatalf("DestroyKey: %v", err)
			}
			if _, err := tok.Signer(alg, pkcs11.Object{Label: loc.Label, ID: loc.ObjectID}); !errors.Is(err, pkcs11.ErrKeyNotFound) {
				t.Fatalf("destroyed key still in the token: %v", err)
			}
			if _, err := svc.DestroyKey(ctx, admin.CLI(), "example.com", sel+"-next"); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("DestroyKey of an active key: %v, want ErrConflict", err)
			}
		})
	}
	es, err := svc.Store.ListAudit(ctx, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var destroyed int
	for _, e := range es {
		if e.Action == "key.destroy" {
			destroyed++
		}
	}
	if destroyed != 2 {
		t.Fatalf("%d key.destroy audit entries, want 2", destroyed)
	}
}

// Without a token configured, a token key can be neither made nor used,
// and says why; a sealed key is not destroyed in any token.
func TestKeyInTokenNotConfigured(t *testing.T) {
	ctx := context.Background()
	svc, _ := newHSMService(t)
	g, err := svc.GenerateKey(ctx, admin.CLI(), lifecycle.NewKeyRequest{Domain: "example.com", Selector: "hsm", Backend: store.BackendPKCS11})
	if err != nil {
		t.Fatal(err)
	}
	plain := svc.Plain
	_, err = plain.Admin.GenerateKey(ctx, admin.CLI(), lifecycle.NewKeyRequest{Domain: "example.com", Selector: "x", Backend: store.BackendPKCS11})
	var fe *store.FieldError
	if !errors.As(err, &fe) || fe.Field != "backend" || !strings.Contains(err.Error(), "--pkcs11-module") {
		t.Fatalf("GenerateKey without a token: %v, want a backend field error naming the flags", err)
	}
	if _, err := plain.Keys.Signer(ctx, g.Key.Ref()); err == nil || !strings.Contains(err.Error(), "no token is configured") {
		t.Fatalf("Signer without a token: %v", err)
	}
	if _, err := svc.GenerateKey(ctx, admin.CLI(), lifecycle.NewKeyRequest{Domain: "example.com", Selector: "y", Backend: "kms"}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("unknown backend: %v", err)
	}
	s, err := svc.GenerateKey(ctx, admin.CLI(), lifecycle.NewKeyRequest{Domain: "example.com", Selector: "sealed", Spec: keys.Spec{Algorithm: keys.Ed25519}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Key.Location.PKCS11() {
		t.Fatal("default backend is not sealed")
	}
	if _, err := svc.DestroyKey(ctx, admin.CLI(), "example.com", "sealed"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("DestroyKey of a sealed key: %v, want ErrInvalid", err)
	}
}
