package admin

import (
	"context"
	"strconv"

	"github.com/dkimd/dkimd/internal/store"
)

// AddDomain adds a domain. Admins only.
func (s *Service) AddDomain(ctx context.Context, a Actor, d store.Domain) (store.Domain, error) {
	if err := requireAdmin(a); err != nil {
		return store.Domain{}, err
	}
	d, err := s.o.Store.AddDomain(ctx, d)
	if err != nil {
		return d, err
	}
	return d, s.audit(ctx, a, "domain.add", "domain", d.Name, d.Name, "auto_activate="+strconv.FormatBool(d.AutoActivate))
}

// RemoveDomain removes a domain; without force only when nothing refers to
// it (store.RemoveOptions). Admins only.
func (s *Service) RemoveDomain(ctx context.Context, a Actor, name string, force bool) error {
	if err := requireAdmin(a); err != nil {
		return err
	}
	d, err := s.manage(ctx, a, name)
	if err != nil {
		return err
	}
	if err := s.o.Store.RemoveDomain(ctx, d, store.RemoveOptions{Force: force}); err != nil {
		return err
	}
	return s.audit(ctx, a, "domain.remove", "domain", d, d, "force="+strconv.FormatBool(force))
}

// ListDomains gives the domains the actor manages.
func (s *Service) ListDomains(ctx context.Context, a Actor) ([]store.Domain, error) {
	all, err := s.o.Store.ListDomains(ctx)
	if err != nil {
		return nil, err
	}
	out := []store.Domain{}
	for _, d := range all {
		if a.Manages(d.Name) {
			out = append(out, d)
		}
	}
	return out, nil
}

// GetDomain gives one domain the actor manages.
func (s *Service) GetDomain(ctx context.Context, a Actor, name string) (store.Domain, error) {
	d, err := s.manage(ctx, a, name)
	if err != nil {
		return store.Domain{}, err
	}
	return s.o.Store.GetDomain(ctx, d)
}

// SetAutoActivate chooses whether the domain's pending keys start signing
// by themselves once their record is seen in DNS.
func (s *Service) SetAutoActivate(ctx context.Context, a Actor, name string, on bool) (store.Domain, error) {
	d, err := s.GetDomain(ctx, a, name)
	if err != nil {
		return d, err
	}
	d.AutoActivate = on
	if d, err = s.o.Store.UpdateDomain(ctx, d); err != nil {
		return d, err
	}
	return d, s.audit(ctx, a, "domain.update", "domain", d.Name, d.Name, "auto_activate="+strconv.FormatBool(on))
}

// SetOversign chooses the header fields the relay oversigns for the domain
// (store.Domain.Oversign): "default", "none", "from-only" or a
// comma-separated list of field names. A value that is none of these is a
// *store.FieldError for "oversign".
func (s *Service) SetOversign(ctx context.Context, a Actor, name, oversign string) (store.Domain, error) {
	d, err := s.GetDomain(ctx, a, name)
	if err != nil {
		return d, err
	}
	d.Oversign = oversign
	if d, err = s.o.Store.UpdateDomain(ctx, d); err != nil {
		return d, err
	}
	return d, s.audit(ctx, a, "domain.update", "domain", d.Name, d.Name, "oversign="+d.OversignText())
}
