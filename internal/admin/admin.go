package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/mailaddr"
	"github.com/dkimd/dkimd/internal/queue"
	"github.com/dkimd/dkimd/internal/store"
)

// ErrForbidden means the actor may not do this at all (HTTP 403). For an
// object in a domain the actor does not manage, operations answer
// store.ErrNotFound instead, so a domain admin cannot probe other tenants.
var ErrForbidden = store.Class("admin: forbidden", "You may not do this.")

// ErrNoQueue means the queue operations were asked of a process that
// runs no queue.
var ErrNoQueue = store.Class("admin: no mail queue", "This dkimd process runs no mail queue; ask the node that relays mail.")

// Actor is who asks for an operation.
type Actor struct {
	// Name goes into the audit log: the account name, "cli" or "system".
	Name string
	// Account is the panel account asking; nil means the local command
	// line or dkimd itself, which may do everything.
	Account *store.Account
	// Remote is the client address, for the audit log.
	Remote string
	// Session is the ID of the panel session the account acts through,
	// zero for an API token or none: a password change ends the
	// account's other sessions but not this one.
	Session int64
}

// CLI is the actor for commands run on the server itself: whoever can read
// the data directory already holds every key.
func CLI() Actor { return Actor{Name: "cli"} }

// System is the actor for what dkimd does by itself.
func System() Actor { return Actor{Name: "system"} }

// IsAdmin reports whether the actor may manage everything.
func (a Actor) IsAdmin() bool {
	return a.Account == nil || (a.Account.Enabled && a.Account.Role == store.RoleAdmin)
}

// Manages reports whether the actor may manage domain (canonical form).
func (a Actor) Manages(domain string) bool {
	return a.Account == nil || a.Account.Manages(domain)
}

// by names the actor for the lifecycle's audit entries.
func (a Actor) by() lifecycle.By { return lifecycle.By{Name: a.Name, Remote: a.Remote} }

// Options configure a Service. Store and Lifecycle are required; the zero
// value of every other field is documented beside it.
type Options struct {
	Store store.Store
	// Lifecycle makes every change to a key; the Service authorizes it.
	Lifecycle *lifecycle.Service
	// Queue is the mail queue, when this process runs one (serve); nil
	// makes the queue operations fail with ErrNoQueue.
	Queue queue.Queue
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives one info line per change; nil discards.
	Log *slog.Logger
	// MaxUserNetwork is the widest network a domain admin may give a user
	// recognised by its address; the zero value is the defaults.
	MaxUserNetwork NetworkLimit
}

// Service runs the operations. It is made once, by New, and never changed
// afterwards; its methods are safe for concurrent use.
type Service struct {
	o   Options
	log *slog.Logger
	// userWrites serialises user changes, so that the network check and
	// the write see the same users.
	userWrites sync.Mutex
}

// New makes a Service.
func New(o Options) (*Service, error) {
	if o.Store == nil || o.Lifecycle == nil {
		return nil, errors.New("admin: the service needs a store and the lifecycle service")
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{o: o, log: log}, nil
}

func (s *Service) now() time.Time {
	if s.o.Now == nil {
		return time.Now()
	}
	return s.o.Now()
}

// audit appends an entry and logs the change. A failure to audit fails the
// operation's answer but not the change already made; it is logged.
func (s *Service) audit(ctx context.Context, a Actor, action, kind, id, domain, detail string) error {
	_, err := s.o.Store.AppendAudit(ctx, store.AuditEntry{
		Actor: a.Name, Remote: a.Remote, Action: action,
		ObjectKind: kind, ObjectID: id, Domain: domain, Detail: detail,
	})
	s.log.Info("admin_change", "actor", a.Name, "remote", a.Remote, "action", action, "object", kind+":"+id, "domain", domain, "detail", detail)
	if err != nil {
		s.log.Error("audit_append_failed", "action", action, "err", err)
		return fmt.Errorf("admin: change made but not audited: %w", err)
	}
	return nil
}

// manage returns the canonical domain name if the actor manages it, and
// store.ErrNotFound otherwise (also for a domain that does not exist).
func (s *Service) manage(ctx context.Context, a Actor, domain string) (string, error) {
	pd, err := mailaddr.ParseDomain(domain)
	if err != nil {
		return "", &store.FieldError{Field: "domain", Err: err}
	}
	d := pd.String()
	if !a.Manages(d) {
		return "", store.Explain(store.ErrNotFound, "Domain %s was not found.", d)
	}
	if _, err := s.o.Store.GetDomain(ctx, d); err != nil {
		return "", err
	}
	return d, nil
}

func requireAdmin(a Actor) error {
	if !a.IsAdmin() {
		return store.Explain(ErrForbidden, "Only an admin may do this.")
	}
	return nil
}
