package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/store"
	"github.com/dkimd/dkimd/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
		db, err := Open(context.Background(), filepath.Join(t.TempDir(), "dkimd.db"), Options{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
}

func openTest(t *testing.T, path string) *DB {
	t.Helper()
	db, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// schema dumps the schema so two databases can be compared.
func schema(t *testing.T, db *sql.DB) string {
	t.Helper()
	rows, err := db.Query(`SELECT type, name, coalesce(sql, '') FROM sqlite_schema ORDER BY type, name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var typ, name, sqlText string
		if err := rows.Scan(&typ, &name, &sqlText); err != nil {
			t.Fatal(err)
		}
		b.WriteString(typ + " " + name + "\n" + sqlText + "\n")
	}
	return b.String()
}

func TestMigrationsIdempotent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dkimd.db")
	db, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	first := schema(t, db.db)
	if !strings.Contains(first, "table dkim_keys") || !strings.Contains(first, "trigger audit_log_no_delete") {
		t.Fatalf("schema lacks tables or triggers:\n%s", first)
	}
	if _, err := db.AddDomain(ctx, store.Domain{Name: "example.com"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for run := 2; run <= 3; run++ {
		db, err := Open(ctx, path, Options{})
		if err != nil {
			t.Fatalf("open #%d: %v", run, err)
		}
		if s := schema(t, db.db); s != first {
			t.Fatalf("open #%d changed the schema:\n%s\nwas\n%s", run, s, first)
		}
		var n, maxV int
		if err := db.db.QueryRow(`SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &maxV); err != nil {
			t.Fatal(err)
		}
		if n != SchemaVersion() || maxV != SchemaVersion() {
			t.Fatalf("open #%d: %d migrations recorded up to %d, want %d", run, n, maxV, SchemaVersion())
		}
		if _, err := db.GetDomain(ctx, "example.com"); err != nil {
			t.Fatalf("open #%d lost data: %v", run, err)
		}
		if err := db.Check(ctx); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMigrationsConcurrentOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dkimd.db")
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			db, err := Open(context.Background(), path, Options{})
			if err == nil {
				err = db.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent Open of a fresh database: %v", err)
		}
	}
	db := openTest(t, path)
	var n int
	if err := db.db.QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != SchemaVersion() {
		t.Fatalf("%d migration rows, want %d", n, SchemaVersion())
	}
}

func TestSchemaTooNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dkimd.db")
	db := openTest(t, path)
	if _, err := db.db.Exec(`INSERT INTO schema_migrations (version, applied) VALUES (?, 0)`, SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), path, Options{})
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open of a newer schema: %v, want ErrSchemaTooNew", err)
	}
}

func TestPragmasAndMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dkimd.db")
	db := openTest(t, path)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("database mode %04o, want 0600", fi.Mode().Perm())
	}
	// Every pooled connection, not only the first, has the settings.
	ctx := context.Background()
	var conns []*sql.Conn
	for range 3 {
		c, err := db.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for i, c := range conns {
		var mode string
		var fk, syncMode, busy int
		if err := c.QueryRowContext(ctx, `SELECT * FROM pragma_journal_mode, pragma_foreign_keys, pragma_synchronous, pragma_busy_timeout`).
			Scan(&mode, &fk, &syncMode, &busy); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" || fk != 1 || syncMode != 2 || busy != int(DefaultBusyTimeout.Milliseconds()) {
			t.Errorf("conn %d: journal_mode=%s foreign_keys=%d synchronous=%d busy_timeout=%d", i, mode, fk, syncMode, busy)
		}
	}
	for _, c := range conns {
		c.Close()
	}
	for _, bad := range []string{"", "x?y", "file:x"} {
		if _, err := Open(ctx, bad, Options{}); err == nil {
			t.Errorf("Open(%q) succeeded", bad)
		}
	}
}

