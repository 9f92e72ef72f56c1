package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/store"
)

// TestMigration2Upgrade opens a database written at schema version 1, with
// a key in it, and checks that the key survives the upgrade and can be
// replaced and checked.
func TestMigration2Upgrade(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dkimd.db")
	raw, err := sql.Open("sqlite", path+"?_pragma=foreign_keys(1)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.ExecContext(ctx, `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied INTEGER NOT NULL) STRICT`); err != nil {
		t.Fatal(err)
	}
	if err := applyMigration(ctx, raw, 1, time.Now); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO domains (name, created, updated) VALUES ('example.com', 0, 0)`,
		`INSERT INTO dkim_keys (domain, selector, algorithm, bits, state, public_key, created, activated) VALUES ('example.com', 'old', 'ed25519', 256, 'active', x'01', 0, 0)`,
		`INSERT INTO dkim_key_secrets (key_id, sealed) VALUES (1, x'01')`,
	} {
		if _, err := raw.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}
	db := openTest(t, path)
	k, err := db.KeyBySelector(ctx, "example.com", "old")
	if err != nil || k.State != store.KeyActive || k.Replaces != 0 {
		t.Fatalf("key after the upgrade: %+v %v", k, err)
	}
	if _, err := db.AddDNSCheck(ctx, store.DNSCheck{KeyID: k.ID, Status: "match", OK: true}, 10); err != nil {
		t.Fatal(err)
	}
	nk, err := db.CreateKey(ctx, store.NewKey{Domain: "example.com", Selector: "new", Algorithm: "ed25519",
		PublicKey: []byte{2}, Sealed: []byte{2}, Replaces: k.ID})
	if err != nil {
		t.Fatal(err)
	}
	if ks, err := db.SetKeyStates(ctx, store.KeyStateChange{ID: nk.ID, To: store.KeyActive}); err != nil || len(ks) != 2 {
		t.Fatalf("rotation on an upgraded database: %+v %v", ks, err)
	}
	if err := db.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestMigration6Upgrade opens a database written at schema version 5 (the
// last before migration 6) with a rotated key, its secret and its DNS
// checks, and checks that rebuilding dkim_keys keeps them all, keeps
// foreign keys on, that the domain gets the manual publishing mode and
// keeps its oversigning, and that an archived key's selector comes back
// when asked.
func TestMigration6Upgrade(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dkimd.db")
	raw, err := sql.Open("sqlite", path+"?_pragma=foreign_keys(1)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.ExecContext(ctx, `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied INTEGER NOT NULL) STRICT`); err != nil {
		t.Fatal(err)
	}
	for v := 1; v <= 5; v++ {
		if err := applyMigration(ctx, raw, v, time.Now); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		`INSERT INTO domains (name, oversign, created, updated) VALUES ('example.com', 'none', 0, 0)`,
		`INSERT INTO dkim_keys (domain, selector, algorithm, bits, state, public_key, created, activated) VALUES ('example.com', 's1', 'ed25519', 256, 'archived', x'01', 0, 0)`,
		`INSERT INTO dkim_keys (domain, selector, algorithm, bits, state, public_key, created, activated, replaces) VALUES ('example.com', 's2', 'ed25519', 256, 'active', x'02', 0, 0, 1)`,
		`INSERT INTO dkim_key_secrets (key_id, sealed) VALUES (1, x'01'), (2, x'02')`,
		`INSERT INTO dns_checks (key_id, time, status, ok) VALUES (2, 0, 'match', 1)`,
	} {
		if _, err := raw.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}
	db := openTest(t, path)
	if dom, err := db.GetDomain(ctx, "example.com"); err != nil || dom.Publish != store.PublishManual || dom.Oversign != store.OversignNone {
		t.Fatalf("domain after the upgrade: %+v %v", dom, err)
	}
	k, err := db.KeyBySelector(ctx, "example.com", "s2")
	if err != nil || k.State != store.KeyActive || k.Replaces != 1 {
		t.Fatalf("key after the upgrade: %+v %v", k, err)
	}
	if sealed, err := db.SealedKey(ctx, k.ID); err != nil || len(sealed) != 1 || sealed[0] != 2 {
		t.Fatalf("sealed key after the upgrade: %x %v", sealed, err)
	}
	if cs, err := db.ListDNSChecks(ctx, store.DNSCheckFilter{KeyID: k.ID}); err != nil || len(cs) != 1 {
		t.Fatalf("checks after the upgrade: %v %v", cs, err)
	}
	if _, err := db.CreateKey(ctx, store.NewKey{Domain: "example.com", Selector: "s1", Algorithm: "ed25519",
		PublicKey: []byte{3}, Sealed: []byte{3}, Replaces: k.ID, ReuseSelector: true}); err != nil {
		t.Fatalf("reuse of an archived key's selector: %v", err)
	}
	if _, err := db.CreateKey(ctx, store.NewKey{Domain: "example.com", Selector: "s2", Algorithm: "ed25519",
		PublicKey: []byte{4}, Sealed: []byte{4}, ReuseSelector: true}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("selector of a live key: %v", err)
	}
	// Foreign keys still hold on every connection: a secret for no key
	// is refused.
	for range 4 {
		if _, err := db.db.ExecContext(ctx, `INSERT INTO dkim_key_secrets (key_id, sealed) VALUES (999, x'01')`); err == nil {
			t.Fatal("a secret without its key was stored: foreign keys are off after the migration")
		}
	}
	if err := db.Check(ctx); err != nil {
		t.Fatal(err)
	}
}
