package store

import (
	"errors"
	"fmt"
	"net"
	"slices"
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
func (d Domain) Unicode() string { return mailaddr.Unicode(d.Name) }

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

// DelegatedSelectors gives a delegated domain's two selectors, used in
// turn: one CNAME each at the customer's side, fixed once made.
func DelegatedSelectors() []string { return []string{"s1", "s2"} }

// IsDelegatedSelector reports whether sel is one of DelegatedSelectors.
func IsDelegatedSelector(sel string) bool {
	return slices.Contains(DelegatedSelectors(), strings.ToLower(sel))
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
	if d, err := mailaddr.ParseDomain(domain); err == nil {
		domain = d.String()
	}
	return []byte("dkimd tsig secret\x00" + domain)
}

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
		if err := mailaddr.CheckHostname(d.DelegatedName); err != nil || strings.Count(d.DelegatedName, ".") < 2 {
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
