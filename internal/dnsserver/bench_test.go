package dnsserver

import (
	"testing"

	"github.com/miekg/dns"
)

// BenchmarkAnswer measures the handler alone: a TXT query for a 4096-bit
// key record with EDNS0, packed as it goes on the wire.
func BenchmarkAnswer(b *testing.B) {
	s, _, _ := startServer(b)
	q := new(dns.Msg)
	q.SetQuestion(sel2+".", dns.TypeTXT)
	q.SetEdns0(1232, false)
	wire, err := q.Pack()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if s.Reply(wire, false) == nil {
			b.Fatal("no reply")
		}
	}
}

// BenchmarkUDP measures queries over loopback UDP with a Go client, one
// query in flight per client goroutine (run with -cpu 1 for one core).
func BenchmarkUDP(b *testing.B) {
	_, addr, _ := startServer(b)
	b.RunParallel(func(pb *testing.PB) {
		conn, err := dns.Dial("udp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer conn.Close()
		conn.UDPSize = 1232
		q := new(dns.Msg)
		q.SetQuestion(sel2+".", dns.TypeTXT)
		q.SetEdns0(1232, false)
		for pb.Next() {
			if err := conn.WriteMsg(q); err != nil {
				b.Error(err)
				return
			}
			in, err := conn.ReadMsg()
			if err != nil || len(in.Answer) != 1 {
				b.Errorf("%v %v", in, err)
				return
			}
		}
	})
}
