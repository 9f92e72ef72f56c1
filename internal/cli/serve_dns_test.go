package cli

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dkimd/dkimd/internal/logtest"
)

// TestServeDNS starts serve with --listen-dns and finds a delegated
// domain's key, as the CLI made it, in the zone it serves; a key made
// while it runs appears within --dns-refresh.
func TestServeDNS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	ok := func(args ...string) string {
		t.Helper()
		code, out, errs := runData(t, dir, "", args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errs)
		}
		return out
	}
	ok("domain", "add", "customer.example")
	ok("domain", "set", "customer.example", "--publish", "delegated", "--dns-zone", "dkim.provider.example")
	ok("key", "generate", "--domain", "customer.example", "--selector", "s1", "--algorithm", "ed25519")
	value := strings.TrimSpace(ok("key", "record", "--domain", "customer.example", "--selector", "s1", "--format", "value"))
	targets := strings.Fields(ok("key", "record", "--domain", "customer.example", "--format", "value"))

	var stderr logtest.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"dkimd", "serve", "--data", dir, "--listen-http", "127.0.0.1:0",
			"--listen-submission", "", "--listen-submissions", "", "--listen-relay", "",
			"--listen-dns", "127.0.0.1:0", "--dns-zone", "dkim.provider.example", "--dns-ns", "ns1.dkim.provider.example=127.0.0.1",
			"--dns-refresh", "100ms", "--check-interval", "1000h"},
			&Env{Stdin: strings.NewReader(""), Stdout: &stderr, Stderr: &stderr, Getenv: func(string) string { return "" }})
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("serve did not stop")
		}
	}()
	// The port serve took (port 0: no port picked here that another test
	// could take first).
	serving := regexp.MustCompile(`msg=serving_dns addr=(\S+)`)
	var dnsAddr string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m := serving.FindStringSubmatch(stderr.String()); m != nil {
			dnsAddr = m[1]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start its DNS listener:\n%s", stderr.String())
		}
	}
	ask := func(name string) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
		in, err := dns.Exchange(m, dnsAddr)
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	in := ask(targets[0])
	if !in.Authoritative || len(in.Answer) != 1 || strings.Join(in.Answer[0].(*dns.TXT).Txt, "") != value {
		t.Fatalf("s1 target: %v", in)
	}
	if in := ask(targets[1]); in.Rcode != dns.RcodeNameError {
		t.Fatalf("s2 target before its key: %s", dns.RcodeToString[in.Rcode])
	}
	ok("key", "generate", "--domain", "customer.example", "--selector", "s2", "--algorithm", "ed25519")
	for deadline := time.Now().Add(5 * time.Second); ; {
		if in := ask(targets[1]); len(in.Answer) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a key made while serve runs is not served")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
