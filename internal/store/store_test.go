package store

import (
	"bytes"
	"errors"
	"net/netip"
	"slices"
	"testing"
)

func TestFieldError(t *testing.T) {
	err := error(&FieldError{Field: "selector", Err: ErrReauthSelector})
	if !errors.Is(err, ErrInvalid) || !errors.Is(err, ErrReauthSelector) || errors.Is(err, ErrNotFound) {
		t.Fatalf("FieldError classification wrong: %v", err)
	}
	if got := err.Error(); got != "store: invalid selector: DKIM signing is unavailable for re-authenticating users" {
		t.Fatalf("Error() = %q", got)
	}
}

func TestKeyAssociatedData(t *testing.T) {
	base := KeyAssociatedData("example.com", "s1")
	tests := []struct {
		domain, selector string
		same             bool
	}{
		{"EXAMPLE.com.", "S1", true},
		{"example.com", "s2", false},
		{"example.org", "s1", false},
		{"sub.example.com", "s1", false},
		// The separator keeps "a.b"+"c" apart from "a"+"b.c".
		{"example.com\x00s1", "", false},
	}
	for _, tc := range tests {
		if got := KeyAssociatedData(tc.domain, tc.selector); bytes.Equal(got, base) != tc.same {
			t.Errorf("KeyAssociatedData(%q, %q) same as example.com/s1: %v, want %v", tc.domain, tc.selector, !tc.same, tc.same)
		}
	}
	if !bytes.Equal(Key{Domain: "example.com", Selector: "s1"}.AssociatedData(), base) {
		t.Error("Key.AssociatedData differs from KeyAssociatedData")
	}
}

func TestNormalizeNetworks(t *testing.T) {
	in := []netip.Prefix{
		netip.MustParsePrefix("192.0.2.77/24"),
		netip.MustParsePrefix("::ffff:198.51.100.7/128"),
		netip.MustParsePrefix("192.0.2.0/24"),
		netip.MustParsePrefix("2001:db8::1/32"),
	}
	got, err := normalizeNetworks(in)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{
		netip.MustParsePrefix("192.0.2.0/24"),
		netip.MustParsePrefix("198.51.100.7/32"),
		netip.MustParsePrefix("2001:db8::/32"),
	}
	if !slices.Equal(got, want) {
		t.Fatalf("normalizeNetworks = %v, want %v", got, want)
	}
	if _, err := normalizeNetworks([]netip.Prefix{netip.MustParsePrefix("::ffff:0:0/95")}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("short IPv4-mapped prefix: %v, want ErrInvalid", err)
	}
}

func TestKeyStateNext(t *testing.T) {
	// Every pair, against the lifecycle written out.
	want := map[KeyState][]KeyState{
		KeyPending:  {KeyActive, KeyRevoked},
		KeyActive:   {KeyRetired, KeyRevoked},
		KeyRetired:  {KeyRevoked},
		KeyRevoked:  {KeyArchived},
		KeyArchived: nil,
	}
	for _, from := range KeyStates() {
		for _, to := range KeyStates() {
			allowed := slices.Contains(want[from], to)
			err := CheckTransition(from, to)
			if allowed != (err == nil) || (!allowed && !errors.Is(err, ErrConflict)) {
				t.Errorf("%s → %s: err %v, allowed %v", from, to, err, allowed)
			}
		}
	}
	if err := CheckTransition(KeyPending, "live"); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown state: %v, want ErrInvalid", err)
	}
}
