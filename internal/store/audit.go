package store

import (
	"time"

	"github.com/dkimd/dkimd/internal/mailaddr"
)

// AuditEntry records who did what to which object, when and from where.
// The audit log is append-only: no method changes or removes an entry, and
// backends refuse to at the database level where they can.
type AuditEntry struct {
	// ID is assigned by the store, increasing with each entry.
	ID int64 `json:"id"`
	// Time is set by the store's clock when zero.
	Time time.Time `json:"time"`
	// Actor is the account name, "cli" for the command line, or "system"
	// for dkimd itself (e.g. a key activated once seen in DNS).
	Actor string `json:"actor"`
	// Remote is the client address the request came from, if any.
	Remote string `json:"remote,omitempty"`
	// Action is a stable dotted verb, e.g. "key.create", "key.state",
	// "user.update", "domain.remove".
	Action string `json:"action"`
	// ObjectKind and ObjectID name what was acted on, e.g. "key" and "42",
	// "user" and "alice@example.com".
	ObjectKind string `json:"object_kind,omitempty"`
	ObjectID   string `json:"object_id,omitempty"`
	// Domain is the domain the object belongs to, for filtering and for
	// domain admins' views.
	Domain string `json:"domain,omitempty"`
	// Detail is free text for people (e.g. "pending → active"). It must
	// never hold secrets: no keys, passwords or tokens.
	Detail string `json:"detail,omitempty"`
}

// Normalize checks e.
func (e AuditEntry) Normalize() (AuditEntry, error) {
	if e.Actor == "" {
		return e, Invalid("actor", "empty")
	}
	if e.Action == "" {
		return e, Invalid("action", "empty")
	}
	if e.Domain != "" {
		d, err := mailaddr.ParseDomain(e.Domain)
		if err != nil {
			return e, &FieldError{Field: "domain", Err: err}
		}
		e.Domain = d.String()
	}
	return e, nil
}

// Limits on ListAudit.
const (
	DefaultAuditLimit = 100
	MaxAuditLimit     = 10000
)

// AuditFilter selects audit entries. The zero value selects the newest
// DefaultAuditLimit entries.
type AuditFilter struct {
	// Domain, Actor, Action and ObjectKind, when set, must match exactly.
	Domain     string
	Actor      string
	Action     string
	ObjectKind string
	// Since, when set, selects entries at or after it.
	Since time.Time
	// Before, when non-zero, selects entries with a smaller ID: pages back
	// through the log.
	Before int64
	// Limit caps the number of entries, newest first: 0 means
	// DefaultAuditLimit, more than MaxAuditLimit means MaxAuditLimit.
	Limit int
}

// EffectiveLimit gives Limit within its bounds.
func (f AuditFilter) EffectiveLimit() int {
	switch {
	case f.Limit <= 0:
		return DefaultAuditLimit
	case f.Limit > MaxAuditLimit:
		return MaxAuditLimit
	}
	return f.Limit
}
