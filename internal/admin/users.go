package admin

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/dkimd/dkimd/internal/mailaddr"
	"github.com/dkimd/dkimd/internal/policy"
	"github.com/dkimd/dkimd/internal/store"
)

// UserChange holds the fields to set on an outgoing user; nil fields are
// left as they are (on a new user: at their zero value, Enabled true).
type UserChange struct {
	Auth             *store.AuthKind
	Password         *string // plain text; hashed here, never stored or logged
	Networks         *[]string
	IdentityHeader   *string
	Selector         *string // "" removes the selector
	GrantedDomains   *[]string
	AllowForeignFrom *bool
	Enabled          *bool
	// AllowAnyNetwork is an admin's explicit override for this change: its
	// networks may be 0.0.0.0/0 or ::/0 and may overlap networks of other
	// domains' users (see checkNetworks). A domain admin who sets it is
	// refused (ErrForbidden). It is not stored; the panel warns about
	// users it let through.
	AllowAnyNetwork bool
}

// errNameUnavailable answers for a user name that is taken, wherever: user
// names are unique across dkimd (they are the SMTP AUTH login), and the
// answer must not tell a domain admin which tenant holds one.
type errNameUnavailable struct{}

func (errNameUnavailable) Error() string { return "that user name is not available; choose another" }

// UserMessage gives the sentence for people (see store.Detail).
func (errNameUnavailable) UserMessage() string {
	return "That user name is not available; choose another."
}

// Is makes it a store.ErrExists (HTTP 409).
func (errNameUnavailable) Is(target error) bool { return target == store.ErrExists }

// AddUser creates an outgoing user owned by domain.
func (s *Service) AddUser(ctx context.Context, a Actor, name, domain string, c UserChange) (store.OutgoingUser, error) {
	d, err := s.manage(ctx, a, domain)
	if err != nil {
		return store.OutgoingUser{}, err
	}
	u := store.OutgoingUser{Name: name, Domain: d, Enabled: true}
	if err := s.apply(ctx, a, &u, c); err != nil {
		return u, err
	}
	// One user write at a time, so that two tenants cannot both pass the
	// network check with overlapping networks.
	s.userWrites.Lock()
	defer s.userWrites.Unlock()
	if err := s.checkNetworks(ctx, a, store.OutgoingUser{}, u, c.AllowAnyNetwork); err != nil {
		return u, err
	}
	if u, err = s.o.Store.AddUser(ctx, u); err != nil {
		if errors.Is(err, store.ErrExists) {
			return u, errNameUnavailable{}
		}
		return u, err
	}
	return u, s.audit(ctx, a, "user.add", "user", u.Name, u.Domain, describeUser(u))
}

// UpdateUser changes an outgoing user of a domain the actor manages.
func (s *Service) UpdateUser(ctx context.Context, a Actor, name string, c UserChange) (store.OutgoingUser, error) {
	s.userWrites.Lock()
	defer s.userWrites.Unlock()
	u, err := s.GetUser(ctx, a, name)
	if err != nil {
		return u, err
	}
	before := u
	if err := s.apply(ctx, a, &u, c); err != nil {
		return u, err
	}
	if err := s.checkNetworks(ctx, a, before, u, c.AllowAnyNetwork); err != nil {
		return u, err
	}
	if u, err = s.o.Store.UpdateUser(ctx, u); err != nil {
		return u, err
	}
	return u, s.audit(ctx, a, "user.update", "user", u.Name, u.Domain, describeUser(u))
}

