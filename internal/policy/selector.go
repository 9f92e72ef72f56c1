package policy

import (
	"context"
	"errors"
	"fmt"

	"github.com/dkimd/dkimd/internal/store"
)

// KeyLookup is what ValidateSelectorForUser needs from the store.
type KeyLookup interface {
	// KeyBySelector finds a domain's key by selector (store.ErrNotFound).
	KeyBySelector(ctx context.Context, domain, selector string) (store.Key, error)
}

// ErrSelectorNoKey is the reason (inside a *store.FieldError for
// "selector") when a user's selector names no key of its domain that is or
// may become active.
var ErrSelectorNoKey = errors.New("no pending or active key of the user's domain has this selector")

// ValidateSelectorForUser checks the DKIM selector of a user about to be
// saved, as the panel and API do before AddUser or UpdateUser. It refuses a
// selector on a re-authenticating user (store.ErrReauthSelector, whose text
// is ReauthMessage) and a selector that names no pending or active key of
// the user's owner domain (ErrSelectorNoKey). Both come as a
// *store.FieldError for "selector", so they match store.ErrInvalid. A
// pending key is accepted: the user is typically set up while the record
// waits to be published. Other errors are the store's.
func ValidateSelectorForUser(ctx context.Context, kl KeyLookup, u *store.OutgoingUser) error {
	if u.Selector == "" {
		return nil
	}
	if u.Auth == store.AuthReauth {
		return &store.FieldError{Field: "selector", Err: store.ErrReauthSelector}
	}
	k, err := kl.KeyBySelector(ctx, u.Domain, u.Selector)
	if errors.Is(err, store.ErrNotFound) {
		return &store.FieldError{Field: "selector", Err: fmt.Errorf("%w (%s in %s)", ErrSelectorNoKey, u.Selector, u.Domain)}
	}
	if err != nil {
		return err
	}
	if k.State != store.KeyPending && k.State != store.KeyActive {
		return &store.FieldError{Field: "selector", Err: fmt.Errorf("%w (%s in %s is %s and will never sign again)",
			ErrSelectorNoKey, k.Selector, k.Domain, k.State)}
	}
	return nil
}
