package store

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/dkimd/dkimd/internal/auth"
	"github.com/dkimd/dkimd/internal/mailaddr"
)

// AuthKind says how an outgoing user proves who it is.
type AuthKind string

// The ways an outgoing user authenticates.
const (
	// AuthPassword: SMTP AUTH with Name and a password checked against
	// PasswordHash.
	AuthPassword AuthKind = "password"
	// AuthIP: the connection's source address is in one of Networks.
	AuthIP AuthKind = "ip"
	// AuthReauth: a trusted server relaying for many senders, naming each
	// in IdentityHeader. It proves itself by source address (Networks) or
	// SMTP AUTH (PasswordHash), at least one. Its mail is never signed.
	AuthReauth AuthKind = "reauth"
)

// DefaultIdentityHeader is where a re-authenticating server names the
// sender unless the user says otherwise.
const DefaultIdentityHeader = "X-AuthUser"

// ReauthSelectorMessage explains why a re-authenticating user has no DKIM
// selector; policy gives the same words as its reason for not signing.
const ReauthSelectorMessage = "DKIM signing is unavailable for re-authenticating users"

// ErrReauthSelector is the reason (inside a *FieldError for "selector")
// when a re-authenticating user is given a DKIM selector.
var ErrReauthSelector = errors.New(ReauthSelectorMessage)

