package policy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/mailaddr"
	"github.com/dkimd/dkimd/internal/store"
)

// Directory is what the signing rule needs from the store.
type Directory interface {
	// GetUser finds an outgoing user by name (store.ErrNotFound if none).
	GetUser(ctx context.Context, name string) (store.OutgoingUser, error)
	// ActiveKeys gives a domain's active keys.
	ActiveKeys(ctx context.Context, domain string) ([]store.Key, error)
}

// Reason is a stable code for a decision, for logs, metrics and the API.
type Reason string

// The reasons. Their text is stable: scripts and dashboards match on it.
const (
	// ReasonFromDomain: signed as the From domain (rule 2).
	ReasonFromDomain Reason = "from_domain"
	// ReasonUserSelector: signed as the user's domain with its selector
	// (rule 3).
	ReasonUserSelector Reason = "user_selector"
	// ReasonReauth: re-authenticating users are never signed for (rule 1).
	ReasonReauth Reason = "reauth_user"
	// ReasonNoUser: no authenticated user, or the name is unknown.
	ReasonNoUser Reason = "no_user"
	// ReasonUserDisabled: the user is disabled.
	ReasonUserDisabled Reason = "user_disabled"
	// ReasonFromMissing: the From header holds no address.
	ReasonFromMissing Reason = "from_missing"
	// ReasonFromMultiple: the From header holds several addresses.
	ReasonFromMultiple Reason = "from_multiple"
	// ReasonFromInvalid: the From header, or its domain, does not parse.
	ReasonFromInvalid Reason = "from_invalid"
	// ReasonSelectorNoKey: the user's selector names no active key of its
	// domain.
	ReasonSelectorNoKey Reason = "selector_no_active_key"
	// ReasonNoKey: the From domain gives no key the user may use and the
	// user has no selector (rule 4).
	ReasonNoKey Reason = "no_key"
	// ReasonLookupFailed: the store could not be asked; Decision.Err says
	// why. The failure is temporary: a relay should defer (4xx), not pass
	// the message on unsigned.
	ReasonLookupFailed Reason = "lookup_failed"
)

// ReauthMessage is the message of a ReasonReauth decision, and the
// explanation ValidateSelectorForUser gives.
const ReauthMessage = store.ReauthSelectorMessage

// Signature is one DKIM signature to make.
type Signature struct {
	// Domain is the d= tag.
	Domain mailaddr.Domain `json:"domain"`
	// Selector is the s= tag.
	Selector string `json:"selector"`
	// KeyID is the store's key ID, to fetch the sealed private key.
	KeyID int64 `json:"key_id"`
	// Algorithm of the key (rsa or ed25519).
	Algorithm keys.Algorithm `json:"algorithm"`
}

// Decision is what to sign a message with, and why.
type Decision struct {
	// Sign lists the signatures to add; empty means pass the message on
	// unsigned (or defer it, for ReasonLookupFailed).
	Sign []Signature `json:"sign"`
	// Domain is the d= domain of every signature, if any.
	Domain mailaddr.Domain `json:"domain,omitzero"`
	// User is the user decided for, FromDomain the From header's domain,
	// when known.
	User       string          `json:"user,omitempty"`
	FromDomain mailaddr.Domain `json:"from_domain,omitzero"`
	// Reason is a stable code, Message says the same in words.
	Reason  Reason `json:"reason"`
	Message string `json:"message"`
	// Err is the store error behind ReasonLookupFailed.
	Err error `json:"-"`
}

// Signs reports whether the decision is to sign.
func (d Decision) Signs() bool { return len(d.Sign) > 0 }

// LogValue gives the decision as slog attributes, for the info-level line
// every decision gets.
func (d Decision) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("reason", string(d.Reason)),
		slog.String("user", d.User),
		slog.String("from_domain", d.FromDomain.String()),
	}
	if d.Signs() {
		sels := make([]string, len(d.Sign))
		for i, s := range d.Sign {
			sels[i] = s.Selector
		}
		attrs = append(attrs, slog.String("domain", d.Domain.String()), slog.String("selectors", strings.Join(sels, ",")))
	}
	attrs = append(attrs, slog.String("detail", d.Message))
	if d.Err != nil {
		attrs = append(attrs, slog.String("error", d.Err.Error()))
	}
	return slog.GroupValue(attrs...)
}

// Errors of the From header, one per way it can be unusable (the classes
// of mailaddr.ParseFromHeader, which Decide uses).
var (
	ErrFromMissing  = mailaddr.ErrFromMissing
	ErrFromMultiple = mailaddr.ErrFromMultiple
	ErrFromInvalid  = mailaddr.ErrFromInvalid
)

// DecideForName is Decide for a user named by name, as an API asking "what
// would happen" or a relay holding only the authenticated name uses it.
func DecideForName(ctx context.Context, dir Directory, name, headerFrom string) Decision {
	u, err := dir.GetUser(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return Decision{User: name, Reason: ReasonNoUser, Message: fmt.Sprintf("there is no outgoing user %q", name)}
	}
	if err != nil {
		return lookupFailed(name, mailaddr.Domain{}, err)
	}
	return Decide(ctx, dir, &u, headerFrom)
}

