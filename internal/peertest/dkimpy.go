package peertest

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Python is the interpreter dkimpy is run with. It is named in full because
// another python3 may come first on PATH without the dkim package.
const Python = "/usr/bin/python3"

//go:embed dkimpy.py
var dkimpyScript []byte

// DkimpyPeer runs dkimpy, the Python DKIM library, over messages.
type DkimpyPeer struct {
	t      testing.TB
	dir    string
	script string
	// Version is the dkimpy version, such as "1.1.4".
	Version string
	// Ed25519 reports that PyNaCl is there, which dkimpy needs for
	// ed25519-sha256.
	Ed25519 bool
}

// Dkimpy returns a dkimpy peer, or skips the test when dkimpy is not
// installed (fails it when DKIMD_REQUIRE_PEERS=1).
func Dkimpy(t testing.TB) *DkimpyPeer {
	t.Helper()
	if _, err := os.Stat(Python); err != nil {
		Unavailable(t, "dkimpy not found: %s is missing: apt-get install python3-dkim", Python)
	}
	const probe = `import dkim
try:
    import importlib.metadata
    v = importlib.metadata.version("dkimpy")
except Exception:
    v = "unknown"
try:
    import nacl.signing
    ed = "ed25519"
except ImportError:
    ed = "no-ed25519"
print(v, ed)`
	out, stderr, err := run(t, "", Python, "-I", "-c", probe)
	if err != nil {
		Unavailable(t, "dkimpy not found: %s cannot import dkim (%s): apt-get install python3-dkim",
			Python, lastLine(stderr))
	}
	f := strings.Fields(string(out))
	if len(f) != 2 {
		t.Fatalf("peertest: unexpected dkimpy probe output %q", out)
	}
	dir := t.TempDir()
	p := &DkimpyPeer{t: t, dir: dir, script: filepath.Join(dir, "dkimpy.py"), Version: f[0], Ed25519: f[1] == "ed25519"}
	writeFile(t, p.script, dkimpyScript, 0o600)
	return p
}

// Verify checks every DKIM-Signature field of msg, looking keys up in
// records (record name, such as "sel._domainkey.example.com", to TXT value).
func (p *DkimpyPeer) Verify(msg []byte, records map[string]string) Verdict {
	p.t.Helper()
	return p.VerifyAll([][]byte{msg}, records)[0]
}

// VerifyAll is Verify for a batch of messages, in one Python process.
func (p *DkimpyPeer) VerifyAll(msgs [][]byte, records map[string]string) []Verdict {
	p.t.Helper()
	paths := writeFiles(p.t, p.dir, msgs)
	jobs := make([]map[string]any, len(paths))
	for i, path := range paths {
		jobs[i] = map[string]any{"op": "verify", "msg": path}
	}
	answers := p.run(records, jobs)
	out := make([]Verdict, len(answers))
	for i, raw := range answers {
		var a struct {
			Error string `json:"error"`
			Sigs  []struct {
				Pass   bool   `json:"pass"`
				Reason string `json:"reason"`
				D      string `json:"d"`
				S      string `json:"s"`
				A      string `json:"a"`
			} `json:"sigs"`
		}
		p.decode(raw, &a)
		v := Verdict{Error: a.Error, Summary: fmt.Sprintf("dkimpy %s: %d signature(s)", p.Version, len(a.Sigs))}
		for _, s := range a.Sigs {
			v.Sigs = append(v.Sigs, Result{Pass: s.Pass, Reason: s.Reason, Domain: s.D, Selector: s.S, Algorithm: s.A})
		}
		out[i] = v
	}
	return out
}

// DkimpySign says how dkimpy is to sign.
type DkimpySign struct {
	Domain, Selector string
	// Key is an RSA or Ed25519 private key.
	Key crypto.Signer
	// Algorithm is a=; empty means rsa-sha256 or ed25519-sha256 by the type
	// of Key. rsa-sha1 is there to make signatures a verifier must refuse.
	Algorithm string
	// Canonicalization is c=, such as "relaxed/relaxed"; empty means
	// dkimpy's default, relaxed/simple.
	Canonicalization string
	// Headers are the fields to sign; nil means dkimpy's default choice.
	Headers []string
	// Length adds l=, the length of the canonical body signed.
	Length bool
}

