package admin

import (
	"context"

	"github.com/dkimd/dkimd/internal/dkim"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/store"
)

// GenerateKey makes a key pair for a domain the actor manages and stores
// it, pending, with its private half sealed under the master key
// (lifecycle.Service.Generate).
func (s *Service) GenerateKey(ctx context.Context, a Actor, r lifecycle.NewKeyRequest) (*lifecycle.GeneratedKey, error) {
	d, err := s.manage(ctx, a, r.Domain)
	if err != nil {
		return nil, err
	}
	r.Domain = d
	return s.o.Lifecycle.Generate(ctx, a.by(), r)
}

// ImportKey stores an existing private key for a domain the actor manages,
// pending, sealed like a generated one (lifecycle.Service.Import).
func (s *Service) ImportKey(ctx context.Context, a Actor, r lifecycle.ImportKeyRequest) (*lifecycle.GeneratedKey, error) {
	d, err := s.manage(ctx, a, r.Domain)
	if err != nil {
		return nil, err
	}
	r.Domain = d
	return s.o.Lifecycle.Import(ctx, a.by(), r)
}

// ListKeys gives the keys of a domain the actor manages, or of every domain
// it manages for "".
func (s *Service) ListKeys(ctx context.Context, a Actor, domain string) ([]store.Key, error) {
	f := store.KeyFilter{}
	if domain != "" {
		d, err := s.manage(ctx, a, domain)
		if err != nil {
			return nil, err
		}
		f.Domain = d
	}
	all, err := s.o.Store.ListKeys(ctx, f)
	if err != nil {
		return nil, err
	}
	out := []store.Key{}
	for _, k := range all {
		if a.Manages(k.Domain) {
			out = append(out, k)
		}
	}
	return out, nil
}

// GetKey finds a key by domain and selector.
func (s *Service) GetKey(ctx context.Context, a Actor, domain, selector string) (store.Key, error) {
	d, err := s.manage(ctx, a, domain)
	if err != nil {
		return store.Key{}, err
	}
	sel, err := store.NormalizeSelector(selector)
	if err != nil {
		return store.Key{}, &store.FieldError{Field: "selector", Err: err}
	}
	return s.o.Store.KeyBySelector(ctx, d, sel)
}

// KeyRecord gives the record to publish for a key in its current state
// (lifecycle.Record).
func (s *Service) KeyRecord(ctx context.Context, a Actor, domain, selector string) (store.Key, *dkim.Publication, error) {
	k, err := s.GetKey(ctx, a, domain, selector)
	if err != nil {
		return k, nil, err
	}
	p, err := lifecycle.Record(k)
	return k, p, err
}

// SetKeyState moves a key of a domain the actor manages along its
// lifecycle (lifecycle.Service.SetState).
func (s *Service) SetKeyState(ctx context.Context, a Actor, domain, selector string, to store.KeyState, force bool) (store.Key, error) {
	k, err := s.GetKey(ctx, a, domain, selector)
	if err != nil {
		return k, err
	}
	return s.o.Lifecycle.SetState(ctx, a.by(), k, to, force)
}
