package storetest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/store"
)

func testKeys(t *testing.T, e *env) {
	e.domain("example.com")
	created := e.clk.Now()
	nk := e.newKey("example.com", "S2026")
	k, err := e.s.CreateKey(e.ctx, nk)
	if err != nil {
		t.Fatal(err)
	}
	want := store.Key{ID: k.ID, Domain: "example.com", Selector: "s2026", Algorithm: keys.Ed25519, Bits: 256,
		State: store.KeyPending, PublicKey: nk.PublicKey, Created: created, Location: store.KeyLocation{Backend: store.BackendSealed}}
	if !keyEqual(k, want) {
		t.Fatalf("CreateKey = %+v, want %+v", k, want)
	}
	if k.ID == 0 {
		t.Fatal("CreateKey gave ID 0")
	}
	got, err := e.s.GetKey(e.ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !keyEqual(got, want) {
		t.Fatalf("GetKey = %+v, want %+v", got, want)
	}
	got, err = e.s.KeyBySelector(e.ctx, "EXAMPLE.com.", "s2026")
	if err != nil {
		t.Fatal(err)
	}
	if !keyEqual(got, want) {
		t.Fatalf("KeyBySelector = %+v, want %+v", got, want)
	}
	if got.RecordName() != "s2026._domainkey.example.com" {
		t.Fatalf("RecordName = %q", got.RecordName())
	}

	// The secret comes back as stored, opens only for this row, and never
	// travels with the key.
	sealed, err := e.s.SealedKey(e.ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sealed, nk.Sealed) {
		t.Fatal("SealedKey differs from what was stored")
	}
	if _, err := e.master().OpenSigner(sealed, got.AssociatedData()); err != nil {
		t.Fatalf("stored secret does not open for its row: %v", err)
	}
	if _, err := e.master().OpenSigner(sealed, store.KeyAssociatedData("example.com", "other")); !errors.Is(err, keys.ErrSealed) {
		t.Fatalf("secret opens for another row: %v", err)
	}
	j, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(j), base64.StdEncoding.EncodeToString(sealed)) || strings.Contains(string(j), `"sealed":`) {
		t.Fatalf("key JSON carries the sealed private key: %s", j)
	}
	if !strings.Contains(string(j), `"public_key":"`+base64.StdEncoding.EncodeToString(nk.PublicKey)+`"`) {
		t.Fatalf("key JSON lacks the p= value: %s", j)
	}

	// An RSA key, to see algorithm and length kept.
	rk, err := NewKey(e.master(), "example.com", "rsa", keys.Spec{Algorithm: keys.RSA, Bits: 1024})
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.s.CreateKey(e.ctx, rk)
	if err != nil {
		t.Fatal(err)
	}
	if r.Algorithm != keys.RSA || r.Bits != 1024 || r.ID == k.ID {
		t.Fatalf("RSA key = %+v", r)
	}

	_, err = e.s.GetKey(e.ctx, r.ID+1000)
	wantErr(t, "GetKey missing", err, store.ErrNotFound)
	_, err = e.s.SealedKey(e.ctx, r.ID+1000)
	wantErr(t, "SealedKey missing", err, store.ErrNotFound)
	_, err = e.s.KeyBySelector(e.ctx, "example.com", "nope")
	wantErr(t, "KeyBySelector missing", err, store.ErrNotFound)
	_, err = e.s.KeyBySelector(e.ctx, "example.org", "s2026")
	wantErr(t, "KeyBySelector other domain", err, store.ErrNotFound)
}

func keyEqual(a, b store.Key) bool {
	return a.ID == b.ID && a.Domain == b.Domain && a.Selector == b.Selector && a.Algorithm == b.Algorithm &&
		a.Bits == b.Bits && a.State == b.State && bytes.Equal(a.PublicKey, b.PublicKey) &&
		a.Created.Equal(b.Created) && a.Activated.Equal(b.Activated) && a.Retired.Equal(b.Retired) &&
		a.Revoked.Equal(b.Revoked) && a.Archived.Equal(b.Archived) && a.Replaces == b.Replaces &&
		a.Location == b.Location
}

