package dnsserver

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dkimd/dkimd/internal/dkim"
	"github.com/dkimd/dkimd/internal/peertest"
)

const (
	testZone = "dkim.provider.example"
	sel1     = "s1.t0k3n.dkim.provider.example"
	sel2     = "s2.t0k3n.dkim.provider.example"
)

// rsa4096Value is the key record of the 4096-bit test key: about 740 bytes,
// more than a UDP answer without EDNS0 carries.
func rsa4096Value(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile("../dnscheck/testdata/rsa4096.pem")
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	v, err := dkim.RecordValue(k.(crypto.Signer).Public())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// startServer runs a server for testZone on 127.0.0.1 with a short value at
// sel1 and the 4096-bit record at sel2.
func startServer(t testing.TB) (*Server, string, string) {
	t.Helper()
	s, err := New(Options{
		Zone: testZone,
		NameServers: []NameServer{
			{Name: "ns1.dkim.provider.example", Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.53")}},
			{Name: "ns.other.example"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	long := rsa4096Value(t)
	if err := s.Load([]Record{{Name: sel1, Value: "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="}, {Name: sel2, Value: long}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr, wait, err := s.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := wait(); err != nil {
			t.Error(err)
		}
	})
	return s, addr.String(), long
}

type query struct {
	name  string
	qtype uint16
	class uint16
	edns  uint16 // 0: no OPT record
	tcp   bool
	op    int
}

func ask(t *testing.T, addr string, q query) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(q.name), q.qtype)
	m.RecursionDesired = true
	if q.class != 0 {
		m.Question[0].Qclass = q.class
	}
	if q.op != 0 {
		m.Opcode = q.op
	}
	if q.edns != 0 {
		m.SetEdns0(q.edns, true)
	}
	cl := &dns.Client{Net: "udp", Timeout: 2 * time.Second, UDPSize: max(q.edns, 512)}
	if q.tcp {
		cl.Net = "tcp"
	}
	in, _, err := cl.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s: %v", q.name, dns.TypeToString[q.qtype], err)
	}
	return in
}

func txtValue(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		if txt, ok := rr.(*dns.TXT); ok {
			out = append(out, strings.Join(txt.Txt, ""))
		}
	}
	return out
}

func hasSOA(rrs []dns.RR) bool {
	for _, rr := range rrs {
		if soa, ok := rr.(*dns.SOA); ok && soa.Hdr.Name == testZone+"." {
			return true
		}
	}
	return false
}

// TestServerAnswers asks the server over the network with a Go client, one
// case per rule an authoritative server follows.
func TestServerAnswers(t *testing.T) {
	_, addr, long := startServer(t)
	for _, tc := range []struct {
		rule      string
		q         query
		rcode     int
		aa        bool
		answers   int
		soaInAuth bool
		tc        bool
		check     func(t *testing.T, m *dns.Msg)
	}{
		{rule: "RFC 1035 §4.3.1: a key record, authoritative, no recursion", q: query{name: sel1, qtype: dns.TypeTXT, edns: 1232},
			rcode: dns.RcodeSuccess, aa: true, answers: 1, check: func(t *testing.T, m *dns.Msg) {
				if m.RecursionAvailable {
					t.Error("RA set: an authoritative-only server must not offer recursion")
				}
				if got := txtValue(m); len(got) != 1 || !strings.HasPrefix(got[0], "v=DKIM1; k=ed25519") {
					t.Errorf("TXT = %q", got)
				}
			}},
		{rule: "case-insensitive names (RFC 4343), spelt back as asked", q: query{name: "S1.T0K3N.Dkim.Provider.Example", qtype: dns.TypeTXT, edns: 1232},
			rcode: dns.RcodeSuccess, aa: true, answers: 1, check: func(t *testing.T, m *dns.Msg) {
				if n := m.Answer[0].Header().Name; n != "S1.T0K3N.Dkim.Provider.Example." {
					t.Errorf("owner name %q", n)
				}
			}},
		{rule: "RFC 1035: SOA at the apex", q: query{name: testZone, qtype: dns.TypeSOA, edns: 1232}, rcode: dns.RcodeSuccess, aa: true, answers: 1,
			check: func(t *testing.T, m *dns.Msg) {
				soa := m.Answer[0].(*dns.SOA)
				if soa.Ns != "ns1.dkim.provider.example." || soa.Mbox != "hostmaster.dkim.provider.example." || soa.Minttl != DefaultNegativeTTL || soa.Serial == 0 {
					t.Errorf("SOA %v", soa)
				}
			}},
		{rule: "NS at the apex, with glue for the in-zone name server", q: query{name: testZone, qtype: dns.TypeNS, edns: 1232}, rcode: dns.RcodeSuccess, aa: true, answers: 2,
			check: func(t *testing.T, m *dns.Msg) {
				if len(m.Extra) < 2 { // A + OPT
					t.Fatalf("additional %v", m.Extra)
				}
				if a, ok := m.Extra[0].(*dns.A); !ok || a.A.String() != "192.0.2.53" || a.Hdr.Name != "ns1.dkim.provider.example." {
					t.Errorf("glue %v", m.Extra[0])
				}
			}},
		{rule: "A of the in-zone name server", q: query{name: "ns1." + testZone, qtype: dns.TypeA}, rcode: dns.RcodeSuccess, aa: true, answers: 1},
		{rule: "RFC 2308 §2.1: NXDOMAIN with the SOA in the authority section", q: query{name: "s3.t0k3n." + testZone, qtype: dns.TypeTXT, edns: 1232},
			rcode: dns.RcodeNameError, aa: true, soaInAuth: true, check: func(t *testing.T, m *dns.Msg) {
				if ttl := m.Ns[0].Header().Ttl; ttl != DefaultNegativeTTL {
					t.Errorf("negative TTL %d, want the SOA minimum %d (RFC 2308 §3)", ttl, DefaultNegativeTTL)
				}
			}},
		{rule: "RFC 2308 §2.2: NODATA (another type at a key's name) with the SOA", q: query{name: sel1, qtype: dns.TypeA},
			rcode: dns.RcodeSuccess, aa: true, soaInAuth: true},
		{rule: "RFC 8020: an empty non-terminal is NODATA, not NXDOMAIN", q: query{name: "t0k3n." + testZone, qtype: dns.TypeTXT},
			rcode: dns.RcodeSuccess, aa: true, soaInAuth: true},
		{rule: "NODATA for TXT at the apex", q: query{name: testZone, qtype: dns.TypeTXT}, rcode: dns.RcodeSuccess, aa: true, soaInAuth: true},
		{rule: "REFUSED for a name outside the zone (no recursion)", q: query{name: "example.com", qtype: dns.TypeTXT, edns: 1232}, rcode: dns.RcodeRefused},
		{rule: "REFUSED for the parent zone", q: query{name: "provider.example", qtype: dns.TypeSOA}, rcode: dns.RcodeRefused},
		{rule: "REFUSED for a name that only ends like the zone", q: query{name: "xdkim.provider.example", qtype: dns.TypeTXT}, rcode: dns.RcodeRefused},
		{rule: "REFUSED for CHAOS class", q: query{name: "version.bind", qtype: dns.TypeTXT, class: dns.ClassCHAOS}, rcode: dns.RcodeRefused},
		{rule: "REFUSED for a zone transfer", q: query{name: testZone, qtype: dns.TypeAXFR, tcp: true}, rcode: dns.RcodeRefused},
		{rule: "RFC 1035 §4.1.1: NOTIMP for opcode STATUS", q: query{name: sel1, qtype: dns.TypeTXT, op: dns.OpcodeStatus}, rcode: dns.RcodeNotImplemented},
		{rule: "RFC 6891 §7: EDNS0 answered with an OPT record of 1232 bytes", q: query{name: sel2, qtype: dns.TypeTXT, edns: 4096},
			rcode: dns.RcodeSuccess, aa: true, answers: 1, check: func(t *testing.T, m *dns.Msg) {
				opt := m.IsEdns0()
				if opt == nil || opt.UDPSize() != DefaultUDPSize {
					t.Fatalf("OPT %v", opt)
				}
				if !opt.Do() {
					t.Error("DO bit not copied (RFC 3225 §3)")
				}
				if got := txtValue(m); len(got) != 1 || got[0] != long {
					t.Errorf("4096-bit record over UDP with EDNS0: %q", got)
				}
				for _, s := range m.Answer[0].(*dns.TXT).Txt {
					if len(s) > 255 {
						t.Errorf("character-string of %d bytes (RFC 1035 §3.3: at most 255)", len(s))
					}
				}
			}},
		{rule: "RFC 1035 §4.2.1: no OPT record in the answer to a query without one", q: query{name: sel1, qtype: dns.TypeTXT}, rcode: dns.RcodeSuccess, aa: true, answers: 1,
			check: func(t *testing.T, m *dns.Msg) {
				if m.IsEdns0() != nil {
					t.Error("OPT record in an answer to a query without EDNS0")
				}
			}},
		{rule: "RFC 1035 §4.2.1: a 4096-bit record without EDNS0 does not fit 512 bytes: TC", q: query{name: sel2, qtype: dns.TypeTXT},
			rcode: dns.RcodeSuccess, aa: true, tc: true},
		{rule: "RFC 6891 §6.2.5: an advertised size below 512 counts as 512: TC", q: query{name: sel2, qtype: dns.TypeTXT, edns: 100},
			rcode: dns.RcodeSuccess, aa: true, tc: true},
		{rule: "RFC 7766 §5: the same question over TCP gets the whole record", q: query{name: sel2, qtype: dns.TypeTXT, tcp: true},
			rcode: dns.RcodeSuccess, aa: true, answers: 1, check: func(t *testing.T, m *dns.Msg) {
				if got := txtValue(m); len(got) != 1 || got[0] != long {
					t.Errorf("TXT over TCP %q", got)
				}
			}},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			m := ask(t, addr, tc.q)
			if m.Rcode != tc.rcode {
				t.Fatalf("rcode %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.rcode])
			}
			if m.Authoritative != tc.aa {
				t.Errorf("AA %v, want %v", m.Authoritative, tc.aa)
			}
			if len(m.Answer) != tc.answers {
				t.Errorf("%d answers, want %d: %v", len(m.Answer), tc.answers, m.Answer)
			}
			if got := hasSOA(m.Ns); got != tc.soaInAuth {
				t.Errorf("SOA in authority %v, want %v: %v", got, tc.soaInAuth, m.Ns)
			}
			if m.Truncated != tc.tc {
				t.Errorf("TC %v, want %v", m.Truncated, tc.tc)
			}
			if !m.RecursionDesired {
				t.Error("RD not copied from the query (RFC 1035 §4.1.1)")
			}
			if tc.check != nil {
				tc.check(t, m)
			}
		})
	}
}

// TestServerBadVersion checks RFC 6891 §6.1.3: EDNS version 1 gets BADVERS.
func TestServerBadVersion(t *testing.T) {
	_, addr, _ := startServer(t)
	m := new(dns.Msg)
	m.SetQuestion(sel1+".", dns.TypeTXT)
	m.SetEdns0(1232, false)
	m.IsEdns0().SetVersion(1)
	in, err := dns.Exchange(m, addr)
	if err != nil {
		t.Fatal(err)
	}
	if in.Rcode != dns.RcodeBadVers {
		t.Fatalf("rcode %s, want BADVERS", dns.RcodeToString[in.Rcode])
	}
}

// TestServerLoad checks that a reload is seen at once, the serial moves on
// only when the data changes, and bad records are refused.
func TestServerLoad(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s, err := New(Options{Zone: testZone, NameServers: []NameServer{{Name: "ns.other.example"}}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	q := new(dns.Msg)
	q.SetQuestion(sel1+".", dns.TypeTXT)
	if m := s.Answer(q, false); m.Rcode != dns.RcodeNameError {
		t.Fatalf("empty zone: %s", dns.RcodeToString[m.Rcode])
	}
	first := s.Serial()
	if err := s.Load([]Record{{Name: sel1, Value: "v=DKIM1; p=abc"}}); err != nil {
		t.Fatal(err)
	}
	if m := s.Answer(q, false); len(txtValue(m)) != 1 {
		t.Fatalf("after Load: %v", m)
	}
	second := s.Serial()
	if second == first {
		t.Errorf("serial %d did not move on with new data (clock stood still)", second)
	}
	if err := s.Load([]Record{{Name: sel1, Value: "v=DKIM1; p=abc"}}); err != nil {
		t.Fatal(err)
	}
	if s.Serial() != second {
		t.Errorf("serial moved on without a change")
	}
	for _, bad := range []Record{{Name: "s1.example.com", Value: "x"}, {Name: testZone, Value: "x"}, {Name: "", Value: "x"}} {
		if err := s.Load([]Record{bad}); err == nil {
			t.Errorf("Load(%q) accepted", bad.Name)
		}
	}
	if m := s.Answer(q, false); len(txtValue(m)) != 1 {
		t.Errorf("a refused Load changed the data")
	}
}

func TestNewRefuses(t *testing.T) {
	for name, o := range map[string]Options{
		"no zone":              {NameServers: []NameServer{{Name: "ns.example"}}},
		"no name server":       {Zone: testZone},
		"in-zone NS, no glue":  {Zone: testZone, NameServers: []NameServer{{Name: "ns1." + testZone}}},
		"not a name":           {Zone: "a..b", NameServers: []NameServer{{Name: "ns.example"}}},
		"name server not name": {Zone: testZone, NameServers: []NameServer{{Name: ""}}},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestServerWithDig asks with BIND's dig, a client the server did not
// grow up with.
func TestServerWithDig(t *testing.T) {
	dig, err := exec.LookPath("dig")
	if err != nil {
		peertest.Unavailable(t, "dig not installed (Debian package dnsutils)")
		return
	}
	_, addr, long := startServer(t)
	ap := netip.MustParseAddrPort(addr)
	run := func(args ...string) string {
		t.Helper()
		base := []string{"@" + ap.Addr().String(), "-p", strconv.Itoa(int(ap.Port())), "+norecurse", "+time=2", "+tries=1"}
		out, err := exec.Command(dig, append(base, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("dig %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	for _, tc := range []struct {
		rule string
		args []string
		want []string
	}{
		{"a key record, AA, no RA", []string{sel1, "TXT"}, []string{"status: NOERROR", "flags: qr aa;", "k=ed25519"}},
		{"NXDOMAIN with SOA", []string{"nope." + testZone, "TXT"}, []string{"status: NXDOMAIN", "flags: qr aa;", "AUTHORITY: 1", "IN\tSOA\tns1.dkim.provider.example."}},
		{"NODATA with SOA", []string{sel1, "AAAA"}, []string{"status: NOERROR", "ANSWER: 0, AUTHORITY: 1", "IN\tSOA"}},
		{"REFUSED outside the zone", []string{"example.org", "TXT"}, []string{"status: REFUSED"}},
		{"EDNS0 answered with 1232", []string{"+bufsize=4096", sel2, "TXT"}, []string{"EDNS: version: 0", "udp: 1232", "ANSWER: 1"}},
		// dig retries over TCP by itself on TC and says so.
		{"TC without EDNS0, then TCP", []string{"+noedns", sel2, "TXT"}, []string{"Truncated, retrying in TCP mode", "ANSWER: 1", long[len(long)-40:]}},
		{"+notcp +ignore shows the TC bit", []string{"+noedns", "+ignore", sel2, "TXT"}, []string{"flags: qr aa tc;", "ANSWER: 0"}},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			out := run(tc.args...)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("dig output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
