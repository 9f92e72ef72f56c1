package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"

	"github.com/dkimd/dkimd/internal/store"
)

// checkUserByIP fails unless db finds user want (none if "") for addr.
func checkUserByIP(t *testing.T, db *DB, addr, want string) store.OutgoingUser {
	t.Helper()
	u, err := db.UserByIP(context.Background(), netip.MustParseAddr(addr))
	switch {
	case want == "" && !errors.Is(err, store.ErrNotFound):
		t.Fatalf("UserByIP(%s) = %s, %v; want ErrNotFound", addr, u.Name, err)
	case want != "" && (err != nil || u.Name != want):
		t.Fatalf("UserByIP(%s) = %s, %v; want %s", addr, u.Name, err, want)
	}
	return u
}

// addKey adds the domain example.com with one key, s1, in the given state.
func addKey(t *testing.T, db *DB, state store.KeyState) store.Key {
	t.Helper()
	ctx := context.Background()
	if _, err := db.AddDomain(ctx, store.Domain{Name: "example.com"}); err != nil {
		t.Fatal(err)
	}
	k, err := db.CreateKey(ctx, store.NewKey{Domain: "example.com", Selector: "s1", Algorithm: "ed25519",
		PublicKey: []byte{1}, Sealed: []byte{1}})
	if err != nil {
		t.Fatal(err)
	}
	if state != store.KeyPending {
		if k, err = db.SetKeyState(ctx, k.ID, state); err != nil {
			t.Fatal(err)
		}
	}
	return k
}

// checkActive fails unless db's active keys of example.com are want.
func checkActive(t *testing.T, db *DB, want ...int64) {
	t.Helper()
	ks, err := db.ActiveKeys(context.Background(), "example.com")
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, k := range ks {
		got = append(got, k.ID)
	}
	if len(got) != len(want) || (len(want) > 0 && got[0] != want[0]) {
		t.Fatalf("ActiveKeys = %v, want %v", got, want)
	}
}

// The relay's reads run on prepared statements in one process while the
// CLI writes in another: each read must see what the other committed, at
// once, since the statements hold no results.
func TestReadsSeeAnotherHandlesWrites(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dkimd.db")
	serve, cli := openTest(t, path), openTest(t, path)
	k := addKey(t, cli, store.KeyPending)
	checkActive(t, serve)
	if got, err := serve.GetKey(ctx, k.ID); err != nil || got.State != store.KeyPending {
		t.Fatalf("GetKey = %+v, %v; want pending", got, err)
	}
	if _, err := cli.SetKeyState(ctx, k.ID, store.KeyActive); err != nil {
		t.Fatal(err)
	}
	checkActive(t, serve, k.ID)
	if got, err := serve.GetKey(ctx, k.ID); err != nil || got.State != store.KeyActive {
		t.Fatalf("GetKey = %+v, %v; want active", got, err)
	}
	if got, err := serve.SealedKey(ctx, k.ID); err != nil || !bytes.Equal(got, []byte{1}) {
		t.Fatalf("SealedKey = %x, %v", got, err)
	}

	checkUserByIP(t, serve, "192.0.2.7", "")
	lan := store.OutgoingUser{Name: "lan", Domain: "example.com", Auth: store.AuthIP, Enabled: true,
		Networks: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}
	if _, err := cli.AddUser(ctx, lan); err != nil {
		t.Fatal(err)
	}
	checkUserByIP(t, serve, "192.0.2.7", "lan")
	host := store.OutgoingUser{Name: "host", Domain: "example.com", Auth: store.AuthIP,
		Networks: []netip.Prefix{netip.MustParsePrefix("192.0.2.7/32")}}
	if _, err := cli.AddUser(ctx, host); err != nil {
		t.Fatal(err)
	}
	if u := checkUserByIP(t, serve, "192.0.2.7", "host"); u.Enabled {
		t.Fatal("UserByIP found host enabled; it was added disabled")
	}
	host.Networks = []netip.Prefix{netip.MustParsePrefix("198.51.100.1/32")}
	if _, err := cli.UpdateUser(ctx, host); err != nil {
		t.Fatal(err)
	}
	checkUserByIP(t, serve, "192.0.2.7", "lan")
	if u, err := serve.GetUser(ctx, "host"); err != nil || len(u.Networks) != 1 || u.Networks[0] != host.Networks[0] {
		t.Fatalf("GetUser(host) = %+v, %v; want the new network", u, err)
	}
	if err := cli.RemoveUser(ctx, "lan"); err != nil {
		t.Fatal(err)
	}
	checkUserByIP(t, serve, "192.0.2.7", "")

	if _, err := cli.SetKeyState(ctx, k.ID, store.KeyRetired); err != nil {
		t.Fatal(err)
	}
	checkActive(t, serve)
}

