package lifecycle_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/store"
)

func TestPolicyStatus(t *testing.T) {
	now := start.Add(365 * 24 * time.Hour)
	day := 24 * time.Hour
	valid := store.Key{ID: 1, Domain: domain, Selector: "s", Algorithm: keys.RSA, Bits: 2048, State: store.KeyActive,
		Created: now.Add(-10 * day), Activated: now.Add(-10 * day)}
	ok := &store.DNSCheck{Status: "match", OK: true}
	gone := &store.DNSCheck{Status: "not_found"}
	temp := &store.DNSCheck{Status: "temporary_failure"}
	// One change from the valid case per row.
	for _, tc := range []struct {
		name   string
		change func(k *store.Key)
		last   *store.DNSCheck
		p      lifecycle.Settings
		auto   bool
		want   []string
		alert  bool
	}{
		{"valid active key", nil, ok, lifecycle.Settings{}, false, nil, false},
		{"RFC 8301: RSA 1024 is weak", func(k *store.Key) { k.Bits = 1024 }, ok, lifecycle.Settings{}, false, []string{lifecycle.WarnWeak}, false},
		{"old: active past 180 days", func(k *store.Key) { k.Activated = now.Add(-181 * day) }, ok, lifecycle.Settings{}, false, []string{lifecycle.WarnOld}, false},
		{"old: custom age", nil, ok, lifecycle.Settings{MaxAge: 5 * day}, false, []string{lifecycle.WarnOld}, false},
		{"record gone", nil, gone, lifecycle.Settings{}, false, []string{lifecycle.WarnRecord}, true},
		{"DNS down is no alert", nil, temp, lifecycle.Settings{}, false, nil, false},
		{"pending and published, manual domain", func(k *store.Key) { k.State, k.Activated = store.KeyPending, time.Time{} }, ok, lifecycle.Settings{}, false, []string{lifecycle.WarnReady}, false},
		{"pending and published, automatic domain", func(k *store.Key) { k.State, k.Activated = store.KeyPending, time.Time{} }, ok, lifecycle.Settings{}, true, nil, false},
		{"retired, too early", func(k *store.Key) { k.State, k.Retired = store.KeyRetired, now.Add(-11*day) }, ok, lifecycle.Settings{}, false, nil, false},
		{"retired, x= and queue passed", func(k *store.Key) { k.State, k.Retired = store.KeyRetired, now.Add(-12*day) }, ok, lifecycle.Settings{}, false, []string{lifecycle.WarnSafeToRevoke}, false},
		{"retired, shorter lifetimes", func(k *store.Key) { k.State, k.Retired = store.KeyRetired, now.Add(-2*day) }, ok,
			lifecycle.Settings{SignatureLifetime: day, QueueLifetime: day}, false, []string{lifecycle.WarnSafeToRevoke}, false},
		{"retired weak key: no weak warning", func(k *store.Key) { k.State, k.Retired, k.Bits = store.KeyRetired, now, 1024 }, ok, lifecycle.Settings{}, false, nil, false},
		{"revoked, empty p= served", func(k *store.Key) { k.State = store.KeyRevoked }, ok, lifecycle.Settings{}, false, []string{lifecycle.WarnReadyToArchive}, false},
		{"revoked after the last check: that check looked for the key", func(k *store.Key) { k.State, k.Revoked = store.KeyRevoked, now.Add(-time.Minute) },
			&store.DNSCheck{Status: "match", OK: true, Time: now.Add(-time.Hour)}, lifecycle.Settings{}, false, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := valid
			if tc.change != nil {
				tc.change(&k)
			}
			st := tc.p.Status(k, tc.last, tc.auto, now)
			var got []string
			for _, w := range st.Warnings {
				got = append(got, w.Code)
			}
			if !slices.Equal(got, tc.want) || st.Alert != tc.alert {
				t.Fatalf("warnings %v alert %v, want %v %v", got, st.Alert, tc.want, tc.alert)
			}
			if k.State == store.KeyRetired {
				lt := cmpOr(tc.p.SignatureLifetime, lifecycle.DefaultSignatureLifetime) + cmpOr(tc.p.QueueLifetime, lifecycle.DefaultQueueLifetime)
				if !st.SafeToRevoke.Equal(k.Retired.Add(lt)) {
					t.Fatalf("safe to revoke %v, want %v", st.SafeToRevoke, k.Retired.Add(lt))
				}
			} else if !st.SafeToRevoke.IsZero() {
				t.Fatalf("safe to revoke %v for a %s key", st.SafeToRevoke, k.State)
			}
		})
	}
}

func cmpOr(a, b time.Duration) time.Duration {
	if a != 0 {
		return a
	}
	return b
}

func TestDefaultSelector(t *testing.T) {
	at := time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		taken []string
		want  string
	}{
		{nil, "s202611"},
		{[]string{"s202611"}, "s202611-2"},
		{[]string{"s202611", "s202611-2"}, "s202611-3"},
	} {
		got, err := lifecycle.DefaultSelector(context.Background(), at, func(_ context.Context, s string) (bool, error) {
			return slices.Contains(tc.taken, s), nil
		})
		if err != nil || got != tc.want {
			t.Errorf("taken %v: %q %v, want %q", tc.taken, got, err, tc.want)
		}
		if _, err := store.NormalizeSelector(got); err != nil {
			t.Errorf("%q is no valid selector: %v", got, err)
		}
	}
}
