package admin

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/dkimd/dkimd/internal/store"
)

// The reasons a user's network is refused; each reaches the caller inside
// a *store.FieldError for "networks" (HTTP 422). None names another
// tenant or its users.
var (
	// ErrNetworkTaken: the network overlaps a network another domain's
	// user is recognised by, or equals one of another user of the same
	// domain (then every address in it is claimed twice and refused).
	ErrNetworkTaken = errors.New("admin: network in use")
	// ErrNetworkTooWide: a domain admin gave a network wider than
	// Service.MaxUserNetwork.
	ErrNetworkTooWide = errors.New("admin: network too wide")
	// ErrAnyNetwork: 0.0.0.0/0 or ::/0 without UserChange.AllowAnyNetwork.
	ErrAnyNetwork = errors.New("admin: network holds every address")
)

// Default widest networks a domain admin may give an outgoing user.
const (
	DefaultMaxUserNetworkIPv4 = 24
	DefaultMaxUserNetworkIPv6 = 48
)

// NetworkLimit is the widest network, as a prefix length, that a domain
// admin may give a user recognised by its address. Admins and the command
// line are not bound by it. A zero field means its default
// (DefaultMaxUserNetworkIPv4, DefaultMaxUserNetworkIPv6).
type NetworkLimit struct {
	IPv4Bits int
	IPv6Bits int
}

// bits gives the shortest prefix length allowed for p's family.
func (l NetworkLimit) bits(p netip.Prefix) int {
	if p.Addr().Is4() {
		if l.IPv4Bits == 0 {
			return DefaultMaxUserNetworkIPv4
		}
		return l.IPv4Bits
	}
	if l.IPv6Bits == 0 {
		return DefaultMaxUserNetworkIPv6
	}
	return l.IPv6Bits
}

// String gives "24,48", the form of serve's --max-user-network.
func (l NetworkLimit) String() string {
	return fmt.Sprintf("%d,%d", l.bits(netip.MustParsePrefix("0.0.0.0/32")), l.bits(netip.MustParsePrefix("::/128")))
}

// checkNetworks applies the rules on the networks a user is recognised by
// (issue 10: a domain admin could otherwise make dkimd an open relay, or
// take another tenant's servers). Only networks that after claims and
// before did not are checked, so that a user set up by an admin, or
// stored before these rules, can still be edited. A password user's
// networks only narrow where its password is accepted; they claim nothing
// and are not checked.
//
// Rules for each new claim:
//   - a /0 needs allowAny, which only an admin may give;
//   - a domain admin may not give a network wider than MaxUserNetwork;
//   - it may not overlap a claim of another domain's user, unless an admin
//     gives allowAny (the start-up report and the panel then show it);
//   - it may not equal a claim of another user at all: UserByIP would find
//     two users for each of its addresses, and refuse both.
//
// Overlap inside one domain is allowed: a tenant may organise its own
// servers, the most specific network winning.
func (s *Service) checkNetworks(ctx context.Context, a Actor, before, after store.OutgoingUser, allowAny bool) error {
	if allowAny && !a.IsAdmin() {
		return store.Explain(ErrForbidden, "Only an admin may allow any network.")
	}
	if !after.Auth.ClaimsAddresses() {
		return nil
	}
	norm, err := after.Normalize()
	if err != nil {
		return nil // the store refuses the user, with the reason
	}
	var old []netip.Prefix
	if before.Auth.ClaimsAddresses() {
		if b, err := before.Normalize(); err == nil {
			old = b.Networks
		}
	}
	var fresh []netip.Prefix
	for _, p := range norm.Networks {
		if !slices.Contains(old, p) {
			fresh = append(fresh, p)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	for _, p := range fresh {
		switch {
		case p.Bits() == 0 && !allowAny:
			return &store.FieldError{Field: "networks", Err: refuse(ErrAnyNetwork, "%s lets every address relay; only an admin may add it, with the explicit override (allow any network)", p)}
		case p.Bits() < s.o.MaxUserNetwork.bits(p) && !a.IsAdmin():
			return &store.FieldError{Field: "networks", Err: refuse(ErrNetworkTooWide, "%s is wider than /%d; only an admin may add a wider network", p, s.o.MaxUserNetwork.bits(p))}
		}
	}
	claims, err := s.o.Store.NetworkClaims(ctx)
	if err != nil {
		return err
	}
	for _, p := range fresh {
		for _, c := range claims {
			if c.User == before.Name && before.Name != "" {
				continue // the user's own claims, as stored
			}
			switch {
			case c.Domain == norm.Domain && c.Network == p:
				// The same tenant: naming its own user helps and leaks
				// nothing.
				return &store.FieldError{Field: "networks", Err: refuse(ErrNetworkTaken, "%s is already the network of user %s; two users with the same network are both refused", p, c.User)}
			case c.Domain != norm.Domain && c.Network.Overlaps(p) && !allowAny:
				// One answer for equal, inside and around: the less a
				// tenant learns of another's networks the better.
				return &store.FieldError{Field: "networks", Err: refuse(ErrNetworkTaken, "%s overlaps a network of a user of another domain", p)}
			case c.Domain != norm.Domain && c.Network == p:
				// Only an admin with the override gets here.
				return &store.FieldError{Field: "networks", Err: refuse(ErrNetworkTaken, "%s is the network of a user of another domain; two users with the same network are both refused", p)}
			}
		}
	}
	return nil
}

// NetworkOverlap is a pair of users of different domains whose networks
// overlap: one of them may receive mail meant as the other's, or both be
// refused. A, B are in the order of Users.NetworkClaims.
type NetworkOverlap struct {
	A, B store.NetworkClaim
}

// NetworkOverlaps reports every pair of users of different domains whose
// claimed networks overlap: rows made before the rules of checkNetworks,
// or let through by an admin's override. It names other tenants' users,
// so it is for admins only; serve logs it at start.
func (s *Service) NetworkOverlaps(ctx context.Context, a Actor) ([]NetworkOverlap, error) {
	if err := requireAdmin(a); err != nil {
		return nil, err
	}
	claims, err := s.o.Store.NetworkClaims(ctx)
	if err != nil {
		return nil, err
	}
	// Users recognised by address are servers, a few per tenant: the
	// pairwise comparison is cheap.
	var out []NetworkOverlap
	for i, x := range claims {
		for _, y := range claims[i+1:] {
			if x.Domain != y.Domain && x.Network.Overlaps(y.Network) {
				out = append(out, NetworkOverlap{A: x, B: y})
			}
		}
	}
	return out, nil
}

// AnyNetwork reports whether u is recognised from every address of a
// family (a /0), which an admin allowed explicitly.
func AnyNetwork(u store.OutgoingUser) bool {
	if !u.Auth.ClaimsAddresses() {
		return false
	}
	return slices.ContainsFunc(u.Networks, func(p netip.Prefix) bool { return p.Bits() == 0 })
}

// refusal is a reason a network is refused: its text is for the person
// who typed the network, its class (Unwrap) one of the errors above.
type refusal struct {
	class error
	msg   string
}

func refuse(class error, format string, args ...any) error {
	return &refusal{class: class, msg: fmt.Sprintf(format, args...)}
}

func (e *refusal) Error() string { return e.msg }
func (e *refusal) Unwrap() error { return e.class }
