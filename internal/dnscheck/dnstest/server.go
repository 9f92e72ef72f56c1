package dnstest

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Fault makes a Server misbehave for a name.
type Fault int

// The ways a Server can misbehave.
const (
	// NoFault answers normally.
	NoFault Fault = iota
	// ServFail answers with RCODE SERVFAIL, as a resolver does when it
	// cannot reach the authoritative servers or DNSSEC validation fails.
	ServFail
	// Refused answers with RCODE REFUSED, as a server does for a zone it
	// does not serve (a lame delegation).
	Refused
	// Timeout reads the query and never answers.
	Timeout
	// Truncate answers UDP queries with no records and the TC bit set, so
	// the client must ask again over TCP; TCP queries are answered whole.
	Truncate
)

// Zone is the data a Server answers from. The zero value holds no records
// and answers NXDOMAIN for every name.
type Zone struct {
	// Records are served as given; build them with TXT, CNAME, NS, A, AAAA
	// and SOA, or any dns.RR. Names are matched without regard to case.
	Records []dns.RR
	// Faults makes the server misbehave for queries for a name, of any
	// type. The key "*" applies to every name without its own entry.
	Faults map[string]Fault
	// Authoritative makes the server answer as an authoritative name
	// server: the AA bit is set, RA is clear, and a query for a name outside
	// the zones of its SOA records is REFUSED. When false it answers as a
	// recursive resolver holding all the data (RA set).
	Authoritative bool
}

// Server is a DNS server on 127.0.0.1, answering UDP and TCP on one port.
type Server struct {
	addr     netip.AddrPort
	mu       sync.RWMutex
	zone     Zone
	udp, tcp atomic.Int64
}

// NewServer starts a server answering from z on a random port of 127.0.0.1
// and stops it when the test ends.
func NewServer(t testing.TB, z Zone) *Server {
	t.Helper()
	s := &Server{}
	s.SetZone(z)
	var (
		pc  net.PacketConn
		l   net.Listener
		err error
	)
	// The UDP port must be free for TCP too; another test may hold it.
	for range 20 {
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("dnstest: %v", err)
		}
		s.addr = pc.LocalAddr().(*net.UDPAddr).AddrPort()
		l, err = net.Listen("tcp", s.addr.String())
		if err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		t.Fatalf("dnstest: no port free for both UDP and TCP: %v", err)
	}
	var servers []*dns.Server
	for _, srv := range []*dns.Server{
		{PacketConn: pc, Handler: s},
		{Listener: l, Handler: s},
	} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		done := make(chan error, 1)
		go func() { done <- srv.ActivateAndServe() }()
		select {
		case <-started:
		case err := <-done:
			t.Fatalf("dnstest: serve: %v", err)
		}
		servers = append(servers, srv)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		for _, srv := range servers {
			if err := srv.ShutdownContext(ctx); err != nil {
				t.Errorf("dnstest: shutdown %s: %v", s.addr, err)
			}
		}
	})
	return s
}

// Addr is the server's address as HOST:PORT.
func (s *Server) Addr() string { return s.addr.String() }

// AddrPort is the server's address.
func (s *Server) AddrPort() netip.AddrPort { return s.addr }

// Queries tells how many queries the server has received over UDP and TCP.
func (s *Server) Queries() (udp, tcp int) { return int(s.udp.Load()), int(s.tcp.Load()) }

// SetZone replaces the data the server answers from; queries already being
// answered see the old data or the new, never a mixture.
func (s *Server) SetZone(z Zone) {
	faults := make(map[string]Fault, len(z.Faults))
	for name, f := range z.Faults {
		if name != "*" {
			name = dns.CanonicalName(name)
		}
		faults[name] = f
	}
	z.Faults = faults
	z.Records = append([]dns.RR(nil), z.Records...)
	s.mu.Lock()
	s.zone = z
	s.mu.Unlock()
}

func (s *Server) data() Zone {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.zone
}

