package peertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// NamedPath is where Debian's bind9 package puts the server.
const NamedPath = "/usr/sbin/named"

// BindZone is one primary zone of a Bind server.
type BindZone struct {
	// Name is the zone, e.g. "customer.example".
	Name string
	// Records are zone-file lines after the SOA and NS records the
	// server makes (SOA, NS ns1.<zone>, ns1 A 127.0.0.1).
	Records []string
	// UpdatePolicy is the zone's update-policy body, e.g.
	// `grant dkimd subdomain _domainkey.customer.example. TXT;`; empty
	// means no updates.
	UpdatePolicy string
}

// BindOptions configure a Bind server.
type BindOptions struct {
	Zones []BindZone
	// Keys are TSIG keys (HMAC-SHA256), name → base64 secret.
	Keys map[string]string
}

// Bind starts a real BIND 9 (Debian's bind9) as a primary for the zones,
// on a free port of 127.0.0.1, and stops it when the test ends. It returns
// the server's HOST:PORT. Without bind9 the test is skipped (failed under
// DKIMD_REQUIRE_PEERS=1).
func Bind(t testing.TB, o BindOptions) string {
	t.Helper()
	if _, err := os.Stat(NamedPath); err != nil {
		Unavailable(t, "BIND is not installed (Debian package bind9): %v", err)
		return ""
	}
	dir := t.TempDir()
	port := FreePort(t)
	var b strings.Builder
	fmt.Fprintf(&b, `options {
	directory %q;
	pid-file %q;
	session-keyfile %q;
	listen-on port %d { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	dnssec-validation no;
	allow-query { any; };
	notify no;
};
controls { };
logging { channel errs { stderr; severity info; }; category default { errs; }; category update { errs; }; category update-security { errs; }; };
`, dir, filepath.Join(dir, "named.pid"), filepath.Join(dir, "session.key"), port)
	for name, secret := range o.Keys {
		fmt.Fprintf(&b, "key %q { algorithm hmac-sha256; secret %q; };\n", name, secret)
	}
	for _, z := range o.Zones {
		file := filepath.Join(dir, z.Name+".db")
		zone := fmt.Sprintf("$TTL 60\n@ IN SOA ns1.%s. hostmaster.%s. 1 3600 600 86400 60\n@ IN NS ns1.%s.\nns1 IN A 127.0.0.1\n%s\n",
			z.Name, z.Name, z.Name, strings.Join(z.Records, "\n"))
		writeFile(t, file, []byte(zone), 0o644)
		fmt.Fprintf(&b, "zone %q { type primary; file %q;", z.Name, file)
		if z.UpdatePolicy != "" {
			fmt.Fprintf(&b, " update-policy { %s };", z.UpdatePolicy)
		}
		b.WriteString(" };\n")
	}
	conf := filepath.Join(dir, "named.conf")
	writeFile(t, conf, []byte(b.String()), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, NamedPath, "-g", "-4", "-c", conf, "-n", "1")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("peertest: start named: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("named output:\n%s", out.String())
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(15 * time.Second)
	for {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(o.Zones[0].Name), dns.TypeSOA)
		c := &dns.Client{Timeout: 200 * time.Millisecond}
		if in, _, err := c.Exchange(m, addr); err == nil && in.Rcode == dns.RcodeSuccess && in.Authoritative {
			return addr
		}
		select {
		case <-done:
			t.Fatalf("peertest: named exited: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("peertest: named does not answer on %s: %s", addr, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
