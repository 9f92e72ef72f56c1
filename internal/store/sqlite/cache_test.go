package sqlite

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/store"
	"github.com/dkimd/dkimd/internal/store/storetest"
)

// TestConformanceCached runs the suite with the read cache on, as serve
// runs: every write is read back at once.
func TestConformanceCached(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
		db, err := Open(context.Background(), filepath.Join(t.TempDir(), "dkimd.db"), Options{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		db.CacheReads(ctx, nil)
		return db
	})
}

// TestCacheSeesOtherProcessesWrites: serve caches the reads it makes for
// every message, while `dkimd key revoke` or `dkimd user disable` write to
// the same file from another process (here, another handle: SQLite sees
// another connection the same way). The very next read after each commit
// sees it; nothing waits for a timeout.
func TestCacheSeesOtherProcessesWrites(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	path := filepath.Join(t.TempDir(), "dkimd.db")
	serve, cli := openTest(t, path), openTest(t, path)
	serve.CacheReads(ctx, nil)

	addr := netip.MustParseAddr("192.0.2.7")
	if _, err := serve.UserByIP(ctx, addr); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UserByIP before the user exists: %v, want ErrNotFound", err)
	}
	if _, err := cli.AddDomain(ctx, store.Domain{Name: "example.com"}); err != nil {
		t.Fatal(err)
	}
	u, err := cli.AddUser(ctx, store.OutgoingUser{Name: "srv", Domain: "example.com", Auth: store.AuthIP, Enabled: true,
		Networks: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})
	if err != nil {
		t.Fatal(err)
	}
	// The answer "no such user" was cached; the new user is seen anyway.
	for range 3 {
		if got, err := serve.UserByIP(ctx, addr); err != nil || !got.Enabled {
			t.Fatalf("UserByIP after the user was added: %+v %v", got, err)
		}
	}
	if !serve.watch.Load().cache.Live() {
		t.Fatal("the read cache is not on")
	}
	u.Enabled = false
	if _, err := cli.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if got, err := serve.UserByIP(ctx, addr); err != nil || got.Enabled {
		t.Fatalf("UserByIP right after the user was disabled elsewhere: %+v %v", got, err)
	}

	mk, err := keys.NewMasterKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	nk, err := storetest.NewKey(mk, "example.com", "s1", keys.Spec{Algorithm: keys.Ed25519})
	if err != nil {
		t.Fatal(err)
	}
	k, err := cli.CreateKey(ctx, nk)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.SetKeyState(ctx, k.ID, store.KeyActive); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		ks, err := serve.ActiveKeys(ctx, "example.com")
		if err != nil || len(ks) != 1 || ks[0].ID != k.ID {
			t.Fatalf("ActiveKeys: %+v %v, want key %d", ks, err, k.ID)
		}
		if got, err := serve.GetKey(ctx, k.ID); err != nil || got.State != store.KeyActive {
			t.Fatalf("GetKey: %+v %v", got, err)
		}
	}
	// A caller that changes what it got does not change the cache.
	ks, _ := serve.ActiveKeys(ctx, "example.com")
	ks[0].Selector = "mallory"
	ks[0].PublicKey[0] ^= 0xff
	if again, _ := serve.ActiveKeys(ctx, "example.com"); again[0].Selector != "s1" || again[0].PublicKey[0] == ks[0].PublicKey[0] {
		t.Fatal("a caller's change to a cached key reached the cache")
	}

	if _, err := cli.SetKeyState(ctx, k.ID, store.KeyRetired); err != nil {
		t.Fatal(err)
	}
	if ks, err := serve.ActiveKeys(ctx, "example.com"); err != nil || len(ks) != 0 {
		t.Fatalf("ActiveKeys right after the key was retired elsewhere: %+v %v, want none", ks, err)
	}
	if got, err := serve.GetKey(ctx, k.ID); err != nil || got.State != store.KeyRetired {
		t.Fatalf("GetKey right after the key was retired elsewhere: %+v %v", got, err)
	}

	dom, err := cli.GetDomain(ctx, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := serve.GetDomain(ctx, "example.com"); err != nil {
		t.Fatal(err)
	}
	dom.Oversign = store.OversignNone
	if _, err := cli.UpdateDomain(ctx, dom); err != nil {
		t.Fatal(err)
	}
	if got, err := serve.GetDomain(ctx, "example.com"); err != nil || got.Oversign != store.OversignNone {
		t.Fatalf("GetDomain right after its oversigning changed elsewhere: %+v %v", got, err)
	}

	// The reads of one message (store.OneCheck) ask for the data version
	// once: they see the database as it was at the first of them. The next
	// message sees the change.
	msg := store.OneCheck(ctx)
	if got, err := serve.GetDomain(msg, "example.com"); err != nil || got.Oversign != store.OversignNone {
		t.Fatalf("GetDomain: %+v %v", got, err)
	}
	dom.Oversign = store.OversignFromOnly
	if _, err := cli.UpdateDomain(ctx, dom); err != nil {
		t.Fatal(err)
	}
	if got, _ := serve.GetDomain(msg, "example.com"); got.Oversign != store.OversignNone {
		t.Fatalf("a message's second read saw a change made after its first: %q", got.Oversign)
	}
	if got, err := serve.GetDomain(store.OneCheck(ctx), "example.com"); err != nil || got.Oversign != store.OversignFromOnly {
		t.Fatalf("the next message's read did not see the change: %+v %v", got, err)
	}

	// Once its context ends the cache is off, and reads go to the file.
	cancel()
	for deadline := time.Now().Add(5 * time.Second); serve.watch.Load() != nil; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the read cache is still on after its context ended")
		}
	}
	if _, err := serve.GetDomain(context.Background(), "example.com"); err != nil {
		t.Fatalf("GetDomain after the cache ended: %v", err)
	}
}
