package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dkimd/dkimd/internal/keys"
)

// run calls Main in-process with the given standard input.
func run(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	code = Main(context.Background(), append([]string{"dkimd"}, args...), e)
	return code, out.String(), errb.String()
}

const msg = "From: Alice <alice@example.com>\r\nTo: bob@example.net\r\nSubject: Hi\r\n\r\nHello\r\n"

// TestWalkThrough is the README's walk-through: keygen, record, sign, verify.
func TestWalkThrough(t *testing.T) {
	dir := t.TempDir()
	rsaKey := filepath.Join(dir, "rsa.pem")
	edKey := filepath.Join(dir, "ed.pem")
	if code, out, errs := run(t, "", "keygen", "--domain", "Example.COM.", "--selector", "s1", "--out", rsaKey); code != 0 || !strings.Contains(out, "s1._domainkey.example.com") {
		t.Fatalf("keygen: %d %s %s", code, out, errs)
	}
	st, err := os.Stat(rsaKey)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", st.Mode(), err)
	}
	code, out, _ := run(t, "", "keygen", "--json", "--domain", "example.com", "--selector", "e1", "--algorithm", "ed25519", "--out", edKey)
	var kg map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &kg) != nil || kg["name"] != "e1._domainkey.example.com" || kg["private_key"] != nil {
		t.Fatalf("keygen --json: %d %s", code, out)
	}
	if strings.Contains(out, "PRIVATE") {
		t.Fatal("keygen printed private key material")
	}
	txt := map[string]string{}
	for sel, key := range map[string]string{"s1": rsaKey, "e1": edKey} {
		code, out, errs := run(t, "", "record", "--key", key, "--domain", "example.com", "--selector", sel, "--format", "zone")
		if code != 0 {
			t.Fatalf("record: %s", errs)
		}
		f := filepath.Join(dir, sel+".txt")
		os.WriteFile(f, []byte(out), 0o644)
		txt[sel] = sel + "._domainkey.example.com=" + f
	}
	code, signed, errs := run(t, msg, "sign", "--key", rsaKey, "--selector", "s1", "--key", edKey, "--selector", "e1", "--domain", "example.com")
	if code != 0 || strings.Count(signed, "DKIM-Signature:") != 2 || !strings.HasSuffix(signed, msg) {
		t.Fatalf("sign: %d %q %s", code, signed, errs)
	}
	code, out, errs = run(t, signed, "verify", "--txt", txt["s1"], "--txt", txt["e1"], "--authserv-id", "mx.example.net")
	if code != 0 || strings.Count("\n"+out, "\npass ") != 2 || !strings.Contains(out, "Authentication-Results: mx.example.net;") {
		t.Fatalf("verify: %d\n%s%s", code, out, errs)
	}
	// By default every signed field is oversigned (RFC 6376 §8.15), so an
	// added Subject breaks the signature; with from-only it does not.
	for _, tt := range []struct {
		oversign string
		h        string
		code     int
	}{
		{"default", "h=from:from:date:subject:subject:", 1},
		{"from-only", "h=from:from:subject:to;", 0},
	} {
		code, one, errs := run(t, msg, "sign", "--key", rsaKey, "--selector", "s1", "--domain", "example.com", "--oversign", tt.oversign)
		if code != 0 || !strings.Contains(strings.ReplaceAll(one, "\r\n ", ""), tt.h) {
			t.Fatalf("sign --oversign %s: %d, want %s in\n%s%s", tt.oversign, code, tt.h, one, errs)
		}
		added := strings.Replace(one, "Subject: Hi", "Subject: Urgent\r\nSubject: Hi", 1)
		if code, out, _ := run(t, added, "verify", "--txt", txt["s1"]); code != tt.code {
			t.Errorf("--oversign %s, Subject added: verify exit %d, want %d\n%s", tt.oversign, code, tt.code, out)
		}
	}
	tampered := strings.Replace(signed, "Hello", "Hellx", 1)
	code, out, _ = run(t, tampered, "verify", "--json", "--txt", txt["s1"], "--txt", txt["e1"])
	var vr struct {
		Pass       bool `json:"pass"`
		Signatures []struct{ Status, Reason string }
	}
	if code != 1 || json.Unmarshal([]byte(out), &vr) != nil || vr.Pass || len(vr.Signatures) != 2 || vr.Signatures[0].Status != "fail" {
		t.Fatalf("verify tampered: %d %s", code, out)
	}
	// LF line ends in, LF line ends out, and still verifiable.
	code, signedLF, _ := run(t, strings.ReplaceAll(msg, "\r\n", "\n"), "sign", "--key", rsaKey, "--selector", "s1", "--domain", "example.com")
	if code != 0 || strings.Contains(signedLF, "\r") {
		t.Fatalf("sign LF: %d %q", code, signedLF)
	}
	if code, out, _ := run(t, signedLF, "verify", "--txt", txt["s1"]); code != 0 {
		t.Fatalf("verify LF: %s", out)
	}
}

