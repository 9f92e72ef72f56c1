package lifecycle

import (
	"context"
	"net/netip"
	"time"

	"github.com/dkimd/dkimd/internal/dnscheck"
	"github.com/dkimd/dkimd/internal/store"
)

// Checker checks a key's record in DNS against what its state says should
// be published: the key for pending, active and retired keys, an empty p=
// for revoked ones.
type Checker interface {
	// CheckKey gives the outcome, with KeyID and Time set. An error means
	// no check could be made (not a DNS failure, which is a
	// StatusTemporary outcome).
	CheckKey(ctx context.Context, k store.Key) (store.DNSCheck, error)
}

// Temporary reports whether a check failed for a reason that says nothing
// about the record (DNS did not answer).
func Temporary(c store.DNSCheck) bool {
	return !c.OK && dnscheck.Status(c.Status).Temporary()
}

// ErrNotPublished means a key's record is not served as it should be.
var ErrNotPublished = store.Class("lifecycle: record not published as expected", "The key's record is not published in DNS as expected yet.")

// DNS checks keys with dnscheck, through a resolver and every
// authoritative server. The zero value uses the system's resolver.
type DNS struct {
	// Resolver is the recursive resolver, HOST:PORT; empty means the
	// system's (resolv.conf).
	Resolver string
	// NameServerAddr is dnscheck.Options.NameServerAddr: nil in
	// production, set by tests whose name servers listen on loopback.
	NameServerAddr func(host string, ip netip.Addr) string
	// Timeout bounds each DNS query; zero means dnscheck's default.
	Timeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Report checks k and gives dnscheck's full report.
func (d DNS) Report(ctx context.Context, k store.Key) (*dnscheck.Report, error) {
	o := dnscheck.Options{Domain: k.Domain, Selector: k.Selector, Resolver: d.Resolver,
		NameServerAddr: d.NameServerAddr, Timeout: d.Timeout, Now: d.Now}
	if k.State == store.KeyRevoked || k.State == store.KeyArchived {
		o.Expect = dnscheck.ExpectRevoked
	}
	pub, err := PublicKey(k)
	if err != nil {
		return nil, err
	}
	o.PublicKey = pub
	return dnscheck.Check(ctx, o)
}

// CheckKey implements Checker.
func (d DNS) CheckKey(ctx context.Context, k store.Key) (store.DNSCheck, error) {
	r, err := d.Report(ctx, k)
	if err != nil {
		return store.DNSCheck{}, err
	}
	return store.DNSCheck{KeyID: k.ID, Time: r.CheckedAt, Status: string(r.Status), OK: r.OK, Summary: r.Summary}, nil
}

// notPublished says what DNS showed instead of the record c expected.
func notPublished(c store.DNSCheck) error {
	return store.Explain(ErrNotPublished, "The key's record is not published in DNS as expected, so nothing was changed. DNS shows %s.", c.Summary)
}

// KeyPublished returns nil when every server serves k's record, and an
// error wrapping ErrNotPublished saying what is wrong otherwise; it is the
// admin service's KeyChecker.
func (d DNS) KeyPublished(ctx context.Context, k store.Key) error {
	c, err := d.CheckKey(ctx, k)
	if err != nil {
		return err
	}
	if !c.OK {
		return notPublished(c)
	}
	return nil
}
