package store

import (
	"time"

	"github.com/dkimd/dkimd/internal/mailaddr"
)

// Domain is a mail domain dkimd holds keys and users for. Its name is the
// IDNA A-label form in lower case (mailaddr.Domain.String). A sub-domain is a
// domain of its own, with its own keys, users and admins.
type Domain struct {
	// Name is the canonical name, e.g. "example.com" or
	// "xn--bcher-kva.example".
	Name string `json:"name"`
	// AutoActivate makes a pending key active as soon as its DNS record is
	// seen correct, without an administrator promoting it. The zero value
	// (false) waits for an administrator.
	AutoActivate bool `json:"auto_activate"`
	// Created and Updated are set by the store.
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// Unicode gives the name for people to read: "bücher.example" for
// "xn--bcher-kva.example". It falls back to the stored name.
func (d Domain) Unicode() string { return mailaddr.Unicode(d.Name) }

// Normalize checks d and gives it with its name in canonical form. Backends
// call it before storing.
func (d Domain) Normalize() (Domain, error) {
	n, err := mailaddr.ParseDomain(d.Name)
	if err != nil {
		return d, &FieldError{Field: "name", Err: err}
	}
	d.Name = n.String()
	return d, nil
}

// RemoveOptions say how far RemoveDomain may go.
type RemoveOptions struct {
	// Force removes the domain together with everything that refers to it:
	// its keys and their sealed private keys, its outgoing users, grants of
	// it to other domains' users, and its place in domain admins' lists.
	// Without Force (the zero value), RemoveDomain refuses with ErrConflict
	// while any of those exist, so a private key is never lost by accident.
	// Audit entries are never removed.
	Force bool
}