// hsmLocation names a key pair in a PKCS#11 token.
func hsmLocation(selector string) store.KeyLocation {
	return store.KeyLocation{Backend: store.BackendPKCS11, Token: "dkimd-token",
		Label: "dkimd " + selector + "._domainkey.example.com", ObjectID: "00112233445566778899aabbccddeeff"}
}

// A key in a PKCS#11 token is stored with where it lives and no secret:
// the location comes back from every read, SealedKey has nothing, and it
// goes through the lifecycle as a sealed key does.
func testPKCS11Keys(t *testing.T, e *env) {
	e.domain("example.com")
	sealed := e.key("example.com", "sealed")
	if sealed.Location != (store.KeyLocation{Backend: store.BackendSealed}) {
		t.Fatalf("sealed key's location = %+v, want backend sealed", sealed.Location)
	}
	nk := e.newKey("example.com", "hsm")
	nk.Sealed, nk.Location = nil, hsmLocation("hsm")
	k, err := e.s.CreateKey(e.ctx, nk)
	if err != nil {
		t.Fatal(err)
	}
	if k.Location != nk.Location {
		t.Fatalf("CreateKey location = %+v, want %+v", k.Location, nk.Location)
	}
	byID, err := e.s.GetKey(e.ctx, k.ID)
	if err != nil || !keyEqual(byID, k) {
		t.Fatalf("GetKey = %+v, %v; want %+v", byID, err, k)
	}
	bySel, err := e.s.KeyBySelector(e.ctx, "example.com", "hsm")
	if err != nil || !keyEqual(bySel, k) {
		t.Fatalf("KeyBySelector = %+v, %v", bySel, err)
	}
	_, err = e.s.SealedKey(e.ctx, k.ID)
	wantErr(t, "SealedKey of a PKCS#11 key", err, store.ErrNotFound)
	changed, err := e.s.SetKeyState(e.ctx, k.ID, store.KeyActive)
	if err != nil || changed.Location != nk.Location {
		t.Fatalf("SetKeyState = %+v, %v: location lost", changed, err)
	}
	active, err := e.s.ActiveKeys(e.ctx, "example.com")
	if err != nil || len(active) != 1 || active[0].Location != nk.Location {
		t.Fatalf("ActiveKeys = %+v, %v", active, err)
	}
	all, err := e.s.ListKeys(e.ctx, store.KeyFilter{Domain: "example.com"})
	if err != nil || len(all) != 2 || all[0].Location.Backend != store.BackendSealed || all[1].Location != nk.Location {
		t.Fatalf("ListKeys = %+v, %v", all, err)
	}
	j, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(j), `"location":{"backend":"pkcs11","token":"dkimd-token","label":"dkimd hsm._domainkey.example.com","object_id":"00112233445566778899aabbccddeeff"}`) {
		t.Fatalf("key JSON does not say where the key lives: %s", j)
	}
}

