package store

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Limits on names (RFC 1035 §2.3.4).
const (
	maxDomainLen = 253
	maxLabelLen  = 63
	// MaxNameLen bounds user and account names.
	MaxNameLen = 255
)

// idnaProfile maps a name the way a resolver would before lookup (UTS #46
// with STD3 rules: lower-case, NFC, no underscores or other non-LDH
// characters) and gives the A-label (xn--) form.
func idnaProfile() *idna.Profile {
	return idna.New(
		idna.MapForLookup(),
		idna.BidiRule(),
		idna.Transitional(false),
		idna.StrictDomainName(true),
		idna.VerifyDNSLength(true),
	)
}

// NormalizeDomain gives the canonical form of a domain name: IDNA A-labels,
// lower case, no trailing dot. "Bücher.Example." becomes
// "xn--bcher-kva.example". The name must have at least two labels, each a
// valid host name label (letters, digits, hyphens; RFC 5890, RFC 1123), and
// must not look like an IP address.
//
// A sub-domain is a domain of its own: nothing here or elsewhere in dkimd
// derives rights over sub.example.com from example.com.
func NormalizeDomain(name string) (string, error) {
	s := strings.TrimSpace(name)
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return "", errors.New("empty domain name")
	}
	if strings.HasPrefix(s, "[") || strings.ContainsAny(s, "@/: ") {
		return "", errors.New("not a domain name")
	}
	a, err := idnaProfile().ToASCII(s)
	if err != nil {
		return "", errors.New("not a valid (internationalised) domain name: " + idnaReason(err))
	}
	a = strings.ToLower(a)
	if err := checkHostname(a); err != nil {
		return "", err
	}
	labels := strings.Split(a, ".")
	if len(labels) < 2 {
		return "", errors.New("a mail domain needs at least two labels, like example.com")
	}
	if tld := labels[len(labels)-1]; strings.Trim(tld, "0123456789") == "" {
		return "", errors.New("an IP address is not a domain name")
	}
	return a, nil
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

// checkHostname checks an ASCII name: labels of 1–63 letters, digits and
// hyphens, not starting or ending with a hyphen, 253 bytes at most.
func checkHostname(a string) error {
	if len(a) > maxDomainLen {
		return errors.New("longer than 253 characters")
	}
	for _, l := range strings.Split(a, ".") {
		if err := checkLabel(l); err != nil {
			return err
		}
	}
	return nil
}

func checkLabel(l string) error {
	if l == "" {
		return errors.New("empty label (two dots in a row?)")
	}
	if len(l) > maxLabelLen {
		return errors.New("a label is longer than 63 characters")
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return errors.New("a label starts or ends with a hyphen")
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return errors.New("only letters, digits, hyphens and dots are allowed")
		}
	}
	return nil
}

// NormalizeSelector checks a DKIM selector and gives it in lower case (DNS
// names compare without case). A selector is one or more dot-separated
// labels of letters, digits and hyphens (RFC 6376 §3.1, sub-domain of
// RFC 5321); "2024-01", "s1" and "eu.rsa" are selectors. It is ASCII only:
// a selector is typed into DNS provider forms, which cope badly with IDNs.
func NormalizeSelector(sel string) (string, error) {
	s := strings.ToLower(strings.TrimSpace(sel))
	if s == "" {
		return "", errors.New("empty selector")
	}
	if strings.HasSuffix(s, "._domainkey") || strings.Contains(s, "._domainkey.") || strings.Contains(s, "_") {
		return "", errors.New(`give the selector alone, without "._domainkey" or underscores`)
	}
	// The full record name <selector>._domainkey.<domain> must fit in 253
	// characters too; CreateKey checks that once the domain is known.
	if err := checkHostname(s); err != nil {
		return "", err
	}
	return s, nil
}

// NormalizeName checks a user or account name and gives it in lower case.
// A name is 1–255 bytes of UTF-8 with no white space or control
// characters; an address such as alice@example.com is typical. Names are
// case-insensitive so that "Alice" and "alice" can never be two users.
func NormalizeName(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty name")
	}
	if len(name) > MaxNameLen {
		return "", errors.New("longer than 255 bytes")
	}
	if !utf8.ValidString(name) {
		return "", errors.New("not valid UTF-8")
	}
	for _, r := range name {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError {
			return "", errors.New("white space and control characters are not allowed")
		}
	}
	return strings.ToLower(name), nil
}

// NormalizeHeaderName checks a header field name (RFC 5322 §3.6.8: printable
// ASCII except colon) and gives it back as written; header names compare
// without case, which the relay handles.
func NormalizeHeaderName(h string) (string, error) {
	if h == "" {
		return "", errors.New("empty header name")
	}
	if len(h) > 76 {
		return "", errors.New("header name longer than 76 characters")
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; c < 33 || c > 126 || c == ':' {
			return "", errors.New("a header name is printable ASCII without spaces or colons")
		}
	}
	return h, nil
}
