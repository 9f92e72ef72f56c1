package peertest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// UnboundPath is where Debian's unbound package puts the resolver.
const UnboundPath = "/usr/sbin/unbound"

// Unbound starts a real recursive resolver (Debian's unbound) on a free
// port of 127.0.0.1, with a stub zone for each entry of stubs (zone name →
// the HOST:PORT of its authoritative server), no DNSSEC validation, no
// cache (tests change records between queries), and
// stops it when the test ends. It returns the resolver's HOST:PORT. Without
// unbound the test is skipped (failed under DKIMD_REQUIRE_PEERS=1).
func Unbound(t testing.TB, stubs map[string]string) string {
	t.Helper()
	if _, err := os.Stat(UnboundPath); err != nil {
		Unavailable(t, "unbound is not installed (Debian package unbound): %v", err)
		return ""
	}
	dir := t.TempDir()
	port := FreePort(t)
	var b strings.Builder
	fmt.Fprintf(&b, `server:
	interface: 127.0.0.1
	port: %d
	do-ip6: no
	do-daemonize: no
	use-syslog: no
	logfile: ""
	verbosity: 1
	username: ""
	chroot: ""
	directory: %q
	pidfile: %q
	access-control: 127.0.0.0/8 allow
	do-not-query-localhost: no
	module-config: "iterator"
	cache-max-ttl: 0
	cache-max-negative-ttl: 0
	cache-min-ttl: 0
remote-control:
	control-enable: no
`, port, dir, filepath.Join(dir, "unbound.pid"))
	zones := make([]string, 0, len(stubs))
	for z := range stubs {
		zones = append(zones, z)
	}
	slices.Sort(zones)
	for _, z := range zones {
		host, p, err := net.SplitHostPort(stubs[z])
		if err != nil {
			t.Fatalf("peertest: stub %s: %v", z, err)
		}
		fmt.Fprintf(&b, "stub-zone:\n\tname: %q\n\tstub-addr: %s@%s\n", z, host, p)
	}
	conf := filepath.Join(dir, "unbound.conf")
	writeFile(t, conf, []byte(b.String()), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, UnboundPath, "-d", "-c", conf)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("peertest: start unbound: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := new(dns.Msg)
		m.SetQuestion(zones[0]+".", dns.TypeSOA)
		c := &dns.Client{Timeout: 200 * time.Millisecond}
		if in, _, err := c.Exchange(m, addr); err == nil && in != nil {
			return addr
		}
		select {
		case <-done:
			t.Fatalf("peertest: unbound exited: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("peertest: unbound does not answer on %s: %s", addr, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// FreePort finds a port of 127.0.0.1 free for both UDP and TCP now, for a
// server the test starts as another process.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			pc.Close()
			return port
		}
	}
	t.Fatal("peertest: no free port")
	return 0
}
