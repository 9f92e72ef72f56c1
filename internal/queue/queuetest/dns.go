package queuetest

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// DNS is an authoritative-style DNS server on 127.0.0.1 (UDP and TCP) that
// answers from records given as zone-file lines. A name with no records is
// NXDOMAIN; a name with records of other types gets an empty answer
// (NODATA); a name marked with ServFail gets SERVFAIL.
type DNS struct {
	// Addr is the HOST:PORT to send queries to.
	Addr string

	mu       sync.Mutex
	rrs      []dns.RR
	servfail map[string]bool
	queries  int
}

// NewDNS starts a server with the given records, e.g.
// "example.test. 300 IN MX 10 mx.example.test.", and stops it when the
// test ends.
func NewDNS(t testing.TB, records ...string) *DNS {
	t.Helper()
	d := &DNS{servfail: make(map[string]bool)}
	for _, r := range records {
		d.Add(t, r)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	d.Addr = pc.LocalAddr().String()
	udp := &dns.Server{PacketConn: pc, Handler: d}
	tcp := &dns.Server{Listener: l, Handler: d}
	for _, s := range []*dns.Server{udp, tcp} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go func() { _ = s.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = s.Shutdown() })
	}
	return d
}

// Add adds one record.
func (d *DNS) Add(t testing.TB, record string) {
	t.Helper()
	rr, err := dns.NewRR(record)
	if err != nil {
		t.Fatalf("bad record %q: %v", record, err)
	}
	d.mu.Lock()
	d.rrs = append(d.rrs, rr)
	d.mu.Unlock()
}

// ServFail makes queries for name fail with SERVFAIL.
func (d *DNS) ServFail(name string) {
	d.mu.Lock()
	d.servfail[dns.CanonicalName(name)] = true
	d.mu.Unlock()
}

// Queries counts the queries answered.
func (d *DNS) Queries() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.queries
}

// ServeDNS implements dns.Handler.
func (d *DNS) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	d.mu.Lock()
	d.queries++
	if len(r.Question) == 1 {
		q := r.Question[0]
		name := dns.CanonicalName(q.Name)
		exists := false
		for _, rr := range d.rrs {
			h := rr.Header()
			if !strings.EqualFold(h.Name, name) {
				continue
			}
			exists = true
			if h.Rrtype == q.Qtype {
				m.Answer = append(m.Answer, dns.Copy(rr))
			}
		}
		switch {
		case d.servfail[name]:
			m.Rcode = dns.RcodeServerFailure
			m.Answer = nil
		case !exists:
			m.Rcode = dns.RcodeNameError
		}
	}
	d.mu.Unlock()
	_ = w.WriteMsg(m)
}
