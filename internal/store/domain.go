package store

import (
	"errors"
	"fmt"
	"strings"
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
	// Oversign chooses the header fields the relay lists in h= once more
	// than they occur, so that one added after signing breaks the signature
	// (RFC 6376 §8.15). The zero value (OversignDefault) is dkimd's default
	// set: every signed field RFC 5322 allows once, and the MIME fields.
	// OversignNone oversigns nothing; otherwise it is a comma-separated list
	// of field names (see NormalizeOversign), each then signed too.
	Oversign string `json:"oversign"`
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
	if d.Oversign, err = NormalizeOversign(d.Oversign); err != nil {
		return d, &FieldError{Field: "oversign", Err: err}
	}
	return d, nil
}

// The oversigning choices of Domain.Oversign that are not a list.
const (
	// OversignDefault is dkimd's default set of oversigned fields.
	OversignDefault = ""
	// OversignNone oversigns nothing.
	OversignNone = "none"
	// OversignFromOnly is the list of From alone, dkimd's choice before
	// every default field was oversigned.
	OversignFromOnly = "From"
)

// Limits of an oversign list: each name makes h= longer on every message.
const (
	maxOversignFields = 32
	maxFieldNameLen   = 64
)

// ErrFieldName means a header field name is not one: RFC 5322 §3.6.8 allows
// printable ASCII but ":"; "," separates the list and ";" would end the h=
// tag it goes into.
var ErrFieldName = errors.New("not a header field name")

// NormalizeOversign gives the canonical form of an oversign setting, as
// typed by a person: "" or "default" is OversignDefault, "none" is
// OversignNone, "from-only" is OversignFromOnly, and anything else a list
// of header field names separated by commas, given back in that order,
// each once (names compare without case), joined by ",".
func NormalizeOversign(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "", "default":
		return OversignDefault, nil
	case OversignNone:
		return OversignNone, nil
	case "from-only":
		return OversignFromOnly, nil
	}
	var names []string
	for _, n := range strings.Split(s, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if len(n) > maxFieldNameLen || !fieldName(n) {
			return "", fmt.Errorf("%w: %q (give default, none, from-only, or field names separated by commas)", ErrFieldName, clip(n))
		}
		if !containsFold(names, n) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return OversignDefault, nil
	}
	if len(names) > maxOversignFields {
		return "", fmt.Errorf("%d fields, at most %d", len(names), maxOversignFields)
	}
	return strings.Join(names, ","), nil
}

// OversignText gives the domain's oversigning choice in the words people
// type and read: "default", "none" or the field list.
func (d Domain) OversignText() string {
	if d.Oversign == OversignDefault {
		return "default"
	}
	return d.Oversign
}

// OversignFields gives the domain's setting as a signer takes it (see
// OversignFields). d must be normalized.
func (d Domain) OversignFields() []string { return OversignFields(d.Oversign) }

// OversignFields gives a normalized oversign setting as a signer takes it
// (dkim.SignOptions.Oversign): nil for the default, an empty list for none,
// the field names otherwise.
func OversignFields(setting string) []string {
	switch setting {
	case OversignDefault:
		return nil
	case OversignNone:
		return []string{}
	}
	return strings.Split(setting, ",")
}

// fieldName reports whether s is a field name that fits in a list and in h=.
func fieldName(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 33 || c > 126 || c == ':' || c == ',' || c == ';' {
			return false
		}
	}
	return s != ""
}

func containsFold(list []string, s string) bool {
	for _, l := range list {
		if strings.EqualFold(l, s) {
			return true
		}
	}
	return false
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

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > maxFieldNameLen {
		return s[:maxFieldNameLen] + "…"
	}
	return s
}
