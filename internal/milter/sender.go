package milter

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/dkimd/dkimd/internal/policy"
	"github.com/dkimd/dkimd/internal/store"
)

// Users is what identifying a sender needs from the store. A store.Store
// satisfies it.
type Users interface {
	// GetUser finds an outgoing user by name (store.ErrNotFound if none).
	GetUser(ctx context.Context, name string) (store.OutgoingUser, error)
	// UserByIP finds the IP-authenticated or re-authenticating user whose
	// networks hold addr (store.ErrNotFound if none, store.ErrConflict if
	// two).
	UserByIP(ctx context.Context, addr netip.Addr) (store.OutgoingUser, error)
}

// Reasons the milter adds to the policy package's, for a message it passes
// on unsigned before the signing rule is asked. Their text is stable.
const (
	// ReasonUntrustedDaemon: the MTA listener ({daemon_name}) is not the
	// one signing is restricted to.
	ReasonUntrustedDaemon policy.Reason = "untrusted_daemon"
	// ReasonAuthKind: the SASL login names a user that authenticates by
	// address only.
	ReasonAuthKind policy.Reason = "auth_kind"
	// ReasonOutsideNetworks: the SASL user may only send from its
	// networks, and the client address is outside them.
	ReasonOutsideNetworks policy.Reason = "outside_networks"
	// ReasonAmbiguousAddress: two users claim the client address.
	ReasonAmbiguousAddress policy.Reason = "ambiguous_client_addr"
)

// Sender is what the MTA says about who sent a message, from its macros.
type Sender struct {
	// AuthName is the SASL login ({auth_authen}); empty if the client did
	// not authenticate.
	AuthName string `json:"auth_user,omitempty"`
	// ClientAddr is the SMTP client's address ({client_addr}, else the
	// connect event's); Postfix gives 127.0.0.1 for mail submitted with
	// the sendmail command.
	ClientAddr string `json:"client_addr,omitempty"`
	// Daemon is the MTA listener's name ({daemon_name}; Postfix's
	// milter_macro_daemon_name).
	Daemon string `json:"daemon_name,omitempty"`
}

// Identify finds the outgoing user a message comes from, by the same
// rules every time the milter or an explanation asks:
//
//  1. if trustedDaemon is set, only mail from the MTA listener of that
//     name is anybody's;
//  2. a SASL login names a dkimd outgoing user by its name, as the MTA
//     reports it ("alice", or "alice@example.com" when logins carry a
//     realm or domain); an unknown login is nobody, the client address is
//     not tried then;
//  3. without a login, the client address finds the IP-authenticated or
//     re-authenticating user whose networks hold it.
//
// It returns the user, or nil and the decision to pass the message on
// unsigned (or, with policy.ReasonLookupFailed, to try later).
func Identify(ctx context.Context, users Users, s Sender, trustedDaemon string) (*store.OutgoingUser, policy.Decision) {
	if trustedDaemon != "" && s.Daemon != trustedDaemon {
		return nil, policy.Decision{Reason: ReasonUntrustedDaemon,
			Message: fmt.Sprintf("mail from MTA listener %q; only %q is signed for: passed on unsigned", clip(s.Daemon), trustedDaemon)}
	}
	addr, addrOK := parseAddr(s.ClientAddr)
	if s.AuthName != "" {
		name, err := store.NormalizeName(s.AuthName)
		if err != nil {
			return nil, policy.Decision{Reason: policy.ReasonNoUser,
				Message: fmt.Sprintf("the SASL login is not a possible user name (%v): passed on unsigned", err)}
		}
		u, err := users.GetUser(ctx, name)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return nil, policy.Decision{User: name, Reason: policy.ReasonNoUser,
				Message: fmt.Sprintf("SASL login %q is no dkimd outgoing user: passed on unsigned", clip(name))}
		case err != nil:
			return nil, lookupFailed(name, err)
		case u.Auth == store.AuthIP:
			return nil, policy.Decision{User: u.Name, Reason: ReasonAuthKind,
				Message: fmt.Sprintf("user %s is authorised by address, not by a SASL login: passed on unsigned", u.Name)}
		case u.Auth == store.AuthPassword && len(u.Networks) > 0:
			// The relay accepts such a user's password only from its
			// networks; the milter honours the same restriction.
			if _, ok := store.MatchNetworks(u.Networks, addr); !addrOK || !ok {
				return nil, policy.Decision{User: u.Name, Reason: ReasonOutsideNetworks,
					Message: fmt.Sprintf("user %s may only send from its networks, and client address %s is outside them: passed on unsigned", u.Name, clip(s.ClientAddr))}
			}
		}
		return &u, policy.Decision{}
	}
	if !addrOK {
		return nil, policy.Decision{Reason: policy.ReasonNoUser,
			Message: fmt.Sprintf("no SASL login, and no usable client address (%q): passed on unsigned", clip(s.ClientAddr))}
	}
	u, err := users.UserByIP(ctx, addr)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, policy.Decision{Reason: policy.ReasonNoUser,
			Message: fmt.Sprintf("no SASL login, and client address %s is no outgoing user's: passed on unsigned (inbound mail, or a sender dkimd does not know)", addr)}
	case errors.Is(err, store.ErrConflict):
		return nil, policy.Decision{Reason: ReasonAmbiguousAddress,
			Message: fmt.Sprintf("two outgoing users claim client address %s: passed on unsigned", addr)}
	case err != nil:
		return nil, lookupFailed("", err)
	case u.Auth != store.AuthIP && u.Auth != store.AuthReauth:
		return nil, policy.Decision{User: u.Name, Reason: ReasonAuthKind,
			Message: fmt.Sprintf("user %s is not authorised by address: passed on unsigned", u.Name)}
	}
	return &u, policy.Decision{}
}

// Decide is Identify and then the signing rule, for a message whose From
// field value is headerFrom: what the milter does, and what "policy
// explain --auth-user/--client-ip" asks.
func Decide(ctx context.Context, dir Directory, s Sender, trustedDaemon, headerFrom string) policy.Decision {
	u, d := Identify(ctx, dir, s, trustedDaemon)
	if u == nil {
		return d
	}
	return policy.Decide(ctx, dir, u, headerFrom)
}

func lookupFailed(user string, err error) policy.Decision {
	return policy.Decision{User: user, Reason: policy.ReasonLookupFailed,
		Message: "the user store could not be asked; try again later", Err: err}
}

// parseAddr reads an address as MTAs give it: Postfix "192.0.2.1" or
// "2001:db8::1", Sendmail "IPv6:2001:db8::1", sometimes in brackets.
func parseAddr(s string) (netip.Addr, bool) {
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if len(s) > 5 && strings.EqualFold(s[:5], "IPv6:") {
		s = s[5:]
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}

// clip shortens MTA-supplied text for a log line.
func clip(s string) string {
	const max = 100
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
