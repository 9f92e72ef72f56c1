package cli

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dkimd/dkimd/internal/dkim"
	"github.com/dkimd/dkimd/internal/keys"
)

// TestKeyImport moves keys into dkimd without a new record: a key from
// opendkim-genkey (PKCS#1) when it is installed, else PKCS#1 made here,
// and a PKCS#8 Ed25519 key. The record dkimd prints is the one already
// published; the key then activates and signs as usual.
func TestKeyImport(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	ok := func(args ...string) string {
		t.Helper()
		code, out, errs := runData(t, dir, "", args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errs)
		}
		return out
	}
	fails := func(want string, args ...string) {
		t.Helper()
		if code, _, errs := runData(t, dir, "", args...); code == 0 || !strings.Contains(errs, want) {
			t.Errorf("%v: exit %d %q, want an error with %q", args, code, errs, want)
		}
	}
	ok("domain", "add", "example.com")
	kdir := t.TempDir()

	// An OpenDKIM site's key and the p= it published. opendkim-genkey
	// writes PKCS#1 or, built with OpenSSL 3, PKCS#8; a PKCS#1 key made
	// here is imported too.
	pOf := func(value string) string {
		return regexp.MustCompile(`p=([A-Za-z0-9+/=]+)`).FindStringSubmatch(value)[1]
	}
	pkcs1, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1File := filepath.Join(kdir, "pkcs1.private")
	if err := os.WriteFile(pkcs1File, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(pkcs1)}), 0o600); err != nil {
		t.Fatal(err)
	}
	pkcs1Rec, err := dkim.Publish("pkcs1", "example.com", pkcs1.Public())
	if err != nil {
		t.Fatal(err)
	}
	ok("key", "import", "--domain", "example.com", "--selector", "pkcs1", "--key", pkcs1File)
	if value := ok("key", "record", "--domain", "example.com", "--selector", "pkcs1", "--format", "value"); !strings.Contains(value, "p="+pOf(pkcs1Rec.Value)) {
		t.Fatalf("PKCS#1 record after import %q does not carry the published p=", value)
	}
	rsaFile, publishedP := pkcs1File, pOf(pkcs1Rec.Value)
	if _, err := exec.LookPath("opendkim-genkey"); err == nil {
		if out, err := exec.Command("opendkim-genkey", "-b", "2048", "-d", "example.com", "-s", "legacy", "-D", kdir).CombinedOutput(); err != nil {
			t.Fatalf("opendkim-genkey: %v: %s", err, out)
		}
		rsaFile = filepath.Join(kdir, "legacy.private")
		txt, err := os.ReadFile(filepath.Join(kdir, "legacy.txt"))
		if err != nil {
			t.Fatal(err)
		}
		// The value is split into quoted strings: join them.
		var joined strings.Builder
		for _, m := range regexp.MustCompile(`"([^"]*)"`).FindAllStringSubmatch(string(txt), -1) {
			joined.WriteString(m[1])
		}
		publishedP = pOf(joined.String())
	} else {
		t.Log("opendkim-genkey not installed (opendkim-tools): a PKCS#1 key made here stands in")
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		rsaFile = filepath.Join(kdir, "legacy.private")
		if err := os.WriteFile(rsaFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), 0o600); err != nil {
			t.Fatal(err)
		}
		rec, err := dkim.Publish("legacy", "example.com", k.Public())
		if err != nil {
			t.Fatal(err)
		}
		publishedP = pOf(rec.Value)
	}
	out := ok("key", "import", "--domain", "example.com", "--selector", "legacy", "--key", rsaFile)
	if !strings.Contains(out, "pending") {
		t.Errorf("key import output:\n%s", out)
	}
	value := ok("key", "record", "--domain", "example.com", "--selector", "legacy", "--format", "value")
	if !strings.Contains(value, "p="+publishedP) {
		t.Fatalf("record after import %q does not carry the published p=", value)
	}

	// PKCS#8 Ed25519.
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pemEd, err := keys.MarshalPEM(ed)
	if err != nil {
		t.Fatal(err)
	}
	edFile := filepath.Join(kdir, "ed.pem")
	if err := os.WriteFile(edFile, pemEd, 0o600); err != nil {
		t.Fatal(err)
	}
	ok("key", "import", "--domain", "example.com", "--selector", "ed1", "--key", edFile)
	edRec, err := dkim.Publish("ed1", "example.com", ed.Public())
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(ok("key", "record", "--domain", "example.com", "--selector", "ed1", "--format", "value")); got != edRec.Value {
		t.Fatalf("Ed25519 record %q, want %q", got, edRec.Value)
	}

	fails("already used", "key", "import", "--domain", "example.com", "--selector", "legacy", "--key", rsaFile)
	junk := filepath.Join(kdir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	fails("no PEM block", "key", "import", "--domain", "example.com", "--selector", "x1", "--key", junk)
	fails("not found", "key", "import", "--domain", "unknown.example", "--selector", "x1", "--key", rsaFile)

	// The imported key signs like any other once active.
	ok("key", "activate", "--domain", "example.com", "--selector", "legacy", "--force")
	ok("user", "add", "--domain", "example.com", "--name", "app", "--ip", "192.0.2.1")
	if out := ok("policy", "explain", "--client-ip", "192.0.2.1", "--from", "a@example.com"); !strings.Contains(out, "s=legacy") {
		t.Errorf("imported key not chosen: %s", out)
	}
	audit := ok("audit", "--action", "key.import")
	if !strings.Contains(audit, "legacy") || !strings.Contains(audit, "ed1") {
		t.Errorf("imports not audited:\n%s", audit)
	}
	if key, _ := os.ReadFile(rsaFile); strings.Contains(audit, string(key[40:80])) {
		t.Error("key material in the audit log")
	}
}