// TestBadInput: every kind of bad input gives one line on stderr, a non-zero
// exit, no panic, and nothing on stdout.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.pem")
	if code, _, errs := run(t, "", "keygen", "--domain", "example.com", "--selector", "s", "--algorithm", "ed25519", "--out", good); code != 0 {
		t.Fatal(errs)
	}
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600)
	notPEM := filepath.Join(dir, "text.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	badTXT := filepath.Join(dir, "bad.txt")
	os.WriteFile(badTXT, []byte(`"v=DKIM1; p=abc`), 0o600)
	conf := func(name, text string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(text), 0o600)
		return p
	}
	never := filepath.Join(dir, "never") // serve must stop before opening data
	tests := []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string // in stderr
	}{
		{"no command", "", nil, 2, ""},
		{"unknown command", "", []string{"frobnicate"}, 2, "unknown command"},
		{"keygen unknown flag", "", []string{"keygen", "--nope"}, 2, "flag provided but not defined"},
		{"keygen missing domain", "", []string{"keygen", "--selector", "s"}, 2, "--domain is required"},
		{"keygen bad bits", "", []string{"keygen", "--domain", "example.com", "--selector", "s", "--bits", "512", "--out", filepath.Join(dir, "x.pem")}, 2, "unsupported key length"},
		{"keygen bits for ed25519", "", []string{"keygen", "--domain", "example.com", "--selector", "s", "--algorithm", "ed25519", "--bits", "2048", "--out", filepath.Join(dir, "y.pem")}, 2, "fixed length"},
		{"keygen unknown algorithm", "", []string{"keygen", "--domain", "example.com", "--selector", "s", "--algorithm", "dsa"}, 2, "unknown algorithm"},
		{"keygen bad domain", "", []string{"keygen", "--domain", "exa mple.com", "--selector", "s"}, 2, "not a valid domain"},
		{"keygen bad selector", "", []string{"keygen", "--domain", "example.com", "--selector", "-s"}, 2, "--selector"},
		{"keygen over existing file", "", []string{"keygen", "--domain", "example.com", "--selector", "s", "--out", good}, 1, "already exists"},
		{"keygen into missing dir", "", []string{"keygen", "--domain", "example.com", "--selector", "s", "--algorithm", "ed25519", "--out", filepath.Join(dir, "no", "k.pem")}, 1, "no such file"},
		{"record missing key", "", []string{"record", "--key", filepath.Join(dir, "missing.pem"), "--domain", "example.com", "--selector", "s"}, 1, "no such file"},
		{"record garbage key", "", []string{"record", "--key", garbage, "--domain", "example.com", "--selector", "s"}, 1, "malformed PRIVATE KEY"},
		{"record not PEM", "", []string{"record", "--key", notPEM, "--domain", "example.com", "--selector", "s"}, 1, "no PEM block"},
		{"record bad format", "", []string{"record", "--key", good, "--domain", "example.com", "--selector", "s", "--format", "xml"}, 2, "want value, zone or json"},
		{"sign no key", msg, []string{"sign", "--domain", "example.com", "--selector", "s"}, 2, "--key is required"},
		{"sign selectors mismatch", msg, []string{"sign", "--key", good, "--domain", "example.com"}, 2, "one --selector per --key"},
		{"sign bad oversign", msg, []string{"sign", "--key", good, "--domain", "example.com", "--selector", "s", "--oversign", "From,Sub;ject"}, 2, "--oversign"},
		{"sign garbage key", msg, []string{"sign", "--key", garbage, "--domain", "example.com", "--selector", "s"}, 1, "malformed"},
		{"sign bad canonicalization", msg, []string{"sign", "--key", good, "--domain", "example.com", "--selector", "s", "--canonicalization", "loose/loose"}, 2, "canonicalization"},
		{"sign no From", "To: x@example.net\r\n\r\nhi\r\n", []string{"sign", "--key", good, "--domain", "example.com", "--selector", "s"}, 1, "exactly one From"},
		{"sign two From", "From: a@example.com\r\nFrom: b@example.com\r\n\r\nhi\r\n", []string{"sign", "--key", good, "--domain", "example.com", "--selector", "s"}, 1, "exactly one From"},
		{"sign mbox From line", "From alice@example.com Sun Nov 29\r\nFrom: a@example.com\r\n\r\nhi\r\n", []string{"sign", "--key", good, "--domain", "example.com", "--selector", "s"}, 1, "not a header field"},
		{"sign empty input", "", []string{"sign", "--key", good, "--domain", "example.com", "--selector", "s"}, 1, "exactly one From"},
		{"sign binary garbage", "\x00\x01\x02\xff", []string{"sign", "--key", good, "--domain", "example.com", "--selector", "s"}, 1, "not a header field"},
		{"verify bad --txt", msg, []string{"verify", "--txt", "nofile"}, 2, "want NAME=FILE"},
		{"verify unreadable --txt", msg, []string{"verify", "--txt", "a=" + filepath.Join(dir, "missing")}, 1, "no such file"},
		{"verify unterminated --txt", msg, []string{"verify", "--txt", "a=" + badTXT}, 1, "unterminated"},
		{"verify bad resolver", msg, []string{"verify", "--resolver", "nonsense"}, 2, "HOST:PORT"},
		{"verify malformed message", "no colon here\r\n\r\n", []string{"verify"}, 1, "not a header field"},
		{"verify no signature", msg, []string{"verify"}, 1, ""},
		{"bench without sign", "", []string{"bench"}, 2, "bench sign"},
		{"bench bad size", "", []string{"bench", "sign", "--size", "10"}, 2, "--size"},
		{"bench bad --openssl", "", []string{"bench", "sign", "--openssl", "maybe"}, 2, "want auto, on or off"},
		{"serve bad --openssl", "", []string{"serve", "--openssl", "yes", "--data", never}, 2, "want auto, on or off"},
		{"serve bad --milter-on-error", "", []string{"serve", "--milter-on-error", "ignore", "--data", never}, 2, "want tempfail or accept"},
		{"serve bad --milter-socket-mode", "", []string{"serve", "--milter-socket-mode", "rw", "--data", never}, 2, "octal mode"},
		{"serve config missing", "", []string{"serve", "--config", filepath.Join(dir, "no.conf"), "--data", never}, 1, "no such file"},
		{"serve config unknown setting", "", []string{"serve", "--config", conf("u.conf", "# ok\nlisten-relay = :2525\nlisten-smtp = :25\n"), "--data", never}, 2, "u.conf:3: unknown setting \"listen-smtp\""},
		{"serve config no equals", "", []string{"serve", "--config", conf("n.conf", "listen-relay :2525\n"), "--data", never}, 2, "n.conf:1: want name = value"},
		{"serve config bad value", "", []string{"serve", "--config", conf("v.conf", "log-format = xml\n"), "--data", never}, 2, "want text or json"},
		{"serve config bad flag value", "", []string{"serve", "--config", conf("b.conf", "failover = maybe\n"), "--data", never}, 2, "b.conf:1: failover"},
		{"serve config set twice", "", []string{"serve", "--config", conf("t.conf", "hostname = a.test\nhostname = b.test\n"), "--data", never}, 2, "t.conf:2: hostname is set twice"},
		{"serve config names config", "", []string{"serve", "--config", conf("c.conf", "config = other.conf\n"), "--data", never}, 2, "unknown setting \"config\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := run(t, tt.stdin, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, errs)
			}
			if !strings.Contains(errs, tt.want) {
				t.Errorf("stderr %q does not say %q", errs, tt.want)
			}
			if strings.Count(strings.TrimSpace(errs), "\n") > 0 {
				t.Errorf("stderr is more than one line: %q", errs)
			}
			if tt.args != nil && tt.args[0] != "verify" && out != "" {
				t.Errorf("stdout not empty on error: %q", out)
			}
		})
	}
	// Nothing half-written: only the keys made above are in the folder.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		// A dot file is a temporary file of datadir.CreateFileAtomic.
		if strings.HasPrefix(e.Name(), ".") || e.Name() == "x.pem" || e.Name() == "y.pem" {
			t.Errorf("left behind %s", e.Name())
		}
	}
}