// ServeDNS answers one query; it implements dns.Handler.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	tcp := w.LocalAddr().Network() == "tcp"
	if tcp {
		s.tcp.Add(1)
	} else {
		s.udp.Add(1)
	}
	z := s.data()
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = z.Authoritative
	m.RecursionAvailable = !z.Authoritative
	if len(r.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		_ = w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	name := dns.CanonicalName(q.Name)
	fault, ok := z.Faults[name]
	if !ok {
		fault = z.Faults["*"]
	}
	switch fault {
	case Timeout:
		return
	case ServFail:
		m.Rcode = dns.RcodeServerFailure
		_ = w.WriteMsg(m)
		return
	case Refused:
		m.Rcode = dns.RcodeRefused
		_ = w.WriteMsg(m)
		return
	case Truncate:
		if !tcp {
			m.Truncated = true
			_ = w.WriteMsg(m)
			return
		}
	}
	z.answer(m, name, q.Qtype)
	if opt := r.IsEdns0(); opt != nil {
		m.SetEdns0(opt.UDPSize(), false)
	}
	if !tcp {
		size := dns.MinMsgSize
		if opt := r.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	if err := w.WriteMsg(m); err != nil {
		// A record the test made too big to pack (a TXT string over 255
		// bytes): say so the way a broken server would.
		fail := new(dns.Msg)
		fail.SetRcode(r, dns.RcodeServerFailure)
		_ = w.WriteMsg(fail)
	}
}

// answer fills m with the records for name and qtype, following CNAMEs
// through the data the server holds (RFC 1034 §4.3.2).
func (z Zone) answer(m *dns.Msg, name string, qtype uint16) {
	if zone := z.zoneOf(name); zone == "" && z.hasSOA() {
		if z.Authoritative {
			m.Rcode = dns.RcodeRefused
		}
		return
	}
	seen := map[string]bool{}
	for range 16 {
		if seen[name] {
			return // a CNAME loop: give the chain as far as it goes
		}
		seen[name] = true
		var cname dns.RR
		found := false
		for _, rr := range z.Records {
			h := rr.Header()
			if !strings.EqualFold(h.Name, name) {
				continue
			}
			switch {
			case h.Rrtype == qtype || qtype == dns.TypeANY:
				m.Answer = append(m.Answer, dns.Copy(rr))
				found = true
			case h.Rrtype == dns.TypeCNAME:
				cname = rr
			}
		}
		if found || cname == nil {
			if !found {
				z.negative(m, name)
			}
			return
		}
		m.Answer = append(m.Answer, dns.Copy(cname))
		name = dns.CanonicalName(cname.(*dns.CNAME).Target)
		if z.zoneOf(name) == "" && z.hasSOA() {
			return // the alias leads out of this server's zones
		}
	}
}

// negative sets NXDOMAIN when name does not exist (no records at or below
// it) and puts the SOA of its zone in the authority section (RFC 2308).
func (z Zone) negative(m *dns.Msg, name string) {
	exists := false
	for _, rr := range z.Records {
		if dns.IsSubDomain(name, dns.CanonicalName(rr.Header().Name)) {
			exists = true
			break
		}
	}
	if !exists {
		m.Rcode = dns.RcodeNameError
	}
	zone := z.zoneOf(name)
	for _, rr := range z.Records {
		if soa, ok := rr.(*dns.SOA); ok && strings.EqualFold(soa.Hdr.Name, zone) {
			m.Ns = append(m.Ns, dns.Copy(soa))
		}
	}
}

// zoneOf is the closest SOA owner at or above name, "" when none is.
func (z Zone) zoneOf(name string) string {
	best := ""
	for _, rr := range z.Records {
		if soa, ok := rr.(*dns.SOA); ok {
			owner := dns.CanonicalName(soa.Hdr.Name)
			if dns.IsSubDomain(owner, name) && len(owner) > len(best) {
				best = owner
			}
		}
	}
	return best
}

func (z Zone) hasSOA() bool {
	for _, rr := range z.Records {
		if _, ok := rr.(*dns.SOA); ok {
			return true
		}
	}
	return false
}

// String describes the server for test failure messages.
func (s *Server) String() string { return fmt.Sprintf("dnstest server %s", s.addr) }
