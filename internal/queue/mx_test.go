package queue

import (
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/dkimd/dkimd/internal/queue/queuetest"
)

// TestMXDelivery routes by MX through a real DNS server on loopback: MX
// preference order with fallback, implicit MX, null MX, NXDOMAIN and
// SERVFAIL, and opportunistic STARTTLS to the MX.
func TestMXDelivery(t *testing.T) {
	serverTLS, _ := queuetest.TLSConfigs(t)
	sink1 := queuetest.NewSink(t, queuetest.SinkOptions{TLSConfig: serverTLS})
	_, port, _ := net.SplitHostPort(sink1.Addr)
	// A second sink on another loopback address and the same port, since
	// every MX is dialed on one port.
	sink2, err := queuetest.StartSink(queuetest.SinkOptions{Addr: net.JoinHostPort("127.0.0.2", port)})
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	t.Cleanup(sink2.Close)
	dns := queuetest.NewDNS(t,
		// Preference 10 refuses connections (nothing on 127.0.0.3), so
		// 20 takes it (RFC 5321 §5.1).
		"a.test. 300 IN MX 20 mx2.a.test.",
		"a.test. 300 IN MX 10 mx1.a.test.",
		"mx1.a.test. 300 IN A 127.0.0.3",
		"mx2.a.test. 300 IN A 127.0.0.1",
		// Lower preference wins when both answer.
		"pref.test. 300 IN MX 20 mx2.a.test.",
		"pref.test. 300 IN MX 10 mx.pref.test.",
		"mx.pref.test. 300 IN A 127.0.0.2",
		// No MX: the A record is the implicit MX.
		"implicit.test. 300 IN A 127.0.0.2",
		// RFC 7505 null MX.
		"null.test. 300 IN MX 0 .",
		"sender.test. 300 IN MX 10 mx2.a.test.",
	)
	dns.ServFail("broken.test.")
	e := newEnv(t, func(o *Options) {
		o.SmartHost = ""
		o.Resolver = &DNSResolver{Server: dns.Addr}
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