func TestHelp(t *testing.T) {
	if code, out, _ := run(t, "", "help"); code != 0 || !strings.Contains(out, "keygen") {
		t.Errorf("help: %d %s", code, out)
	}
	if code, out, _ := run(t, "", "sign", "-h"); code != 0 || !strings.Contains(out, "-selector") {
		t.Errorf("sign -h: %d %s", code, out)
	}
}

func TestFlagsAfterPositional(t *testing.T) {
	fs := newFlags("x", &Env{})
	a := fs.String("a", "", "")
	b := fs.Bool("b", false, "")
	pos, err := parseFlags(fs, &Env{}, []string{"one", "--a", "x", "two", "-b", "--", "--three"})
	if err != nil || *a != "x" || !*b || strings.Join(pos, ",") != "one,two,--three" {
		t.Errorf("got %v %q %v %v", pos, *a, *b, err)
	}
}

func TestReadTXTFile(t *testing.T) {
	dir := t.TempDir()
	for in, want := range map[string]string{
		"v=DKIM1; k=rsa; p=AB\n":                                  "v=DKIM1; k=rsa; p=AB",
		`s._domainkey.example.com. IN TXT ( "v=DKIM1; p=A" "B" )`: "v=DKIM1; p=AB",
		`"a\"b" "c\\d" "\065"`:                                    `a"bc\dA`,
	} {
		f := filepath.Join(dir, "t")
		os.WriteFile(f, []byte(in), 0o644)
		got, err := readTXTFile(f)
		if err != nil || got != want {
			t.Errorf("readTXTFile(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// bench sign says which library made its RSA signatures, and --openssl
// chooses it.
func TestBenchSignRSALibrary(t *testing.T) {
	for _, tc := range []struct{ mode, want string }{
		{"off", "go crypto/rsa"},
		{"on", "OpenSSL 3"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			if tc.mode == "on" {
				if _, err := keys.LoadOpenSSL(); err != nil && os.Getenv("DKIMD_REQUIRE_PEERS") != "1" {
					t.Skipf("OpenSSL not loadable here: %v", err)
				}
			}
			code, out, errs := run(t, "", "bench", "sign", "--bits", "1024", "--duration", "40ms", "--json", "--openssl", tc.mode)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			var r benchResult
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(r.RSALibrary, tc.want) || r.Messages == 0 || r.RawSignPerSecond <= 0 {
				t.Errorf("--openssl %s: %+v, want rsa_library %q and some signatures", tc.mode, r, tc.want)
			}
		})
	}
}
