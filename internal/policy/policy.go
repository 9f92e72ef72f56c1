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
	// ListKeys gives the keys f selects. Evaluate asks for it only when a
	// user's selector names no active key, to follow a rotation.
	ListKeys(ctx context.Context, f store.KeyFilter) ([]store.Key, error)
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
	// ReasonUserDisabled: the user is disabled; its mail is refused.
	ReasonUserDisabled Reason = "user_disabled"
	// ReasonFromCount: the header holds no From field or several; the
	// message is refused (RFC 5322 §3.6).
	ReasonFromCount Reason = "from_count"
	// ReasonFromNotPermitted: the From header names no domain the user may
	// send as, and the user may not send foreign mail; the message is
	// refused.
	ReasonFromNotPermitted Reason = "from_not_permitted"
	// ReasonFromMissing: the From header holds no address.
	ReasonFromMissing Reason = "from_missing"
	// ReasonFromMultiple: the From header holds several addresses.
	ReasonFromMultiple Reason = "from_multiple"
	// ReasonFromInvalid: the From header, or its domain, does not parse.
	ReasonFromInvalid Reason = "from_invalid"
	// ReasonUserSelectorRotated: signed as the user's domain with the
	// active key that replaced, in a rotation, the key the user's selector
	// names (rule 3).
	ReasonUserSelectorRotated Reason = "user_selector_rotated"
	// ReasonSelectorNoKey: the user's selector names no active key of its
	// domain, nor a key a rotation replaced by an active one.
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

// Decision is what becomes of a message, what to sign it with, and why.
type Decision struct {
	// Outcome is the class: signed, unsigned, refused or deferred.
	Outcome Outcome `json:"outcome"`
	// Sign lists the signatures to add; empty means pass the message on
	// unsigned (or defer it, for ReasonLookupFailed).
	Sign []Signature `json:"sign"`
	// Domain is the d= domain of every signature, if any.
	Domain mailaddr.Domain `json:"domain,omitzero"`
	// User is the user decided for, FromDomain the From header's domain
	// (canonical), when known.
	User       string          `json:"user,omitempty"`
	FromDomain mailaddr.Domain `json:"from_domain,omitzero"`
	// Reason is a stable code, Message says the same in words.
	Reason  Reason `json:"reason"`
	Message string `json:"message"`
	// Replaced is the user's selector when a rotation replaced its key
	// and Sign names the successor (ReasonUserSelectorRotated).
	Replaced string `json:"replaced_selector,omitempty"`
	// Warnings say why a signature would not verify at receivers, from
	// the keys' latest stored DNS checks. Only the explainer fills them
	// in (admin.Service.Explain): the relay never looks at DNS.
	Warnings []KeyWarning `json:"warnings,omitempty"`
	// Err is the store error behind ReasonLookupFailed.
	Err error `json:"-"`
}

// KeyWarning says a signature a decision makes would not verify, or may
// not, because of what DNS serves for its key.
type KeyWarning struct {
	// Selector of the signing key; the domain is the decision's.
	Selector string `json:"selector"`
	// Bad is true when the signature fails for certain (the record is
	// missing or wrong), false when it may (not checked yet, DNS did not
	// answer).
	Bad bool `json:"bad"`
	// Message says it in words.
	Message string `json:"message"`
}

// FailsDKIM reports whether the message is signed but every signature
// has a warning that it fails for certain: receivers see DKIM fail.
func (d Decision) FailsDKIM() bool {
	bad := 0
	for _, w := range d.Warnings {
		if w.Bad {
			bad++
		}
	}
	return d.Signs() && bad >= len(d.Sign)
}

// Refused reports whether the message is refused for good.
func (d Decision) Refused() bool { return d.Outcome == OutcomeRefused }

// Signs reports whether the decision is to sign.
func (d Decision) Signs() bool { return len(d.Sign) > 0 }

