package delegation

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dkimd/dkimd/internal/dkim"
	"github.com/dkimd/dkimd/internal/dnscheck/dnstest"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/peertest"
	"github.com/dkimd/dkimd/internal/store"
	"github.com/dkimd/dkimd/internal/store/storetest"
)

// dkimpyDNS verifies every message through dkimpy, resolving the key
// records for real through the resolver at addr (dnspython), one line per
// message: "pass" or the reason it failed.
const dkimpyDNS = `
import sys, io, logging, dkim, dns.resolver
host, port = sys.argv[1], int(sys.argv[2])
res = dns.resolver.Resolver(configure=False)
res.nameservers = [host]
res.port = port
res.lifetime = 5
def dnsfunc(name, timeout=5):
    ans = res.resolve(name.decode().rstrip('.'), 'TXT')
    return b''.join(b''.join(r.strings) for r in ans)
for path in sys.argv[3:]:
    msg = open(path, 'rb').read()
    log = io.StringIO()
    logger = logging.getLogger('dkimpy%d' % len(path))
    logger.handlers = [logging.StreamHandler(log)]
    logger.setLevel(logging.DEBUG)
    try:
        ok = dkim.DKIM(msg, logger=logger).verify(dnsfunc=dnsfunc)
        print('pass' if ok else 'fail: ' + log.getvalue().strip().replace('\n', ' | ')[-300:])
    except Exception as e:
        print('error: %r' % (e,))
`

// verifyThroughResolver runs dkimpy on msgs, resolving through resolver.
func verifyThroughResolver(t testing.TB, resolver string, msgs [][]byte) []string {
	t.Helper()
	if _, err := exec.Command("/usr/bin/python3", "-I", "-c", "import dkim, dns.resolver").CombinedOutput(); err != nil {
		peertest.Unavailable(t, "dkimpy with dnspython is not installed (Debian packages python3-dkim, python3-dnspython)")
		return nil
	}
	dir := t.TempDir()
	host, port, _ := strings.Cut(resolver, ":")
	args := []string{"-I", "-c", dkimpyDNS, host, port}
	for i, m := range msgs {
		p := filepath.Join(dir, fmt.Sprintf("m%d.eml", i))
		if err := os.WriteFile(p, m, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, p)
	}
	out, err := exec.Command("/usr/bin/python3", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dkimpy: %v\n%s", err, out)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// signWith signs a short message with key at time now.
func signWith(t testing.TB, k crypto.Signer, domain, sel string, now time.Time, subject string) []byte {
	t.Helper()
	msg := "From: a@" + domain + "\r\nTo: b@example.net\r\nSubject: " + subject + "\r\nDate: Mon, 7 Dec 2026 01:00:00 +0000\r\nMessage-ID: <" + subject + "@" + domain + ">\r\n\r\nHello.\r\n"
	sigs, err := dkim.Sign(strings.NewReader(msg), &dkim.SignOptions{
		Keys: []dkim.SignKey{{Domain: domain, Selector: sel, Signer: k}}, Expiration: 7 * 24 * time.Hour,
		Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	return peertest.Prepend([]byte(msg), sigs...)
}

// customerZone serves the customer's zone with the two CNAMEs on a second
// authoritative server (the project's test server).
func customerZone(t testing.TB, d store.Domain) *dnstest.Server {
	return dnstest.NewServer(t, dnstest.Zone{Authoritative: true, Records: []dns.RR{
		dnstest.SOA(cust), dnstest.NS(cust, "ns1."+cust), dnstest.A("ns1."+cust, "127.0.0.1"),
		dnstest.CNAME("s1._domainkey."+cust, Target(d, "s1")),
		dnstest.CNAME("s2._domainkey."+cust, Target(d, "s2")),
	}})
}

// TestChainThroughUnbound publishes keys in dkimd's zone, the customer's
// CNAMEs on another server, and has dkimpy and opendkim-testkey find the
// keys through a real recursive resolver (unbound) following the CNAMEs.
func TestChainThroughUnbound(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	rsaKey, _ := w.storedKey(t, "s1", keys.Spec{Algorithm: keys.RSA, Bits: 4096}, store.KeyActive)
	edKey, _ := w.storedKey(t, "s2", keys.Spec{Algorithm: keys.Ed25519})
	if err := w.srv.Refresh(ctx, Source{Store: w.db, Zone: zone}); err != nil {
		t.Fatal(err)
	}
	custNS := customerZone(t, w.dom)
	resolver := peertest.Unbound(t, map[string]string{cust: custNS.Addr(), zone: w.srvAddr})

	now := time.Now()
	msgs := [][]byte{
		signWith(t, rsaKey, cust, "s1", now, "rsa4096"),
		signWith(t, edKey, cust, "s2", now, "ed25519"),
	}
	got := verifyThroughResolver(t, resolver, msgs)
	if len(got) != 2 || got[0] != "pass" || got[1] != "pass" {
		t.Fatalf("dkimpy through unbound (RSA 4096 at s1, Ed25519 at s2): %q", got)
	}

	// A message signed with a key the zone does not serve fails: the test
	// can fail.
	wrong, _ := w.storedKey(t, "x1", keys.Spec{Algorithm: keys.Ed25519})
	if bad := verifyThroughResolver(t, resolver, [][]byte{signWith(t, wrong, cust, "s1", now, "wrong")}); bad[0] == "pass" {
		t.Fatalf("a signature by a key not served passed: %q", bad)
	}

	// opendkim-testkey: the RSA key behind the s1 CNAME, resolved by
	// libunbound forwarding to the same unbound.
	testkey, err := exec.LookPath("opendkim-testkey")
	if err != nil {
		peertest.Unavailable(t, "opendkim-testkey is not installed (Debian package opendkim-tools)")
		return
	}
	dir := t.TempDir()
	der, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "s1.pem")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	host, port, _ := strings.Cut(resolver, ":")
	ub := filepath.Join(dir, "libunbound.conf")
	os.WriteFile(ub, []byte(fmt.Sprintf("server:\n\tdo-not-query-localhost: no\n\tmodule-config: \"iterator\"\nforward-zone:\n\tname: \".\"\n\tforward-addr: %s@%s\n", host, port)), 0o600)
	conf := filepath.Join(dir, "opendkim.conf")
	os.WriteFile(conf, []byte("ResolverConfiguration "+ub+"\n"), 0o600)
	out, err := exec.Command(testkey, "-d", cust, "-s", "s1", "-k", keyFile, "-x", conf, "-vvv").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "key OK") {
		t.Fatalf("opendkim-testkey: %v\n%s", err, out)
	}
}

// storedKey makes a key in the store at sel of the customer's domain and
// gives its private half too.
func (w *world) storedKey(t testing.TB, sel string, spec keys.Spec, states ...store.KeyState) (crypto.Signer, store.Key) {
	t.Helper()
	nk, err := storetest.NewKey(w.mk, cust, sel, spec)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := w.mk.OpenSigner(nk.Sealed, store.KeyAssociatedData(cust, sel))
	if err != nil {
		t.Fatal(err)
	}
	k, err := w.db.CreateKey(context.Background(), nk)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range states {
		if k, err = w.db.SetKeyState(context.Background(), k.ID, st); err != nil {
			t.Fatal(err)
		}
	}
	return priv, k
}
