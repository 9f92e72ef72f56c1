package store

import (
	"net"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/idna"
)

// Domain is a mail domain dkimd holds keys and users for. Its name is the
// IDNA A-label form in lower case (see NormalizeDomain). A sub-domain is a
// domain of its own, with its own keys, users and admins.
type Domain struct {
	// Name is the canonical name, e.g. "example.com" or
	// "xn--bcher-kva.example".
	Name string `json:"name"`
	// AutoActivate makes a pending key active as soon as its DNS record is
	// seen correct, without an administrator promoting it. The zero value
	// (false) waits for an administrator.
	AutoActivate bool `json:"auto_activate"`
	// Publish says how the domain's key records reach DNS; empty means
	// PublishManual.
	Publish PublishMode `json:"publish"`
	// DelegatedName is, for PublishDelegated, the domain's own name in
	// dkimd's delegated zone, "<label>.<zone>" with a stable and
	// unguessable label: its keys are served at "<selector>.<DelegatedName>",
	// where the customer's CNAMEs point. Set once and kept (the CNAMEs
	// depend on it).
	DelegatedName string `json:"delegated_name,omitempty"`
	// RotateEvery is how long a key signs before a scheduled rotation
	// replaces it, for PublishDelegated and PublishUpdate; zero means
	// DefaultRotateEvery there (manual domains are not rotated).
	RotateEvery time.Duration `json:"rotate_every_ns,omitempty"`
	// UpdateServer (HOST:PORT), TSIGName and TSIGSealed say, for
	// PublishUpdate, where and with which key RFC 2136 UPDATEs go.
	// TSIGSealed is the TSIG secret sealed under the master key (bytes in a
	// string, so that a Domain stays comparable) with
	// TSIGAssociatedData; it never goes into JSON.
	UpdateServer string `json:"update_server,omitempty"`
	TSIGName     string `json:"tsig_name,omitempty"`
	TSIGSealed   string `json:"-"`
	// Created and Updated are set by the store.
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// Unicode gives the name for people to read: "bücher.example" for
// "xn--bcher-kva.example". It falls back to the stored name.
func (d Domain) Unicode() string {
	u, err := idna.ToUnicode(d.Name)
	if err != nil {
		return d.Name
	}
	return u
}

// PublishMode says how a domain's key records reach DNS.
type PublishMode string

// The publishing modes.
const (
	// PublishManual: an administrator creates each TXT record; dkimd
	// checks it.
	PublishManual PublishMode = "manual"
	// PublishDelegated: the customer made two CNAMEs once into dkimd's
	// own zone, which dkimd serves and rotates behind.
	PublishDelegated PublishMode = "delegated"
	// PublishUpdate: dkimd adds and removes TXT records at the domain's
	// own authoritative server by RFC 2136 UPDATE signed with TSIG.
	PublishUpdate PublishMode = "update"
)

// PublishModes lists the modes.
func PublishModes() []PublishMode {
	return []PublishMode{PublishManual, PublishDelegated, PublishUpdate}
}

// DefaultRotateEvery is a rotated domain's key lifetime when
// Domain.RotateEvery is zero.
const DefaultRotateEvery = 90 * 24 * time.Hour

// Rotated reports whether dkimd rotates the domain's keys on a schedule.
func (d Domain) Rotated() bool { return d.Publish == PublishDelegated || d.Publish == PublishUpdate }

// RotationPeriod gives RotateEvery or its default.
func (d Domain) RotationPeriod() time.Duration {
	if d.RotateEvery <= 0 {
		return DefaultRotateEvery
	}
	return d.RotateEvery
}

// TSIGAssociatedData gives the associated data a domain's TSIG secret is
// sealed with, so that a sealed secret copied to another domain does not
// open.
func TSIGAssociatedData(domain string) []byte {
	if d, err := NormalizeDomain(domain); err == nil {
		domain = d
	}
	return []byte("dkimd tsig secret\x00" + domain)
}

// Normalize checks d and gives it with its name in canonical form. Backends
// call it before storing.
func (d Domain) Normalize() (Domain, error) {
	n, err := NormalizeDomain(d.Name)
	if err != nil {
		return d, &FieldError{Field: "name", Err: err}
	}
	d.Name = n
	if d.Publish == "" {
		d.Publish = PublishManual
	}
	if !slices.Contains(PublishModes(), d.Publish) {
		return d, Invalid("publish", "unknown mode %q (want one of %v)", d.Publish, PublishModes())
	}
	if d.RotateEvery < 0 {
		return d, Invalid("rotate_every", "negative")
	}
	d.DelegatedName = strings.ToLower(strings.TrimSuffix(d.DelegatedName, "."))
	if d.DelegatedName != "" {
		if err := checkHostname(d.DelegatedName); err != nil || strings.Count(d.DelegatedName, ".") < 2 {
			return d, Invalid("delegated_name", "%q is not <label>.<zone>", d.DelegatedName)
		}
	}
	switch d.Publish {
	case PublishDelegated:
		if d.DelegatedName == "" {
			return d, Invalid("delegated_name", "a delegated domain needs its name in the delegated zone")
		}
	case PublishUpdate:
		if _, _, err := net.SplitHostPort(d.UpdateServer); err != nil {
			return d, Invalid("update_server", "want HOST:PORT, got %q", d.UpdateServer)
		}
		if strings.TrimSpace(d.TSIGName) == "" {
			return d, Invalid("tsig_name", "DNS UPDATE needs a TSIG key name")
		}
		if len(d.TSIGSealed) == 0 {
			return d, Invalid("tsig_secret", "DNS UPDATE needs the TSIG secret")
		}
	}
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