// Sign has dkimpy sign msg and returns the message with the new
// DKIM-Signature field on top. An error is dkimpy refusing the message.
func (p *DkimpyPeer) Sign(msg []byte, opts DkimpySign) ([]byte, error) {
	p.t.Helper()
	out, errs := p.SignAll([][]byte{msg}, []DkimpySign{opts})
	return out[0], errs[0]
}

// SignAll is Sign for a batch of messages, in one Python process: msgs[i]
// is signed as opts[i] says. The errors are per message.
func (p *DkimpyPeer) SignAll(msgs [][]byte, opts []DkimpySign) ([][]byte, []error) {
	p.t.Helper()
	if len(opts) != len(msgs) {
		p.t.Fatalf("peertest: %d messages, %d sets of options", len(msgs), len(opts))
	}
	paths := writeFiles(p.t, p.dir, msgs)
	jobs := make([]map[string]any, len(paths))
	for i, path := range paths {
		o := opts[i]
		key, alg, err := dkimpyKey(o.Key)
		if err != nil {
			p.t.Fatalf("peertest: %v", err)
		}
		if o.Algorithm != "" {
			alg = o.Algorithm
		}
		canon := o.Canonicalization
		if canon == "" {
			canon = "relaxed/simple"
		}
		jobs[i] = map[string]any{
			"op": "sign", "msg": path, "selector": o.Selector, "domain": o.Domain,
			"key": key, "algorithm": alg, "canon": canon, "headers": o.Headers, "length": o.Length,
		}
	}
	answers := p.run(nil, jobs)
	signed := make([][]byte, len(answers))
	errs := make([]error, len(answers))
	for i, raw := range answers {
		var a struct {
			Error     string `json:"error"`
			Signature string `json:"signature"`
		}
		p.decode(raw, &a)
		if a.Error != "" {
			errs[i] = fmt.Errorf("dkimpy %s: %w: %s", p.Version, ErrRefused, a.Error)
			continue
		}
		field, err := base64.StdEncoding.DecodeString(a.Signature)
		if err != nil {
			p.t.Fatalf("peertest: dkimpy signature: %v", err)
		}
		signed[i] = Prepend(msgs[i], string(field))
	}
	return signed, errs
}

// run passes a job file to the driver and returns its answers, one per job.
func (p *DkimpyPeer) run(records map[string]string, jobs []map[string]any) []json.RawMessage {
	p.t.Helper()
	if records == nil {
		records = map[string]string{}
	}
	job, err := json.Marshal(map[string]any{"records": records, "jobs": jobs})
	if err != nil {
		p.t.Fatalf("peertest: %v", err)
	}
	jobFile, err := os.CreateTemp(p.dir, "job-*.json")
	if err != nil {
		p.t.Fatalf("peertest: %v", err)
	}
	jobFile.Close()
	writeFile(p.t, jobFile.Name(), job, 0o600)
	stdout, stderr, err := run(p.t, p.dir, Python, "-I", p.script, jobFile.Name())
	if err != nil {
		p.t.Fatalf("peertest: dkimpy driver failed: %v\n%s", err, stderr)
	}
	var answers []json.RawMessage
	if err := json.Unmarshal(stdout, &answers); err != nil {
		p.t.Fatalf("peertest: dkimpy driver output: %v\n%s", err, stderr)
	}
	if len(answers) != len(jobs) {
		p.t.Fatalf("peertest: dkimpy driver gave %d answers for %d jobs", len(answers), len(jobs))
	}
	return answers
}

func (p *DkimpyPeer) decode(raw json.RawMessage, v any) {
	p.t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		p.t.Fatalf("peertest: dkimpy driver answer %s: %v", raw, err)
	}
}

// dkimpyKey renders a private key the way dkimpy reads it, with a=.
func dkimpyKey(k crypto.Signer) (key, alg string, err error) {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		// dkimpy parses PKCS#1 RSAPrivateKey only, not PKCS#8.
		der := x509.MarshalPKCS1PrivateKey(k)
		return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: der})), "rsa-sha256", nil
	case ed25519.PrivateKey:
		return base64.StdEncoding.EncodeToString(k.Seed()), "ed25519-sha256", nil
	}
	return "", "", fmt.Errorf("dkimpy cannot sign with a %T", k)
}

// lastLine is the last line of a Python error: the exception itself.
func lastLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}
