package admin

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/queue"
	"github.com/dkimd/dkimd/internal/store"
)

// ErrForbidden means the actor may not do this at all (HTTP 403). For an
// object in a domain the actor does not manage, operations answer
// store.ErrNotFound instead, so a domain admin cannot probe other tenants.
var ErrForbidden = errors.New("admin: forbidden")

// ErrNoQueue means the queue operations were asked of a process that
// runs no queue.
var ErrNoQueue = errors.New("admin: no mail queue")

// ErrNotPublished means a key cannot start signing because its DNS record
// was not seen (issue: never sign with a key receivers cannot find).
var ErrNotPublished = errors.New("admin: key record not published")

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

// KeyChecker tells whether a key's record is published correctly
// everywhere; the dnscheck package provides it in serve.
type KeyChecker interface {
	// KeyPublished returns nil when every authoritative server serves the
	// key's record, or an error saying in words what is wrong.
	KeyPublished(ctx context.Context, k store.Key) error
}

// Service runs the operations. Store and Master are required.
type Service struct {
	Store  store.Store
	Master *keys.MasterKey
	// DNS checks records before a key starts signing; nil means only a
	// forced activation can make a key active.
	DNS KeyChecker
	// Queue is the mail queue, when this process runs one (serve).
	Queue queue.Queue
	// Lifecycle holds the lifetimes that say when a retired key is safe to
	// revoke; the zero value is lifecycle's defaults.
	Lifecycle lifecycle.Policy
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand is the randomness for key generation; nil means crypto/rand.
	Rand io.Reader
	// Log receives one info line per change; nil discards.
	Log *slog.Logger
	// OpenSSL, when set, makes RSA signatures through the system's
	// libcrypto (keys.LoadOpenSSL); nil signs with Go's crypto/rsa.
	OpenSSL *keys.OpenSSL
	// MaxUserNetwork is the widest network a domain admin may give a user
	// recognised by its address; the zero value is the defaults.
	MaxUserNetwork NetworkLimit

	signers signerCache
	// userWrites serialises user changes, so that the network check and
	// the write see the same users.
	userWrites sync.Mutex
}

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

func (s *Service) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// audit appends an entry and logs the change. A failure to audit fails the
// operation's answer but not the change already made; it is logged.
func (s *Service) audit(ctx context.Context, a Actor, action, kind, id, domain, detail string) error {
	_, err := s.Store.AppendAudit(ctx, store.AuditEntry{
		Actor: a.Name, Remote: a.Remote, Action: action,
		ObjectKind: kind, ObjectID: id, Domain: domain, Detail: detail,
	})
	s.log().Info("admin_change", "actor", a.Name, "remote", a.Remote, "action", action, "object", kind+":"+id, "domain", domain, "detail", detail)
	if err != nil {
		s.log().Error("audit_append_failed", "action", action, "err", err)
		return fmt.Errorf("admin: change made but not audited: %w", err)
	}
	return nil
}

// manage returns the canonical domain name if the actor manages it, and
// store.ErrNotFound otherwise (also for a domain that does not exist).
func (s *Service) manage(ctx context.Context, a Actor, domain string) (string, error) {
	d, err := store.NormalizeDomain(domain)
	if err != nil {
		return "", &store.FieldError{Field: "domain", Err: err}
	}
	if !a.Manages(d) {
		return "", fmt.Errorf("%w: domain %s", store.ErrNotFound, d)
	}
	if _, err := s.Store.GetDomain(ctx, d); err != nil {
		return "", err
	}
	return d, nil
}

func requireAdmin(a Actor) error {
	if !a.IsAdmin() {
		return fmt.Errorf("%w: only an admin may do this", ErrForbidden)
	}
	return nil
}

// Signer opens a key's private half for signing. It is for the relay and
// the milter; the key never leaves the process. Opened keys are kept in
// memory by ID (a key ID always names the same private key), so a busy relay
// does not read, decrypt and parse the key for every message, and dropped
// when the key stops signing; whether the key may still sign is the caller's
// check against the key row.
func (s *Service) Signer(ctx context.Context, k store.Key) (crypto.Signer, error) {
	if sg := s.signers.get(k.ID); sg != nil {
		return sg, nil
	}
	sealed, err := s.Store.SealedKey(ctx, k.ID)
	if err != nil {
		return nil, err
	}
	sg, err := s.Master.OpenSigner(sealed, k.AssociatedData())
	if err != nil {
		return nil, err
	}
	if fast, err := s.OpenSSL.Signer(sg); err != nil {
		// Slower, not broken: Go's crypto/rsa signs the same bytes.
		s.log().Warn("openssl_signer_unavailable", "key_id", k.ID, "domain", k.Domain, "selector", k.Selector, "err", err)
	} else {
		sg = fast
	}
	s.signers.put(k.ID, sg)
	return sg, nil
}

// maxCachedSigners bounds the opened keys kept in memory.
const maxCachedSigners = 4096

// signerCache holds opened private keys by key ID. The zero value is ready.
type signerCache struct {
	mu sync.Mutex
	m  map[int64]crypto.Signer
}

func (c *signerCache) get(id int64) crypto.Signer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[id]
}

func (c *signerCache) drop(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, id)
}

func (c *signerCache) put(id int64, sg crypto.Signer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedSigners {
		c.m = make(map[int64]crypto.Signer) // rare: start over rather than track use
	}
	c.m[id] = sg
}
