package peertest

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// OpenDKIMPeer runs the OpenDKIM filter in test mode (opendkim -t) over
// message files.
type OpenDKIMPeer struct {
	t   testing.TB
	dir string
	bin string
	// Version is the filter version, such as "2.11.0".
	Version string
	// Algorithms are the signing algorithms opendkim -V lists, such as
	// rsa-sha1, rsa-sha256 and ed25519-sha256.
	Algorithms []string
}

// OpenDKIM returns an OpenDKIM peer, or skips the test when opendkim is not
// installed (fails it when DKIMD_REQUIRE_PEERS=1).
func OpenDKIM(t testing.TB) *OpenDKIMPeer {
	t.Helper()
	bin, err := exec.LookPath("opendkim")
	if err != nil {
		// Debian installs it in /usr/sbin, which a user's PATH may lack.
		bin = "/usr/sbin/opendkim"
		if _, err := os.Stat(bin); err != nil {
			Unavailable(t, "opendkim not found: apt-get install opendkim opendkim-tools")
		}
	}
	out, stderr, err := run(t, "", bin, "-V")
	if err != nil {
		Unavailable(t, "opendkim not usable: %s -V: %v %s", bin, err, stderr)
	}
	p := &OpenDKIMPeer{t: t, dir: t.TempDir(), bin: bin}
	p.Version, p.Algorithms = parseOpenDKIMVersion(string(out))
	if p.Version == "" {
		t.Fatalf("peertest: cannot read the version from opendkim -V:\n%s", out)
	}
	return p
}

// Supports reports whether this OpenDKIM signs and verifies an algorithm
// such as "ed25519-sha256" (OpenDKIM 2.11 and later, when built for it).
func (p *OpenDKIMPeer) Supports(alg string) bool {
	return slices.Contains(p.Algorithms, alg)
}

// parseOpenDKIMVersion reads the output of opendkim -V:
//
//	opendkim: OpenDKIM Filter v2.11.0
//		...
//		Supported signing algorithms:
//			rsa-sha1
//			rsa-sha256
//			ed25519-sha256
//		Supported canonicalization algorithms:
//			...
func parseOpenDKIMVersion(out string) (version string, algs []string) {
	if m := regexp.MustCompile(`OpenDKIM Filter v(\S+)`).FindStringSubmatch(out); m != nil {
		version = m[1]
	}
	in := false
	for _, line := range strings.Split(out, "\n") {
		item := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(item, "Supported signing algorithms"):
			in = true
		case strings.HasSuffix(item, ":"):
			in = false
		case in && item != "":
			algs = append(algs, item)
		}
	}
	return version, algs
}

