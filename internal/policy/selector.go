package policy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/dkimd/dkimd/internal/store"
)

// A user's selector and rotation
//
// A user's DKIM selector names one key of its owner domain. Rotating that
// key makes a successor on a new selector (store.Key.Replaces) and retires
// the old key when the successor activates. The user's selector is not
// rewritten: it resolves through the rotation to the active successor,
// for every front end at once, with no write to users on a key change
// (which the monitor makes by itself, on any node, for domains of any
// tenant). The decision says so (ReasonUserSelectorRotated), and the
// panel shows where each user's selector leads.

// SelectorResolution is where a user's selector leads among its domain's
// keys.
type SelectorResolution struct {
	// Selector is the user's selector.
	Selector string
	// Named is the key the selector names; nil if there is none.
	Named *store.Key
	// Signing is the active key that signs the user's mail: Named if it
	// is active, else the active key that replaced it through one or more
	// rotations; nil if none.
	Signing *store.Key
	// Waiting is a pending key that will sign once active: Named itself,
	// or a successor of Named; nil if none. Set only when Signing is nil.
	Waiting *store.Key
}

// CanSign reports whether the selector leads to an active key.
func (r SelectorResolution) CanSign() bool { return r.Signing != nil }

// Followed reports whether the selector signs through a rotation: the key
// it names was replaced, and Signing is its active successor.
func (r SelectorResolution) Followed() bool {
	return r.Signing != nil && r.Named != nil && r.Signing.ID != r.Named.ID
}

// Problem says in words why the selector does not sign, for a decision or
// a list of users; empty when it signs.
func (r SelectorResolution) Problem(domain string) string {
	switch {
	case r.Signing != nil:
		return ""
	case r.Named == nil:
		return fmt.Sprintf("the user's selector %s names no key of %s", r.Selector, domain)
	case r.Named.State == store.KeyPending:
		return fmt.Sprintf("the user's selector %s names a pending key: it signs once its record is seen in DNS and it is active", r.Selector)
	case r.Waiting != nil:
		return fmt.Sprintf("the user's selector %s names a %s key, and %s, which replaces it, is still pending: it signs once active",
			r.Selector, r.Named.State, r.Waiting.Selector)
	}
	return fmt.Sprintf("the user's selector %s names a %s key that no active key replaced: choose another selector for the user",
		r.Selector, r.Named.State)
}

// ResolveSelector follows a user's selector through rotations among all,
// the keys of the user's owner domain (store.Keys.ListKeys). From the key
// the selector names it walks the keys made to replace it (Replaces), and
// those that replaced them, and takes the first active one (the oldest, as
// IDs only grow). Replaces always names an older key, so the walk ends.
func ResolveSelector(all []store.Key, selector string) SelectorResolution {
	r := SelectorResolution{Selector: selector}
	i := slices.IndexFunc(all, func(k store.Key) bool { return k.Selector == selector })
	if i < 0 {
		return r
	}
	named := all[i]
	r.Named = &named
	switch named.State {
	case store.KeyActive:
		r.Signing = r.Named
		return r
	case store.KeyPending:
		r.Waiting = r.Named
		return r
	}
	byID := slices.Clone(all)
	slices.SortFunc(byID, func(a, b store.Key) int { return cmp.Compare(a.ID, b.ID) })
	seen := map[int64]bool{named.ID: true}
	for front := []int64{named.ID}; len(front) > 0; {
		var next []int64
		for _, k := range byID {
			if seen[k.ID] || !slices.Contains(front, k.Replaces) {
				continue
			}
			seen[k.ID] = true
			switch k.State {
			case store.KeyActive:
				r.Signing, r.Waiting = &k, nil
				return r
			case store.KeyPending:
				if r.Waiting == nil {
					r.Waiting = &k
				}
			}
			next = append(next, k.ID)
		}
		front = next
	}
	return r
}

// KeyLookup is what ValidateSelectorForUser needs from the store.
type KeyLookup interface {
	// ListKeys gives the keys f selects.
	ListKeys(ctx context.Context, f store.KeyFilter) ([]store.Key, error)
}

// ErrSelectorNoKey is the reason (inside a *store.FieldError for
// "selector") when a user's selector names no key of its domain that is or
// may become active.
var ErrSelectorNoKey = errors.New("no pending or active key of the user's domain has this selector")

// ValidateSelectorForUser checks the DKIM selector of a user about to be
// saved, as the panel and API do before AddUser or UpdateUser. It refuses a
// selector on a re-authenticating user (store.ErrReauthSelector, whose text
// is ReauthMessage) and a selector that leads to no pending or active key
// of the user's owner domain (ErrSelectorNoKey), itself or through a
// rotation (ResolveSelector). Both come as a *store.FieldError for
// "selector", so they match store.ErrInvalid. A pending key is accepted:
// the user is typically set up while the record waits to be published.
// Other errors are the store's.
func ValidateSelectorForUser(ctx context.Context, kl KeyLookup, u *store.OutgoingUser) error {
	if u.Selector == "" {
		return nil
	}
	if u.Auth == store.AuthReauth {
		return &store.FieldError{Field: "selector", Err: store.ErrReauthSelector}
	}
	all, err := kl.ListKeys(ctx, store.KeyFilter{Domain: u.Domain})
	if err != nil {
		return err
	}
	res := ResolveSelector(all, u.Selector)
	switch {
	case res.Signing != nil || res.Waiting != nil:
		return nil
	case res.Named == nil:
		return &store.FieldError{Field: "selector", Err: fmt.Errorf("%w (%s in %s)", ErrSelectorNoKey, u.Selector, u.Domain)}
	}
	return &store.FieldError{Field: "selector", Err: fmt.Errorf("%w (%s in %s is %s, and no active or pending key replaced it)",
		ErrSelectorNoKey, res.Named.Selector, res.Named.Domain, res.Named.State)}
}
