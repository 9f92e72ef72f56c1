package store

import (
	"fmt"
	"slices"
	"time"

	"github.com/dkimd/dkimd/internal/auth"
	"github.com/dkimd/dkimd/internal/mailaddr"
)

// Role says what a panel account may manage.
type Role string

// The account roles.
const (
	// RoleAdmin manages everything.
	RoleAdmin Role = "admin"
	// RoleDomain manages only the domains listed in Account.Domains: their
	// keys and outgoing users.
	RoleDomain Role = "domain"
)

// Account is a login to the control panel and the JSON API.
type Account struct {
	// Name is unique and stored in lower case (see NormalizeName).
	Name string `json:"name"`
	// Role says what the account may do.
	Role Role `json:"role"`
	// Domains a RoleDomain account manages, canonical and sorted. Must be
	// empty for RoleAdmin, which has every domain.
	Domains []string `json:"domains,omitempty"`
	// PasswordHash is an argon2id PHC string (auth.HashPassword); empty
	// means the account cannot log in with a password, only with a token.
	// Never marshalled.
	PasswordHash string `json:"-"`
	// Enabled accounts may log in and their tokens work.
	Enabled bool `json:"enabled"`
	// Created and Updated are set by the store.
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// Manages reports whether the account may manage domain (canonical form).
// A disabled account manages nothing.
func (a *Account) Manages(domain string) bool {
	if !a.Enabled {
		return false
	}
	return a.Role == RoleAdmin || slices.Contains(a.Domains, domain)
}

// Normalize checks a and gives it in canonical form.
func (a Account) Normalize() (Account, error) {
	n, err := NormalizeName(a.Name)
	if err != nil {
		return a, &FieldError{Field: "name", Err: err}
	}
	a.Name = n
	switch a.Role {
	case RoleAdmin:
		if len(a.Domains) > 0 {
			return a, Invalid("domains", "an admin manages every domain; list domains only for a domain admin")
		}
	case RoleDomain:
	default:
		return a, Invalid("role", "unknown role %q (want admin or domain)", a.Role)
	}
	if a.PasswordHash != "" {
		if err := auth.ValidHash(a.PasswordHash); err != nil {
			return a, &FieldError{Field: "password", Err: err}
		}
	}
	var ds []string
	for i, d := range a.Domains {
		n, err := mailaddr.ParseDomain(d)
		if err != nil {
			return a, &FieldError{Field: fmt.Sprintf("domains[%d]", i), Err: err}
		}
		ds = append(ds, n.String())
	}
	slices.Sort(ds)
	a.Domains = slices.Compact(ds)
	return a, nil
}

// TokenKind tells API tokens from panel sessions; both are bearer secrets
// stored only as a hash.
type TokenKind string

// The token kinds.
const (
	// TokenAPI is a long-lived token for scripts, shown once when made.
	TokenAPI TokenKind = "api"
	// TokenSession is a panel login session behind a cookie.
	TokenSession TokenKind = "session"
)

// Token is a bearer secret of an account, as stored: only its SHA-256 hash
// (auth.NewToken, auth.HashToken). The token itself is shown once, when
// made, and is not kept anywhere.
type Token struct {
	// ID is assigned by the store.
	ID int64 `json:"id"`
	// Account owns the token.
	Account string `json:"account"`
	// Kind is TokenAPI or TokenSession.
	Kind TokenKind `json:"kind"`
	// Label says what the token is for ("backup script"); may be empty.
	Label string `json:"label,omitempty"`
	// Hash is the SHA-256 of the token. Never marshalled.
	Hash []byte `json:"-"`
	// Created is set by the store.
	Created time.Time `json:"created"`
	// Expires, if set, is when the token stops working. The zero value
	// means never (API tokens); sessions should always expire.
	Expires time.Time `json:"expires,omitzero"`
}

// Normalize checks t and gives it in canonical form.
func (t Token) Normalize() (Token, error) {
	n, err := NormalizeName(t.Account)
	if err != nil {
		return t, &FieldError{Field: "account", Err: err}
	}
	t.Account = n
	switch t.Kind {
	case TokenAPI, TokenSession:
	default:
		return t, Invalid("kind", "unknown token kind %q (want api or session)", t.Kind)
	}
	if len(t.Hash) != 32 {
		return t, Invalid("hash", "want a SHA-256 hash (32 bytes), got %d bytes", len(t.Hash))
	}
	if len(t.Label) > MaxNameLen {
		return t, Invalid("label", "longer than 255 bytes")
	}
	return t, nil
}
