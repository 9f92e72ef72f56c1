package storetest

import (
	"context"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/auth"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/store"
)

// Factory opens a fresh, empty store that takes its time from now. The
// store is closed by the suite (register nothing for it with t.Cleanup
// unless Close is idempotent).
type Factory func(t *testing.T, now func() time.Time) store.Store

// Run runs the whole suite against the backend open makes.
func Run(t *testing.T, open Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, e *env)
	}{
		{"Domains", testDomains},
		{"DomainNames", testDomainNames},
		{"DomainOversign", testDomainOversign},
		{"RemoveDomain", testRemoveDomain},
		{"Keys", testKeys},
		{"CreateKeyErrors", testCreateKeyErrors},
		{"PKCS11Keys", testPKCS11Keys},
		{"KeyTransitions", testKeyTransitions},
		{"KeyStateRace", testKeyStateRace},
		{"ListKeys", testListKeys},
		{"DeleteKey", testDeleteKey},
		{"KeyReplaces", testKeyReplaces},
		{"SetKeyStates", testSetKeyStates},
		{"RotationRace", testRotationRace},
		{"DNSChecks", testDNSChecks},
		{"Users", testUsers},
		{"UserErrors", testUserErrors},
		{"UserByIP", testUserByIP},
		{"NetworkClaims", testNetworkClaims},
		{"Accounts", testAccounts},
		{"Tokens", testTokens},
		{"Audit", testAudit},
		{"AuditAppendOnly", testAuditAppendOnly},
		{"ParallelWriters", testParallelWriters},
		{"MasterKeyCheck", testMasterKeyCheck},
		{"DomainPublish", testDomainPublish},
		{"SelectorReuse", testSelectorReuse},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
			s := open(t, clk.Now)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			mk, err := keys.NewMasterKey(nil)
			if err != nil {
				t.Fatal(err)
			}
			e := &env{t: t, s: s, clk: clk, ctx: context.Background(), mk: mk}
			tc.fn(t, e)
			if err := s.Check(e.ctx); err != nil {
				t.Errorf("Check after test: %v", err)
			}
		})
	}
}

// Clock is a settable clock for tests, safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock gives a clock standing at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now gives the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is what every test gets.
type env struct {
	t   *testing.T
	s   store.Store
	clk *Clock
	ctx context.Context
	mk  *keys.MasterKey
}

// with gives a copy of e for a subtest, so that helpers fail the subtest.
func (e *env) with(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

func (e *env) master() *keys.MasterKey { return e.mk }

func (e *env) domain(name string) store.Domain {
	e.t.Helper()
	d, err := e.s.AddDomain(e.ctx, store.Domain{Name: name})
	if err != nil {
		e.t.Fatalf("AddDomain(%s): %v", name, err)
	}
	return d
}

// NewKey makes a real key pair of the given spec and the store.NewKey that
// holds it, sealed under mk for its domain and selector. Other suites (the
// policy tests, a backend's crash test) use it too.
func NewKey(mk *keys.MasterKey, domain, selector string, spec keys.Spec) (store.NewKey, error) {
	k, err := keys.Generate(nil, spec)
	if err != nil {
		return store.NewKey{}, err
	}
	spec, err = keys.SpecOf(k)
	if err != nil {
		return store.NewKey{}, err
	}
	var pub []byte
	switch p := k.Public().(type) {
	case ed25519.PublicKey:
		pub = p // RFC 8463 §4: the raw key
	case *rsa.PublicKey:
		if pub, err = x509.MarshalPKIXPublicKey(p); err != nil {
			return store.NewKey{}, err
		}
	default:
		return store.NewKey{}, fmt.Errorf("unexpected key type %T", p)
	}
	sealed, err := mk.SealSigner(k, store.KeyAssociatedData(domain, selector))
	if err != nil {
		return store.NewKey{}, err
	}
	return store.NewKey{Domain: domain, Selector: selector, Algorithm: spec.Algorithm, Bits: spec.Bits,
		PublicKey: pub, Sealed: sealed}, nil
}

func (e *env) newKey(domain, selector string) store.NewKey {
	e.t.Helper()
	nk, err := NewKey(e.master(), domain, selector, keys.Spec{Algorithm: keys.Ed25519})
	if err != nil {
		e.t.Fatal(err)
	}
	return nk
}

func (e *env) key(domain, selector string) store.Key {
	e.t.Helper()
	k, err := e.s.CreateKey(e.ctx, e.newKey(domain, selector))
	if err != nil {
		e.t.Fatalf("CreateKey(%s, %s): %v", domain, selector, err)
	}
	return k
}

func (e *env) setState(id int64, states ...store.KeyState) store.Key {
	e.t.Helper()
	var k store.Key
	for _, s := range states {
		var err error
		if k, err = e.s.SetKeyState(e.ctx, id, s); err != nil {
			e.t.Fatalf("SetKeyState(%d, %s): %v", id, s, err)
		}
	}
	return k
}

// hash is a cheap but real argon2id hash: the store checks its format.
func hash(t *testing.T, pw string) string {
	t.Helper()
	h, err := auth.HashPasswordParams(pw, auth.Params{Memory: 64, Time: 1, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// wantErr fails unless err matches want (nil meaning no error).
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("%s: unexpected error %v", what, err)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

// wantField fails unless err is a *store.FieldError for field.
func wantField(t *testing.T, what string, err error, field string) {
	t.Helper()
	var fe *store.FieldError
	if !errors.As(err, &fe) || !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("%s: error %v, want a store.FieldError for %s", what, err, field)
	}
	if fe.Field != field {
		t.Fatalf("%s: error names field %q, want %q (%v)", what, fe.Field, field, err)
	}
}
