package mailaddr

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseDomain(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	// 4 labels of 63 and dots: 255 bytes.
	long := strings.Join([]string{label63, label63, label63, label63}, ".")
	tests := []struct {
		name string
		in   string
		want string // canonical form when err is nil
		err  error
	}{
		{"valid", "example.com", "example.com", nil},
		{"upper case is lowered (RFC 4343)", "Example.COM", "example.com", nil},
		{"trailing dot of the root dropped (RFC 1034 §3.1)", "example.com.", "example.com", nil},
		{"surrounding space dropped", " example.com ", "example.com", nil},
		{"U-labels become A-labels (RFC 5891 §4)", "Bücher.Example", "xn--bcher-kva.example", nil},
		{"A-labels stay (RFC 5890 §2.3.2.1)", "XN--BCHER-KVA.example", "xn--bcher-kva.example", nil},
		{"sub-domain is its own domain", "mail.sub.example.com", "mail.sub.example.com", nil},
		{"digits and inner hyphens (RFC 1123 §2.1)", "3com-x.example", "3com-x.example", nil},
		{"label of 63 (RFC 1035 §2.3.4)", label63 + ".example", label63 + ".example", nil},

		{"empty", "", "", ErrEmpty},
		{"only the root", ".", "", ErrEmpty},
		{"white space", "  ", "", ErrEmpty},
		{"one label: a mail domain needs two", "localhost", "", ErrSingleLabel},
		{"IPv4 address", "192.0.2.1", "", ErrIPAddress},
		{"address literal (RFC 5321 §4.1.3)", "[192.0.2.1]", "", ErrSyntax},
		{"an address, not a domain", "a@example.com", "", ErrSyntax},
		{"a URL", "http://example.com", "", ErrSyntax},
		{"invalid UTF-8 (RFC 5890 §2.3.2.1: U-labels are Unicode)", "\xb5.example", "", ErrSyntax},
		{"inner space", "exa mple.com", "", ErrSyntax},
		{"empty label", "example..com", "", ErrIDNA},
		{"leading hyphen (RFC 5891 §4.2.3.1)", "-example.com", "", ErrIDNA},
		{"underscore is not LDH (RFC 5890 §2.3.1)", "_dmarc.example.com", "", ErrIDNA},
		{"label of 64 (RFC 1035 §2.3.4)", label63 + "a.example", "", ErrIDNA},
		{"name of 255 (RFC 1035 §2.3.4)", long, "", ErrIDNA},
		{"bad punycode A-label (RFC 5891 §5.4)", "xn--zz.example", "", ErrIDNA},
		{"disallowed code point (RFC 5892)", "a\u2028b.example", "", ErrIDNA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := ParseDomain(tt.in)
			if tt.err != nil {
				if !errors.Is(err, tt.err) || !errors.Is(err, ErrInvalidDomain) {
					t.Fatalf("ParseDomain(%q) = %q, %v; want %v", tt.in, d, err, tt.err)
				}
				if !d.IsZero() {
					t.Errorf("failed parse gave non-zero %q", d)
				}
				return
			}
			if err != nil || d.String() != tt.want {
				t.Fatalf("ParseDomain(%q) = %q, %v; want %q", tt.in, d, err, tt.want)
			}
		})
	}
}

func TestCheckHostname(t *testing.T) {
	for _, tt := range []struct {
		in  string
		err error
	}{
		{"s1", nil},
		{"eu.rsa-2024", nil},
		{strings.Repeat("a", 64), ErrTooLong},
		{strings.Repeat("a.", 127) + "a", ErrTooLong},
		{"a..b", ErrSyntax},
		{"a-", ErrSyntax},
		{"A", ErrSyntax}, // lower case only: callers lower first
		{"a_b", ErrSyntax},
	} {
		if err := CheckHostname(tt.in); !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
			t.Errorf("CheckHostname(%q) = %v, want %v", tt.in, err, tt.err)
		}
	}
}

func TestDomainUnicode(t *testing.T) {
	d, err := ParseDomain("xn--bcher-kva.example")
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Unicode(); got != "bücher.example" {
		t.Errorf("Unicode = %q", got)
	}
	if got := Unicode("xn--zz.example"); got != "xn--zz.example" {
		t.Errorf("Unicode of a bad A-label = %q, want it unchanged", got)
	}
	if (Domain{}).Unicode() != "" || !(Domain{}).IsZero() {
		t.Error("zero Domain is not none")
	}
}

// A Domain is a JSON string, the zero Domain left out with omitzero, and
// decoding parses: a spelling that is not canonical is made so, a bad name
// is refused.
func TestDomainJSON(t *testing.T) {
	type doc struct {
		D Domain `json:"d,omitzero"`
	}
	d, _ := ParseDomain("Example.COM")
	b, err := json.Marshal(doc{D: d})
	if err != nil || string(b) != `{"d":"example.com"}` {
		t.Fatalf("Marshal = %s, %v", b, err)
	}
	if b, _ := json.Marshal(doc{}); string(b) != `{}` {
		t.Errorf("zero Domain marshals as %s", b)
	}
	var got doc
	if err := json.Unmarshal([]byte(`{"d":"Bücher.example."}`), &got); err != nil || got.D.String() != "xn--bcher-kva.example" {
		t.Errorf("Unmarshal = %q, %v", got.D, err)
	}
	if err := json.Unmarshal([]byte(`{"d":"localhost"}`), &got); !errors.Is(err, ErrSingleLabel) {
		t.Errorf("Unmarshal of a bad name: %v", err)
	}
}
