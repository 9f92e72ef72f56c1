package dkim

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fixedKeyset holds the keys committed in testdata/keys (see its README), so
// that signatures and records are the same on every run.
type fixedKeyset struct {
	rsa1024, rsa2048, rsa4096 *rsa.PrivateKey
	ed                        ed25519.PrivateKey
	// rsa512 and rsa768 are base64 SubjectPublicKeyInfo of RSA keys too
	// short for RFC 8301 §3.2; Go no longer generates such keys.
	rsa512, rsa768 string
}

func loadFixedKeys(t testing.TB) *fixedKeyset {
	t.Helper()
	read := func(name string) []byte {
		t.Helper()
		b, err := os.ReadFile("testdata/keys/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	rsaKey := func(name string) *rsa.PrivateKey {
		t.Helper()
		block, _ := pem.Decode(read(name))
		if block == nil {
			t.Fatalf("%s: no PEM block", name)
		}
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return k
	}
	seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(read("ed25519.seed"))))
	if err != nil || len(seed) != ed25519.SeedSize {
		t.Fatalf("ed25519.seed: %v (%d bytes)", err, len(seed))
	}
	return &fixedKeyset{
		rsa1024: rsaKey("rsa1024.pem"),
		rsa2048: rsaKey("rsa2048.pem"),
		rsa4096: rsaKey("rsa4096.pem"),
		ed:      ed25519.NewKeyFromSeed(seed),
		rsa512:  strings.TrimSpace(string(read("rsa512.pub"))),
		rsa768:  strings.TrimSpace(string(read("rsa768.pub"))),
	}
}

// record returns the key record value of a public key.
func record(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	v, err := RecordValue(pub)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// fixedNow is the clock of signatures made in tests: 2026-11-29 10:00 UTC.
var fixedNow = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

func clockAt(t time.Time) func() time.Time { return func() time.Time { return t } }

// mapResolver answers from a map of name to TXT records; names not in it do
// not exist.
type mapResolver map[string][]string

func (m mapResolver) LookupTXT(_ context.Context, name string) ([]string, error) {
	if txts, ok := m[name]; ok {
		return txts, nil
	}
	return nil, ErrKeyNotFound
}

// canonBody runs body through the package's body canonicalizer in one write.
func canonBody(t testing.TB, c Canonicalization, body []byte) []byte {
	t.Helper()
	var out strings.Builder
	bc := newBodyCanon(c, &out)
	if _, err := bc.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := bc.Close(); err != nil {
		t.Fatal(err)
	}
	return []byte(out.String())
}

// handSign signs msg (CRLF line ends, header and body) with a Signature
// built by hand, through the package's own formatSignaturePrefix and
// signHeader, so that tests can set tags the Signer never writes (l=, i=,
// a=rsa-sha1, x= before t=). A nil BodyHash is computed from the body, over
// the first BodyLength canonical bytes when BodyLength >= 0. It returns the
// signed message: the new DKIM-Signature field on top of msg.
func handSign(t testing.TB, k crypto.Signer, s *Signature, msg string) string {
	t.Helper()
	end := strings.Index(msg, "\r\n\r\n")
	if end < 0 {
		t.Fatal("handSign: message has no body")
	}
	fields, err := parseHeader([]byte(msg[:end+2]))
	if err != nil {
		t.Fatal(err)
	}
	if s.BodyHash == nil {
		canon := canonBody(t, s.BodyCanon, []byte(msg[end+4:]))
		if s.BodyLength >= 0 && s.BodyLength < int64(len(canon)) {
			canon = canon[:s.BodyLength]
		}
		sum := sha256.Sum256(canon)
		s.BodyHash = sum[:]
	}
	prefix := formatSignaturePrefix(s)
	if s.BodyLength >= 0 {
		// formatSignaturePrefix writes only the tags the Signer uses.
		prefix = strings.Replace(prefix, " bh=", " l="+strconv.FormatInt(s.BodyLength, 10)+"; bh=", 1)
	}
	b, err := signHeader(k, s.HeaderCanon, fields, s.Headers, []byte(prefix))
	if err != nil {
		t.Fatal(err)
	}
	return prefix + foldBase64(b, len("b=")) + "\r\n" + msg
}
