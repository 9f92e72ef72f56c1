package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runData calls Main with DKIMD_DATA set to dir.
func runData(t *testing.T, dir, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Getenv: func(k string) string {
		if k == "DKIMD_DATA" {
			return dir
		}
		return ""
	}}
	code := Main(context.Background(), append([]string{"dkimd"}, args...), e)
	return code, out.String(), errb.String()
}

// TestAdminWalkThrough is the README's service walk-through on the command
// line: domain, key, record, users with and without a selector.
func TestAdminWalkThrough(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	ok := mustData(t, dir)
	fails := func(code int, want string, stdin string, args ...string) {
		t.Helper()
		c, _, errs := runData(t, dir, stdin, args...)
		if c != code || !strings.Contains(errs, want) {
			t.Errorf("%v: exit %d %q, want %d and %q", args, c, errs, code, want)
		}
	}
	ok("", "domain", "add", "Example.COM")
	ok("", "domain", "add", "--auto-activate", "other.example") // flag after the verb, before the argument
	fails(1, "already exists", "", "domain", "add", "example.com")
	fails(1, "invalid", "", "domain", "add", "not a domain")
	fails(2, "usage", "", "domain", "frob")

	// Oversigning: the default, a choice kept and shown, a bad list refused.
	if out := ok("", "domain", "list"); !strings.Contains(out, "OVERSIGN") || !strings.Contains(strings.Join(strings.Fields(out), " "), "example.com false default") {
		t.Errorf("domain list:\n%s", out)
	}
	if out := ok("", "domain", "set", "example.com", "--oversign", "from-only"); out != "example.com: auto-activate false, oversign From\n" {
		t.Errorf("domain set --oversign from-only: %q", out)
	}
	var dj struct {
		Oversign     string `json:"oversign"`
		AutoActivate bool   `json:"auto_activate"`
	}
	out := ok("", "domain", "set", "--json", "example.com", "--oversign", "From, Subject,List-Id", "--auto-activate=true")
	if err := json.Unmarshal([]byte(out), &dj); err != nil || dj.Oversign != "From,Subject,List-Id" || !dj.AutoActivate {
		t.Errorf("domain set --json: %s", out)
	}
	fails(1, "invalid oversign", "", "domain", "set", "example.com", "--oversign", "Sub ject")
	fails(1, "invalid oversign", "", "domain", "add", "third.example", "--oversign", "a:b")
	fails(2, "usage", "", "domain", "set", "example.com")
	if out := ok("", "domain", "list"); !strings.Contains(out, "From,Subject,List-Id") {
		t.Errorf("a refused set changed the domain:\n%s", out)
	}
	ok("", "domain", "set", "example.com", "--oversign", "default", "--auto-activate=false")

	out = ok("", "key", "generate", "--domain", "example.com", "--selector", "mail2026", "--algorithm", "ed25519")
	if !strings.Contains(out, "mail2026._domainkey.example.com") || !strings.Contains(out, "pending") {
		t.Errorf("key generate output:\n%s", out)
	}
	fails(1, "already", "", "key", "generate", "--domain", "example.com", "--selector", "mail2026", "--algorithm", "ed25519")
	fails(1, "bits", "", "key", "generate", "--domain", "example.com", "--selector", "x", "--bits", "1000")
	fails(1, "not found", "", "key", "generate", "--domain", "unknown.example", "--selector", "x", "--algorithm", "ed25519")
	fails(1, "selector", "", "key", "generate", "--domain", "example.com", "--selector", "bad_selector!", "--algorithm", "ed25519")

	var rec struct{ Name, Value, Zone string }
	if err := json.Unmarshal([]byte(ok("", "key", "record", "--json", "--domain", "example.com", "--selector", "mail2026")), &rec); err != nil || !strings.HasPrefix(rec.Value, "v=DKIM1; k=ed25519; p=") {
		t.Errorf("key record --json: %+v %v", rec, err)
	}
	// No DNS checker on the command line: activation needs --force.
	fails(1, "not published", "", "key", "activate", "--domain", "example.com", "--selector", "mail2026")
	ok("", "key", "activate", "--domain", "example.com", "--selector", "mail2026", "--force")
	fails(1, "cannot become", "", "key", "activate", "--domain", "example.com", "--selector", "mail2026", "--force")

	ok("correct horse battery\n", "user", "add", "--domain", "example.com", "--name", "alice", "--password-stdin", "--dkim-selector", "mail2026")
	fails(1, "not available", "correct horse battery\n", "user", "add", "--domain", "other.example", "--name", "ALICE", "--password-stdin")
	fails(1, "re-authenticating", "", "user", "add", "--domain", "example.com", "--name", "relay", "--reauth", "--ip", "192.0.2.0/24", "--dkim-selector", "mail2026")
	ok("", "user", "add", "--domain", "example.com", "--name", "relay", "--reauth", "--ip", "192.0.2.0/24")
	// Every address is an open relay: only with the explicit override.
	fails(1, "every address", "", "user", "add", "--domain", "example.com", "--name", "open", "--ip", "::/0")
	fails(1, "another domain", "", "user", "add", "--domain", "other.example", "--name", "inside", "--ip", "192.0.2.9")
	ok("", "user", "add", "--domain", "example.com", "--name", "open", "--ip", "::/0", "--allow-any-network")
	ok("", "user", "remove", "open")
	fails(1, "re-authenticating", "", "user", "set", "relay", "--dkim-selector", "mail2026")
	fails(1, "No pending or active key", "", "user", "set", "alice", "--dkim-selector", "nope")
	fails(1, "12 characters", "short\n", "user", "add", "--domain", "example.com", "--name", "bob", "--password-stdin")
	fails(2, "authenticates", "", "user", "add", "--domain", "example.com", "--name", "bob")
	fails(1, "networks", "", "user", "add", "--domain", "example.com", "--name", "bob", "--ip", "300.1.1.1")
	// The signing rule, asked without sending mail: the relay's verdict.
	for _, c := range []struct{ user, from, want string }{
		{"alice", "Alice <alice@example.com>", "signed as d=example.com (from_domain)"},
		// Not her domains: the relay refuses such mail (550 5.7.1), and so
		// does the explainer (issue 12.1).
		{"alice", "x@other.example", "refused (from_not_permitted): user alice may not send mail from other.example"},
		{"alice", "x@victim.example", "refused (from_not_permitted)"},
		{"relay", "someone@example.com", "DKIM signing is unavailable for re-authenticating users"},
		{"alice", "a@example.com, b@example.com", "refused (from_not_permitted)"},
	} {
		if out := ok("", "policy", "explain", "--user", c.user, "--from", c.from); !strings.Contains(out, c.want) {
			t.Errorf("policy explain %s %q: %s, want %q", c.user, c.from, out, c.want)
		}
	}
	// Allowed foreign mail: her selector signs as her own domain, never as theirs.
	ok("", "user", "set", "alice", "--allow-foreign-from")
	for _, c := range []struct{ user, from, want string }{
		{"alice", "x@other.example", "signed as d=example.com (user_selector)"},
		{"alice", "a@example.com, b@example.com", "not signed (from_multiple)"},
	} {
		if out := ok("", "policy", "explain", "--user", c.user, "--from", c.from); !strings.Contains(out, c.want) {
			t.Errorf("policy explain %s %q: %s, want %q", c.user, c.from, out, c.want)
		}
	}
	// The same question as the milter asks it: by SASL login or client
	// address, and listener.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--auth-user", "Alice"}, "signed as d=example.com (from_domain)"},
		{[]string{"--auth-user", "mallory"}, `not signed (no_user): SASL login "mallory" is no dkimd outgoing user`},
		{[]string{"--client-ip", "192.0.2.7"}, "not signed (reauth_user)"},
		{[]string{"--client-ip", "203.0.113.1"}, "not signed (no_user): no SASL login, and client address 203.0.113.1 is no outgoing user's"},
		{[]string{"--auth-user", "alice", "--daemon-name", "smtpd", "--trusted-daemon", "ORIGINATING"}, "not signed (untrusted_daemon)"},
		{[]string{"--auth-user", "alice", "--daemon-name", "ORIGINATING", "--trusted-daemon", "ORIGINATING"}, "signed as d=example.com (from_domain)"},
	} {
		args := append([]string{"policy", "explain", "--from", "Alice <alice@example.com>"}, c.args...)
		if out := ok("", args...); !strings.Contains(out, c.want) {
			t.Errorf("policy explain %v: %s, want %q", c.args, out, c.want)
		}
	}
	fails(2, "not both", "", "policy", "explain", "--user", "alice", "--auth-user", "alice", "--from", "a@example.com")
	ok("", "user", "set", "alice", "--dkim-selector", "")
	if out := ok("", "policy", "explain", "--user", "alice", "--from", "x@other.example"); !strings.Contains(out, "not signed (no_key)") {
		t.Errorf("without a selector, another domain's From: %s", out)
	}
	ok("", "user", "set", "alice", "--allow-foreign-from=false")

	var users []map[string]any
	if err := json.Unmarshal([]byte(ok("", "user", "list", "--json")), &users); err != nil || len(users) != 2 {
		t.Fatalf("user list: %v %v", users, err)
	}
	for _, u := range users {
		if _, leaked := u["password_hash"]; leaked {
			t.Error("user list shows the password hash")
		}
	}
	fails(1, "not found", "", "account", "remove", "nobody-yet")
	ok("", "account", "add", "root", "--role", "admin")
	fails(1, "last admin", "", "account", "remove", "root")
	tok := strings.TrimSpace(ok("", "account", "token", "root", "--label", "ci"))
	if !strings.HasPrefix(tok, "dkimd_") {
		t.Errorf("token %q", tok)
	}
	audit := ok("", "audit", "--domain", "example.com")
	for _, want := range []string{"domain.add", "key.create", "key.state", "user.add"} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit lacks %s:\n%s", want, audit)
		}
	}
	if strings.Contains(audit, "correct horse") {
		t.Error("audit log holds a password")
	}
	// No serve runs: the queue commands open the spool themselves.
	if out := ok("", "queue", "list"); !strings.HasPrefix(out, "ID") {
		t.Errorf("queue list on an idle data directory: %q", out)
	}
	fails(1, "not found", "", "queue", "show", "nosuchid")
	// The data directory is private.
	for _, name := range []string{"", "master.key", "dkimd.db"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil || st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: mode %v %v", name, st.Mode(), err)
		}
	}
}
