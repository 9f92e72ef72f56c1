package dkim

import "strings"

// These checks are the tag syntax of RFC 6376 for a verifier of arbitrary
// mail, and stay here rather than in internal/mailaddr: this package
// imports only the standard library (mailaddr needs golang.org/x/net/idna),
// and a verifier must judge tags by the RFC's ABNF, which is looser than
// the canonical domain (IDNA-mapped, lower case, two labels or more) that
// mailaddr.Domain is for the domains dkimd keeps keys for. A canonical
// Domain always passes ValidDomain.

// validDomain reports whether s is a domain name as d= takes it
// (RFC 6376 §3.5: sub-domain 1*("." sub-domain)): at least two labels of
// letters, digits and inner hyphens, each at most 63 bytes, 253 in all.
// Internationalized names must be given as A-labels (xn--).
func validDomain(s string) bool {
	return len(s) <= 253 && strings.Contains(s, ".") && validLabels(s)
}

// validSelector reports whether s is a selector: one or more labels joined
// by dots (RFC 6376 §3.1).
func validSelector(s string) bool {
	return len(s) <= 253 && validLabels(s)
}

// ValidDomain reports whether s is acceptable as a signing domain (d=).
func ValidDomain(s string) bool { return validDomain(s) }

// ValidSelector reports whether s is acceptable as a selector (s=).
func ValidSelector(s string) bool { return validSelector(s) }

func validLabels(s string) bool {
	if s == "" {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !isAlpha(c) && !isDigit(c) && c != '-' {
				return false
			}
		}
	}
	return true
}
