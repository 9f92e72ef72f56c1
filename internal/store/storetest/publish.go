package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/store"
)

// testDomainPublish checks the publishing settings of a domain: they round
// trip, a delegation label is unique, and what a mode needs is required.
func testDomainPublish(t *testing.T, e *env) {
	e.domain("example.com")
	d := store.Domain{Name: "example.com", Publish: store.PublishDelegated, DelegatedName: "Abc123.dkim.provider.example.", RotateEvery: 48 * time.Hour}
	got, err := e.s.UpdateDomain(e.ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if got.Publish != store.PublishDelegated || got.DelegatedName != "abc123.dkim.provider.example" || got.RotateEvery != 48*time.Hour {
		t.Fatalf("after UpdateDomain: %+v", got)
	}
	if again, err := e.s.GetDomain(e.ctx, "example.com"); err != nil || again != got {
		t.Fatalf("GetDomain: %+v %v, want %+v", again, err, got)
	}
	if plain := e.domain("example.org"); plain.Publish != store.PublishManual {
		t.Errorf("a new domain publishes %q, want manual", plain.Publish)
	}
	if _, err := e.s.UpdateDomain(e.ctx, store.Domain{Name: "example.org", Publish: store.PublishDelegated, DelegatedName: "abc123.dkim.provider.example"}); !errors.Is(err, store.ErrExists) && !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrInvalid) {
		t.Errorf("a second domain with the same label: %v", err)
	}
	up := store.Domain{Name: "example.org", Publish: store.PublishUpdate, UpdateServer: "192.0.2.1:53", TSIGName: "dkimd-key", TSIGSealed: "\x00sealed\xff"}
	got, err = e.s.UpdateDomain(e.ctx, up)
	if err != nil {
		t.Fatal(err)
	}
	if got.TSIGSealed != up.TSIGSealed || got.UpdateServer != up.UpdateServer || got.TSIGName != up.TSIGName {
		t.Errorf("update settings: %+v", got)
	}
	for name, bad := range map[string]store.Domain{
		"unknown mode":            {Name: "example.org", Publish: "carrier-pigeon"},
		"delegated, no label":     {Name: "example.org", Publish: store.PublishDelegated},
		"name not <label>.<zone>": {Name: "example.org", Publish: store.PublishDelegated, DelegatedName: "a_b.example"},
		"update, no server":       {Name: "example.org", Publish: store.PublishUpdate, TSIGName: "k", TSIGSealed: "x"},
		"update, no TSIG name":    {Name: "example.org", Publish: store.PublishUpdate, UpdateServer: "h:53", TSIGSealed: "x"},
		"update, no TSIG key":     {Name: "example.org", Publish: store.PublishUpdate, UpdateServer: "h:53", TSIGName: "k"},
		"negative rotate every":   {Name: "example.org", RotateEvery: -1},
	} {
		if _, err := e.s.UpdateDomain(e.ctx, bad); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

// testSelectorReuse checks that a selector comes back, when asked for,
// only once every key that had it is archived, and that KeyBySelector then
// finds the live key.
func testSelectorReuse(t *testing.T, e *env) {
	e.domain("example.com")
	old := e.key("example.com", "s1")
	nk := e.newKey("example.com", "s1")
	if _, err := e.s.CreateKey(e.ctx, nk); !errors.Is(err, store.ErrExists) {
		t.Fatalf("selector of a pending key without ReuseSelector: %v", err)
	}
	nk.ReuseSelector = true
	if _, err := e.s.CreateKey(e.ctx, nk); !errors.Is(err, store.ErrExists) {
		t.Fatalf("selector of a pending key with ReuseSelector: %v", err)
	}
	for _, to := range []store.KeyState{store.KeyRevoked, store.KeyArchived} {
		if _, err := e.s.SetKeyState(e.ctx, old.ID, to); err != nil {
			t.Fatal(err)
		}
	}
	nk.ReuseSelector = false
	if _, err := e.s.CreateKey(e.ctx, nk); !errors.Is(err, store.ErrExists) {
		t.Fatalf("selector of an archived key without ReuseSelector: %v (selectors are never reused unless asked)", err)
	}
	nk.ReuseSelector = true
	k, err := e.s.CreateKey(e.ctx, nk)
	if err != nil {
		t.Fatalf("selector of an archived key with ReuseSelector: %v", err)
	}
	found, err := e.s.KeyBySelector(e.ctx, "example.com", "s1")
	if err != nil || found.ID != k.ID {
		t.Fatalf("KeyBySelector finds %+v %v, want the new key %d", found, err, k.ID)
	}
	if _, err := e.s.SetKeyState(e.ctx, k.ID, store.KeyActive); err != nil {
		t.Fatal(err)
	}
	if ks, err := e.s.ListKeys(e.ctx, store.KeyFilter{Domain: "example.com"}); err != nil || len(ks) != 2 {
		t.Fatalf("ListKeys: %d keys, %v", len(ks), err)
	}
}
