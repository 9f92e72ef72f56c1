package peertest

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// The peers' own round trips check the harness: a peer must pass what it
// signed and fail it once the body changes, or the harness misreads it.

const testMsg = "From: Alice <alice@example.com>\r\n" +
	"To: bob@example.org\r\n" +
	"Subject: peertest\r\n" +
	"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n" +
	"Message-ID: <peertest@example.com>\r\n" +
	"\r\n" +
	"Hello, peers.\r\n"

func testKeys(t *testing.T) (rsaKey, edKey crypto.Signer, records map[string]string) {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 1024) // smallest DKIM allows: fast
	if err != nil {
		t.Fatal(err)
	}
	_, ek, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return rk, ek, map[string]string{
		"rsa._domainkey.example.com": "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der),
		"ed._domainkey.example.com":  "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(ek.Public().(ed25519.PublicKey)),
	}
}

func tamper(msg []byte) []byte {
	return bytes.Replace(msg, []byte("Hello"), []byte("Jello"), 1)
}

func TestDkimpyRoundTrip(t *testing.T) {
	p := Dkimpy(t)
	rk, ek, records := testKeys(t)
	var msgs [][]byte
	for _, o := range []DkimpySign{
		{Domain: "example.com", Selector: "rsa", Key: rk, Canonicalization: "relaxed/relaxed"},
		{Domain: "example.com", Selector: "ed", Key: ek, Canonicalization: "simple/simple"},
	} {
		if o.Selector == "ed" && !p.Ed25519 {
			t.Log("dkimpy has no PyNaCl: no Ed25519")
			continue
		}
		signed, err := p.Sign([]byte(testMsg), o)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, signed, tamper(signed))
	}
	msgs = append(msgs, []byte(testMsg))
	got := p.VerifyAll(msgs, records)
	for i := 0; i+1 < len(msgs); i += 2 {
		if !got[i].Pass() {
			t.Errorf("dkimpy fails its own signature: %v\n%s", got[i], msgs[i])
		}
		if !got[i+1].Failed() || !strings.Contains(got[i+1].Sigs[0].Reason, "body hash mismatch") {
			t.Errorf("dkimpy passes a tampered message: %v", got[i+1])
		}
	}
	if last := got[len(got)-1]; len(last.Sigs) != 0 || last.Error != "" {
		t.Errorf("unsigned message: %v, want no signatures", last)
	}
	if _, err := p.Sign([]byte("no header here\r\n"), DkimpySign{Domain: "example.com", Selector: "rsa", Key: rk}); !errors.Is(err, ErrRefused) {
		t.Errorf("signing a message without From: %v, want ErrRefused", err)
	}
}

func TestOpenDKIMRoundTrip(t *testing.T) {
	p := OpenDKIM(t)
	rk, ek, records := testKeys(t)
	var msgs [][]byte
	// Not Ed25519 with simple header canonicalization: OpenDKIM 2.11.0
	// makes broken signatures there (see the package doc).
	for _, o := range []OpenDKIMSign{
		{Domain: "example.com", Selector: "rsa", Key: rk, Canonicalization: "simple/simple"},
		{Domain: "example.com", Selector: "ed", Key: ek, Canonicalization: "relaxed/relaxed"},
	} {
		if o.Selector == "ed" && !p.Supports("ed25519-sha256") {
			t.Logf("OpenDKIM %s has no ed25519-sha256", p.Version)
			continue
		}
		signed, err := p.Sign([]byte(testMsg), o)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, signed, tamper(signed))
	}
	msgs = append(msgs, []byte(testMsg))
	got := p.Verify(msgs, records)
	for i := 0; i+1 < len(msgs); i += 2 {
		if !got[i].Pass() {
			t.Errorf("OpenDKIM fails its own signature: %v\n%s", got[i], msgs[i])
		}
		if !got[i+1].Failed() {
			t.Errorf("OpenDKIM passes a tampered message: %v", got[i+1])
		}
	}
	if last := got[len(got)-1]; len(last.Sigs) != 0 || last.Error != "" || last.Summary != "message not signed" {
		t.Errorf("unsigned message: %#v, want no signatures", last)
	}
	body := []byte(strings.TrimSuffix(testMsg, "\r\n"))
	_, err := p.Sign(body, OpenDKIMSign{Domain: "example.com", Selector: "rsa", Key: rk, Canonicalization: "relaxed/relaxed"})
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "CRLF at end of body missing") {
		t.Errorf("signing a body without final CRLF: %v, want ErrRefused", err)
	}
}

