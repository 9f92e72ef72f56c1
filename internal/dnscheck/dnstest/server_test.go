package dnstest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func query(t *testing.T, s *Server, network, name string, qtype uint16, edns bool) (*dns.Msg, error) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	if edns {
		m.SetEdns0(1232, false)
	}
	c := &dns.Client{Net: network, Timeout: 200 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	in, _, err := c.ExchangeContext(ctx, m, s.Addr())
	return in, err
}

func TestServerAnswers(t *testing.T) {
	long := strings.Repeat("a", 255)
	z := Zone{
		Authoritative: true,
		Records: []dns.RR{
			SOA("example.com"),
			NS("example.com", "ns1.example.com"),
			A("ns1.example.com", "192.0.2.1"),
			AAAA("ns1.example.com", "2001:db8::1"),
			TXT("raw.example.com", `"quoted" \; back\slash`, "\u00a0\x00"),
			TXT("long.example.com", long, long, "tail"),
			CNAME("alias.example.com", "raw.example.com"),
			CNAME("out.example.com", "x.provider.net"),
			CNAME("gone.example.com", "none.example.com"),
			CNAME("loop1.example.com", "loop2.example.com"),
			CNAME("loop2.example.com", "loop1.example.com"),
			TXT("a.b.c.example.com", "deep"),
		},
	}
	s := NewServer(t, z)
	for _, tc := range []struct {
		name    string
		qname   string
		qtype   uint16
		rcode   int
		answer  []string // owner/type of each answer record
		soaInNS bool
	}{
		{"TXT", "raw.example.com", dns.TypeTXT, dns.RcodeSuccess, []string{"raw.example.com./TXT"}, false},
		{"any case", "RAW.Example.COM", dns.TypeTXT, dns.RcodeSuccess, []string{"raw.example.com./TXT"}, false},
		{"NXDOMAIN with SOA (RFC 2308)", "none.example.com", dns.TypeTXT, dns.RcodeNameError, nil, true},
		{"NODATA", "ns1.example.com", dns.TypeTXT, dns.RcodeSuccess, nil, true},
		{"empty non-terminal is NODATA", "b.c.example.com", dns.TypeTXT, dns.RcodeSuccess, nil, true},
		{"CNAME followed in the zone", "alias.example.com", dns.TypeTXT, dns.RcodeSuccess, []string{"alias.example.com./CNAME", "raw.example.com./TXT"}, false},
		{"CNAME out of the zone stops", "out.example.com", dns.TypeTXT, dns.RcodeSuccess, []string{"out.example.com./CNAME"}, false},
		{"CNAME to nowhere", "gone.example.com", dns.TypeTXT, dns.RcodeNameError, []string{"gone.example.com./CNAME"}, true},
		{"CNAME loop stops", "loop1.example.com", dns.TypeTXT, dns.RcodeSuccess, []string{"loop1.example.com./CNAME", "loop2.example.com./CNAME"}, false},
		{"asked for the CNAME itself", "alias.example.com", dns.TypeCNAME, dns.RcodeSuccess, []string{"alias.example.com./CNAME"}, false},
		{"outside the zones: REFUSED", "example.org", dns.TypeTXT, dns.RcodeRefused, nil, false},
		{"SOA at the apex", "example.com", dns.TypeSOA, dns.RcodeSuccess, []string{"example.com./SOA"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, err := query(t, s, "udp", tc.qname, tc.qtype, true)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, rr := range in.Answer {
				got = append(got, rr.Header().Name+"/"+dns.TypeToString[rr.Header().Rrtype])
			}
			if in.Rcode != tc.rcode || !slices.Equal(got, tc.answer) || !in.Authoritative {
				t.Errorf("rcode %s answer %v aa=%v, want %s %v aa", dns.RcodeToString[in.Rcode], got, in.Authoritative, dns.RcodeToString[tc.rcode], tc.answer)
			}
			if hasSOA := len(in.Ns) == 1 && in.Ns[0].Header().Rrtype == dns.TypeSOA; hasSOA != tc.soaInNS {
				t.Errorf("authority %v, want SOA: %v", in.Ns, tc.soaInNS)
			}
		})
	}

	// Raw bytes survive the trip: what TXT was given is what a client
	// unpacks (in miekg/dns's escaped presentation form).
	in, err := query(t, s, "udp", "raw.example.com", dns.TypeTXT, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := in.Answer[0].(*dns.TXT).Txt; !slices.Equal(got, []string{`\"quoted\" \\; back\\slash`, `\194\160\000`}) {
		t.Errorf("TXT strings %q", got)
	}
	in, err = query(t, s, "tcp", "long.example.com", dns.TypeTXT, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := in.Answer[0].(*dns.TXT).Txt; len(got) != 3 || got[0] != long || got[2] != "tail" {
		t.Errorf("TXT strings %q", got)
	}
	if udp, tcp := s.Queries(); udp != 13 || tcp != 1 {
		t.Errorf("queries udp %d tcp %d, want 13 and 1", udp, tcp)
	}
}

func TestServerFaults(t *testing.T) {
	z := Zone{
		Records: []dns.RR{SOA("example.com"), TXT("ok.example.com", "ok"), TXT("big.example.com", "x")},
		Faults: map[string]Fault{
			"SERVFAIL.example.com": ServFail,
			"refused.example.com.": Refused,
			"timeout.example.com":  Timeout,
			"big.example.com":      Truncate,
		},
	}
	s := NewServer(t, z)
	for _, tc := range []struct {
		name    string
		network string
		rcode   int
		tc      bool
		timeout bool
		answers int
	}{
		{"ok.example.com", "udp", dns.RcodeSuccess, false, false, 1},
		{"servfail.example.com", "udp", dns.RcodeServerFailure, false, false, 0},
		{"refused.example.com", "tcp", dns.RcodeRefused, false, false, 0},
		{"timeout.example.com", "udp", 0, false, true, 0},
		{"big.example.com", "udp", dns.RcodeSuccess, true, false, 0},
		{"big.example.com", "tcp", dns.RcodeSuccess, false, false, 1},
	} {
		t.Run(tc.name+"/"+tc.network, func(t *testing.T) {
			in, err := query(t, s, tc.network, tc.name, dns.TypeTXT, true)
			if tc.timeout {
				if err == nil {
					t.Fatalf("answer %v, want none", in)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if in.Rcode != tc.rcode || in.Truncated != tc.tc || len(in.Answer) != tc.answers || !in.RecursionAvailable {
				t.Errorf("rcode %s tc=%v answers %d ra=%v", dns.RcodeToString[in.Rcode], in.Truncated, len(in.Answer), in.RecursionAvailable)
			}
		})
	}

	// SetZone changes the answers of a running server; "*" faults all.
	s.SetZone(Zone{Faults: map[string]Fault{"*": ServFail}})
	in, err := query(t, s, "udp", "ok.example.com", dns.TypeTXT, true)
	if err != nil || in.Rcode != dns.RcodeServerFailure {
		t.Fatalf("after SetZone: %v %v", in, err)
	}
}

// TestServerTruncatesWithoutEDNS: a client without EDNS gets at most 512
// bytes over UDP (RFC 1035 §4.2.1), and the TC bit beyond.
func TestServerTruncatesWithoutEDNS(t *testing.T) {
	s := NewServer(t, Zone{Records: []dns.RR{TXT("big.example.com", strings.Repeat("a", 255), strings.Repeat("b", 255), strings.Repeat("c", 255))}})
	in, err := query(t, s, "udp", "big.example.com", dns.TypeTXT, false)
	if err != nil {
		t.Fatal(err)
	}
	if !in.Truncated {
		t.Errorf("no TC bit on a %d-byte answer without EDNS", in.Len())
	}
	in, err = query(t, s, "udp", "big.example.com", dns.TypeTXT, true)
	if err != nil || in.Truncated || len(in.Answer) != 1 {
		t.Errorf("with EDNS: tc=%v answers %d err %v", in.Truncated, len(in.Answer), err)
	}
}
