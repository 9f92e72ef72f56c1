package cli

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestKeyLifecycleCommands walks a rotation on the command line: rotate,
// status, activate (which retires the key replaced), revoke (refused until
// safe, then showing the empty p= record) and history.
func TestKeyLifecycleCommands(t *testing.T) {
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
	ok("domain", "add", "example.com")
	ok("key", "generate", "--domain", "example.com", "--selector", "first", "--algorithm", "ed25519")
	ok("key", "activate", "--domain", "example.com", "--selector", "first", "--force")

	var rot struct {
		Key struct {
			Selector  string `json:"selector"`
			Algorithm string `json:"algorithm"`
			State     string `json:"state"`
			Replaces  int64  `json:"replaces"`
		} `json:"key"`
		Replaces struct {
			ID       int64  `json:"id"`
			Selector string `json:"selector"`
		} `json:"replaces"`
		Record struct{ Value string } `json:"record"`
	}
	if err := json.Unmarshal([]byte(ok("key", "rotate", "--domain", "example.com", "--json")), &rot); err != nil {
		t.Fatal(err)
	}
	sel := rot.Key.Selector
	if want := "s" + time.Now().UTC().Format("200601"); sel != want || rot.Key.Algorithm != "ed25519" || rot.Key.State != "pending" ||
		rot.Replaces.Selector != "first" || rot.Key.Replaces != rot.Replaces.ID || !strings.HasPrefix(rot.Record.Value, "v=DKIM1; k=ed25519; p=") {
		t.Fatalf("key rotate: %+v, want selector %s replacing first", rot, want)
	}
	fails(1, "being replaced already", "key", "rotate", "--domain", "example.com")
	fails(2, "--domain is required", "key", "rotate")
	fails(2, "max-age", "key", "status", "--domain", "example.com", "--max-age", "soon")

	var sts []struct {
		Key struct {
			Selector string `json:"selector"`
			State    string `json:"state"`
		} `json:"key"`
		Age          int64  `json:"age"`
		SafeToRevoke string `json:"safe_to_revoke"`
	}
	if err := json.Unmarshal([]byte(ok("key", "status", "--domain", "example.com", "--json")), &sts); err != nil || len(sts) != 2 {
		t.Fatalf("key status --json: %+v %v", sts, err)
	}

	out := ok("key", "activate", "--domain", "example.com", "--selector", sel, "--force")
	if !strings.Contains(out, "key "+sel+" of example.com is now active") || !strings.Contains(out, "key first of example.com is now retired") ||
		!strings.Contains(out, "first, which "+sel+" replaces, no longer signs; keep its record published until it is safe to revoke (") {
		t.Fatalf("key activate of the rotation:\n%s", out)
	}
	out = ok("key", "status", "example.com", "--signature-lifetime", "1d", "--queue-lifetime", "12h")
	if !strings.Contains(out, "SAFE TO REVOKE") || !strings.Contains(out, "retired") {
		t.Fatalf("key status:\n%s", out)
	}
	fails(1, "too early", "key", "revoke", "--domain", "example.com", "--selector", "first")
	fails(1, "still signs", "key", "revoke", "--domain", "example.com", "--selector", sel)
	out = ok("key", "revoke", "--domain", "example.com", "--selector", "first", "--force")
	if !strings.Contains(out, "v=DKIM1; k=ed25519; p=\n") || !strings.Contains(out, "first._domainkey") {
		t.Fatalf("key revoke does not show the empty p= record:\n%s", out)
	}
	if out := ok("key", "history", "--domain", "example.com", "--selector", sel, "--json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("key history: %s", out)
	}
	audit := ok("audit", "--domain", "example.com")
	for _, want := range []string{"key.rotate", "active → retired (replaced by " + sel} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit lacks %q:\n%s", want, audit)
		}
	}
}

// TestKeyDeleteCommand: "key delete" removes a pending key that never
// signed and frees its selector; an active key is refused (exit 1) with
// the advice to revoke it.
func TestKeyDeleteCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	ok := func(args ...string) string {
		t.Helper()
		code, out, errs := runData(t, dir, "", args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errs)
		}
		return out
	}
	// No DNS answers on port 1: the history alone decides.
	const noDNS = "127.0.0.1:1"
	ok("domain", "add", "example.com")
	ok("key", "generate", "--domain", "example.com", "--selector", "oops", "--algorithm", "ed25519")
	if out := ok("key", "delete", "--domain", "example.com", "--selector", "oops", "--resolver", noDNS); !strings.Contains(out, "deleted") {
		t.Errorf("key delete said %q", out)
	}
	if out := ok("key", "list", "--domain", "example.com"); strings.Contains(out, "oops") {
		t.Errorf("the deleted key is still listed:\n%s", out)
	}
	ok("key", "generate", "--domain", "example.com", "--selector", "oops", "--algorithm", "ed25519")
	ok("key", "activate", "--domain", "example.com", "--selector", "oops", "--force")
	code, _, errs := runData(t, dir, "", "key", "delete", "--domain", "example.com", "--selector", "oops", "--resolver", noDNS)
	if code != 1 || !strings.Contains(errs, "revoke") {
		t.Errorf("key delete of an active key: exit %d %q, want 1 and advice to revoke", code, errs)
	}
	if out := ok("audit", "--domain", "example.com"); !strings.Contains(out, "key.delete") {
		t.Errorf("the audit log lacks key.delete:\n%s", out)
	}
}
