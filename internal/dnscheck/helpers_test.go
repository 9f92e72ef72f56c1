package dnscheck

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dkimd/dkimd/internal/dkim"
	"github.com/dkimd/dkimd/internal/dnscheck/dnstest"
)

const (
	testDomain   = "example.com"
	testSelector = "sel"
	testName     = "sel._domainkey.example.com"
	// testTimeout keeps tests of servers that never answer short.
	testTimeout = 150 * time.Millisecond
)

// testKeys are the keys in testdata (see the README there).
type testKeys struct {
	rsa, other, rsa4096 *rsa.PublicKey
	ed                  ed25519.PublicKey
	rsa512              string // base64 SPKI
}

func loadKeys(t testing.TB) testKeys {
	t.Helper()
	read := func(name string) crypto.PublicKey {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(b)
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return k.(crypto.Signer).Public()
	}
	weak, err := os.ReadFile("testdata/rsa512.pub")
	if err != nil {
		t.Fatal(err)
	}
	return testKeys{
		rsa:     read("rsa2048.pem").(*rsa.PublicKey),
		other:   read("rsa2048-other.pem").(*rsa.PublicKey),
		rsa4096: read("rsa4096.pem").(*rsa.PublicKey),
		ed:      read("ed25519.pem").(ed25519.PublicKey),
		rsa512:  strings.TrimSpace(string(weak)),
	}
}

// value is the record value for a key.
func value(t testing.TB, k crypto.PublicKey) string {
	t.Helper()
	v, err := dkim.RecordValue(k)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// pOf is the base64 p= of a key.
func pOf(t testing.TB, k crypto.PublicKey) string {
	_, p, _ := strings.Cut(value(t, k), "p=")
	return p
}

// txt is a TXT record at the test name carrying value split into strings
// of at most 255 bytes, the way it is published.
func txt(v string) dns.RR { return dnstest.TXT(testName, dkim.SplitTXT(v)...) }

// zone describes one zone for a test world: records every server holds,
// and its name servers, each with records and faults of its own.
type zone struct {
	name    string
	records []dns.RR
	servers []ns
}

type ns struct {
	host    string
	records []dns.RR
	faults  map[string]dnstest.Fault
}

// world is a set of running servers: one stands in for the recursive
// resolver, one per name server host.
type world struct {
	resolver *dnstest.Server
	servers  map[string]*dnstest.Server
}

// startWorld starts a name server per host of each zone, and a resolver
// holding every zone's common records (SOA, NS, the name servers' addresses
// and zone.records) and resolverRecords. resolverFaults makes the resolver
// misbehave.
func startWorld(t testing.TB, resolverRecords []dns.RR, resolverFaults map[string]dnstest.Fault, zones ...zone) *world {
	t.Helper()
	w := &world{servers: map[string]*dnstest.Server{}}
	rec := append([]dns.RR(nil), resolverRecords...)
	for _, z := range zones {
		common := []dns.RR{dnstest.SOA(z.name)}
		for _, s := range z.servers {
			common = append(common, dnstest.NS(z.name, s.host), dnstest.A(s.host, "127.0.0.1"))
		}
		common = append(common, z.records...)
		rec = append(rec, common...)
		for _, s := range z.servers {
			w.servers[dns.CanonicalName(s.host)] = dnstest.NewServer(t, dnstest.Zone{
				Records:       append(append([]dns.RR(nil), common...), s.records...),
				Faults:        s.faults,
				Authoritative: true,
			})
		}
	}
	w.resolver = dnstest.NewServer(t, dnstest.Zone{Records: rec, Faults: resolverFaults})
	return w
}

// options are Options that reach this world's servers.
func (w *world) options(key crypto.PublicKey) Options {
	return Options{
		Domain:    testDomain,
		Selector:  testSelector,
		PublicKey: key,
		Resolver:  w.resolver.Addr(),
		Timeout:   testTimeout,
		NameServerAddr: func(host string, _ netip.Addr) string {
			if s, ok := w.servers[dns.CanonicalName(host)]; ok {
				return s.Addr()
			}
			return "127.0.0.1:1" // nothing listens there
		},
		Now: func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) },
	}
}

// exampleZone is example.com on two name servers, both holding recs; the
// resolver sees them too.
func exampleZone(recs ...dns.RR) zone {
	return zone{
		name:    testDomain,
		records: recs,
		servers: []ns{{host: "ns1.example.com"}, {host: "ns2.example.com"}},
	}
}

func check(t testing.TB, o Options) *Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := Check(ctx, o)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return r
}

// dump shows a report in a failure message.
func dump(r *Report) string {
	var b strings.Builder
	_ = r.WriteText(&b)
	return b.String()
}

func x509MarshalPKCS1(k crypto.PublicKey) string {
	return base64.StdEncoding.EncodeToString(x509.MarshalPKCS1PublicKey(k.(*rsa.PublicKey)))
}
