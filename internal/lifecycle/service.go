package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/dkimd/dkimd/internal/dkim"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/store"
)

// ErrTooEarly means a retired key's signatures may still be checked:
// revoking it now would make them fail (Settings.SafeToRevoke). It is a
// store.ErrConflict: the request is sound, the key's state forbids it.
var ErrTooEarly = fmt.Errorf("%w: too early to revoke", store.ErrConflict)

// ErrNoChecker means no DNS checker is configured here, so a record
// cannot be checked (and a key can only be activated with force).
var ErrNoChecker = store.Class("lifecycle: no DNS checker configured",
	"This dkimd process has no DNS checker that reports (see the resolver setting of serve).")

// By is who asks for a change, as the audit log names them.
type By struct {
	// Name is the account name, "cli" or "system".
	Name string
	// Remote is the client address, if any.
	Remote string
}

// System is dkimd itself: the monitor, automatic activation, fail-over.
var System = By{Name: "system"}

// Dropper forgets an opened private key once it signs no more;
// keys.Source is one.
type Dropper interface {
	Drop(id int64)
}

// ServiceOptions configure a Service. Store and Master are required; the
// zero value of every other field is documented beside it.
type ServiceOptions struct {
	Store store.Store
	// Master seals the private half of every key generated.
	Master *keys.MasterKey
	// DNS checks records before a key starts signing; nil means only a
	// forced activation can make a key active, and CheckNow fails with
	// ErrNoChecker.
	DNS Checker
	// Settings are the lifetimes and limits; the zero value is the
	// defaults.
	Settings Settings
	// Token is the PKCS#11 token keys may be generated in; nil means none
	// is configured, so only sealed keys can be made.
	Token Token
	// Signers is told to drop a key that stops signing; nil means none.
	Signers Dropper
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand is the randomness for key generation; nil means crypto/rand.
	Rand io.Reader
	// Log receives one info line per change; nil discards.
	Log *slog.Logger
}

// Service owns every step of a key's life: generation, activation,
// rotation, retirement, revocation and archiving, and the status and DNS
// checks that decide them. Each change is checked against the key's state,
// made in one store transaction, and written to the audit log with who
// asked. Authorization is the caller's (the admin package).
type Service struct {
	o   ServiceOptions
	log *slog.Logger
}

