package mailaddr

import (
	"errors"
	"strings"
	"testing"
)

func TestParseAddress(t *testing.T) {
	lit := AddressOptions{IPLiterals: true}
	tests := []struct {
		name string
		in   string
		opts AddressOptions
		want string // String() when err is nil
		err  error
	}{
		{"valid", "bob@example.net", AddressOptions{}, "bob@example.net", nil},
		{"domain made canonical, local part kept (RFC 5321 §2.4)", "Bob@Example.NET.", AddressOptions{}, "Bob@example.net", nil},
		{"atext specials in the local part (RFC 5322 §3.2.3)", "a.b+c_d-e'f=g@example.net", AddressOptions{}, "a.b+c_d-e'f=g@example.net", nil},
		{"local part of 64 (RFC 5321 §4.5.3.1.1)", strings.Repeat("a", 64) + "@example.net", AddressOptions{}, strings.Repeat("a", 64) + "@example.net", nil},
		{"IPv4 literal allowed (RFC 5321 §4.1.3)", "u@[192.0.2.1]", lit, "u@[192.0.2.1]", nil},
		{"IPv6 literal allowed (RFC 5321 §4.1.3)", "u@[IPv6:2001:db8::1]", lit, "u@[IPv6:2001:db8::1]", nil},

		{"no domain", "bob@", AddressOptions{}, "", ErrAddressSyntax},
		{"no local part", "@example.net", AddressOptions{}, "", ErrAddressSyntax},
		{"no @ (RFC 5321 §4.1.2 Mailbox)", "bob", AddressOptions{}, "", ErrAddressSyntax},
		{"percent hack (RFC 1123 §5.2.16)", "u%victim.example@example.net", AddressOptions{}, "", ErrAddressRoute},
		{"bang path", "host!u@example.net", AddressOptions{}, "", ErrAddressRoute},
		{"quoted @ in the local part", "a@b@example.net", AddressOptions{}, "", ErrAddressRoute},
		{"local part with space (quoted-string, RFC 5321 §4.1.2)", "a b@example.net", AddressOptions{}, "", ErrAddressSyntax},
		{"local part with two dots", "a..b@example.net", AddressOptions{}, "", ErrAddressSyntax},
		{"local part of 65 (RFC 5321 §4.5.3.1.1)", strings.Repeat("a", 65) + "@example.net", AddressOptions{}, "", ErrAddressSyntax},
		{"IP literal not allowed", "u@[192.0.2.1]", AddressOptions{}, "", ErrAddressLiteral},
		{"bad IP literal", "u@[192.0.2]", lit, "", ErrAddressSyntax},
		{"unclosed IP literal", "u@[192.0.2.1", lit, "", ErrAddressSyntax},
		{"IPv6 zone", "u@[IPv6:fe80::1%eth0]", lit, "", ErrAddressSyntax},
		{"non-ASCII domain without SMTPUTF8 (RFC 6531)", "u@bücher.example", AddressOptions{}, "", ErrAddressSyntax},
		{"single-label domain", "u@localhost", AddressOptions{}, "", ErrSingleLabel},
		{"IP address as domain", "u@192.0.2.1", AddressOptions{}, "", ErrIPAddress},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ParseAddress(tt.in, tt.opts)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("ParseAddress(%q) = %q, %v; want %v", tt.in, a, err, tt.err)
				}
				return
			}
			if err != nil || a.String() != tt.want {
				t.Fatalf("ParseAddress(%q) = %q, %v; want %q", tt.in, a, err, tt.want)
			}
		})
	}
}

func TestAddressParts(t *testing.T) {
	a, err := ParseAddress("Bob@Bücher.example", AddressOptions{})
	if err == nil {
		t.Fatalf("non-ASCII domain accepted as %q", a)
	}
	a, err = ParseAddress("Bob@XN--BCHER-KVA.example", AddressOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a.Local() != "Bob" || a.Domain().String() != "xn--bcher-kva.example" {
		t.Errorf("parts %q %q", a.Local(), a.Domain())
	}
	if _, ok := a.IPLiteral(); ok {
		t.Error("a domain address claims an IP literal")
	}
	a, err = ParseAddress("u@[IPv6:2001:DB8::1]", AddressOptions{IPLiterals: true})
	if err != nil {
		t.Fatal(err)
	}
	if ip, ok := a.IPLiteral(); !ok || ip.String() != "2001:db8::1" || !a.Domain().IsZero() {
		t.Errorf("literal %v %v, domain %q", ip, ok, a.Domain())
	}
}

func TestParseFromHeader(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  string // the domain when err is nil
		err   error
	}{
		{"bare address (RFC 5322 §3.4.1 addr-spec)", "alice@example.com", "example.com", nil},
		{"name-addr (RFC 5322 §3.4)", "Alice <alice@example.com>", "example.com", nil},
		{"domain in upper case", "ALICE@EXAMPLE.COM", "example.com", nil},
		{"IDN domain", "a@MÜNCHEN.de", "xn--mnchen-3ya.de", nil},
		{"trailing comment (RFC 5322 §3.2.2)", "alice@example.com (Alice)", "example.com", nil},
		{"quoted display name with comma", `"Doe, Alice" <alice@example.com>`, "example.com", nil},
		{"encoded word (RFC 2047)", "=?utf-8?q?Al=C3=AFce?= <alice@example.com>", "example.com", nil},
		{"folded (RFC 5322 §2.2.3)", "Alice\r\n <alice@example.com>", "example.com", nil},
		{"group of one (RFC 5322 §3.4)", "Team: alice@example.com;", "example.com", nil},

		{"empty", "", "", ErrFromMissing},
		{"white space", " \r\n ", "", ErrFromMissing},
		{"empty group", "Team: ;", "", ErrFromMissing},
		{"two mailboxes (RFC 5322 §3.6.2 allows, dkimd does not guess)", "a@example.com, b@example.org", "", ErrFromMultiple},
		{"no @", "alice", "", ErrFromInvalid},
		{"domain literal", "alice@[192.0.2.1]", "", ErrFromInvalid},
		{"single-label domain", "alice@localhost", "", ErrSingleLabel},
		{"unclosed angle", "Alice <alice@example.com", "", ErrFromInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ParseFromHeader(tt.value)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("ParseFromHeader(%q) = %q, %v; want %v", tt.value, a, err, tt.err)
				}
				return
			}
			if err != nil || a.Domain().String() != tt.want {
				t.Fatalf("ParseFromHeader(%q) = %q, %v; want domain %q", tt.value, a, err, tt.want)
			}
		})
	}
}
