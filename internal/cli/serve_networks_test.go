package cli

import (
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/dkimd/dkimd/internal/delivery/deliverytest"
	"github.com/dkimd/dkimd/internal/logtest"
)

// TestServeUserNetworks is issue 10 point 1 on a running dkimd: serve
// reports at start the users of different domains whose networks overlap;
// a domain admin's API request for a user on every address is refused,
// as is a network wider than --max-user-network; and a client on an
// address no user claims cannot relay.
func TestServeUserNetworks(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	ok := mustData(t, dir)
	ok("", "domain", "add", "tenant-a.example")
	ok("", "domain", "add", "tenant-b.example")
	ok("", "user", "add", "--domain", "tenant-a.example", "--name", "lan-a", "--ip", "192.0.2.0/24")
	// Rows such as those made before the rules: only the override makes
	// one now.
	if code, _, errs := runData(t, dir, "", "user", "add", "--domain", "tenant-b.example", "--name", "host-b", "--ip", "192.0.2.7"); code != 1 || !strings.Contains(errs, "another domain") {
		t.Fatalf("overlapping user without the override: exit %d %q", code, errs)
	}
	ok("", "user", "add", "--domain", "tenant-b.example", "--name", "host-b", "--ip", "192.0.2.7", "--allow-any-network")
	ok("", "account", "add", "bob", "--role", "domain", "--domain", "tenant-b.example")
	token := strings.TrimSpace(ok("", "account", "token", "bob"))

	sink := deliverytest.NewSink(t, deliverytest.SinkOptions{})
	var logs logtest.Buffer
	addrs, _ := startServe(t, &logs, "--data", dir, "--listen-http", "127.0.0.1:0",
		"--listen-submission", "", "--listen-submissions", "", "--listen-relay", "127.0.0.1:0",
		"--hostname", "mail.test", "--smarthost", sink.Addr, "--smarthost-tls", "none", "--max-user-network", "28,/64")
	httpAddr, relayAddr := addrs["http"], addrs["relay"]
	report := regexp.MustCompile(`level=WARN msg=user_networks_overlap user=host-b domain=tenant-b.example network=192.0.2.7/32 other_user=lan-a other_domain=tenant-a.example other_network=192.0.2.0/24`)
	if !report.MatchString(logs.String()) {
		t.Errorf("no start-up report of host-b and lan-a:\n%s", logs.String())
	}

	post := func(body string) (int, string) {
		t.Helper()
		r, err := http.NewRequest("POST", "http://"+httpAddr+"/api/v1/domains/tenant-b.example/users", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Authorization", "Bearer "+token)
		r.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	for _, c := range []struct {
		body   string
		status int
	}{
		{`{"name":"w","auth":"ip","networks":["0.0.0.0/0","::/0"]}`, http.StatusUnprocessableEntity},
		{`{"name":"w","auth":"ip","networks":["0.0.0.0/0","::/0"],"allow_any_network":true}`, http.StatusForbidden},
		{`{"name":"w","auth":"ip","networks":["198.51.100.0/24"]}`, http.StatusUnprocessableEntity}, // wider than /28
		{`{"name":"w","auth":"ip","networks":["2001:db8::/48"]}`, http.StatusUnprocessableEntity},   // wider than /64
		{`{"name":"w","auth":"ip","networks":["192.0.2.9"]}`, http.StatusUnprocessableEntity},       // inside tenant-a's
	} {
		status, body := post(c.body)
		if status != c.status {
			t.Errorf("POST %s: %d %s, want %d", c.body, status, body, c.status)
		}
		if strings.Contains(body, "tenant-a") || strings.Contains(body, "lan-a") {
			t.Errorf("POST %s: the answer names tenant-a: %s", c.body, body)
		}
	}
	if status, body := post(`{"name":"w","auth":"ip","networks":["198.51.100.0/28"]}`); status != http.StatusCreated {
		t.Errorf("a /28 of his own: %d %s", status, body)
	}

	// 127.0.0.1 is no user's: relaying from it is refused.
	c, err := smtp.Dial(relayAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := "From: W <w@tenant-b.example>\r\nTo: victim@example.net\r\nSubject: relay?\r\n\r\nHello.\r\n"
	err = c.SendMail("w@tenant-b.example", []string{"victim@example.net"}, strings.NewReader(msg))
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code < 500 {
		t.Errorf("a client on an address no user claims: %v, want a 5xx refusal", err)
	}
}

// TestMaxUserNetworkFlag: --max-user-network takes two prefix lengths,
// IPv4 first, with or without slashes.
func TestMaxUserNetworkFlag(t *testing.T) {
	for _, tc := range []struct {
		in     string
		v4, v6 int
		ok     bool
	}{
		{"24,48", 24, 48, true},
		{"/28, /64", 28, 64, true},
		{"32,128", 32, 128, true},
		{"24", 0, 0, false},
		{"0,48", 0, 0, false},
		{"33,48", 0, 0, false},
		{"24,129", 0, 0, false},
		{"24,x", 0, 0, false},
	} {
		var f networkLimitFlag
		err := f.Set(tc.in)
		if (err == nil) != tc.ok || (tc.ok && (f.IPv4Bits != tc.v4 || f.IPv6Bits != tc.v6)) {
			t.Errorf("Set(%q) = %+v, %v", tc.in, f, err)
		}
	}
	var zero networkLimitFlag
	if got := zero.String(); got != "24,48" {
		t.Errorf("default %q, want 24,48", got)
	}
}
