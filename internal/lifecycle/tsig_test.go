package lifecycle_test

import (
	"context"
	"encoding/base64"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/store"
	"github.com/dkimd/dkimd/internal/store/sqlite"
)

// plainService is a lifecycle service on a fresh database, with no DNS.
func plainService(t *testing.T) (*lifecycle.Service, *sqlite.DB) {
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
	lc, err := lifecycle.NewService(lifecycle.ServiceOptions{Store: db, Master: mk})
	if err != nil {
		t.Fatal(err)
	}
	return lc, db
}

// TestTSIGSecretSealed: a TSIG secret, given bare or as the BIND key file
// tsig-keygen writes, is sealed for its domain and opens only for it; a
// secret that is not one is refused without being echoed.
func TestTSIGSecretSealed(t *testing.T) {
	lc, _ := plainService(t)
	secret := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	for name, raw := range map[string]string{
		"bare":     secret + "\n",
		"key file": "key \"dkimd\" {\n\talgorithm hmac-sha256;\n\tsecret \"" + secret + "\";\n};\n",
	} {
		sealed, err := lc.SealTSIG("Example.COM", []byte(raw))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if strings.Contains(sealed, secret) {
			t.Fatalf("%s: the sealed form holds the secret", name)
		}
		got, err := lc.TSIGSecret(store.Domain{Name: "example.com", TSIGSealed: sealed})
		if err != nil || got != secret {
			t.Fatalf("%s: opened %q, %v", name, got, err)
		}
		if _, err := lc.TSIGSecret(store.Domain{Name: "example.net", TSIGSealed: sealed}); err == nil {
			t.Fatalf("%s: a secret sealed for example.com opens for example.net", name)
		}
	}
	short := base64.StdEncoding.EncodeToString([]byte("short"))
	for _, bad := range []string{"not base64 at all!", short} {
		_, err := lc.SealTSIG("example.com", []byte(bad))
		if !errors.Is(err, store.ErrInvalid) || strings.Contains(err.Error(), bad) {
			t.Errorf("secret %q: %v, want ErrInvalid without the secret", bad, err)
		}
	}
	if _, err := lc.TSIGSecret(store.Domain{Name: "example.com"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("no secret: %v, want ErrNotFound", err)
	}
}

// TestDelegatedSelectors: a delegated domain's keys live only at the two
// selectors behind its CNAMEs (store.DelegatedSelectors); a manual domain
// takes any selector.
func TestDelegatedSelectors(t *testing.T) {
	ctx := context.Background()
	lc, db := plainService(t)
	if _, err := db.AddDomain(ctx, store.Domain{Name: "delegated.example", Publish: store.PublishDelegated,
		DelegatedName: "abcdefgh.dkim.provider.example"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddDomain(ctx, store.Domain{Name: "manual.example"}); err != nil {
		t.Fatal(err)
	}
	ed := keys.Spec{Algorithm: keys.Ed25519}
	_, err := lc.Generate(ctx, lifecycle.System, lifecycle.NewKeyRequest{Domain: "delegated.example", Selector: "mail", Spec: ed})
	var fe *store.FieldError
	if !errors.As(err, &fe) || fe.Field != "selector" {
		t.Fatalf("delegated domain, selector mail: %v, want a selector error", err)
	}
	if _, err := lc.Generate(ctx, lifecycle.System, lifecycle.NewKeyRequest{Domain: "delegated.example", Selector: "S1", Spec: ed}); err != nil {
		t.Fatalf("delegated domain, selector s1: %v", err)
	}
	if _, err := lc.Generate(ctx, lifecycle.System, lifecycle.NewKeyRequest{Domain: "manual.example", Selector: "mail", Spec: ed}); err != nil {
		t.Fatalf("manual domain, selector mail: %v", err)
	}
}
