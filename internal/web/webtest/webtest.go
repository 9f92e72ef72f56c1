// Package webtest holds the test world the web and panel tests share: DNS
// for the test domains served by real DNS servers on loopback, and a real
// spool with messages in it.
//
// It may import dnscheck/dnstest, lifecycle and queue; nothing imports it
// but tests.
package webtest

import (
	"context"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dkimd/dkimd/internal/dnscheck/dnstest"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/queue"
)

// DNS is DNS for the test domains on loopback, as the world has it: a
// recursive resolver and an authoritative name server (ns1.<zone> for
// every zone), both real DNS servers, serving the records published.
type DNS struct {
	resolver, ns *dnstest.Server

	mu    sync.Mutex
	zones []string
	// txt holds the published TXT records: owner name → strings.
	txt map[string][]string
}

// NewDNS starts the two servers for zones.
func NewDNS(t *testing.T, zones ...string) *DNS {
	t.Helper()
	d := &DNS{txt: map[string][]string{}}
	d.resolver = dnstest.NewServer(t, dnstest.Zone{})
	d.ns = dnstest.NewServer(t, dnstest.Zone{Authoritative: true})
	for _, z := range zones {
		d.addZone(z)
	}
	d.sync()
	return d
}

// Checker gives the lifecycle.DNS that serve would use, pointed at these
// servers.
func (d *DNS) Checker(now func() time.Time) lifecycle.DNS {
	return lifecycle.DNS{
		Resolver: d.resolver.Addr(),
		// Every zone's name server is the one authoritative server.
		NameServerAddr: func(string, netip.Addr) string { return d.ns.Addr() },
		Timeout:        time.Second,
		Now:            now,
	}
}

func (d *DNS) addZone(z string) {
	z = dns.CanonicalName(z)
	if !slices.Contains(d.zones, z) {
		d.zones = append(d.zones, z)
	}
}

// Publish serves a TXT record at name (its zone made if new); no strings
// removes it.
func (d *DNS) Publish(zone, name string, strs ...string) {
	d.mu.Lock()
	d.addZone(zone)
	name = dns.CanonicalName(name)
	if len(strs) == 0 {
		delete(d.txt, name)
	} else {
		d.txt[name] = strs
	}
	d.mu.Unlock()
	d.sync()
}

func (d *DNS) sync() {
	d.mu.Lock()
	defer d.mu.Unlock()
	var rrs []dns.RR
	for _, z := range d.zones {
		ns := "ns1." + z
		rrs = append(rrs, dnstest.SOA(z), dnstest.NS(z, ns), dnstest.A(ns, "127.0.0.1"))
	}
	for name, strs := range d.txt {
		rrs = append(rrs, dnstest.TXT(name, strs...))
	}
	d.resolver.SetZone(dnstest.Zone{Records: rrs})
	d.ns.SetZone(dnstest.Zone{Records: rrs, Authoritative: true})
}

// Queue is a real spool in a temporary directory.
func Queue(t *testing.T, now func() time.Time) *queue.Spool {
	t.Helper()
	sp, err := queue.OpenSpool(filepath.Join(t.TempDir(), "spool"), queue.SpoolOptions{Now: now, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sp.Close(); err != nil {
			t.Errorf("close spool: %v", err)
		}
	})
	return sp
}

// Enqueue queues a message from ann@a.example to two recipients and
// gives its id.
func Enqueue(t *testing.T, sp *queue.Spool) string {
	t.Helper()
	id, err := sp.Enqueue(context.Background(), queue.Envelope{
		From: "ann@a.example", To: []string{"bo@remote.example", "cy@remote.example"},
		User: "ua@a.example", Decision: "signed d=a.example s=a1", ClientAddr: "192.0.2.1",
	}, strings.NewReader("From: ann@a.example\r\nSubject: hello\r\n\r\nhello\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// DeferAll records a failed attempt for each recipient of the message, as
// the deliverer does: deferred, due at next, with the remote's reply.
func DeferAll(t *testing.T, sp *queue.Spool, id string, now, next time.Time) {
	t.Helper()
	ctx := context.Background()
	ms, err := sp.Claim(ctx, "test", time.Hour, 100)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(ms, func(m queue.Claim) bool { return m.ID == id })
	if i < 0 {
		t.Fatalf("message %s not claimed", id)
	}
	defer func() {
		for _, c := range ms {
			_ = sp.Release(ctx, &c) // the one recorded stays claimed until here
		}
	}()
	m := &ms[i]
	m.Recipients[0] = queue.Recipient{Addr: m.Recipients[0].Addr, Status: queue.Deferred, Attempts: 1,
		Last: now, Next: next, Reply: "451 4.7.1 greylisted, try again later", Remote: "mx.remote.example"}
	m.Recipients[1] = queue.Recipient{Addr: m.Recipients[1].Addr, Status: queue.Deferred, Attempts: 2,
		Last: now, Next: next.Add(time.Hour), Reply: "dial tcp 192.0.2.25:25: connect: connection refused"}
	if err := sp.Record(ctx, m); err != nil {
		t.Fatal(err)
	}
}
