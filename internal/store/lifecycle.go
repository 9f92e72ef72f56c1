package store

import (
	"strings"
	"time"
)

// KeyStateChange is one change SetKeyStates makes.
type KeyStateChange struct {
	// ID is the key to change.
	ID int64
	// From, when set, is the state the key must be in: the change is
	// refused with ErrConflict otherwise, so that a decision taken on
	// what was read is not applied to a key someone changed since. Empty
	// means any state the move is allowed from.
	From KeyState
	// To is the new state.
	To KeyState
}

// DNSCheck is the outcome of one check of a key's DNS record, kept as
// history (DNSChecks).
type DNSCheck struct {
	// ID is assigned by the store, increasing with each check.
	ID int64 `json:"id"`
	// KeyID is the key whose record was checked.
	KeyID int64 `json:"key_id"`
	// Time is when the check ran; the store's clock when zero.
	Time time.Time `json:"time"`
	// Status is the check's outcome as a stable code (dnscheck.Status:
	// "match", "not_found", "temporary_failure", …).
	Status string `json:"status"`
	// OK says the record was in the state expected of the key on every
	// server.
	OK bool `json:"ok"`
	// Summary is one line for people.
	Summary string `json:"summary,omitempty"`
}

// maxCheckSummary bounds DNSCheck.Summary: it is for people, and a check
// that quotes a long record must not grow the history without bound.
const maxCheckSummary = 1000

// Normalize checks c and trims its summary to a bounded length.
func (c DNSCheck) Normalize() (DNSCheck, error) {
	if c.KeyID <= 0 {
		return c, Invalid("key_id", "not a key ID: %d", c.KeyID)
	}
	c.Status = strings.TrimSpace(c.Status)
	if c.Status == "" {
		return c, Invalid("status", "empty")
	}
	if len(c.Summary) > maxCheckSummary {
		c.Summary = strings.ToValidUTF8(c.Summary[:maxCheckSummary], "")
	}
	return c, nil
}

// Limits on ListDNSChecks.
const (
	DefaultDNSCheckLimit = 20
	MaxDNSCheckLimit     = 1000
)

// DNSCheckFilter selects checks for ListDNSChecks. The zero value selects
// the newest DefaultDNSCheckLimit checks of every key.
type DNSCheckFilter struct {
	// KeyID, when non-zero, selects that key's checks.
	KeyID int64
	// Limit caps the number of checks, newest first: 0 means
	// DefaultDNSCheckLimit, more than MaxDNSCheckLimit means
	// MaxDNSCheckLimit.
	Limit int
}

// EffectiveLimit gives Limit within its bounds.
func (f DNSCheckFilter) EffectiveLimit() int {
	switch {
	case f.Limit <= 0:
		return DefaultDNSCheckLimit
	case f.Limit > MaxDNSCheckLimit:
		return MaxDNSCheckLimit
	}
	return f.Limit
}
