package storetest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/store"
)

// testKeyReplaces checks the rotation link a new key keeps to the key it
// replaces, and the rules on it.
func testKeyReplaces(t *testing.T, e *env) {
	e.domain("example.com")
	e.domain("example.org")
	old := e.setState(e.key("example.com", "old").ID, store.KeyActive)
	other := e.key("example.org", "other")
	rsa, err := NewKey(e.master(), "example.com", "rsa", keys.Spec{Algorithm: keys.RSA, Bits: 1024})
	if err != nil {
		t.Fatal(err)
	}
	rk, err := e.s.CreateKey(e.ctx, rsa)
	if err != nil {
		t.Fatal(err)
	}
	gone := e.setState(e.key("example.com", "gone").ID, store.KeyRevoked)

	nk := e.newKey("example.com", "new")
	nk.Replaces = old.ID
	k, err := e.s.CreateKey(e.ctx, nk)
	if err != nil {
		t.Fatal(err)
	}
	if k.Replaces != old.ID {
		t.Fatalf("CreateKey Replaces = %d, want %d", k.Replaces, old.ID)
	}
	if got, err := e.s.GetKey(e.ctx, k.ID); err != nil || got.Replaces != old.ID {
		t.Fatalf("GetKey Replaces = %d (%v), want %d", got.Replaces, err, old.ID)
	}
	if ks, err := e.s.ListKeys(e.ctx, store.KeyFilter{Domain: "example.com", States: []store.KeyState{store.KeyPending}}); err != nil || len(ks) != 2 || ks[1].Replaces != old.ID {
		t.Fatalf("ListKeys: %+v %v", ks, err)
	}

	for i, tc := range []struct {
		name     string
		replaces int64
	}{
		{"no such key", 9999},
		{"negative", -1},
		{"another domain's key", other.ID},
		{"another algorithm", rk.ID},
		{"a revoked key", gone.ID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nk := e.with(t).newKey("example.com", fmt.Sprint("x", i))
			nk.Replaces = tc.replaces
			_, err := e.s.CreateKey(e.ctx, nk)
			wantField(t, "CreateKey", err, "replaces")
		})
	}

	// The link survives removing the domain with everything in it.
	if err := e.s.RemoveDomain(e.ctx, "example.com", store.RemoveOptions{Force: true}); err != nil {
		t.Fatalf("RemoveDomain with a rotation in it: %v", err)
	}
}

