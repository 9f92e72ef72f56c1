package dnsserver

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dkimd/dkimd/internal/dkim"
	"github.com/dkimd/dkimd/internal/dnscheck"
	"github.com/dkimd/dkimd/internal/dnscheck/dnstest"
)

// TestProjectResolver looks records up with the resolver code dkimd
// verifies with (dkim.NetResolver over Go's own DNS client), which asks with
// EDNS0 and falls back to TCP on TC.
func TestProjectResolver(t *testing.T) {
	_, addr, long := startServer(t)
	r := dkim.NetResolver{Resolver: &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := r.LookupTXT(ctx, sel2)
	if err != nil || strings.Join(got, "") != long {
		t.Errorf("4096-bit record: %q, %v", got, err)
	}
	if _, err := r.LookupTXT(ctx, "nope."+testZone); !errors.Is(err, dkim.ErrKeyNotFound) {
		t.Errorf("NXDOMAIN: %v, want ErrKeyNotFound", err)
	}
	if _, err := r.LookupTXT(ctx, "t0k3n."+testZone); !errors.Is(err, dkim.ErrKeyNotFound) {
		t.Errorf("NODATA: %v, want ErrKeyNotFound", err)
	}
}

// TestDelegatedChainCheck runs dnscheck on a customer's CNAME into the
// delegated zone: the customer's name server (dnstest) holds the CNAME, this
// server holds the key, and the check follows the alias to every server of
// both zones.
func TestDelegatedChainCheck(t *testing.T) {
	pub := ed25519.NewKeyFromSeed(make([]byte, 32)).Public()
	other := ed25519.NewKeyFromSeed([]byte("0123456789abcdef0123456789abcdef")).Public()
	val := func(k crypto.PublicKey) string {
		v, err := dkim.RecordValue(k)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	s, addr, _ := startServer(t)
	if err := s.Load([]Record{{Name: sel1, Value: val(pub)}}); err != nil {
		t.Fatal(err)
	}
	const cust = "customer.example"
	alias := dnstest.CNAME("s1._domainkey."+cust, sel1)
	custNS := dnstest.NewServer(t, dnstest.Zone{Authoritative: true, Records: []dns.RR{
		dnstest.SOA(cust), dnstest.NS(cust, "ns1."+cust), dnstest.A("ns1."+cust, "127.0.0.1"), alias,
	}})
	// The resolver stands in for a recursive one that has followed the
	// delegations: it knows both zones.
	resolver := dnstest.NewServer(t, dnstest.Zone{Records: []dns.RR{
		dnstest.SOA(cust), dnstest.NS(cust, "ns1."+cust), dnstest.A("ns1."+cust, "127.0.0.1"), alias,
		dnstest.SOA(testZone), dnstest.NS(testZone, "ns1."+testZone), dnstest.A("ns1."+testZone, "127.0.0.1"),
		dnstest.TXT(sel1, dkim.SplitTXT(val(pub))...),
	}})
	opts := func(k crypto.PublicKey) dnscheck.Options {
		return dnscheck.Options{
			Domain: cust, Selector: "s1", PublicKey: k, Resolver: resolver.Addr(), Timeout: time.Second,
			NameServerAddr: func(host string, _ netip.Addr) string {
				if dns.CanonicalName(host) == "ns1."+testZone+"." {
					return addr
				}
				return custNS.Addr()
			},
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rep, err := dnscheck.Check(ctx, opts(pub))
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Status != dnscheck.StatusMatch {
		t.Fatalf("chain to the served key: %s %s", rep.Status, rep.Summary)
	}
	var sawDelegated bool
	for _, sr := range rep.Servers {
		if sr.Name == sel1 && sr.Address == addr && sr.Status == dnscheck.StatusMatch {
			sawDelegated = true
		}
	}
	if !sawDelegated {
		t.Errorf("the check did not ask this server for %s: %+v", sel1, rep.Servers)
	}
	// The same chain when this server publishes another key.
	if err := s.Load([]Record{{Name: sel1, Value: val(other)}}); err != nil {
		t.Fatal(err)
	}
	rep, err = dnscheck.Check(ctx, opts(pub))
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK {
		t.Fatalf("another key served, check says OK: %s", rep.Summary)
	}
}