// LogValue gives the decision as slog attributes, for the info-level line
// every decision gets.
func (d Decision) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("outcome", string(d.Outcome)),
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
// of mailaddr.ParseFromHeader, which Evaluate uses).
var (
	ErrFromMissing  = mailaddr.ErrFromMissing
	ErrFromMultiple = mailaddr.ErrFromMultiple
	ErrFromInvalid  = mailaddr.ErrFromInvalid
)

// Outcome is what becomes of a message: the class of a Decision that
// every front end (relay, milter, explainer) maps the same way.
type Outcome string

// The outcomes.
const (
	// OutcomeSigned: the message goes on with the signatures in Sign.
	OutcomeSigned Outcome = "signed"
	// OutcomeUnsigned: the message goes on without a signature.
	OutcomeUnsigned Outcome = "unsigned"
	// OutcomeRefused: the message is refused for good (an SMTP 5xx): the
	// user may not send it at all.
	OutcomeRefused Outcome = "refused"
	// OutcomeDeferred: the decision could not be made now (the store did
	// not answer); the message is deferred (4xx), never passed on
	// unsigned.
	OutcomeDeferred Outcome = "deferred"
)

// Request is a message to decide about, as a front end sees it.
type Request struct {
	// User is the authenticated user; nil when nobody authenticated.
	User *store.OutgoingUser
	// From holds the value of every From field of the header, in order,
	// as after "From:", folded or not. RFC 5322 §3.6 asks for exactly
	// one; the explainer passes the one address it was given.
	From []string
}

// DecideForName is Evaluate for a user named by name, as an API asking
// "what would happen" or a front end holding only the authenticated name
// uses it.
func DecideForName(ctx context.Context, dir Directory, name, headerFrom string) Decision {
	u, err := dir.GetUser(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return Decision{Outcome: OutcomeUnsigned, User: name, Reason: ReasonNoUser, Message: fmt.Sprintf("there is no outgoing user %q", name)}
	}
	if err != nil {
		return lookupFailed(name, mailaddr.Domain{}, err)
	}
	return Decide(ctx, dir, &u, headerFrom)
}

// Decide is Evaluate for a message with one From field whose value is
// headerFrom.
func Decide(ctx context.Context, dir Directory, user *store.OutgoingUser, headerFrom string) Decision {
	return Evaluate(ctx, dir, Request{User: user, From: []string{headerFrom}})
}