// TestPeersAgree has each peer verify what the other signed, so that a
// harness fault shared by sign and verify on one side still shows.
func TestPeersAgree(t *testing.T) {
	py, od := Dkimpy(t), OpenDKIM(t)
	rk, _, records := testKeys(t)
	a, err := py.Sign([]byte(testMsg), DkimpySign{Domain: "example.com", Selector: "rsa", Key: rk, Canonicalization: "relaxed/relaxed"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := od.Sign([]byte(testMsg), OpenDKIMSign{Domain: "example.com", Selector: "rsa", Key: rk, Canonicalization: "relaxed/relaxed"})
	if err != nil {
		t.Fatal(err)
	}
	if v := od.Verify([][]byte{a}, records)[0]; !v.Pass() {
		t.Errorf("OpenDKIM on dkimpy's signature: %v", v)
	}
	if v := py.Verify(b, records); !v.Pass() {
		t.Errorf("dkimpy on OpenDKIM's signature: %v", v)
	}
}

func TestParseOpenDKIMVersion(t *testing.T) {
	out := "opendkim: OpenDKIM Filter v2.11.0\n\tCompiled with OpenSSL 3.0.19 27 Jan 2026\n" +
		"\tSMFI_VERSION 0x1000001\n\tlibmilter version 1.0.1\n" +
		"\tSupported signing algorithms:\n\t\trsa-sha1\n\t\trsa-sha256\n\t\ted25519-sha256\n" +
		"\tSupported canonicalization algorithms:\n\t\trelaxed\n\t\tsimple\n"
	v, algs := parseOpenDKIMVersion(out)
	if v != "2.11.0" || strings.Join(algs, ",") != "rsa-sha1,rsa-sha256,ed25519-sha256" {
		t.Errorf("got %q %q", v, algs)
	}
}

func TestParseOpenDKIMVerify(t *testing.T) {
	// Captured from OpenDKIM 2.11.0 (opendkim -t a,b,c,d -vv).
	stdout := "opendkim: /t/a.eml: message not signed\n" +
		"### INSHEADER: idx=0 hname='Authentication-Results' hvalue='host;\n" +
		"\tdkim=pass (2048-bit key) header.d=example.com header.i=@example.com header.a=rsa-sha256 header.s=sel header.b=dvco33Hk;\n" +
		"\tdkim=fail reason=\"signature verification failed\" header.d=example.com header.i=@example.com header.a=ed25519-sha256 header.s=ed header.b=CdEkVByM;\n" +
		"\tdkim-atps=neutral'\n" +
		"opendkim: /t/b.eml: verification (s=sel, d=example.com, 2048-bit key) succeeded\n" +
		"### INSHEADER: idx=0 hname='Authentication-Results' hvalue='host;\n" +
		"\tdkim=fail reason=\"key not found in DNS\" header.d=example.com header.i=@example.com header.a=rsa-sha256 header.s=nokey header.b=jarUdoYe;\n" +
		"\tdkim-atps=neutral'\n" +
		"opendkim: /t/c.eml: verification (s=nokey d=example.com, 2048-bit key, unknown) failed: key not found in DNS\n"
	stderr := "opendkim: /t/d.eml: line 6: header malformed\n"
	got, err := parseOpenDKIMVerify(stdout, stderr, []string{"/t/a.eml", "/t/b.eml", "/t/c.eml", "/t/d.eml"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"no signatures (message not signed)",
		`s=sel a=rsa-sha256: pass; s=ed a=ed25519-sha256: fail (fail: signature verification failed)`,
		`s=nokey a=rsa-sha256: fail (fail: key not found in DNS)`,
		"error: line 6: header malformed",
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("file %d: got %q, want %q", i, got[i], want[i])
		}
	}
	if !got[1].Sigs[0].Pass || got[1].Sigs[0].Domain != "example.com" || got[1].Pass() || got[1].Failed() {
		t.Errorf("file 1: %#v", got[1])
	}
}

func TestParseOpenDKIMSign(t *testing.T) {
	stdout := "opendkim: /t/m.eml:\n" +
		"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=sel;\r\n" +
		"\tt=1795928290; bh=Ba3gj8+xBPQLJTahTfzW6RbWQ/XPgESxkCi2B66PSQg=;\r\n" +
		"\th=From:To:Subject:Date;\r\n" +
		"\tb=jarUdoYe\r\n" +
		"\t 1NwpEXBFwjBwA==\n"
	got, err := parseOpenDKIMSign(stdout, "/t/m.eml")
	want := "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=sel;\r\n" +
		"\tt=1795928290; bh=Ba3gj8+xBPQLJTahTfzW6RbWQ/XPgESxkCi2B66PSQg=;\r\n" +
		"\th=From:To:Subject:Date;\r\n\tb=jarUdoYe\r\n\t 1NwpEXBFwjBwA=="
	if err != nil || got != want {
		t.Errorf("got %q, %v", got, err)
	}
	_, err = parseOpenDKIMSign("opendkim: /t/m.eml: no signature added: EVP_PKEY_get1_RSA() failed\n", "/t/m.eml")
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "EVP_PKEY_get1_RSA") {
		t.Errorf("refusal: %v", err)
	}
}

func TestPrepend(t *testing.T) {
	field := "DKIM-Signature: a=1;\r\n\tb=2\r\n"
	if got := string(Prepend([]byte("From: x\n\nbody\n"), field, "X: y")); got != "DKIM-Signature: a=1;\n\tb=2\nX: y\nFrom: x\n\nbody\n" {
		t.Errorf("LF message: %q", got)
	}
	if got := string(Prepend([]byte("From: x\r\n\r\n"), field)); got != "DKIM-Signature: a=1;\r\n\tb=2\r\nFrom: x\r\n\r\n" {
		t.Errorf("CRLF message: %q", got)
	}
}

// recorder stands in for a test to see whether Unavailable skips or fails.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                        {}
func (r *recorder) Skip(args ...any)               { r.skipped = fmt.Sprint(args...) }
func (r *recorder) Fatalf(format string, a ...any) { r.failed = fmt.Sprintf(format, a...) }

func TestMissingPeer(t *testing.T) {
	for _, tc := range []struct {
		env        string
		skip, fail bool
	}{
		{env: "", skip: true},
		{env: "0", skip: true},
		{env: "1", fail: true},
	} {
		t.Setenv(RequireEnv, tc.env)
		r := &recorder{TB: t}
		Unavailable(r, "dkimpy not found: apt-get install %s", "python3-dkim")
		if (r.skipped != "") != tc.skip || (r.failed != "") != tc.fail {
			t.Errorf("%s=%q: skipped %q, failed %q", RequireEnv, tc.env, r.skipped, r.failed)
		}
		if msg := r.skipped + r.failed; !strings.Contains(msg, "apt-get install python3-dkim") {
			t.Errorf("%s=%q: message %q does not say what to install", RequireEnv, tc.env, msg)
		}
	}
}
