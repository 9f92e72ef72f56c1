package dnsserver

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// FuzzReply feeds the query handler arbitrary packets: it must never panic,
// and whatever it answers must be a well-formed DNS response to the same ID,
// FORMERR for a body it cannot read, and never a recursion offer.
func FuzzReply(f *testing.F) {
	s, err := New(Options{Zone: testZone, NameServers: []NameServer{{Name: "ns1." + testZone, Addrs: []netip.Addr{netip.MustParseAddr("2001:db8::53")}}}})
	if err != nil {
		f.Fatal(err)
	}
	if err := s.Load([]Record{{Name: sel1, Value: "v=DKIM1; p=" + string(make([]byte, 600))}, {Name: sel2, Value: `v=DKIM1; n="quoted\"; p=`}}); err != nil {
		f.Fatal(err)
	}
	for _, q := range []struct {
		name  string
		qtype uint16
		edns  bool
	}{{sel1, dns.TypeTXT, true}, {sel1, dns.TypeTXT, false}, {testZone, dns.TypeNS, true}, {"x." + testZone, dns.TypeANY, false}, {"example.com", dns.TypeA, true}} {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(q.name), q.qtype)
		if q.edns {
			m.SetEdns0(1232, true)
		}
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add(b[:len(b)-3], true)
	}
	f.Add([]byte{}, false)
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}, false)
	f.Fuzz(func(t *testing.T, wire []byte, tcp bool) {
		out := s.Reply(wire, tcp)
		if out == nil {
			return
		}
		m := new(dns.Msg)
		if err := m.Unpack(out); err != nil {
			t.Fatalf("reply does not unpack: %v", err)
		}
		if !m.Response || m.RecursionAvailable {
			t.Fatalf("reply QR=%v RA=%v", m.Response, m.RecursionAvailable)
		}
		if len(wire) >= 2 && m.Id != uint16(wire[0])<<8|uint16(wire[1]) {
			t.Fatalf("reply ID %d for query ID %x", m.Id, wire[:2])
		}
		if !tcp && len(out) > DefaultUDPSize {
			t.Fatalf("UDP reply of %d bytes", len(out))
		}
		req := new(dns.Msg)
		if req.Unpack(wire) != nil && m.Rcode != dns.RcodeFormatError {
			t.Fatalf("malformed query answered %s", dns.RcodeToString[m.Rcode])
		}
	})
}
