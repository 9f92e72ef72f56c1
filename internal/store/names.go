package store

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/dkimd/dkimd/internal/mailaddr"
)

// MaxNameLen bounds user and account names.
const MaxNameLen = 255

// Domain names are parsed by mailaddr.ParseDomain, the one parser of them.

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
	if err := mailaddr.CheckHostname(s); err != nil {
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