// OutgoingUser is a mail server or person allowed to relay through dkimd.
type OutgoingUser struct {
	// Name is unique across dkimd and is the SMTP AUTH username; stored in
	// lower case (see NormalizeName).
	Name string `json:"name"`
	// Domain is the owner domain: its admins manage the user, and the user
	// may sign as it.
	Domain string `json:"domain"`
	// Auth says how the user authenticates.
	Auth AuthKind `json:"auth"`
	// PasswordHash is an argon2id PHC string (auth.HashPassword). Required
	// for AuthPassword. Never marshalled.
	PasswordHash string `json:"-"`
	// Networks are the source addresses the user connects from. Required
	// for AuthIP; for AuthReauth, required unless PasswordHash is set; for
	// AuthPassword, an optional restriction on where the password is
	// accepted from. Stored masked (192.0.2.7/24 becomes 192.0.2.0/24).
	Networks []netip.Prefix `json:"networks,omitempty"`
	// IdentityHeader is the header a re-authenticating server names the
	// sender in; empty means DefaultIdentityHeader. Only for AuthReauth.
	IdentityHeader string `json:"identity_header,omitempty"`
	// Enabled users may relay; a disabled user is kept but refused.
	Enabled bool `json:"enabled"`
	// Selector, if set, names the key of the owner domain that signs the
	// user's mail when the From domain has no key of its own the user may
	// use. Never set for AuthReauth.
	Selector string `json:"selector,omitempty"`
	// GrantedDomains are domains besides Domain the user may sign as, in
	// canonical form, sorted. Each must exist. A grant is explicit: owning
	// or being granted example.com gives nothing over sub.example.com.
	GrantedDomains []string `json:"granted_domains,omitempty"`
	// AllowForeignFrom lets the user relay mail whose envelope sender or
	// From domain is none of its domains. It never lets the user sign as
	// such a domain. The zero value (false) refuses such mail.
	AllowForeignFrom bool `json:"allow_foreign_from"`
	// Created and Updated are set by the store.
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// NetworkClaim is one network through which a user is recognised by its
// source address (see Users.NetworkClaims).
type NetworkClaim struct {
	// User is the user's name; Domain its owner domain.
	User   string
	Domain string
	// Network is the claimed network, masked.
	Network netip.Prefix
}

// ClaimsAddresses reports whether a user of kind k is recognised by the
// addresses of its networks (AuthIP, AuthReauth), rather than only limited
// to them (AuthPassword).
func (k AuthKind) ClaimsAddresses() bool { return k == AuthIP || k == AuthReauth }

// MaySignAs reports whether the user may sign as domain:
// it is the owner domain or a granted one. Nothing else counts, neither
// parent domains nor AllowForeignFrom.
func (u *OutgoingUser) MaySignAs(domain mailaddr.Domain) bool {
	d := domain.String()
	return d != "" && (d == u.Domain || slices.Contains(u.GrantedDomains, d))
}

// EffectiveIdentityHeader gives IdentityHeader or its default.
func (u *OutgoingUser) EffectiveIdentityHeader() string {
	if u.IdentityHeader == "" {
		return DefaultIdentityHeader
	}
	return u.IdentityHeader
}

// Normalize checks u and gives it in canonical form: names lower-cased,
// networks masked, sorted and deduplicated, granted domains canonical,
// sorted, deduplicated and without the owner domain. It does not check that
// referenced domains exist (backends do) nor that Selector names a key
// (policy.ValidateSelectorForUser does).
func (u OutgoingUser) Normalize() (OutgoingUser, error) {
	n, err := NormalizeName(u.Name)
	if err != nil {
		return u, &FieldError{Field: "name", Err: err}
	}
	u.Name = n
	d, err := mailaddr.ParseDomain(u.Domain)
	if err != nil {
		return u, &FieldError{Field: "domain", Err: err}
	}
	u.Domain = d.String()

	nets, err := normalizeNetworks(u.Networks)
	if err != nil {
		return u, err
	}
	u.Networks = nets

	if u.PasswordHash != "" {
		if err := auth.ValidHash(u.PasswordHash); err != nil {
			return u, &FieldError{Field: "password", Err: err}
		}
	}
	switch u.Auth {
	case AuthPassword:
		if u.PasswordHash == "" {
			return u, Invalid("password", "a password user needs a password")
		}
	case AuthIP:
		if len(u.Networks) == 0 {
			return u, Invalid("networks", "an IP-authenticated user needs at least one address or network")
		}
		if u.PasswordHash != "" {
			return u, Invalid("password", "an IP-authenticated user has no password")
		}
	case AuthReauth:
		if len(u.Networks) == 0 && u.PasswordHash == "" {
			return u, Invalid("networks", "a re-authenticating server needs its addresses or a password")
		}
	default:
		return u, Invalid("auth", "unknown authentication %q (want password, ip or reauth)", u.Auth)
	}

	if u.IdentityHeader != "" {
		if u.Auth != AuthReauth {
			return u, Invalid("identity_header", "only a re-authenticating user names senders in a header")
		}
		h, err := NormalizeHeaderName(u.IdentityHeader)
		if err != nil {
			return u, &FieldError{Field: "identity_header", Err: err}
		}
		u.IdentityHeader = h
	}

	if u.Selector != "" {
		if u.Auth == AuthReauth {
			return u, &FieldError{Field: "selector", Err: ErrReauthSelector}
		}
		s, err := NormalizeSelector(u.Selector)
		if err != nil {
			return u, &FieldError{Field: "selector", Err: err}
		}
		u.Selector = s
	}

	var granted []string
	for i, g := range u.GrantedDomains {
		gd, err := mailaddr.ParseDomain(g)
		if err != nil {
			return u, &FieldError{Field: fmt.Sprintf("granted_domains[%d]", i), Err: err}
		}
		if gd.String() != u.Domain {
			granted = append(granted, gd.String())
		}
	}
	slices.Sort(granted)
	u.GrantedDomains = slices.Compact(granted)
	return u, nil
}

func normalizeNetworks(in []netip.Prefix) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, p := range in {
		if !p.IsValid() {
			return nil, Invalid(fmt.Sprintf("networks[%d]", i), "not an address or network")
		}
		if p.Addr().Zone() != "" {
			return nil, Invalid(fmt.Sprintf("networks[%d]", i), "addresses with a zone are not allowed")
		}
		if p.Addr().Is4In6() {
			// ::ffff:192.0.2.1/128 is 192.0.2.1/32; store the plain form so
			// lookups by the address a socket reports match.
			bits := p.Bits() - 96
			if bits < 0 {
				return nil, Invalid(fmt.Sprintf("networks[%d]", i), "an IPv4-mapped network shorter than /96")
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), bits)
		}
		out = append(out, p.Masked())
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return slices.Compact(out), nil
}

// ParseNetwork reads "192.0.2.7", "2001:db8::/32" or "192.0.2.0/24" as a
// prefix; a bare address is a /32 or /128.
func ParseNetwork(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, Invalid("networks", "%q is not an address or network", s)
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, Invalid("networks", "%q is not an address or network", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// MatchNetworks gives the longest prefix among nets that contains addr, and
// whether there is one. IPv4-mapped IPv6 addresses match IPv4 networks.
func MatchNetworks(nets []netip.Prefix, addr netip.Addr) (netip.Prefix, bool) {
	addr = addr.Unmap().WithZone("")
	best, found := netip.Prefix{}, false
	for _, p := range nets {
		if p.Contains(addr) && (!found || p.Bits() > best.Bits()) {
			best, found = p, true
		}
	}
	return best, found
}