// Evaluate is the one decision about a message: whether it is refused,
// passed on unsigned, or signed and with which keys, and why. The relay,
// the milter and the explainer all call it, so that what the panel
// promises is what the relay does. In order:
//
//  1. nobody authenticated: unsigned;
//  2. a disabled user: refused;
//  3. not exactly one From field (RFC 5322 §3.6): refused;
//  4. unless the user may send foreign mail (AllowForeignFrom), a From
//     that names no domain the user may sign as: refused;
//  5. the signing rule (the package doc): signed or unsigned;
//
// and a store that does not answer defers the message. It reads only the
// store (users and keys), never DNS: it runs for every message.
func Evaluate(ctx context.Context, dir Directory, r Request) Decision {
	user := r.User
	if user == nil {
		return Decision{Outcome: OutcomeUnsigned, Reason: ReasonNoUser, Message: "no authenticated user: nothing is signed"}
	}
	d := Decision{User: user.Name, Outcome: OutcomeRefused}
	if !user.Enabled {
		d.Reason, d.Message = ReasonUserDisabled, fmt.Sprintf("user %s is disabled: its mail is refused", user.Name)
		return d
	}
	if len(r.From) != 1 {
		d.Reason = ReasonFromCount
		d.Message = fmt.Sprintf("the header holds %d From fields; exactly one is required (RFC 5322 §3.6): the message is refused", len(r.From))
		return d
	}
	fromAddr, ferr := mailaddr.ParseFromHeader(r.From[0])
	from := fromAddr.Domain()
	if ferr == nil {
		d.FromDomain = from
	}
	if !user.AllowForeignFrom {
		switch {
		case ferr != nil:
			d.Reason = ReasonFromNotPermitted
			d.Message = fmt.Sprintf("%s; user %s may only send mail from %s: the message is refused",
				fromProblem(ferr), user.Name, strings.Join(signable(user), ", "))
			return d
		case !user.MaySignAs(from):
			d.Reason = ReasonFromNotPermitted
			d.Message = fmt.Sprintf("user %s may not send mail from %s (it may send from %s): the message is refused",
				user.Name, from, strings.Join(signable(user), ", "))
			return d
		}
	}
	d.Outcome = OutcomeUnsigned
	// Rule 1.
	if user.Auth == store.AuthReauth {
		d.Reason, d.Message = ReasonReauth, ReauthMessage
		return d
	}
	switch {
	case errors.Is(ferr, ErrFromMissing):
		d.Reason, d.Message = ReasonFromMissing, fromProblem(ferr)+", so there is no domain to sign as"
		return d
	case errors.Is(ferr, ErrFromMultiple):
		d.Reason, d.Message = ReasonFromMultiple, fromProblem(ferr)+"; dkimd does not guess which one to sign as"
		return d
	case ferr != nil:
		d.Reason, d.Message = ReasonFromInvalid, fromProblem(ferr)
		return d
	}

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
			d.Message = fmt.Sprintf("%s, and the user's domain %q is not a valid domain name", why, user.Domain)
			return d
		}
		ks, err := dir.ActiveKeys(ctx, own.String())
		if err != nil {
			return lookupFailed(user.Name, from, err)
		}
		ks = usable(ks, own)
		named := slices.DeleteFunc(slices.Clone(ks), func(k store.Key) bool { return k.Selector != user.Selector })
		if len(named) > 0 {
			d.sign(own, named[:1])
			d.Reason = ReasonUserSelector
			d.Message = fmt.Sprintf("%s; signed as the user's domain %s with its selector %s", why, user.Domain, user.Selector)
			return d
		}
		// Not active: the key may have been replaced in a rotation. Only
		// this path lists the domain's keys, so mail signed with an
		// active selector costs no more than before.
		all, err := dir.ListKeys(ctx, store.KeyFilter{Domain: user.Domain})
		if err != nil {
			return lookupFailed(user.Name, from, err)
		}
		res := ResolveSelector(all, user.Selector)
		if res.Signing != nil {
			d.sign(own, []store.Key{*res.Signing})
			d.Reason = ReasonUserSelectorRotated
			d.Replaced = user.Selector
			d.Message = fmt.Sprintf("%s; signed as the user's domain %s with %s, which replaced the user's selector %s in a rotation",
				why, user.Domain, res.Signing.Selector, user.Selector)
			return d
		}
		d.Reason = ReasonSelectorNoKey
		d.Message = fmt.Sprintf("%s, and %s: not signed", why, res.Problem(user.Domain))
		return d
	}

	// Rule 4.
	d.Reason = ReasonNoKey
	d.Message = why + ", and the user has no DKIM selector: not signed"
	return d
}

// fromProblem says in words what FromDomain found wrong.
func fromProblem(err error) string {
	switch {
	case errors.Is(err, ErrFromMissing):
		return "the From header holds no address"
	case errors.Is(err, ErrFromMultiple):
		return "the From header holds several addresses"
	}
	// The details (net/mail's words, the domain's fault) are for the log:
	// Decision.Err is not set for a message's own fault, so say it whole.
	return "the From header does not parse as one address of a valid domain (RFC 5322 §3.4)"
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
	d.Outcome = OutcomeSigned
	d.Domain = domain
	for _, k := range ks {
		d.Sign = append(d.Sign, Signature{Domain: domain, Selector: k.Selector, KeyID: k.ID, Algorithm: k.Algorithm})
	}
}

func signable(u *store.OutgoingUser) []string {
	return append([]string{u.Domain}, u.GrantedDomains...)
}

func lookupFailed(user string, from mailaddr.Domain, err error) Decision {
	return Decision{Outcome: OutcomeDeferred, User: user, FromDomain: from, Reason: ReasonLookupFailed,
		Message: "the key store could not be asked; try again later", Err: err}
}
