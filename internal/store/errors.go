package store

import (
	"fmt"
)

// Failure classes. Backends wrap them with context; callers test them with
// errors.Is.
//
// Each carries a generic sentence for people (see Detail), said when the
// error wrapping it carries none of its own.
var (
	// ErrNotFound means the object asked for does not exist (HTTP 404).
	ErrNotFound = Class("store: not found", "It was not found (or it is not one of yours).")
	// ErrExists means an object with the same unique name already exists:
	// a domain, a selector in its domain, a user or account name (HTTP 409).
	ErrExists = Class("store: already exists", "That name already exists.")
	// ErrInvalid means a value breaks a rule of this package; the error is a
	// *FieldError naming the field (HTTP 422).
	ErrInvalid = Class("store: invalid value", "A value is not valid.")
	// ErrConflict means the request is well-formed but the current state
	// forbids it: a key state change that is not allowed, removing a domain
	// that still has keys or users, an IP that two users claim (HTTP 409).
	ErrConflict = Class("store: conflict", "The current state does not allow this.")
)

// FieldError says which field of a value is invalid and why. It matches
// ErrInvalid with errors.Is, and also whatever Err wraps, so a caller can
// test for a more specific sentinel.
type FieldError struct {
	// Field is the JSON name of the field, e.g. "selector" or
	// "networks[2]".
	Field string
	// Err says what is wrong, in words fit for an administrator.
	Err error
}

// Error gives "store: invalid selector: …".
func (e *FieldError) Error() string {
	return fmt.Sprintf("store: invalid %s: %v", e.Field, e.Err)
}

// Is makes every FieldError match ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// Unwrap gives the reason, for errors.Is against specific sentinels.
func (e *FieldError) Unwrap() error { return e.Err }

// Invalid returns a *FieldError for field with a reason built like
// fmt.Errorf (so %w works).
func Invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}
