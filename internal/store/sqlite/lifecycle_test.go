package sqlite

import (
	"context"
	"database/sql"
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