func testCreateKeyErrors(t *testing.T, e *env) {
	e.domain("example.com")
	e.domain("example.org")
	e.domain("sub.example.com")
	e.key("example.com", "taken")
	long := strings.Repeat("a", 60) + "." + strings.Repeat("b", 60) + "." + strings.Repeat("c", 60) + ".example.com"
	e.domain(long)

	tests := []struct {
		name   string
		change func(k *store.NewKey)
		want   error
		field  string
	}{
		{"valid", func(k *store.NewKey) {}, nil, ""},
		{"same selector, other domain", func(k *store.NewKey) { k.Domain = "example.org"; k.Selector = "taken" }, nil, ""},
		{"same selector, sub-domain", func(k *store.NewKey) { k.Domain = "sub.example.com"; k.Selector = "taken" }, nil, ""},
		{"dotted selector", func(k *store.NewKey) { k.Selector = "eu.rsa" }, nil, ""},
		{"selector taken", func(k *store.NewKey) { k.Selector = "taken" }, store.ErrExists, ""},
		{"selector taken, other case", func(k *store.NewKey) { k.Selector = "TAKEN" }, store.ErrExists, ""},
		{"domain missing", func(k *store.NewKey) { k.Domain = "missing.example" }, store.ErrNotFound, ""},
		{"domain invalid", func(k *store.NewKey) { k.Domain = "bad_domain.example" }, store.ErrInvalid, "domain"},
		{"selector empty", func(k *store.NewKey) { k.Selector = "" }, store.ErrInvalid, "selector"},
		{"selector underscore", func(k *store.NewKey) { k.Selector = "s_1" }, store.ErrInvalid, "selector"},
		{"selector with _domainkey", func(k *store.NewKey) { k.Selector = "s1._domainkey" }, store.ErrInvalid, "selector"},
		{"selector label too long", func(k *store.NewKey) { k.Selector = strings.Repeat("s", 64) }, store.ErrInvalid, "selector"},
		{"selector hyphen first", func(k *store.NewKey) { k.Selector = "-s" }, store.ErrInvalid, "selector"},
		{"selector space", func(k *store.NewKey) { k.Selector = "s 1" }, store.ErrInvalid, "selector"},
		{"record name too long", func(k *store.NewKey) { k.Domain = long; k.Selector = strings.Repeat("s", 63) }, store.ErrInvalid, "selector"},
		{"algorithm unknown", func(k *store.NewKey) { k.Algorithm = "dsa" }, store.ErrInvalid, "algorithm"},
		{"bits wrong", func(k *store.NewKey) { k.Algorithm = keys.RSA; k.Bits = 512 }, store.ErrInvalid, "bits"},
		{"public key empty", func(k *store.NewKey) { k.PublicKey = nil }, store.ErrInvalid, "public_key"},
		{"sealed empty", func(k *store.NewKey) { k.Sealed = nil }, store.ErrInvalid, "sealed"},
		{"backend unknown", func(k *store.NewKey) { k.Location.Backend = "kms" }, store.ErrInvalid, "location"},
		{"sealed key naming a token", func(k *store.NewKey) { k.Location.Token = "tok" }, store.ErrInvalid, "location"},
		{"pkcs11 key with a secret", func(k *store.NewKey) { k.Location = hsmLocation("x") }, store.ErrInvalid, "sealed"},
		{"pkcs11 key without secret", func(k *store.NewKey) { k.Location = hsmLocation("x"); k.Sealed = nil }, nil, ""},
		{"pkcs11 key without object ID", func(k *store.NewKey) {
			k.Location = hsmLocation("x")
			k.Location.ObjectID = ""
			k.Sealed = nil
		}, store.ErrInvalid, "location"},
		{"pkcs11 key with a bad object ID", func(k *store.NewKey) {
			k.Location = hsmLocation("x")
			k.Location.ObjectID = "zz"
			k.Sealed = nil
		}, store.ErrInvalid, "location"},
		{"pkcs11 key without token", func(k *store.NewKey) {
			k.Location = hsmLocation("x")
			k.Location.Token = ""
			k.Sealed = nil
		}, store.ErrInvalid, "location"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t)
			nk := e.newKey("example.com", fmt.Sprintf("s%d", i))
			tc.change(&nk)
			before := countKeys(t, e)
			k, err := e.s.CreateKey(e.ctx, nk)
			wantErr(t, "CreateKey", err, tc.want)
			if tc.field != "" {
				wantField(t, "CreateKey", err, tc.field)
			}
			after := countKeys(t, e)
			switch {
			case err == nil && after != before+1:
				t.Fatalf("%d keys after a successful create, want %d", after, before+1)
			case err != nil && after != before:
				t.Fatalf("failed create left %d keys, want %d", after, before)
			case err == nil && k.State != store.KeyPending:
				t.Fatalf("new key is %s, want pending", k.State)
			}
		})
	}
}