// Decide applies the signing rule to a message from user (nil when nobody
// authenticated) whose From header field value is headerFrom.
func Decide(ctx context.Context, dir Directory, user *store.OutgoingUser, headerFrom string) Decision {
	if user == nil {
		return Decision{Reason: ReasonNoUser, Message: "no authenticated user: nothing is signed"}
	}
	d := Decision{User: user.Name}
	if !user.Enabled {
		d.Reason, d.Message = ReasonUserDisabled, fmt.Sprintf("user %s is disabled", user.Name)
		return d
	}
	// Rule 1.
	if user.Auth == store.AuthReauth {
		d.Reason, d.Message = ReasonReauth, ReauthMessage
		return d
	}

	fromAddr, err := mailaddr.ParseFromHeader(headerFrom)
	switch {
	case errors.Is(err, ErrFromMissing):
		d.Reason, d.Message = ReasonFromMissing, "the From header holds no address, so there is no domain to sign as"
		return d
	case errors.Is(err, ErrFromMultiple):
		d.Reason, d.Message = ReasonFromMultiple, "the From header holds several addresses; dkimd does not guess which one to sign as"
		return d
	case err != nil:
		d.Reason = ReasonFromInvalid
		d.Message = "The From header does not parse."
		if m, _, ok := store.Detail(err); ok {
			d.Message = m
		}
		return d
	}
	from := fromAddr.Domain()
	d.FromDomain = from

	// Rule 2.
	mayFrom := user.MaySignAs(from)
	if mayFrom {
		ks, err := dir.ActiveKeys(ctx, from.String())
		if err != nil {
			return lookupFailed(user.Name, from, err)
		}
		if ks = usable(ks, from); len(ks) > 0 {
			d.sign(from, ks)
			d.Reason = ReasonFromDomain
			n := "its active key"
			if len(ks) > 1 {
				n = fmt.Sprintf("its %d active keys", len(ks))
			}
			d.Message = fmt.Sprintf("signed as From domain %s, which user %s may sign as, with %s", from, user.Name, n)
			return d
		}
	}

	// Rule 3.
	why := fmt.Sprintf("From domain %s has no active key", from)
	if !mayFrom {
		why = fmt.Sprintf("user %s may not sign as From domain %s (it may sign as %s)", user.Name, from, strings.Join(signable(user), ", "))
	}
	if user.Selector != "" {
		own, err := mailaddr.ParseDomain(user.Domain)
		if err != nil {
			// The store keeps names canonical: a user whose domain does
			// not parse is not signed for.
			d.Reason = ReasonSelectorNoKey
			d.Message = fmt.Sprintf("%s, and the user's domain %q is not a valid domain name: %v", why, user.Domain, err)
			return d
		}
		ks, err := dir.ActiveKeys(ctx, own.String())
		if err != nil {
			return lookupFailed(user.Name, from, err)
		}
		ks = slices.DeleteFunc(usable(ks, own), func(k store.Key) bool { return k.Selector != user.Selector })
		if len(ks) == 0 {
			d.Reason = ReasonSelectorNoKey
			d.Message = fmt.Sprintf("%s, and the user's selector %s names no active key of %s", why, user.Selector, user.Domain)
			return d
		}
		d.sign(own, ks[:1])
		d.Reason = ReasonUserSelector
		d.Message = fmt.Sprintf("%s; signed as the user's domain %s with its selector %s", why, user.Domain, user.Selector)
		return d
	}

	// Rule 4.
	d.Reason = ReasonNoKey
	d.Message = why + ", and the user has no DKIM selector: not signed"
	return d
}

// usable keeps the keys that are active and of domain: the store said so,
// but a signature for a domain the rule did not choose must be impossible,
// not merely unlikely. RSA comes first, so a receiver that stops at the
// first signature sees the one every verifier understands (RFC 8463 §1).
func usable(ks []store.Key, domain mailaddr.Domain) []store.Key {
	ks = slices.DeleteFunc(slices.Clone(ks), func(k store.Key) bool {
		return k.Domain != domain.String() || k.State != store.KeyActive
	})
	slices.SortFunc(ks, func(a, b store.Key) int {
		if a.Algorithm != b.Algorithm {
			if a.Algorithm == keys.RSA {
				return -1
			}
			if b.Algorithm == keys.RSA {
				return 1
			}
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return ks
}

func (d *Decision) sign(domain mailaddr.Domain, ks []store.Key) {
	d.Domain = domain
	for _, k := range ks {
		d.Sign = append(d.Sign, Signature{Domain: domain, Selector: k.Selector, KeyID: k.ID, Algorithm: k.Algorithm})
	}
}

func signable(u *store.OutgoingUser) []string {
	return append([]string{u.Domain}, u.GrantedDomains...)
}

func lookupFailed(user string, from mailaddr.Domain, err error) Decision {
	return Decision{User: user, FromDomain: from, Reason: ReasonLookupFailed,
		Message: "the key store could not be asked; try again later", Err: err}
}
