package lifecycle_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/store"
)

// TestSumUp: one status per domain, its worst current problem (issue
// 12.3, 12.7). "Mail signed now fails DKIM" only when no active key's
// record was last seen right: a receiver accepts one valid signature
// among several (RFC 6376 §6.1).
func TestSumUp(t *testing.T) {
	now := start.Add(30 * 24 * time.Hour)
	var p lifecycle.Settings
	ok := &store.DNSCheck{Status: "match", OK: true, Time: now}
	gone := &store.DNSCheck{Status: "not_found", Time: now}
	cut := &store.DNSCheck{Status: "truncated", Time: now}
	temp := &store.DNSCheck{Status: "temporary_failure", Time: now}
	key := func(id int64, sel string, state store.KeyState) store.Key {
		k := store.Key{ID: id, Domain: domain, Selector: sel, Algorithm: keys.RSA, Bits: 2048, State: state,
			Created: now.Add(-time.Hour), Activated: now.Add(-time.Hour)}
		if state == store.KeyRetired {
			k.Retired = now
		}
		return k
	}
	type kc struct {
		k    store.Key
		last *store.DNSCheck
	}
	for _, tc := range []struct {
		name  string
		keys  []kc
		level lifecycle.Level
		want  string
	}{
		{"valid: one active key, published", []kc{{key(1, "mail2026", store.KeyActive), ok}}, lifecycle.LevelOK, "Mail is signed with mail2026, whose record DNS serves"},
		{"record missing: red", []kc{{key(1, "mail2026", store.KeyActive), gone}}, lifecycle.LevelBad, "Mail signed now fails DKIM: the record of mail2026 is missing"},
		{"record cut short: red", []kc{{key(1, "mail2026", store.KeyActive), cut}}, lifecycle.LevelBad, "the record of mail2026 is cut short"},
		{"another active key verifies: amber, not a failure", []kc{{key(1, "mail2026", store.KeyActive), gone}, {key(2, "ed", store.KeyActive), ok}},
			lifecycle.LevelWarn, "Signatures made with mail2026 fail, but mail still verifies with ed"},
		{"forced activation, never checked: amber", []kc{{key(1, "mail2026", store.KeyActive), nil}}, lifecycle.LevelWarn, "mail2026 signs, but its record was never checked"},
		{"DNS did not answer: amber", []kc{{key(1, "mail2026", store.KeyActive), temp}}, lifecycle.LevelWarn, "DNS did not answer"},
		{"no key at all", nil, lifecycle.LevelWarn, "No active key: mail goes out unsigned"},
		{"only a pending key", []kc{{key(1, "mail2026", store.KeyPending), nil}}, lifecycle.LevelWarn, "until a pending key is published and active"},
		{"weak key: amber", []kc{{func() store.Key { k := key(1, "mail2026", store.KeyActive); k.Bits = 1024; return k }(), ok}}, lifecycle.LevelWarn, "Key mail2026: RSA 1024 is weak"},
		{"published pending key: a step to take", []kc{{key(1, "mail2026", store.KeyActive), ok}, {key(2, "202612", store.KeyPending), ok}},
			lifecycle.LevelInfo, "Key 202612: its record is published everywhere: start signing with it"},
		{"a retired key's missing record is not a failure", []kc{{key(1, "old", store.KeyRetired), gone}, {key(2, "new", store.KeyActive), ok}}, lifecycle.LevelOK, "signed with new"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sts []lifecycle.Status
			for _, c := range tc.keys {
				sts = append(sts, p.Status(c.k, c.last, false, now))
			}
			ds := lifecycle.SumUp(domain, sts)
			if ds.Level != tc.level || !strings.Contains(ds.Message, tc.want) {
				t.Fatalf("%s %q, want %s %q", ds.Level, ds.Message, tc.level, tc.want)
			}
		})
	}
}

// TestAfterRotate: what the Rotate page and "dkimd key rotate" promise
// depends on the domain's auto-activate setting (issue 12.5).
func TestAfterRotate(t *testing.T) {
	k := store.Key{Selector: "202612"}
	old := &store.Key{Selector: "mail2026", State: store.KeyActive}
	auto := lifecycle.AfterRotate(k, old, true, 0)
	for _, want := range []string{"dkimd starts signing with it by itself within about 5 minutes", "mail2026 retires in the same step"} {
		if !strings.Contains(auto, want) {
			t.Errorf("auto-activate: %q lacks %q", auto, want)
		}
	}
	manual := lifecycle.AfterRotate(k, old, false, 0)
	for _, want := range []string{"activate it yourself once DNS serves it", "when 202612 is activated, mail2026 retires"} {
		if !strings.Contains(manual, want) {
			t.Errorf("manual: %q lacks %q", manual, want)
		}
	}
	if strings.Contains(manual, "by itself within") {
		t.Errorf("manual: %q promises an activation that does not happen", manual)
	}
	act := lifecycle.Settings{}.AfterActivate(k, old, start)
	if !strings.Contains(act, "mail2026, which it replaces, retires in the same step") || !strings.Contains(act, "safe to revoke from 20") {
		t.Errorf("activate: %q", act)
	}
	if act := (lifecycle.Settings{}).AfterActivate(k, nil, start); strings.Contains(act, "retires") {
		t.Errorf("activate with nothing replaced: %q", act)
	}
}

// TestActivateKeepsItsCheck (issue 12.7): the DNS check an activation
// makes is kept in the key's history, so a key just activated after its
// record was seen is not reported as "never checked".
func TestActivateKeepsItsCheck(t *testing.T) {
	w := newWorld(t, worldOptions{})
	k := w.generate("seen", keys.Spec{Algorithm: keys.Ed25519})
	w.publishKey(k)
	if _, err := w.lc.Activate(w.ctx, cli, w.key("seen"), false); err != nil {
		t.Fatal(err)
	}
	if c := lastCheck(t, w, "seen"); !c.OK {
		t.Fatalf("the activation's check is not kept: %+v", c)
	}
	if st := status(t, w, "seen"); st.Level != lifecycle.LevelOK {
		t.Fatalf("status after activation: %s %q, want ok", st.Level, st.Headline)
	}
}