// testDeleteKey: a pending key that never signed can be deleted, with its
// secret, and its selector is free again; a key that signed cannot.
func testDeleteKey(t *testing.T, e *env) {
	e.domain("del.example")
	k, err := e.s.CreateKey(e.ctx, e.newKey("del.example", "oops"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.AddDNSCheck(e.ctx, store.DNSCheck{KeyID: k.ID, Status: "not_found"}, 0); err != nil {
		t.Fatal(err)
	}
	if err := e.s.DeleteKey(e.ctx, k.ID); err != nil {
		t.Fatalf("DeleteKey of a pending key: %v", err)
	}
	if _, err := e.s.GetKey(e.ctx, k.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetKey after DeleteKey: %v, want ErrNotFound", err)
	}
	if _, err := e.s.SealedKey(e.ctx, k.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SealedKey after DeleteKey: %v, want ErrNotFound", err)
	}
	if err := e.s.DeleteKey(e.ctx, k.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DeleteKey twice: %v, want ErrNotFound", err)
	}
	if _, err := e.s.CreateKey(e.ctx, e.newKey("del.example", "oops")); err != nil {
		t.Fatalf("the selector of a deleted key is not free: %v", err)
	}

	active, err := e.s.CreateKey(e.ctx, e.newKey("del.example", "signed"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.SetKeyState(e.ctx, active.ID, store.KeyActive); err != nil {
		t.Fatal(err)
	}
	if err := e.s.DeleteKey(e.ctx, active.ID); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("DeleteKey of an active key: %v, want ErrConflict", err)
	}
	revoked, err := e.s.CreateKey(e.ctx, e.newKey("del.example", "revoked"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.SetKeyState(e.ctx, revoked.ID, store.KeyRevoked); err != nil {
		t.Fatal(err)
	}
	if err := e.s.DeleteKey(e.ctx, revoked.ID); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("DeleteKey of a revoked key: %v, want ErrConflict", err)
	}
}

func countKeys(t *testing.T, e *env) int {
	t.Helper()
	ks, err := e.s.ListKeys(e.ctx, store.KeyFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return len(ks)
}

func testKeyTransitions(t *testing.T, e *env) {
	// allowed is the key lifecycle, written out here rather than taken from
	// the store package, so that a change to either shows up as a failure.
	allowed := map[[2]store.KeyState]bool{
		{store.KeyPending, store.KeyActive}:   true,
		{store.KeyPending, store.KeyRevoked}:  true,
		{store.KeyActive, store.KeyRetired}:   true,
		{store.KeyActive, store.KeyRevoked}:   true,
		{store.KeyRetired, store.KeyRevoked}:  true,
		{store.KeyRevoked, store.KeyArchived}: true,
	}
	// pathTo is a valid way from pending to each state.
	pathTo := map[store.KeyState][]store.KeyState{
		store.KeyPending:  nil,
		store.KeyActive:   {store.KeyActive},
		store.KeyRetired:  {store.KeyActive, store.KeyRetired},
		store.KeyRevoked:  {store.KeyActive, store.KeyRetired, store.KeyRevoked},
		store.KeyArchived: {store.KeyActive, store.KeyRetired, store.KeyRevoked, store.KeyArchived},
	}
	e.domain("example.com")
	states := []store.KeyState{store.KeyPending, store.KeyActive, store.KeyRetired, store.KeyRevoked, store.KeyArchived}
	i := 0
	for _, from := range states {
		for _, to := range append(states, "bogus", "") {
			i++
			t.Run(fmt.Sprintf("%s to %s", from, to), func(t *testing.T) {
				e := e.with(t)
				k := e.key("example.com", fmt.Sprintf("t%d", i))
				e.setState(k.ID, pathTo[from]...)
				before, err := e.s.GetKey(e.ctx, k.ID)
				if err != nil {
					t.Fatal(err)
				}
				e.clk.Advance(time.Hour)
				at := e.clk.Now()
				got, err := e.s.SetKeyState(e.ctx, k.ID, to)
				switch {
				case to == "bogus" || to == "":
					wantField(t, "SetKeyState", err, "state")
				case allowed[[2]store.KeyState{from, to}]:
					if err != nil {
						t.Fatalf("SetKeyState: %v", err)
					}
				default:
					wantErr(t, "SetKeyState", err, store.ErrConflict)
				}
				after, gerr := e.s.GetKey(e.ctx, k.ID)
				if gerr != nil {
					t.Fatal(gerr)
				}
				if err != nil {
					if !keyEqual(after, before) {
						t.Fatalf("refused change altered the key: %+v, was %+v", after, before)
					}
					return
				}
				if !keyEqual(got, after) || after.State != to {
					t.Fatalf("SetKeyState = %+v, stored %+v, want state %s", got, after, to)
				}
				stamp := map[store.KeyState]time.Time{store.KeyActive: after.Activated, store.KeyRetired: after.Retired,
					store.KeyRevoked: after.Revoked, store.KeyArchived: after.Archived}[to]
				if !stamp.Equal(at) {
					t.Fatalf("time of reaching %s = %v, want %v", to, stamp, at)
				}
				// Earlier steps keep their times.
				if !after.Created.Equal(before.Created) || (to != store.KeyActive && !after.Activated.Equal(before.Activated)) {
					t.Fatalf("earlier times changed: %+v, was %+v", after, before)
				}
			})
		}
	}
	_, err := e.s.SetKeyState(e.ctx, 1_000_000, store.KeyActive)
	wantErr(t, "SetKeyState missing key", err, store.ErrNotFound)
}

func testKeyStateRace(t *testing.T, e *env) {
	e.domain("example.com")
	k := e.key("example.com", "race")
	const n = 8
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		ok, confl int
	)
	for range n {
		wg.Go(func() {
			_, err := e.s.SetKeyState(e.ctx, k.ID, store.KeyActive)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, store.ErrConflict):
				confl++
			default:
				t.Errorf("SetKeyState: %v", err)
			}
		})
	}
	wg.Wait()
	if ok != 1 || confl != n-1 {
		t.Fatalf("%d activations succeeded and %d conflicted, want 1 and %d", ok, confl, n-1)
	}
}

func testListKeys(t *testing.T, e *env) {
	e.domain("a.example")
	e.domain("b.example")
	e.domain("sub.a.example")
	a1 := e.key("a.example", "a1")
	a2 := e.key("a.example", "a2")
	a3 := e.key("a.example", "a3")
	b1 := e.key("b.example", "b1")
	s1 := e.key("sub.a.example", "s1")
	e.setState(a1.ID, store.KeyActive)
	e.setState(a2.ID, store.KeyActive, store.KeyRetired)
	e.setState(a3.ID, store.KeyActive)
	e.setState(b1.ID, store.KeyActive)
	e.setState(s1.ID, store.KeyActive)
	a4 := e.key("a.example", "a4")

	ids := func(ks []store.Key, err error) []int64 {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, k := range ks {
			out = append(out, k.ID)
		}
		return out
	}
	tests := []struct {
		name string
		got  []int64
		want []int64
	}{
		{"active a", ids(e.s.ActiveKeys(e.ctx, "a.example")), []int64{a1.ID, a3.ID}},
		{"active a, other spelling", ids(e.s.ActiveKeys(e.ctx, "A.Example.")), []int64{a1.ID, a3.ID}},
		{"active sub-domain is its own", ids(e.s.ActiveKeys(e.ctx, "sub.a.example")), []int64{s1.ID}},
		{"active unknown domain", ids(e.s.ActiveKeys(e.ctx, "c.example")), nil},
		{"all", ids(e.s.ListKeys(e.ctx, store.KeyFilter{})), []int64{a1.ID, a2.ID, a3.ID, a4.ID, b1.ID, s1.ID}},
		{"domain a", ids(e.s.ListKeys(e.ctx, store.KeyFilter{Domain: "a.example"})), []int64{a1.ID, a2.ID, a3.ID, a4.ID}},
		{"pending anywhere", ids(e.s.ListKeys(e.ctx, store.KeyFilter{States: []store.KeyState{store.KeyPending}})), []int64{a4.ID}},
		{"a, retired or pending", ids(e.s.ListKeys(e.ctx, store.KeyFilter{Domain: "a.example",
			States: []store.KeyState{store.KeyRetired, store.KeyPending}})), []int64{a2.ID, a4.ID}},
	}
	for _, tc := range tests {
		if !slices.Equal(tc.got, tc.want) {
			t.Errorf("%s: keys %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	_, err := e.s.ListKeys(e.ctx, store.KeyFilter{States: []store.KeyState{"bogus"}})
	wantErr(t, "ListKeys bogus state", err, store.ErrInvalid)
}
