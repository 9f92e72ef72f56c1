package delivery

import (
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/dkimd/dkimd/internal/delivery/deliverytest"
	"github.com/dkimd/dkimd/internal/dnscheck/dnstest"
	mdns "github.com/miekg/dns"
)

// TestMXDelivery routes by MX through a real DNS server on loopback: MX
// preference order with fallback, implicit MX, null MX, NXDOMAIN and
// SERVFAIL, and opportunistic STARTTLS to the MX.
func TestMXDelivery(t *testing.T) {
	serverTLS, _ := deliverytest.TLSConfigs(t)
	sink1 := deliverytest.NewSink(t, deliverytest.SinkOptions{TLSConfig: serverTLS})
	_, port, _ := net.SplitHostPort(sink1.Addr)
	// A second sink on another loopback address and the same port, since
	// every MX is dialed on one port.
	sink2, err := deliverytest.StartSink(deliverytest.SinkOptions{Addr: net.JoinHostPort("127.0.0.2", port)})
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	t.Cleanup(sink2.Close)
	dns := dnstest.NewServer(t, dnstest.Zone{
		Records: []mdns.RR{
			// Preference 10 refuses connections (nothing on 127.0.0.3),
			// so 20 takes it (RFC 5321 §5.1).
			dnstest.MX("a.test", 20, "mx2.a.test"),
			dnstest.MX("a.test", 10, "mx1.a.test"),
			dnstest.A("mx1.a.test", "127.0.0.3"),
			dnstest.A("mx2.a.test", "127.0.0.1"),
			// Lower preference wins when both answer.
			dnstest.MX("pref.test", 20, "mx2.a.test"),
			dnstest.MX("pref.test", 10, "mx.pref.test"),
			dnstest.A("mx.pref.test", "127.0.0.2"),
			// No MX: the A record is the implicit MX.
			dnstest.A("implicit.test", "127.0.0.2"),
			// RFC 7505 null MX.
			dnstest.MX("null.test", 0, "."),
			dnstest.MX("sender.test", 10, "mx2.a.test"),
		},
		Faults: map[string]dnstest.Fault{"broken.test": dnstest.ServFail},
	})
	e := newEnv(t, func(o *Options) {
		o.SmartHost = ""
		o.Resolver = &DNSResolver{Server: dns.Addr()}
		o.MXPort, _ = strconv.Atoi(port)
	})
	id := e.enqueue("alice@sender.test", []string{
		"x@a.test", "u@pref.test", "y@implicit.test", "z@null.test", "w@nx.test", "v@broken.test",
	}, testBody("mx"))
	e.runOnce()

	got1, got2 := map[string]bool{}, map[string]bool{}
	for _, m := range sink1.Delivered() {
		got1[strings.Join(m.To, ",")] = true
		if !m.TLS {
			t.Errorf("MX delivery to %v without STARTTLS although offered", m.To)
		}
	}
	for _, m := range sink2.Delivered() {
		got2[strings.Join(m.To, ",")] = true
	}
	if !got1["x@a.test"] || !got1["alice@sender.test"] || len(got1) != 2 {
		t.Errorf("sink1 (mx2.a.test) got %v, want x@a.test and the DSN", got1)
	}
	if !got2["u@pref.test"] || !got2["y@implicit.test"] || len(got2) != 2 {
		t.Errorf("sink2 got %v, want u@pref.test and y@implicit.test", got2)
	}
	m := e.get(id)
	want := "x@a.test=delivered/1 u@pref.test=delivered/1 y@implicit.test=delivered/1 z@null.test=bounced/1 w@nx.test=bounced/1 v@broken.test=deferred/1"
	if got := statuses(m); got != want {
		t.Fatalf("states\n got %s\nwant %s", got, want)
	}
	var dsn []byte
	for _, r := range sink1.Delivered() {
		if r.From == "" {
			dsn = r.Data
		}
	}
	d := parseDSN(t, dsn)
	if len(d.rcpts) != 2 || d.rcpts[0].Get("Status") != "5.1.10" || d.rcpts[1].Get("Status") != "5.1.2" {
		t.Fatalf("DSN recipients %v", d.rcpts)
	}
}
