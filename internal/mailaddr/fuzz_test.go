package mailaddr

import (
	"errors"
	"strings"
	"testing"

	"github.com/dkimd/dkimd/internal/dkim"
)

// FuzzParseDomain: no panic; a parsed domain is canonical (re-parsing its
// String and its Unicode form gives it back); a failure is classified.
func FuzzParseDomain(f *testing.F) {
	for _, s := range []string{"example.com", "Bücher.Example.", "xn--bcher-kva.example", "a..b", "192.0.2.1",
		"[::1]", "localhost", "_dmarc.example.com", "xn--zz.example", strings.Repeat("a.", 130) + "com", "ß.de", "\u200d.example"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDomain(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidDomain) || !d.IsZero() {
				t.Fatalf("ParseDomain(%q): %v, %q", s, err, d)
			}
			return
		}
		if d.IsZero() {
			t.Fatalf("ParseDomain(%q) gave the zero Domain", s)
		}
		again, err := ParseDomain(d.String())
		if err != nil || again != d {
			t.Fatalf("%q parsed to %q, which re-parses to %q, %v", s, d, again, err)
		}
		if u, err := ParseDomain(d.Unicode()); err != nil || u != d {
			t.Fatalf("%q parsed to %q, whose Unicode %q re-parses to %q, %v", s, d, d.Unicode(), u, err)
		}
		if !dkim.ValidDomain(d.String()) {
			t.Fatalf("%q parsed to %q, which the DKIM library refuses as d=", s, d)
		}
		if d.String() != strings.ToLower(d.String()) || strings.HasSuffix(d.String(), ".") || len(d.String()) > MaxDomainLen {
			t.Fatalf("%q parsed to non-canonical %q", s, d)
		}
	})
}

// FuzzParseAddress: no panic; a parsed address re-parses to itself; a
// failure is one of the three classes.
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"bob@example.net", "Bob@Example.NET.", "u%v@example.net", "a@b@c.example",
		"u@[192.0.2.1]", "u@[IPv6:2001:db8::1]", "u@[192.0.2]", "@x", "x@", "a..b@example.net"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, lit bool) {
		opts := AddressOptions{IPLiterals: lit}
		a, err := ParseAddress(s, opts)
		if err != nil {
			if !errors.Is(err, ErrAddressSyntax) && !errors.Is(err, ErrAddressRoute) && !errors.Is(err, ErrAddressLiteral) {
				t.Fatalf("ParseAddress(%q): unclassified %v", s, err)
			}
			return
		}
		again, err := ParseAddress(a.String(), opts)
		if err != nil || again != a {
			t.Fatalf("%q parsed to %q, which re-parses to %q, %v", s, a, again, err)
		}
		if _, isLit := a.IPLiteral(); isLit == !a.Domain().IsZero() {
			t.Fatalf("%q: literal %v but domain %q", s, isLit, a.Domain())
		}
	})
}

// FuzzParseFromHeader: no panic; a success gives a canonical domain; a
// failure is one of the three classes.
func FuzzParseFromHeader(f *testing.F) {
	for _, s := range []string{"alice@example.com", `"Doe, A" <a@example.com>`, "=?utf-8?q?x?= <a@MÜNCHEN.de>",
		"Team: a@example.com;", "a@example.com, b@example.org", "Alice\r\n <alice@example.com>", "a@[192.0.2.1]", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseFromHeader(s)
		if err != nil {
			if !errors.Is(err, ErrFromMissing) && !errors.Is(err, ErrFromMultiple) && !errors.Is(err, ErrFromInvalid) {
				t.Fatalf("ParseFromHeader(%q): unclassified %v", s, err)
			}
			return
		}
		if d, err := ParseDomain(a.Domain().String()); err != nil || d != a.Domain() {
			t.Fatalf("ParseFromHeader(%q) gave domain %q, which re-parses to %q, %v", s, a.Domain(), d, err)
		}
	})
}
