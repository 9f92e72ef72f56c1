package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDomainPublishDelegated walks a domain into delegated mode on the
// command line and reads back the two CNAMEs in every form.
func TestDomainPublishDelegated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	ok := func(args ...string) string {
		t.Helper()
		code, out, errs := runData(t, dir, "", args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errs)
		}
		return out
	}
	fails := func(code int, want string, args ...string) {
		t.Helper()
		c, _, errs := runData(t, dir, "", args...)
		if c != code || !strings.Contains(errs, want) {
			t.Errorf("%v: exit %d %q, want %d and %q", args, c, errs, code, want)
		}
	}
	ok("domain", "add", "customer.example")
	fails(1, "not delegated", "key", "record", "--domain", "customer.example", "--format", "zone")
	fails(1, "zone", "domain", "set", "customer.example", "--publish", "delegated")
	fails(2, "rotate-every", "domain", "set", "customer.example", "--publish", "delegated", "--dns-zone", "dkim.provider.example", "--rotate-every", "soon")
	out := ok("domain", "set", "customer.example", "--publish", "delegated", "--dns-zone", "dkim.provider.example", "--rotate-every", "30d")
	if !strings.Contains(out, "every 30d") || !strings.Contains(out, "s1._domainkey") {
		t.Errorf("domain set output:\n%s", out)
	}
	zone := ok("key", "record", "--domain", "customer.example", "--format", "zone")
	line := regexp.MustCompile(`^(s[12])\._domainkey\.customer\.example\. IN CNAME (s[12])\.([a-z2-7]{16})\.dkim\.provider\.example\.$`)
	lines := strings.Split(strings.TrimSpace(zone), "\n")
	if len(lines) != 2 {
		t.Fatalf("zone form: %q", zone)
	}
	var label string
	for i, l := range lines {
		m := line.FindStringSubmatch(l)
		if m == nil || m[1] != m[2] || m[1] != []string{"s1", "s2"}[i] {
			t.Fatalf("zone line %q", l)
		}
		if label != "" && m[3] != label {
			t.Errorf("two labels for one domain: %s, %s", label, m[3])
		}
		label = m[3]
	}
	var recs []struct{ Selector, Name, Host, Target, Zone string }
	if err := json.Unmarshal([]byte(ok("key", "record", "--domain", "customer.example", "--json")), &recs); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Host != "s1._domainkey" || recs[0].Target != "s1."+label+".dkim.provider.example" {
		t.Errorf("JSON form: %+v", recs)
	}
	// The label is kept: setting the mode again changes nothing the
	// customer made, and another zone is refused.
	ok("domain", "set", "customer.example", "--publish", "delegated", "--rotate-every", "7d")
	if again := ok("key", "record", "--domain", "customer.example", "--format", "zone"); again != zone {
		t.Errorf("the CNAME targets changed:\n%s\n%s", zone, again)
	}
	fails(1, "already", "domain", "set", "customer.example", "--dns-zone", "other.provider.example")

	// A second domain gets another label.
	ok("domain", "add", "other.example")
	ok("domain", "set", "other.example", "--publish", "delegated", "--dns-zone", "dkim.provider.example")
	if other := ok("key", "record", "--domain", "other.example", "--format", "zone"); strings.Contains(other, label) {
		t.Errorf("two domains share label %s", label)
	}
	if list := ok("domain", "list"); !strings.Contains(list, "delegated") {
		t.Errorf("domain list does not show the mode:\n%s", list)
	}
}

// TestDomainPublishUpdate sets up DNS UPDATE and checks that the TSIG
// secret is sealed: not in the database in clear, never in output or the
// audit log.
func TestDomainPublishUpdate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	const secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTMyYg=="
	keyFile := filepath.Join(t.TempDir(), "tsig.key")
	if err := os.WriteFile(keyFile, []byte("key \"dkimd\" {\n\talgorithm hmac-sha256;\n\tsecret \""+secret+"\";\n};\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.key")
	if err := os.WriteFile(bad, []byte("not base64 !!"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string, string) { return runData(t, dir, "", args...) }
	if c, _, errs := run("domain", "add", "own.example"); c != 0 {
		t.Fatal(errs)
	}
	if c, _, errs := run("domain", "set", "own.example", "--publish", "update", "--update-server", "127.0.0.1:5353", "--tsig-name", "dkimd", "--tsig-secret-file", bad); c != 1 || !strings.Contains(strings.ToLower(errs), "not a tsig secret") || strings.Contains(errs, "base64 !!") {
		t.Errorf("bad secret: exit %d %q", c, errs)
	}
	if c, _, errs := run("domain", "set", "own.example", "--publish", "update", "--update-server", "127.0.0.1:5353", "--tsig-name", "dkimd"); c != 1 || !strings.Contains(errs, "tsig_secret") {
		t.Errorf("no secret: exit %d %q", c, errs)
	}
	c, out, errs := run("domain", "set", "own.example", "--publish", "update", "--update-server", "127.0.0.1:5353", "--tsig-name", "dkimd", "--tsig-secret-file", keyFile)
	if c != 0 || !strings.Contains(out, "DNS UPDATE to 127.0.0.1:5353") {
		t.Fatalf("exit %d %q %q", c, out, errs)
	}
	_, js, _ := run("domain", "list", "--json")
	_, audit, _ := run("audit", "--json")
	db, err := os.ReadFile(filepath.Join(dir, "dkimd.db"))
	if err != nil {
		t.Fatal(err)
	}
	wal, _ := os.ReadFile(filepath.Join(dir, "dkimd.db-wal"))
	for where, s := range map[string]string{"output": out + errs, "JSON": js, "audit": audit, "database": string(db) + string(wal)} {
		if strings.Contains(s, secret) {
			t.Errorf("the TSIG secret is in the %s", where)
		}
	}
	if !strings.Contains(audit, "domain.publish") || !strings.Contains(audit, "tsig_secret=(new)") {
		t.Errorf("the audit log does not record the change: %s", audit)
	}
	if !strings.Contains(js, `"tsig_name": "dkimd"`) && !strings.Contains(js, `"tsig_name":"dkimd"`) {
		t.Errorf("domain list JSON: %s", js)
	}
}

// TestDelegatedKeySelectors: a delegated domain's keys live at s1 and s2
// only, the names behind its CNAMEs.
func TestDelegatedKeySelectors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	for _, args := range [][]string{
		{"domain", "add", "customer.example"},
		{"domain", "set", "customer.example", "--publish", "delegated", "--dns-zone", "dkim.provider.example"},
		{"key", "generate", "--domain", "customer.example", "--selector", "s1", "--algorithm", "ed25519"},
	} {
		if c, _, errs := runData(t, dir, "", args...); c != 0 {
			t.Fatalf("%v: %s", args, errs)
		}
	}
	c, _, errs := runData(t, dir, "", "key", "generate", "--domain", "customer.example", "--selector", "mail2026", "--algorithm", "ed25519")
	if c != 1 || !strings.Contains(errs, "behind its CNAMEs") {
		t.Errorf("a selector outside s1/s2: exit %d %q", c, errs)
	}
}