// testSetKeyStates checks that several changes are one transaction, and
// that activating a key retires the key it replaces in that transaction.
func testSetKeyStates(t *testing.T, e *env) {
	e.domain("example.com")
	newRot := func(t *testing.T, name string) (old, nu store.Key) {
		e := e.with(t)
		old = e.setState(e.key("example.com", name+"-old").ID, store.KeyActive)
		nk := e.newKey("example.com", name+"-new")
		nk.Replaces = old.ID
		nu, err := e.s.CreateKey(e.ctx, nk)
		if err != nil {
			t.Fatal(err)
		}
		return old, nu
	}
	state := func(t *testing.T, id int64) store.Key {
		t.Helper()
		k, err := e.s.GetKey(e.ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}

	t.Run("activation retires the replaced key", func(t *testing.T) {
		old, nu := newRot(t, "a")
		e.clk.Advance(time.Minute)
		at := e.clk.Now()
		got, err := e.s.SetKeyStates(e.ctx, store.KeyStateChange{ID: nu.ID, From: store.KeyPending, To: store.KeyActive})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].ID != nu.ID || got[0].State != store.KeyActive || got[1].ID != old.ID || got[1].State != store.KeyRetired {
			t.Fatalf("SetKeyStates = %+v, want the new key active and the old retired", got)
		}
		if !got[0].Activated.Equal(at) || !got[1].Retired.Equal(at) {
			t.Fatalf("activated %v, retired %v, want both %v", got[0].Activated, got[1].Retired, at)
		}
		if ks, err := e.s.ActiveKeys(e.ctx, "example.com"); err != nil || len(ks) != 1 || ks[0].ID != nu.ID {
			t.Fatalf("ActiveKeys = %+v %v, want only the new key", ks, err)
		}
	})
	t.Run("SetKeyState does the same", func(t *testing.T) {
		old, nu := newRot(t, "b")
		if _, err := e.s.SetKeyState(e.ctx, nu.ID, store.KeyActive); err != nil {
			t.Fatal(err)
		}
		if k := state(t, old.ID); k.State != store.KeyRetired {
			t.Fatalf("replaced key is %s, want retired", k.State)
		}
	})
	t.Run("replaced key no longer active is left alone", func(t *testing.T) {
		old, nu := newRot(t, "c")
		e.setState(old.ID, store.KeyRevoked)
		got, err := e.s.SetKeyStates(e.ctx, store.KeyStateChange{ID: nu.ID, To: store.KeyActive})
		if err != nil || len(got) != 1 {
			t.Fatalf("SetKeyStates = %+v, %v, want only the new key", got, err)
		}
		if k := state(t, old.ID); k.State != store.KeyRevoked {
			t.Fatalf("replaced key is %s, want still revoked", k.State)
		}
	})
	t.Run("a change naming the replaced key wins", func(t *testing.T) {
		old, nu := newRot(t, "d")
		got, err := e.s.SetKeyStates(e.ctx,
			store.KeyStateChange{ID: old.ID, To: store.KeyRevoked},
			store.KeyStateChange{ID: nu.ID, To: store.KeyActive})
		if err != nil || len(got) != 2 || got[0].State != store.KeyRevoked || got[1].State != store.KeyActive {
			t.Fatalf("SetKeyStates = %+v, %v", got, err)
		}
	})
	// Each row starts from a fresh rotation and breaks one thing; nothing
	// may change.
	for _, tc := range []struct {
		name    string
		changes func(old, nu store.Key) []store.KeyStateChange
		want    error
	}{
		{"From does not match", func(old, nu store.Key) []store.KeyStateChange {
			return []store.KeyStateChange{{ID: old.ID, From: store.KeyActive, To: store.KeyRetired}, {ID: nu.ID, From: store.KeyActive, To: store.KeyRetired}}
		}, store.ErrConflict},
		{"second move not allowed", func(old, nu store.Key) []store.KeyStateChange {
			return []store.KeyStateChange{{ID: nu.ID, To: store.KeyActive}, {ID: old.ID, To: store.KeyPending}}
		}, store.ErrConflict},
		{"unknown key", func(old, nu store.Key) []store.KeyStateChange {
			return []store.KeyStateChange{{ID: nu.ID, To: store.KeyActive}, {ID: 9999, To: store.KeyRetired}}
		}, store.ErrNotFound},
		{"unknown state", func(old, nu store.Key) []store.KeyStateChange {
			return []store.KeyStateChange{{ID: nu.ID, To: store.KeyActive}, {ID: old.ID, To: "bogus"}}
		}, store.ErrInvalid},
		{"key named twice", func(old, nu store.Key) []store.KeyStateChange {
			return []store.KeyStateChange{{ID: nu.ID, To: store.KeyActive}, {ID: nu.ID, To: store.KeyRevoked}}
		}, store.ErrInvalid},
		{"no change", func(old, nu store.Key) []store.KeyStateChange { return nil }, store.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old, nu := newRot(t, "e"+fmt.Sprint(len(tc.name)))
			_, err := e.s.SetKeyStates(e.ctx, tc.changes(old, nu)...)
			wantErr(t, "SetKeyStates", err, tc.want)
			if k := state(t, old.ID); !keyEqual(k, old) {
				t.Fatalf("refused changes altered the old key: %+v", k)
			}
			if k := state(t, nu.ID); !keyEqual(k, nu) {
				t.Fatalf("refused changes altered the new key: %+v", k)
			}
		})
	}
}

