package mailaddr

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Limits on names (RFC 1035 §2.3.4).
const (
	// MaxDomainLen is the longest name, in bytes without the trailing
	// dot: also the bound on a whole record name such as
	// selector._domainkey.domain.
	MaxDomainLen = 253
	maxLabelLen  = 63
)

// Domain is a mail domain name in canonical form: IDNA A-labels (xn--),
// lower case, no trailing dot, at least two labels. Only ParseDomain (and
// UnmarshalText, which calls it) makes one; the zero Domain means none.
// Domains compare with ==.
//
// A sub-domain is a domain of its own: nothing in dkimd derives rights over
// sub.example.com from example.com.
type Domain struct {
	name string
}

// idnaProfile maps a name the way a resolver would before lookup (UTS #46
// with STD3 rules: lower-case, NFC, no underscores or other non-LDH
// characters) and gives the A-label (xn--) form (RFC 5891 §5).
func idnaProfile() *idna.Profile {
	return idna.New(
		idna.MapForLookup(),
		idna.BidiRule(),
		idna.Transitional(false),
		idna.StrictDomainName(true),
		idna.VerifyDNSLength(true),
	)
}

// ParseDomain checks a domain name and gives it in canonical form:
// "Bücher.Example." becomes "xn--bcher-kva.example". Surrounding white
// space and one trailing dot are dropped. The name must have at least two
// labels, each a valid host name label (letters, digits, inner hyphens;
// RFC 5890, RFC 1123), and must not be an IP address. The error is one of
// the classes ErrEmpty, ErrSyntax, ErrIDNA, ErrTooLong, ErrSingleLabel,
// ErrIPAddress, and ErrInvalidDomain; its text does not repeat the name.
func ParseDomain(name string) (Domain, error) {
	s := strings.TrimSpace(name)
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return Domain{}, fail("empty domain name", ErrEmpty, ErrInvalidDomain)
	}
	if strings.HasPrefix(s, "[") || strings.ContainsAny(s, "@/: ") {
		return Domain{}, fail("not a domain name", ErrSyntax, ErrInvalidDomain)
	}
	if !utf8.ValidString(s) {
		// x/net/idna would map a bad byte to U+FFFD and give an A-label
		// that does not parse back (found by FuzzParseDomain).
		return Domain{}, fail("not valid UTF-8", ErrSyntax, ErrInvalidDomain)
	}
	a, err := idnaProfile().ToASCII(s)
	if err != nil {
		return Domain{}, fail("not a valid (internationalised) domain name: "+idnaReason(err), ErrIDNA, ErrInvalidDomain)
	}
	a = strings.ToLower(a)
	if err := CheckHostname(a); err != nil {
		return Domain{}, err
	}
	labels := strings.Split(a, ".")
	if len(labels) < 2 {
		return Domain{}, fail("a mail domain needs at least two labels, like example.com", ErrSingleLabel, ErrInvalidDomain)
	}
	if tld := labels[len(labels)-1]; strings.Trim(tld, "0123456789") == "" {
		return Domain{}, fail("an IP address is not a domain name", ErrIPAddress, ErrInvalidDomain)
	}
	return Domain{name: a}, nil
}

// String gives the canonical name ("xn--bcher-kva.example"), "" for the
// zero Domain: the form to store, compare, look up in DNS and put in d=.
func (d Domain) String() string { return d.name }

// Unicode gives the name for people to read: "bücher.example" for
// "xn--bcher-kva.example" (RFC 5890 U-labels). It falls back to String.
func (d Domain) Unicode() string { return Unicode(d.name) }

// IsZero reports whether d is the zero Domain (none).
func (d Domain) IsZero() bool { return d.name == "" }

// MarshalText gives String, so a Domain is a JSON string.
func (d Domain) MarshalText() ([]byte, error) { return []byte(d.name), nil }

// UnmarshalText parses text with ParseDomain; empty text gives the zero
// Domain.
func (d *Domain) UnmarshalText(text []byte) error {
	if len(text) == 0 {
		*d = Domain{}
		return nil
	}
	p, err := ParseDomain(string(text))
	if err != nil {
		return err
	}
	*d = p
	return nil
}

// Unicode gives a canonical name (as Domain.String or a store row holds
// it) with its A-labels as U-labels, for people to read; name itself when
// it does not convert.
func Unicode(name string) string {
	u, err := idna.ToUnicode(name)
	if err != nil {
		return name
	}
	return u
}

// idnaReason drops the input that x/net/idna quotes in its errors: error
// text is for logs and API answers, and the name is known to the caller.
func idnaReason(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, ":"); i > 0 {
		msg = msg[:i]
	}
	return strings.TrimPrefix(msg, "idna: ")
}

// CheckHostname checks an ASCII name in lower case: labels of 1–63
// letters, digits and hyphens, not starting or ending with a hyphen, 253
// bytes at most (RFC 1035 §2.3.1 and §2.3.4, RFC 1123 §2.1). ParseDomain
// applies it to every domain; a DKIM selector (RFC 6376 §3.1) obeys it too.
// The error is ErrSyntax or ErrTooLong, and ErrInvalidDomain.
func CheckHostname(a string) error {
	if len(a) > MaxDomainLen {
		return fail("longer than 253 characters", ErrTooLong, ErrInvalidDomain)
	}
	for l := range strings.SplitSeq(a, ".") {
		if err := checkLabel(l); err != nil {
			return err
		}
	}
	return nil
}

func checkLabel(l string) error {
	if l == "" {
		return fail("empty label (two dots in a row?)", ErrSyntax, ErrInvalidDomain)
	}
	if len(l) > maxLabelLen {
		return fail("a label is longer than 63 characters", ErrTooLong, ErrInvalidDomain)
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return fail("a label starts or ends with a hyphen", ErrSyntax, ErrInvalidDomain)
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return fail("only letters, digits, hyphens and dots are allowed", ErrSyntax, ErrInvalidDomain)
		}
	}
	return nil
}
