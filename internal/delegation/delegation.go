package delegation

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/dkimd/dkimd/internal/dkim"
	"github.com/dkimd/dkimd/internal/dnsserver"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/store"
)

// Selectors gives a delegated domain's two selectors, used in turn: one
// signs while the other holds the next key or the last one.
func Selectors() []string { return store.DelegatedSelectors() }

// IsSelector reports whether sel is one of Selectors.
func IsSelector(sel string) bool { return store.IsDelegatedSelector(sel) }

// labelBytes is the label's randomness: 80 bits, 16 base32 characters.
const labelBytes = 10

// NewName gives a new name in zone for a domain, "<label>.<zone>", with a
// random label nobody can guess (so nobody can find which customers a zone
// serves by trying names). r nil means crypto/rand.
func NewName(zone string, r io.Reader) (string, error) {
	zone = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(zone), "."))
	if zone == "" || strings.Count(zone, ".") < 1 {
		return "", fmt.Errorf("delegation: %q is not a zone for delegated keys (like dkim.provider.example)", zone)
	}
	if r == nil {
		r = rand.Reader
	}
	b := make([]byte, labelBytes)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("delegation: %w", err)
	}
	label := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
	return label + "." + zone, nil
}

// Target gives the name the CNAME of selector points at.
func Target(d store.Domain, selector string) string {
	return strings.ToLower(selector) + "." + d.DelegatedName
}

// CNAME is one record the customer creates, in the forms people publish
// it: Host and Target for a DNS provider's web form, Zone for a zone file.
type CNAME struct {
	Selector string `json:"selector"`
	// Name is the fully qualified record name, without a final dot.
	Name string `json:"name"`
	// Host is Name relative to the customer's zone.
	Host string `json:"host"`
	// Target is where it points, without a final dot.
	Target string `json:"target"`
	// Zone is the zone-file line.
	Zone string `json:"zone"`
}

// ErrNotDelegated means the domain does not publish through delegation.
var ErrNotDelegated = errors.New("delegation: the domain is not delegated")

// Records gives the two CNAME records a delegated domain's customer
// creates, once.
func Records(d store.Domain) ([]CNAME, error) {
	if d.Publish != store.PublishDelegated || d.DelegatedName == "" {
		return nil, fmt.Errorf("%w: %s publishes %s", ErrNotDelegated, d.Name, d.Publish)
	}
	var out []CNAME
	for _, sel := range Selectors() {
		name := dkim.RecordName(sel, d.Name)
		target := Target(d, sel)
		out = append(out, CNAME{
			Selector: sel, Name: name, Host: sel + "._domainkey", Target: target,
			Zone: name + ". IN CNAME " + target + ".",
		})
	}
	return out, nil
}

// Value gives the TXT value a key publishes in its state: its key while
// pending, active or retired, an empty p= once revoked (RFC 6376 §3.6.1),
// and nothing ("", false) once archived.
func Value(k store.Key) (string, bool, error) {
	switch k.State {
	case store.KeyArchived:
		return "", false, nil
	case store.KeyRevoked:
		return dkim.RevokedRecordValue(string(k.Algorithm)), true, nil
	}
	pub, err := PublicKey(k)
	if err != nil {
		return "", false, err
	}
	v, err := dkim.RecordValue(pub)
	return v, err == nil, err
}

// PublicKey decodes a stored key's public half (store.Key.PublicKey).
func PublicKey(k store.Key) (crypto.PublicKey, error) {
	if k.Algorithm == keys.Ed25519 {
		if len(k.PublicKey) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("delegation: key %s: bad Ed25519 public key", k.RecordName())
		}
		return ed25519.PublicKey(k.PublicKey), nil
	}
	return x509.ParsePKIXPublicKey(k.PublicKey)
}

// Store is what Source reads; a store.Store is one.
type Store interface {
	ListDomains(ctx context.Context) ([]store.Domain, error)
	ListKeys(ctx context.Context, f store.KeyFilter) ([]store.Key, error)
}

// Source gives dnsserver the TXT records of the delegated zone from the
// store: every delegated domain under Zone, each of its keys not archived
// at "<selector>.<DelegatedName>".
type Source struct {
	Store Store
	// Zone is the zone served; domains delegated under another zone are
	// left out.
	Zone string
}

// ZoneRecords implements dnsserver.Source.
func (s Source) ZoneRecords(ctx context.Context) ([]dnsserver.Record, error) {
	zone := strings.ToLower(strings.TrimSuffix(s.Zone, "."))
	ds, err := s.Store.ListDomains(ctx)
	if err != nil {
		return nil, err
	}
	var out []dnsserver.Record
	for _, d := range ds {
		if d.Publish != store.PublishDelegated || !strings.HasSuffix(d.DelegatedName, "."+zone) {
			continue
		}
		ks, err := s.Store.ListKeys(ctx, store.KeyFilter{Domain: d.Name,
			States: []store.KeyState{store.KeyPending, store.KeyActive, store.KeyRetired, store.KeyRevoked}})
		if err != nil {
			return nil, err
		}
		for _, k := range ks {
			v, ok, err := Value(k)
			if err != nil {
				// One bad key must not take the zone down.
				continue
			}
			if ok {
				out = append(out, dnsserver.Record{Name: Target(d, k.Selector), Value: v})
			}
		}
	}
	return out, nil
}
