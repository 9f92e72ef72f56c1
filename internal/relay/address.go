package relay

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/dkimd/dkimd/internal/store"
)

// mailbox is an envelope address that passed checkAddress.
type mailbox struct {
	local  string
	domain string // canonical (store.NormalizeDomain), or the IP literal as written
	ipLit  bool
}

// String gives the address to store and relay: the local part as sent, the
// domain canonical (no trailing dot, lower case; an IP literal as written).
func (m mailbox) String() string { return m.local + "@" + m.domain }

// checkAddress checks an envelope address as go-smtp hands it over (source
// route already dropped, quoted local part already unquoted) and refuses the
// tricks that ask a server to relay further:
//
//   - percent hack (user%victim@host) and bang paths (host!user@relay):
//     refused for everyone; some MTAs still route on them (RFC 5321 §2.3.11
//     leaves local parts to the receiving host, RFC 1123 §5.2.16 described
//     the % hack);
//   - a quoted local part holding @ ("a@b"@c arrives as a@b@c): refused for
//     everyone, as is any local part that is not a plain dot-atom, since it
//     could not be passed on unquoted unchanged;
//   - a source route (@a,@b:u@c, RFC 5321 Appendix C): go-smtp drops the
//     route before the session sees it, and only the final mailbox is
//     checked, stored and relayed to, so the route can never be followed;
//   - an IP literal domain (u@[192.0.2.1]): refused unless ipLiterals, which
//     callers grant only to users allowed foreign domains, since it names a
//     host rather than a domain and skips MX routing.
//
// The address must be ASCII (SMTPUTF8 is not offered) and its domain a valid
// host name of two labels or more.
func checkAddress(addr string, ipLiterals bool) (mailbox, error) {
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 {
		return mailbox{}, fmt.Errorf("%w: no local part or domain", errAddressSyntax)
	}
	local, domain := addr[:at], addr[at+1:]
	if strings.ContainsAny(local, "%!@") {
		return mailbox{}, fmt.Errorf("%w: local part %q routes (%%, ! or @)", errAddressTrick, clip(local))
	}
	if !dotAtom(local) {
		return mailbox{}, fmt.Errorf("%w: local part is not a dot-atom", errAddressSyntax)
	}
	if strings.HasPrefix(domain, "[") {
		if !ipLiterals {
			return mailbox{}, fmt.Errorf("%w: IP literal domain %q", errAddressTrick, clip(domain))
		}
		lit, ok := strings.CutSuffix(domain[1:], "]")
		lit, _ = strings.CutPrefix(lit, "IPv6:") // RFC 5321 §4.1.3
		a, err := netip.ParseAddr(lit)
		if !ok || err != nil || a.Zone() != "" {
			return mailbox{}, fmt.Errorf("%w: bad IP literal", errAddressSyntax)
		}
		return mailbox{local: local, domain: domain, ipLit: true}, nil
	}
	for i := 0; i < len(domain); i++ {
		if domain[i] >= 0x80 {
			return mailbox{}, fmt.Errorf("%w: non-ASCII domain without SMTPUTF8", errAddressSyntax)
		}
	}
	d, err := store.NormalizeDomain(domain)
	if err != nil {
		return mailbox{}, fmt.Errorf("%w: domain: %v", errAddressSyntax, err)
	}
	return mailbox{local: local, domain: d}, nil
}

// dotAtom reports whether s is a dot-atom of RFC 5322 §3.2.3 atext.
func dotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-/=?^_`{|}~.", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// clip shortens client-supplied text for a log line.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