// A newer dkimd may change the schema under a running one. SQLite prepares
// the statements again by itself; a dropped index changes their plan.
func TestStatementsSurviveSchemaChange(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dkimd.db")
	db := openTest(t, path)
	k := addKey(t, db, store.KeyActive)
	if _, err := db.AddUser(ctx, store.OutgoingUser{Name: "lan", Domain: "example.com", Auth: store.AuthIP,
		Enabled: true, Networks: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}); err != nil {
		t.Fatal(err)
	}
	checkActive(t, db, k.ID)
	checkUserByIP(t, db, "192.0.2.7", "lan")

	other, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for _, q := range []string{
		`ALTER TABLE dkim_keys ADD COLUMN later TEXT`,
		`ALTER TABLE outgoing_users ADD COLUMN later TEXT`,
		`DROP INDEX dkim_keys_state`,
		`CREATE INDEX later ON outgoing_user_networks (prefix)`,
	} {
		if _, err := other.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	checkActive(t, db, k.ID)
	checkUserByIP(t, db, "192.0.2.7", "lan")
	if got, err := db.GetKey(ctx, k.ID); err != nil || got.State != store.KeyActive {
		t.Fatalf("GetKey after the schema change = %+v, %v", got, err)
	}
	if _, err := db.SealedKey(ctx, k.ID); err != nil {
		t.Fatalf("SealedKey after the schema change: %v", err)
	}
	if _, err := db.SetKeyState(ctx, k.ID, store.KeyRetired); err != nil {
		t.Fatalf("SetKeyState after the schema change: %v", err)
	}
	checkActive(t, db)
}

// Readers on more goroutines than the pool keeps idle connections, so the
// statements are prepared on connections that come and go, while a writer
// moves a network between two users. Run with -race.
func TestReadsConcurrentWithWrites(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "dkimd.db"), Options{MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	k := addKey(t, db, store.KeyActive)
	a := store.OutgoingUser{Name: "a", Domain: "example.com", Auth: store.AuthIP, Enabled: true,
		Networks: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}
	b := store.OutgoingUser{Name: "b", Domain: "example.com", Auth: store.AuthReauth, Enabled: true,
		Networks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	for _, u := range []store.OutgoingUser{a, b} {
		if _, err := db.AddUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	wide, narrow := b.Networks, []netip.Prefix{netip.MustParsePrefix("10.1.2.0/24")}
	addr := netip.MustParseAddr("10.1.2.3")

	const readers, reads, writes = 6, 60, 30
	var wg sync.WaitGroup
	for range readers {
		wg.Go(func() {
			for range reads {
				u, err := db.UserByIP(ctx, addr)
				if err != nil {
					t.Errorf("UserByIP: %v", err)
					return
				}
				// Matched and read in one snapshot: the user found holds
				// the address, and b only with its narrow network.
				p, ok := store.MatchNetworks(u.Networks, addr)
				if !ok || (u.Name == "b") != (p.Bits() == 24) {
					t.Errorf("UserByIP = %s with networks %v", u.Name, u.Networks)
					return
				}
				if ks, err := db.ActiveKeys(ctx, "example.com"); err != nil || len(ks) != 1 {
					t.Errorf("ActiveKeys = %d keys, %v", len(ks), err)
					return
				}
				if got, err := db.GetKey(ctx, k.ID); err != nil || got.ID != k.ID {
					t.Errorf("GetKey = %+v, %v", got, err)
					return
				}
				if got, err := db.SealedKey(ctx, k.ID); err != nil || !bytes.Equal(got, []byte{1}) {
					t.Errorf("SealedKey = %x, %v", got, err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := range writes {
			b.Networks = wide
			if i%2 == 0 {
				b.Networks = narrow
			}
			if _, err := db.UpdateUser(ctx, b); err != nil {
				t.Errorf("UpdateUser: %v", err)
				return
			}
		}
	})
	wg.Wait()
	// The last write left b with its wide network.
	checkUserByIP(t, db, addr.String(), "a")
}