// Verify checks every DKIM-Signature field of each message, looking keys up
// in records (record name, such as "sel._domainkey.example.com", to TXT
// value). One opendkim run takes the whole batch.
func (p *OpenDKIMPeer) Verify(msgs [][]byte, records map[string]string) []Verdict {
	p.t.Helper()
	dir, err := os.MkdirTemp(p.dir, "verify-")
	if err != nil {
		p.t.Fatalf("peertest: %v", err)
	}
	var keys strings.Builder
	for _, name := range slices.Sorted(maps.Keys(records)) {
		fmt.Fprintf(&keys, "%s %s\n", strings.TrimSuffix(name, "."), records[name])
	}
	keyFile := filepath.Join(dir, "keys")
	writeFile(p.t, keyFile, []byte(keys.String()), 0o600)
	conf := filepath.Join(dir, "opendkim.conf")
	writeFile(p.t, conf, []byte(strings.Join([]string{
		"Mode v",
		"TestPublicKeys " + keyFile,
		"Syslog no",
		"TemporaryDirectory " + dir,
	}, "\n")+"\n"), 0o600)
	paths := writeFiles(p.t, dir, msgs)
	// -vv makes test mode print the Authentication-Results field it would
	// add: one dkim= result per signature.
	stdout, stderr, _ := run(p.t, dir, p.bin, "-x", conf, "-t", strings.Join(paths, ","), "-vv")
	verdicts, err := parseOpenDKIMVerify(string(stdout), string(stderr), paths)
	if err != nil {
		p.t.Fatalf("peertest: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	return verdicts
}

// parseOpenDKIMVerify reads what opendkim -t FILES -vv prints in Mode v. For
// each file, in order, it prints the Authentication-Results field it would
// insert (when the message is signed) and then one summary line:
//
//	### INSHEADER: idx=0 hname='Authentication-Results' hvalue='host;
//		dkim=pass (2048-bit key) header.d=example.com ... header.s=sel header.b=dvco33Hk;
//		dkim=fail reason="signature verification failed" header.d=... header.s=ed ...;
//		dkim-atps=neutral'
//	opendkim: /dir/msg0000.eml: verification (s=sel, d=example.com, 2048-bit key) succeeded
//
// or "opendkim: FILE: message not signed". Problems with a file as a whole go
// to stderr as "opendkim: FILE: line N: ...".
func parseOpenDKIMVerify(stdout, stderr string, paths []string) ([]Verdict, error) {
	index := map[string]int{}
	for i, path := range paths {
		index[path] = i
	}
	verdicts := make([]Verdict, len(paths))
	seen := make([]bool, len(paths))
	var pending []string
	lines := strings.Split(stdout, "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if strings.HasPrefix(line, "### ") {
			block := line
			for !strings.HasSuffix(block, "'") && i+1 < len(lines) {
				i++
				block += "\n" + lines[i]
			}
			if v, ok := strings.CutPrefix(block[strings.Index(block, "hname="):], "hname='Authentication-Results' hvalue='"); ok {
				pending = append(pending, strings.TrimSuffix(v, "'"))
			}
			continue
		}
		rest, ok := strings.CutPrefix(line, "opendkim: ")
		if !ok {
			continue
		}
		name, summary, _ := strings.Cut(rest, ": ")
		n, ok := index[name]
		if !ok {
			return nil, fmt.Errorf("opendkim reported on an unknown file %q", name)
		}
		v := Verdict{Summary: summary}
		for _, ar := range pending {
			v.Sigs = append(v.Sigs, parseARDKIM(ar)...)
		}
		verdicts[n], seen[n], pending = v, true, nil
	}
	for n, ok := range seen {
		if ok {
			continue
		}
		var why []string
		for _, line := range strings.Split(stderr, "\n") {
			if strings.HasPrefix(line, "opendkim: "+paths[n]+": ") && !strings.Contains(line, "returned SMFIS_") {
				why = append(why, strings.TrimPrefix(line, "opendkim: "+paths[n]+": "))
			}
		}
		if len(why) == 0 {
			why = []string{"no verdict from opendkim"}
		}
		verdicts[n].Error = strings.Join(why, "; ")
	}
	return verdicts, nil
}

var (
	arReason = regexp.MustCompile(`reason="((?:[^"\\]|\\.)*)"`)
	arProp   = regexp.MustCompile(`header\.([a-z])=([^\s;]+)`)
)

// parseARDKIM picks the dkim= results out of an Authentication-Results
// value (RFC 8601) as OpenDKIM writes it, one clause per line.
func parseARDKIM(value string) []Result {
	var out []Result
	for _, clause := range strings.Split(value, ";") {
		clause = strings.TrimSpace(clause)
		st, ok := strings.CutPrefix(clause, "dkim=")
		if !ok {
			continue
		}
		st, _, _ = strings.Cut(st, " ")
		r := Result{Pass: st == "pass"}
		if !r.Pass {
			r.Reason = st
			if m := arReason.FindStringSubmatch(clause); m != nil {
				r.Reason += ": " + m[1]
			}
		}
		for _, m := range arProp.FindAllStringSubmatch(clause, -1) {
			switch m[1] {
			case "d":
				r.Domain = m[2]
			case "s":
				r.Selector = m[2]
			case "a":
				r.Algorithm = m[2]
			}
		}
		out = append(out, r)
	}
	return out
}

// OpenDKIMSign says how OpenDKIM is to sign.
type OpenDKIMSign struct {
	Domain, Selector string
	// Key is an RSA or Ed25519 private key.
	Key crypto.Signer
	// Algorithm is a=; empty means rsa-sha256 or ed25519-sha256 by the type
	// of Key. rsa-sha1 is there to make signatures a verifier must refuse.
	Algorithm string
	// Canonicalization is c=, such as "relaxed/relaxed"; empty means
	// OpenDKIM's default, simple/simple.
	Canonicalization string
	// Headers are the fields to sign (SignHeaders); nil means OpenDKIM's
	// default choice.
	Headers []string
}

// Sign has OpenDKIM sign msg in test mode and returns the message with the
// new DKIM-Signature field on top. An error is OpenDKIM declining to sign.
func (p *OpenDKIMPeer) Sign(msg []byte, opts OpenDKIMSign) ([]byte, error) {
	p.t.Helper()
	dir, err := os.MkdirTemp(p.dir, "sign-")
	if err != nil {
		p.t.Fatalf("peertest: %v", err)
	}
	if strings.ContainsAny(dir, ": \t,") {
		p.t.Fatalf("peertest: OpenDKIM tables cannot hold the path %q", dir)
	}
	alg := opts.Algorithm
	switch opts.Key.(type) {
	case *rsa.PrivateKey:
		if alg == "" {
			alg = "rsa-sha256"
		}
	case ed25519.PrivateKey:
		if alg == "" {
			alg = "ed25519-sha256"
		}
	default:
		p.t.Fatalf("peertest: OpenDKIM cannot sign with a %T", opts.Key)
	}
	der, err := x509.MarshalPKCS8PrivateKey(opts.Key)
	if err != nil {
		p.t.Fatalf("peertest: %v", err)
	}
	keyFile := filepath.Join(dir, "key.pem")
	writeFile(p.t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	// A KeyTable with a SigningTable of "*" signs whatever the From domain
	// (with Domain and KeyFile it would sign only mail from Domain).
	keyTable := filepath.Join(dir, "keytable")
	writeFile(p.t, keyTable, fmt.Appendf(nil, "key %s:%s:%s\n", opts.Domain, opts.Selector, keyFile), 0o600)
	signingTable := filepath.Join(dir, "signingtable")
	writeFile(p.t, signingTable, []byte("* key\n"), 0o600)
	conf := []string{
		"Mode s",
		"KeyTable file:" + keyTable,
		"SigningTable refile:" + signingTable,
		"SignatureAlgorithm " + alg,
		"Syslog no",
		// t.TempDir() is inside world-writable /tmp, which makes opendkim
		// call the key unsafe and refuse to start.
		"RequireSafeKeys false",
		"TemporaryDirectory " + dir,
	}
	if opts.Canonicalization != "" {
		conf = append(conf, "Canonicalization "+opts.Canonicalization)
	}
	if opts.Headers != nil {
		conf = append(conf, "SignHeaders "+strings.Join(opts.Headers, ","))
	}
	confFile := filepath.Join(dir, "opendkim.conf")
	writeFile(p.t, confFile, []byte(strings.Join(conf, "\n")+"\n"), 0o600)
	msgFile := filepath.Join(dir, "msg.eml")
	writeFile(p.t, msgFile, msg, 0o600)
	stdout, stderr, runErr := run(p.t, dir, p.bin, "-x", confFile, "-t", msgFile)
	field, err := parseOpenDKIMSign(string(stdout), msgFile)
	if err != nil {
		return nil, fmt.Errorf("opendkim %s: %w (exit: %v; stderr: %s)", p.Version, err, runErr, bytes.TrimSpace(stderr))
	}
	return Prepend(msg, field), nil
}

// parseOpenDKIMSign reads what opendkim -t FILE prints in Mode s: the file
// name, then the DKIM-Signature field it would add, folded with CRLF TAB and
// ending in a bare LF.
//
//	opendkim: /dir/msg.eml:
//	DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=sel;
//		t=1795928290; bh=...
//
// When it declines it says why on the name line instead.
func parseOpenDKIMSign(stdout, path string) (string, error) {
	head := "opendkim: " + path + ":"
	var field []string
	found := false
	for _, line := range strings.Split(stdout, "\n") {
		switch {
		case line == head:
			found = true
		case strings.HasPrefix(line, head+" "):
			return "", fmt.Errorf("%w: %s", ErrRefused, strings.TrimPrefix(line, head+" "))
		case found && strings.HasPrefix(line, "opendkim: "):
			found = false
		case found:
			field = append(field, strings.TrimSuffix(line, "\r"))
		}
	}
	for len(field) > 0 && field[len(field)-1] == "" {
		field = field[:len(field)-1]
	}
	if len(field) == 0 || !strings.HasPrefix(strings.ToLower(field[0]), "dkim-signature:") {
		return "", fmt.Errorf("%w: %q", ErrRefused, stdout)
	}
	return strings.Join(field, "\r\n"), nil
}