// testRotationRace: while a rotation activates its key, readers of the
// domain's active keys never see none, and never see the old and new key
// both active.
func testRotationRace(t *testing.T, e *env) {
	e.domain("example.com")
	old := e.setState(e.key("example.com", "old").ID, store.KeyActive)
	nk := e.newKey("example.com", "new")
	nk.Replaces = old.ID
	nu, err := e.s.CreateKey(e.ctx, nk)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				ks, err := e.s.ActiveKeys(e.ctx, "example.com")
				if err == nil && len(ks) != 1 {
					err = fmt.Errorf("%d active keys seen during the rotation", len(ks))
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	time.Sleep(10 * time.Millisecond)
	_, err = e.s.SetKeyState(e.ctx, nu.ID, store.KeyActive)
	time.Sleep(10 * time.Millisecond)
	close(stop)
	wg.Wait()
	close(errs)
	if err != nil {
		t.Fatal(err)
	}
	for err := range errs {
		t.Error(err)
	}
}

func testDNSChecks(t *testing.T, e *env) {
	e.domain("example.com")
	a := e.key("example.com", "a")
	b := e.key("example.com", "b")
	start := e.clk.Now()
	for i := range 5 {
		e.clk.Advance(time.Minute)
		c, err := e.s.AddDNSCheck(e.ctx, store.DNSCheck{KeyID: a.ID, Status: "not_found", Summary: fmt.Sprint("check ", i)}, 3)
		if err != nil {
			t.Fatal(err)
		}
		if c.ID == 0 || !c.Time.Equal(e.clk.Now()) {
			t.Fatalf("AddDNSCheck = %+v, want an ID and the store's time", c)
		}
	}
	at := start.Add(time.Hour)
	if _, err := e.s.AddDNSCheck(e.ctx, store.DNSCheck{KeyID: b.ID, Time: at, Status: "match", OK: true, Summary: strings.Repeat("é", 1000)}, 0); err != nil {
		t.Fatal(err)
	}
	got, err := e.s.ListDNSChecks(e.ctx, store.DNSCheckFilter{KeyID: a.ID})
	if err != nil {
		t.Fatal(err)
	}
	// The cap keeps the newest three, newest first.
	if len(got) != 3 || got[0].Summary != "check 4" || got[2].Summary != "check 2" || got[0].OK || got[0].Status != "not_found" {
		t.Fatalf("ListDNSChecks(a) = %+v, want checks 4, 3, 2", got)
	}
	got, err = e.s.ListDNSChecks(e.ctx, store.DNSCheckFilter{KeyID: b.ID})
	if err != nil || len(got) != 1 || !got[0].OK || !got[0].Time.Equal(at) || len(got[0].Summary) > 1000 || !strings.HasPrefix(got[0].Summary, "é") {
		t.Fatalf("ListDNSChecks(b) = %+v %v", got, err)
	}
	if strings.ContainsRune(got[0].Summary, '\uFFFD') {
		t.Fatal("summary cut inside a character")
	}
	if all, err := e.s.ListDNSChecks(e.ctx, store.DNSCheckFilter{Limit: 2}); err != nil || len(all) != 2 || all[0].KeyID != b.ID {
		t.Fatalf("ListDNSChecks(limit 2) = %+v %v", all, err)
	}
	for _, tc := range []struct {
		name  string
		c     store.DNSCheck
		field string
	}{
		{"no key", store.DNSCheck{Status: "match"}, "key_id"},
		{"no status", store.DNSCheck{KeyID: a.ID}, "status"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.s.AddDNSCheck(e.ctx, tc.c, 0)
			wantField(t, "AddDNSCheck", err, tc.field)
		})
	}
	if _, err := e.s.AddDNSCheck(e.ctx, store.DNSCheck{KeyID: 9999, Status: "match"}, 0); err == nil {
		t.Fatal("AddDNSCheck for a key that does not exist succeeded")
	} else {
		wantErr(t, "AddDNSCheck", err, store.ErrNotFound)
	}
	// A key's history goes with its domain.
	if err := e.s.RemoveDomain(e.ctx, "example.com", store.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if all, err := e.s.ListDNSChecks(e.ctx, store.DNSCheckFilter{}); err != nil || len(all) != 0 {
		t.Fatalf("checks left after the domain was removed: %+v %v", all, err)
	}
}