func TestAuditTriggers(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, filepath.Join(t.TempDir(), "dkimd.db"))
	e, err := db.AppendAudit(ctx, store.AuditEntry{Actor: "root", Action: "key.create", Detail: "original"})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`UPDATE audit_log SET detail = 'forged' WHERE id = ?`,
		`DELETE FROM audit_log WHERE id = ?`,
	} {
		if _, err := db.db.ExecContext(ctx, q, e.ID); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want the append-only refusal", q, err)
		}
	}
	es, err := db.ListAudit(ctx, store.AuditFilter{})
	if err != nil || len(es) != 1 || es[0].Detail != "original" {
		t.Fatalf("audit log after attempts: %+v, %v", es, err)
	}
}

func TestCheckFindsOrphans(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, filepath.Join(t.TempDir(), "dkimd.db"))
	if err := db.Check(ctx); err != nil {
		t.Fatalf("Check of an empty database: %v", err)
	}
	if _, err := db.AddDomain(ctx, store.Domain{Name: "example.com"}); err != nil {
		t.Fatal(err)
	}
	// Break the invariant behind the store's back, with foreign keys off on
	// one connection.
	c, err := db.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, q := range []string{
		`PRAGMA foreign_keys = OFF`,
		`INSERT INTO dkim_keys (domain, selector, algorithm, bits, state, public_key, created) VALUES ('example.com', 's', 'rsa', 2048, 'pending', x'00', 0)`,
		`INSERT INTO dkim_key_secrets (key_id, sealed) VALUES (999, x'01')`,
		`PRAGMA foreign_keys = ON`,
	} {
		if _, err := c.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	err = db.Check(ctx)
	if err == nil || !strings.Contains(err.Error(), "1 keys have no sealed private key") ||
		!strings.Contains(err.Error(), "1 sealed private keys have no key") {
		t.Fatalf("Check = %v, want both orphans reported", err)
	}
}

// A key in a PKCS#11 token has no secret row, and that is no orphan; a
// secret row beside it, or a PKCS#11 key that does not say where it is,
// is a fault.
func TestCheckPKCS11Keys(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, filepath.Join(t.TempDir(), "dkimd.db"))
	if _, err := db.AddDomain(ctx, store.Domain{Name: "example.com"}); err != nil {
		t.Fatal(err)
	}
	k, err := db.CreateKey(ctx, store.NewKey{Domain: "example.com", Selector: "hsm", Algorithm: keys.Ed25519, PublicKey: make([]byte, 32),
		Location: store.KeyLocation{Backend: store.BackendPKCS11, Token: "tok", Label: "dkimd hsm._domainkey.example.com", ObjectID: "0a0b"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Check(ctx); err != nil {
		t.Fatalf("Check with a PKCS#11 key: %v", err)
	}
	for _, q := range []string{
		`INSERT INTO dkim_key_secrets (key_id, sealed) VALUES (?, x'01')`,
		`UPDATE dkim_keys SET pkcs11_id = '' WHERE id = ?`,
	} {
		if _, err := db.db.ExecContext(ctx, q, k.ID); err != nil {
			t.Fatal(err)
		}
	}
	err = db.Check(ctx)
	if err == nil || !strings.Contains(err.Error(), "1 PKCS#11 keys have a sealed private key in the database") ||
		!strings.Contains(err.Error(), "1 PKCS#11 keys do not say where they are") {
		t.Fatalf("Check = %v, want both faults reported", err)
	}
}

// TestTwoProcessesShareTheFile stands for dkimd serve and the CLI: two
// independent handles on one file, writing at once, must both succeed.
func TestTwoHandlesShareTheFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dkimd.db")
	a, b := openTest(t, path), openTest(t, path)
	done := make(chan error, 2)
	for i, db := range []*DB{a, b} {
		go func() {
			for j := range 20 {
				if _, err := db.AddDomain(ctx, store.Domain{Name: string(rune('a'+i)) + strings.Repeat("x", j+1) + ".example"}); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	ds, err := a.ListDomains(ctx)
	if err != nil || len(ds) != 40 {
		t.Fatalf("%d domains (%v), want 40", len(ds), err)
	}
}