// NewService makes a Service.
func NewService(o ServiceOptions) (*Service, error) {
	if o.Store == nil || o.Master == nil {
		return nil, errors.New("lifecycle: the service needs a store and the master key")
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{o: o, log: log}, nil
}

// CanCheck reports whether records can be checked here (a DNS checker is
// configured).
func (s *Service) CanCheck() bool { return s.o.DNS != nil }

// Settings gives the lifetimes and limits the service applies.
func (s *Service) Settings() Settings { return s.o.Settings }

func (s *Service) now() time.Time {
	if s.o.Now == nil {
		return time.Now()
	}
	return s.o.Now()
}

// audit appends an entry and logs the change. A failure to audit fails the
// operation's answer but not the change already made; it is logged.
func (s *Service) audit(ctx context.Context, by By, action string, k store.Key, detail string) error {
	id := k.RecordName()
	_, err := s.o.Store.AppendAudit(ctx, store.AuditEntry{
		Actor: by.Name, Remote: by.Remote, Action: action,
		ObjectKind: "key", ObjectID: id, Domain: k.Domain, Detail: detail,
	})
	s.log.Info("key_change", "actor", by.Name, "remote", by.Remote, "action", action, "key", id, "domain", k.Domain, "detail", detail)
	if err != nil {
		s.log.Error("audit_append_failed", "action", action, "err", err)
		return fmt.Errorf("lifecycle: change made but not audited: %w", err)
	}
	return nil
}

// Activate makes a pending key active once the DNS checker sees its record
// everywhere (or at once with force) and, in the same transaction, retires
// the key it replaces. It gives every key changed, the activated one first.
func (s *Service) Activate(ctx context.Context, by By, k store.Key, force bool) ([]store.Key, error) {
	if err := store.CheckTransition(k.State, store.KeyActive); err != nil {
		return nil, err
	}
	note := "record seen in DNS"
	switch {
	case force:
		note = "forced, DNS not checked"
	case s.o.DNS == nil:
		return nil, store.Explain(ErrNotPublished, "No DNS check is configured here; check the record yourself and activate with force.")
	default:
		c, err := s.o.DNS.CheckKey(ctx, k)
		if err != nil {
			return nil, err
		}
		if !c.OK {
			// A refused activation changes nothing, its check included.
			return nil, notPublished(c)
		}
		// The check that let the key sign is kept in its history, so that
		// its status says the record was seen, not "never checked".
		c.KeyID = k.ID
		if _, err := s.o.Store.AddDNSCheck(ctx, c, s.o.Settings.HistoryCap()); err != nil {
			s.log.Warn("dns_check_not_kept", "key", k.RecordName(), "err", err)
		}
	}
	return s.apply(ctx, by, note, store.KeyStateChange{ID: k.ID, From: store.KeyPending, To: store.KeyActive})
}

// Revoke revokes a key and gives the record to publish in its place, with
// an empty p=. A retired key is refused with ErrTooEarly before
// Settings.SafeToRevoke, and an active one always, unless force (a
// compromised key is revoked at once, whatever signatures it breaks).
func (s *Service) Revoke(ctx context.Context, by By, k store.Key, force bool) (store.Key, *dkim.Publication, error) {
	if err := store.CheckTransition(k.State, store.KeyRevoked); err != nil {
		return k, nil, err
	}
	note := "revoked"
	switch safe := s.o.Settings.SafeToRevoke(k); {
	case force:
		note = "forced"
	case k.State == store.KeyActive:
		return k, nil, store.Explain(ErrTooEarly, "Key %s still signs; rotate it first, or revoke with force if it is compromised.", k.Selector)
	case k.State == store.KeyRetired && s.now().Before(safe):
		return k, nil, store.Explain(ErrTooEarly, "It is too early to revoke key %s: signatures made with it may be checked until %s.", k.Selector, safe.UTC().Format("2006-01-02 15:04 MST"))
	}
	changed, err := s.apply(ctx, by, note, store.KeyStateChange{ID: k.ID, From: k.State, To: store.KeyRevoked})
	if len(changed) == 0 {
		return k, nil, err
	}
	rec, rerr := Record(changed[0])
	return changed[0], rec, errors.Join(err, rerr)
}

// SetState moves a key along its lifecycle, by the rules of Activate (a key
// signs only once its record is seen in DNS, unless force) and Revoke (not
// while its signatures may still be checked, unless force); retiring and
// archiving need no check.
func (s *Service) SetState(ctx context.Context, by By, k store.Key, to store.KeyState, force bool) (store.Key, error) {
	switch to {
	case store.KeyActive:
		changed, err := s.Activate(ctx, by, k, force)
		if len(changed) == 0 {
			return store.Key{}, err
		}
		return changed[0], err
	case store.KeyRevoked:
		k, _, err := s.Revoke(ctx, by, k, force)
		return k, err
	}
	if err := store.CheckTransition(k.State, to); err != nil {
		return k, err
	}
	changed, err := s.apply(ctx, by, "by hand", store.KeyStateChange{ID: k.ID, From: k.State, To: to})
	if len(changed) == 0 {
		return k, err
	}
	return changed[0], err
}

// apply makes changes in one transaction, drops the opened private key of
// every key that stops signing, and audits every key changed, those the
// store retired as replaced too.
func (s *Service) apply(ctx context.Context, by By, note string, changes ...store.KeyStateChange) ([]store.Key, error) {
	from := map[int64]store.KeyState{}
	for _, c := range changes {
		k, err := s.o.Store.GetKey(ctx, c.ID)
		if err != nil {
			return nil, err
		}
		from[c.ID] = k.State
	}
	changed, err := s.o.Store.SetKeyStates(ctx, changes...)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, k := range changed {
		if k.State != store.KeyActive && s.o.Signers != nil {
			s.o.Signers.Drop(k.ID) // it signs no more: do not keep it open
		}
		detail := fmt.Sprintf("%s → %s (%s)", from[k.ID], k.State, note)
		if _, named := from[k.ID]; !named {
			detail = fmt.Sprintf("active → retired (replaced by %s, %s)", changed[0].Selector, note)
		}
		errs = append(errs, s.audit(ctx, by, "key.state", k, detail))
	}
	return changed, errors.Join(errs...)
}

// Status gives the status of every key of a domain (canonical name): state,
// age, last DNS check, warnings and the time it is safe to revoke.
func (s *Service) Status(ctx context.Context, domain string) ([]Status, error) {
	dom, err := s.o.Store.GetDomain(ctx, domain)
	if err != nil {
		return nil, err
	}
	ks, err := s.o.Store.ListKeys(ctx, store.KeyFilter{Domain: dom.Name})
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := []Status{}
	for _, k := range ks {
		cs, err := s.o.Store.ListDNSChecks(ctx, store.DNSCheckFilter{KeyID: k.ID, Limit: 1})
		if err != nil {
			return nil, err
		}
		var last *store.DNSCheck
		if len(cs) > 0 {
			last = &cs[0]
		}
		out = append(out, s.o.Settings.Status(k, last, dom.AutoActivate, now))
	}
	return out, nil
}

// History gives a key's DNS checks, newest first, at most limit
// (store.DNSCheckFilter.Limit).
func (s *Service) History(ctx context.Context, k store.Key, limit int) ([]store.DNSCheck, error) {
	cs, err := s.o.Store.ListDNSChecks(ctx, store.DNSCheckFilter{KeyID: k.ID, Limit: limit})
	if cs == nil && err == nil {
		cs = []store.DNSCheck{}
	}
	return cs, err
}

// CheckNow checks a key's record at once and keeps the outcome in its
// history. It changes no state.
func (s *Service) CheckNow(ctx context.Context, k store.Key) (store.DNSCheck, error) {
	if s.o.DNS == nil {
		return store.DNSCheck{}, ErrNoChecker
	}
	res, err := s.o.DNS.CheckKey(ctx, k)
	if err != nil {
		return store.DNSCheck{}, err
	}
	res.KeyID = k.ID
	return s.o.Store.AddDNSCheck(ctx, res, s.o.Settings.HistoryCap())
}

// The steps the Monitor takes by itself, as System.

func (s *Service) activateSeen(ctx context.Context, k store.Key, note string) ([]store.Key, error) {
	return s.apply(ctx, System, note, store.KeyStateChange{ID: k.ID, From: store.KeyPending, To: store.KeyActive})
}

func (s *Service) failOver(ctx context.Context, broken, standby store.Key, note string) ([]store.Key, error) {
	return s.apply(ctx, System, "fail-over: "+note,
		store.KeyStateChange{ID: standby.ID, From: store.KeyPending, To: store.KeyActive},
		store.KeyStateChange{ID: broken.ID, From: store.KeyActive, To: store.KeyRetired})
}

func (s *Service) archiveSeen(ctx context.Context, k store.Key, note string) (store.Key, error) {
	changed, err := s.apply(ctx, System, note, store.KeyStateChange{ID: k.ID, From: store.KeyRevoked, To: store.KeyArchived})
	if len(changed) == 0 {
		return k, err
	}
	return changed[0], err
}
