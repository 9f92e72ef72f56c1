package admin

import (
	"context"

	"github.com/dkimd/dkimd/internal/dkim"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/store"
)

// The key lifecycle (lifecycle.Service) behind the actor's authorization.

// RotateKey makes a pending key on a new selector to replace an active key
// of a domain the actor manages (lifecycle.Service.Rotate).
func (s *Service) RotateKey(ctx context.Context, a Actor, r lifecycle.RotateRequest) (*lifecycle.Rotation, error) {
	d, err := s.manage(ctx, a, r.Domain)
	if err != nil {
		return nil, err
	}
	r.Domain = d
	return s.o.Lifecycle.Rotate(ctx, a.by(), r)
}

// ActivateKey makes a pending key active once its record is seen
// everywhere, or at once with force (lifecycle.Service.Activate). It gives
// every key changed, the activated one first.
func (s *Service) ActivateKey(ctx context.Context, a Actor, domain, selector string, force bool) ([]store.Key, error) {
	k, err := s.GetKey(ctx, a, domain, selector)
	if err != nil {
		return nil, err
	}
	return s.o.Lifecycle.Activate(ctx, a.by(), k, force)
}

// RevokeKey revokes a key and gives the record to publish in its place
// (lifecycle.Service.Revoke).
func (s *Service) RevokeKey(ctx context.Context, a Actor, domain, selector string, force bool) (store.Key, *dkim.Publication, error) {
	k, err := s.GetKey(ctx, a, domain, selector)
	if err != nil {
		return k, nil, err
	}
	return s.o.Lifecycle.Revoke(ctx, a.by(), k, force)
}

// DestroyKey deletes a revoked or archived key of a domain the actor
// manages from its PKCS#11 token (lifecycle.Service.Destroy).
func (s *Service) DestroyKey(ctx context.Context, a Actor, domain, selector string) (store.Key, error) {
	k, err := s.GetKey(ctx, a, domain, selector)
	if err != nil {
		return k, err
	}
	return s.o.Lifecycle.Destroy(ctx, a.by(), k)
}

// TokenLabel gives the label of the PKCS#11 token configured, or "" when
// there is none: whether keys can be made in a token at all.
func (s *Service) TokenLabel() string { return s.o.Lifecycle.TokenLabel() }

// KeyStatus gives the status of every key of a domain the actor manages
// (lifecycle.Service.Status).
func (s *Service) KeyStatus(ctx context.Context, a Actor, domain string) ([]lifecycle.Status, error) {
	d, err := s.manage(ctx, a, domain)
	if err != nil {
		return nil, err
	}
	return s.o.Lifecycle.Status(ctx, d)
}

// CheckHistory gives a key's DNS checks, newest first, at most limit
// (store.DNSCheckFilter.Limit).
func (s *Service) CheckHistory(ctx context.Context, a Actor, domain, selector string, limit int) ([]store.DNSCheck, error) {
	k, err := s.GetKey(ctx, a, domain, selector)
	if err != nil {
		return nil, err
	}
	return s.o.Lifecycle.History(ctx, k, limit)
}

// CheckKeyNow checks a key's record at once and keeps the outcome in its
// history (lifecycle.Service.CheckNow). It changes no state.
func (s *Service) CheckKeyNow(ctx context.Context, a Actor, domain, selector string) (store.DNSCheck, error) {
	k, err := s.GetKey(ctx, a, domain, selector)
	if err != nil {
		return store.DNSCheck{}, err
	}
	return s.o.Lifecycle.CheckNow(ctx, k)
}

// CanCheckDNS reports whether CheckKeyNow can run here.
func (s *Service) CanCheckDNS() bool { return s.o.Lifecycle.CanCheck() }

// LifecycleSettings gives the lifetimes and limits the lifecycle applies,
// for pages that explain them.
func (s *Service) LifecycleSettings() lifecycle.Settings { return s.o.Lifecycle.Settings() }

// DomainStatus gives the one status of a domain the actor manages: the
// worst current problem of its keys (lifecycle.SumUp), from stored checks.
func (s *Service) DomainStatus(ctx context.Context, a Actor, domain string) (lifecycle.DomainStatus, error) {
	d, err := s.manage(ctx, a, domain)
	if err != nil {
		return lifecycle.DomainStatus{}, err
	}
	return s.o.Lifecycle.DomainStatus(ctx, d)
}

// DeleteKey removes a pending key made by mistake, one that never signed
// and whose record was never seen in DNS, with its private key
// (lifecycle.Service.Delete). Any other key is revoked instead.
func (s *Service) DeleteKey(ctx context.Context, a Actor, domain, selector string) error {
	k, err := s.GetKey(ctx, a, domain, selector)
	if err != nil {
		return err
	}
	return s.o.Lifecycle.Delete(ctx, a.by(), k)
}

// KeyDeletable reports whether DeleteKey would delete the key (rather than
// refuse, leaving revocation as the way out).
func (s *Service) KeyDeletable(ctx context.Context, a Actor, domain, selector string) (bool, error) {
	k, err := s.GetKey(ctx, a, domain, selector)
	if err != nil {
		return false, err
	}
	return s.o.Lifecycle.Deletable(ctx, k)
}