// apply checks a change against what the actor may do and the signing rule
// (policy.ValidateSelectorForUser, for a selector new to the user), and
// makes it on u.
func (s *Service) apply(ctx context.Context, a Actor, u *store.OutgoingUser, c UserChange) error {
	kept := u.Selector
	if c.Auth != nil {
		u.Auth = *c.Auth
		if u.Auth == store.AuthIP {
			u.PasswordHash = ""
		}
	}
	if c.Password != nil {
		if *c.Password == "" {
			u.PasswordHash = ""
		} else {
			h, err := hashNewPassword(*c.Password)
			if err != nil {
				return err
			}
			u.PasswordHash = h
		}
	}
	if c.Networks != nil {
		u.Networks = nil
		for _, n := range *c.Networks {
			p, err := store.ParseNetwork(n)
			if err != nil {
				return err
			}
			u.Networks = append(u.Networks, p)
		}
	}
	if c.IdentityHeader != nil {
		u.IdentityHeader = *c.IdentityHeader
	}
	if c.Enabled != nil {
		u.Enabled = *c.Enabled
	}
	if c.AllowForeignFrom != nil && *c.AllowForeignFrom != u.AllowForeignFrom {
		// Letting a user send as domains it does not own is an admin's call.
		if !a.IsAdmin() {
			return store.Explain(ErrForbidden, "Only an admin may let a user send as domains it does not own.")
		}
		u.AllowForeignFrom = *c.AllowForeignFrom
	}
	if c.GrantedDomains != nil {
		var granted []string
		for _, g := range *c.GrantedDomains {
			pd, err := mailaddr.ParseDomain(g)
			d := pd.String()
			if err != nil {
				return &store.FieldError{Field: "granted_domains", Err: err}
			}
			// A grant lets the user sign as the domain: only someone who
			// manages that domain may give it, or a tenant could sign as
			// another.
			if !slices.Contains(u.GrantedDomains, d) && !a.Manages(d) {
				return store.Explain(ErrForbidden, "You do not manage %s, so you cannot grant it.", d)
			}
			granted = append(granted, d)
		}
		u.GrantedDomains = granted
	}
	if c.Selector != nil {
		sel := strings.TrimSpace(*c.Selector)
		if sel != "" {
			var err error
			if sel, err = store.NormalizeSelector(sel); err != nil {
				return &store.FieldError{Field: "selector", Err: err}
			}
		}
		u.Selector = sel
	}
	if u.Selector != "" && u.Selector == kept {
		// A selector saved before is kept as it is, even if its key has
		// retired since with nothing to replace it: an edit of something
		// else must not fail on it. The users list flags it.
		return nil
	}
	return policy.ValidateSelectorForUser(ctx, s.o.Store, u)
}

// describeUser summarises a user for the audit log, without secrets.
func describeUser(u store.OutgoingUser) string {
	parts := []string{"auth=" + string(u.Auth), fmt.Sprintf("enabled=%t", u.Enabled)}
	if u.PasswordHash != "" {
		parts = append(parts, "password set")
	}
	if len(u.Networks) > 0 {
		parts = append(parts, "networks="+joinPrefixes(u.Networks))
	}
	if u.Selector != "" {
		parts = append(parts, "selector="+u.Selector)
	}
	if len(u.GrantedDomains) > 0 {
		parts = append(parts, "granted="+strings.Join(u.GrantedDomains, ","))
	}
	if u.AllowForeignFrom {
		parts = append(parts, "allow_foreign_from")
	}
	return strings.Join(parts, " ")
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// GetUser finds a user of a domain the actor manages.
func (s *Service) GetUser(ctx context.Context, a Actor, name string) (store.OutgoingUser, error) {
	u, err := s.o.Store.GetUser(ctx, name)
	if err != nil {
		return u, err
	}
	if !a.Manages(u.Domain) {
		return store.OutgoingUser{}, store.Explain(store.ErrNotFound, "User %s was not found.", name)
	}
	return u, nil
}

// ListUsers gives the users of one domain the actor manages, or of all it
// manages for "".
func (s *Service) ListUsers(ctx context.Context, a Actor, domain string) ([]store.OutgoingUser, error) {
	d := ""
	if domain != "" {
		var err error
		if d, err = s.manage(ctx, a, domain); err != nil {
			return nil, err
		}
	}
	all, err := s.o.Store.ListUsers(ctx, d)
	if err != nil {
		return nil, err
	}
	out := []store.OutgoingUser{}
	for _, u := range all {
		if a.Manages(u.Domain) {
			out = append(out, u)
		}
	}
	return out, nil
}

// RemoveUser removes a user of a domain the actor manages.
func (s *Service) RemoveUser(ctx context.Context, a Actor, name string) error {
	u, err := s.GetUser(ctx, a, name)
	if err != nil {
		return err
	}
	if err := s.o.Store.RemoveUser(ctx, u.Name); err != nil {
		return err
	}
	return s.audit(ctx, a, "user.remove", "user", u.Name, u.Domain, "")
}
