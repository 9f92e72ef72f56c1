package mailaddr

import (
	"fmt"
	"net/mail"
	"net/netip"
	"strings"
)

// Address is a mailbox: a local part and a Domain, or, for an envelope
// address that ParseAddress allowed one for, an address literal instead of
// the Domain.
type Address struct {
	local   string
	domain  Domain
	literal string     // "[192.0.2.1]" as written, when the domain part is one
	ip      netip.Addr // its address
}

// AddressOptions say what ParseAddress accepts beyond a mailbox of a
// domain. The zero value accepts nothing more.
type AddressOptions struct {
	// IPLiterals accepts an address literal (u@[192.0.2.1],
	// u@[IPv6:2001:db8::1], RFC 5321 §4.1.3) as the domain part. It names
	// a host rather than a domain and skips MX routing, so the relay grants
	// it only to users allowed foreign domains. Without it such an address
	// is ErrAddressLiteral.
	IPLiterals bool
}

// ParseAddress checks an envelope address (the Mailbox of RFC 5321 §4.1.2)
// as an SMTP server hands it over — source route already dropped, quoted
// local part already unquoted — and refuses the tricks that ask a server to
// relay further:
//
//   - percent hack (user%victim@host) and bang paths (host!user@relay):
//     ErrAddressRoute; some MTAs still route on them (RFC 5321 §2.3.11
//     leaves local parts to the receiving host, RFC 1123 §5.2.16 described
//     the % hack);
//   - a quoted local part holding @ ("a@b"@c arrives as a@b@c):
//     ErrAddressRoute; any other local part that is not a plain dot-atom
//     (RFC 5322 §3.2.3, at most 64 bytes, RFC 5321 §4.5.3.1.1) is
//     ErrAddressSyntax, since it could not be passed on unquoted unchanged;
//   - an address literal: ErrAddressLiteral unless opts.IPLiterals.
//
// The address must be ASCII (SMTPUTF8 is not offered) and its domain parse
// with ParseDomain (which it is given in canonical form).
func ParseAddress(addr string, opts AddressOptions) (Address, error) {
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 {
		return Address{}, fail("no local part or domain", ErrAddressSyntax)
	}
	local, domain := addr[:at], addr[at+1:]
	if strings.ContainsAny(local, "%!@") {
		return Address{}, fail(fmt.Sprintf("local part %q routes (%%, ! or @)", clip(local)), ErrAddressRoute)
	}
	if !dotAtom(local) {
		return Address{}, fail("local part is not a dot-atom", ErrAddressSyntax)
	}
	if strings.HasPrefix(domain, "[") {
		if !opts.IPLiterals {
			return Address{}, fail(fmt.Sprintf("IP literal domain %q", clip(domain)), ErrAddressLiteral)
		}
		lit, ok := strings.CutSuffix(domain[1:], "]")
		lit, _ = strings.CutPrefix(lit, "IPv6:") // RFC 5321 §4.1.3
		a, err := netip.ParseAddr(lit)
		if !ok || err != nil || a.Zone() != "" {
			return Address{}, fail("bad IP literal", ErrAddressSyntax)
		}
		return Address{local: local, literal: domain, ip: a}, nil
	}
	for i := 0; i < len(domain); i++ {
		if domain[i] >= 0x80 {
			return Address{}, fail("non-ASCII domain without SMTPUTF8", ErrAddressSyntax)
		}
	}
	d, err := ParseDomain(domain)
	if err != nil {
		return Address{}, &parseError{msg: "domain: " + err.Error(), classes: []error{ErrAddressSyntax, err}}
	}
	return Address{local: local, domain: d}, nil
}

// Local gives the local part as written (case is the receiving host's
// business, RFC 5321 §2.4).
func (a Address) Local() string { return a.local }

// Domain gives the domain; the zero Domain for an address literal.
func (a Address) Domain() Domain { return a.domain }

// DomainPart gives what follows the @ in String: the canonical domain, or
// the address literal as written ("[IPv6:2001:db8::1]"). It is what mail
// to the address is routed by (RFC 5321 §5.1).
func (a Address) DomainPart() string {
	if a.literal != "" {
		return a.literal
	}
	return a.domain.name
}

// IPLiteral gives the address of an address literal, and false when the
// domain part is a Domain.
func (a Address) IPLiteral() (netip.Addr, bool) { return a.ip, a.literal != "" }

// String gives the address to store and relay: the local part as written,
// the domain canonical (an address literal as written); "" for the zero
// Address.
func (a Address) String() string {
	if a.local == "" {
		return ""
	}
	return a.local + "@" + a.DomainPart()
}

// unfold removes folding (RFC 5322 §2.2.3): CRLF, or a bare LF, followed
// by white space is that white space. A Replacer is safe for concurrent use.
var unfold = strings.NewReplacer("\r\n ", " ", "\r\n\t", "\t", "\n ", " ", "\n\t", "\t")

// ParseFromHeader gives the one address of a From header field value
// (RFC 5322 §3.6.2), as it comes after "From:", folded or not, its domain
// canonical. Display names, comments, encoded words and groups are handled
// by net/mail; the local part is as net/mail gives it (unquoted), so only
// the Domain is fit for decisions. A field with no address is
// ErrFromMissing, with several ErrFromMultiple, and one that does not parse
// or whose domain is not a valid domain name (an address literal included)
// ErrFromInvalid (with the ParseDomain class).
func ParseFromHeader(value string) (Address, error) {
	v := unfold.Replace(value)
	if strings.TrimSpace(v) == "" {
		return Address{}, ErrFromMissing
	}
	addrs, err := mail.ParseAddressList(v)
	if err != nil {
		return Address{}, explain(fmt.Errorf("%w: %v", ErrFromInvalid, err),
			"The From header does not parse as an address (RFC 5322 §3.4): check its angle brackets, quotes and commas.")
	}
	switch len(addrs) {
	case 0:
		return Address{}, ErrFromMissing
	case 1:
	default:
		return Address{}, fmt.Errorf("%w (%d)", ErrFromMultiple, len(addrs))
	}
	at := strings.LastIndexByte(addrs[0].Address, '@')
	if at < 0 {
		return Address{}, explain(fmt.Errorf("%w: address has no domain", ErrFromInvalid), "The From header does not parse: its address has no domain.")
	}
	d, err := ParseDomain(addrs[0].Address[at+1:])
	if err != nil {
		return Address{}, explain(fmt.Errorf("%w: domain: %w", ErrFromInvalid, err),
			"The From header does not parse: the domain of its address is not a valid domain name.")
	}
	return Address{local: addrs[0].Address[:at], domain: d}, nil
}

// dotAtom reports whether s is a dot-atom of RFC 5322 §3.2.3 atext, at
// most 64 bytes long (RFC 5321 §4.5.3.1.1).
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

// clip shortens client-supplied text for an error that goes to a log.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
