package postgres

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/store"
	"github.com/dkimd/dkimd/internal/store/postgres/pgtest"
	"github.com/dkimd/dkimd/internal/store/storetest"
)

// pg is this package's throwaway server, started by the first test that
// needs it.
var pg = pgtest.New(pgtest.Options{})

func TestMain(m *testing.M) {
	code := m.Run()
	if err := pg.Close(); err != nil {
		println("pgtest:", err.Error())
	}
	os.Exit(code)
}

func openTest(t *testing.T, url string, now func() time.Time) *DB {
	t.Helper()
	db, err := Open(context.Background(), url, Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
		return openTest(t, pg.Database(t), now)
	})
}

// TestMigrationsOnceConcurrently opens a fresh database from several
// "nodes" at once: each migration is applied exactly once and every node
// comes up.
func TestMigrationsOnceConcurrently(t *testing.T) {
	url := pg.Database(t)
	ctx := context.Background()
	const nodes = 4
	errs := make(chan error, nodes)
	dbs := make(chan *DB, nodes)
	for range nodes {
		go func() {
			db, err := Open(ctx, url, Options{})
			errs <- err
			dbs <- db
		}()
	}
	for range nodes {
		if err := <-errs; err != nil {
			t.Errorf("Open: %v", err)
		}
		if db := <-dbs; db != nil {
			defer db.Close()
		}
	}
	db := openTest(t, url, nil)
	defer db.Close()
	var n, newest int
	if err := db.db.QueryRowContext(ctx, `SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &newest); err != nil {
		t.Fatal(err)
	}
	if n != SchemaVersion() || newest != SchemaVersion() {
		t.Fatalf("schema_migrations has %d rows up to %d, want %d", n, newest, SchemaVersion())
	}
}

func TestSchemaTooNew(t *testing.T) {
	url := pg.Database(t)
	ctx := context.Background()
	db := openTest(t, url, nil)
	if _, err := db.db.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied) VALUES ($1, 0)`, SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(ctx, url, Options{}); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open on a newer schema: %v, want ErrSchemaTooNew", err)
	}
}

// TestAuditAppendOnlyInDatabase checks the database-level guard the
// conformance suite leaves to each backend: not even SQL run by hand changes
// or removes an entry.
func TestAuditAppendOnlyInDatabase(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, pg.Database(t), nil)
	defer db.Close()
	if _, err := db.AppendAudit(ctx, store.AuditEntry{Actor: "root", Action: "domain.add"}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`UPDATE audit_log SET actor = 'mallory'`, `DELETE FROM audit_log`, `TRUNCATE audit_log`} {
		if _, err := db.db.ExecContext(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want the append-only error", q, err)
		}
	}
	es, err := db.ListAudit(ctx, store.AuditFilter{})
	if err != nil || len(es) != 1 || es[0].Actor != "root" {
		t.Fatalf("audit log after the attempts: %v %v", es, err)
	}
}

func TestOpenBadURL(t *testing.T) {
	_, err := Open(context.Background(), "postgres://u:s3cret@host:notaport/db", Options{})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("Open with a bad URL: %v (want an error without the password)", err)
	}
}

// TestConformanceCached runs the suite with the read cache on, as serve
// runs: a node reads its own writes at once.
func TestConformanceCached(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
		db := openTest(t, pg.Database(t), now)
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		db.CacheReads(ctx, nil)
		waitCacheLive(t, db)
		return db
	})
}

func waitCacheLive(t *testing.T, db *DB) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !db.cache.Load().Live(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the read cache's listener did not connect")
		}
	}
}

// TestCacheSeesOtherNodesWrites: a user disabled and a key activated on one
// node are seen by another node's cached reads at once (the write's
// notification), not after a timeout.
func TestCacheSeesOtherNodesWrites(t *testing.T) {
	url := pg.Database(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, b := openTest(t, url, nil), openTest(t, url, nil)
	defer a.Close()
	defer b.Close()
	b.CacheReads(ctx, nil)
	waitCacheLive(t, b)
	if _, err := a.AddDomain(ctx, store.Domain{Name: "example.com"}); err != nil {
		t.Fatal(err)
	}
	u, err := a.AddUser(ctx, store.OutgoingUser{Name: "srv", Domain: "example.com", Auth: store.AuthIP, Enabled: true,
		Networks: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddr("192.0.2.7")
	for range 3 { // cached after the first
		if got, err := b.UserByIP(ctx, addr); err != nil || !got.Enabled {
			t.Fatalf("UserByIP on b: %+v %v", got, err)
		}
	}
	u.Enabled = false
	if _, err := a.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Second); ; time.Sleep(5 * time.Millisecond) {
		got, err := b.UserByIP(ctx, addr)
		if err == nil && !got.Enabled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b still reads the user enabled a second after a disabled it: %+v %v", got, err)
		}
	}
}
