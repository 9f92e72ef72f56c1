package sqlite

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/dkimd/dkimd/internal/auth"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/store"
	"github.com/dkimd/dkimd/internal/store/storetest"
)

// The relay reads the store on every message: UserByIP at MAIL FROM,
// ActiveKeys once per message, GetKey per signature, SealedKey when a key is
// opened. These benchmarks measure those reads on a database shaped like a
// small installation.

// benchDB opens a database with one domain holding an active key pair (a
// rotation in progress) and a retired key, and ipUsers IP-authenticated
// users with a /24 each, next to as many password users.
func benchDB(b *testing.B, ipUsers int) (*DB, []store.Key) {
	b.Helper()
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(b.TempDir(), "dkimd.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	mk, err := keys.NewMasterKey(nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, dom := range []string{"example.com", "example.net"} {
		if _, err := db.AddDomain(ctx, store.Domain{Name: dom}); err != nil {
			b.Fatal(err)
		}
	}
	var ks []store.Key
	for _, sel := range []string{"s1", "s2", "s3"} {
		nk, err := storetest.NewKey(mk, "example.com", sel, keys.Spec{Algorithm: keys.Ed25519})
		if err != nil {
			b.Fatal(err)
		}
		k, err := db.CreateKey(ctx, nk)
		if err != nil {
			b.Fatal(err)
		}
		ks = append(ks, k)
	}
	for i, k := range ks {
		to := []store.KeyState{store.KeyActive}
		if i == 0 {
			to = append(to, store.KeyRetired)
		}
		for _, s := range to {
			if ks[i], err = db.SetKeyState(ctx, k.ID, s); err != nil {
				b.Fatal(err)
			}
		}
	}
	pwHash, err := auth.HashPasswordParams("pw", auth.Params{Memory: 64, Time: 1, Threads: 1})
	if err != nil {
		b.Fatal(err)
	}
	for i := range ipUsers {
		u := store.OutgoingUser{Name: fmt.Sprintf("ip%d", i), Domain: "example.com", Auth: store.AuthIP, Enabled: true,
			GrantedDomains: []string{"example.net"},
			Networks:       []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24)}}
		if _, err := db.AddUser(ctx, u); err != nil {
			b.Fatal(err)
		}
		u = store.OutgoingUser{Name: fmt.Sprintf("pw%d", i), Domain: "example.com", Auth: store.AuthPassword, Enabled: true,
			PasswordHash: pwHash}
		if _, err := db.AddUser(ctx, u); err != nil {
			b.Fatal(err)
		}
	}
	return db, ks
}

func BenchmarkUserByIP(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("ip_users=%d", n), func(b *testing.B) {
			db, _ := benchDB(b, n)
			ctx := context.Background()
			// The last user's network: a match found only after every other
			// network was tried.
			addr := netip.AddrFrom4([4]byte{10, byte((n - 1) >> 8), byte(n - 1), 25})
			want := fmt.Sprintf("ip%d", n-1)
			b.ReportAllocs()
			for b.Loop() {
				u, err := db.UserByIP(ctx, addr)
				if err != nil || u.Name != want {
					b.Fatalf("UserByIP(%s) = %s, %v; want %s", addr, u.Name, err, want)
				}
			}
		})
	}
}

func BenchmarkActiveKeys(b *testing.B) {
	db, _ := benchDB(b, 1)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		ks, err := db.ActiveKeys(ctx, "example.com")
		if err != nil || len(ks) != 2 {
			b.Fatalf("ActiveKeys = %d keys, %v; want 2", len(ks), err)
		}
	}
}

func BenchmarkGetKey(b *testing.B) {
	db, ks := benchDB(b, 1)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := db.GetKey(ctx, ks[1].ID); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSealedKey(b *testing.B) {
	db, ks := benchDB(b, 1)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := db.SealedKey(ctx, ks[1].ID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRelayReadsParallel is the reads of one message from several
// connections at once, as the relay makes them: straight from the file, and
// through the read cache serve turns on (CacheReads), which still asks
// SQLite for its data version before every read.
func BenchmarkRelayReadsParallel(b *testing.B) {
	for _, cache := range []bool{false, true} {
		b.Run(fmt.Sprintf("cached=%v", cache), func(b *testing.B) {
			db, ks := benchDB(b, 100)
			ctx := context.Background()
			if cache {
				cctx, cancel := context.WithCancel(ctx)
				b.Cleanup(cancel)
				db.CacheReads(cctx, nil)
			}
			addr := netip.MustParseAddr("10.0.42.7")
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := db.UserByIP(ctx, addr); err != nil {
						b.Error(err)
						return
					}
					if _, err := db.ActiveKeys(ctx, "example.com"); err != nil {
						b.Error(err)
						return
					}
					if _, err := db.GetDomain(ctx, "example.com"); err != nil {
						b.Error(err)
						return
					}
					if _, err := db.GetKey(ctx, ks[1].ID); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
