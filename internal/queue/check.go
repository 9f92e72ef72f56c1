package queue

import "time"

// CheckEnvelope is the check Enqueue makes of an envelope, for other
// implementations of Queue: an error wrapping ErrInvalid for no
// recipients, a malformed address, or a line break in metadata.
func CheckEnvelope(e Envelope) error { return checkEnvelope(e) }

// ValidID reports whether id can name a queued message (EnqueueID): 1 to
// 64 ASCII letters, digits and hyphens.
func ValidID(id string) bool { return validID(id) }

// NewID gives a new message id: time-ordered, with 64 random bits.
func NewID(now time.Time) string { return newID(now) }
