package dkim

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"
	"time"

	msgauth "github.com/emersion/go-msgauth/dkim"
)

// testKeys are made once per test binary: RSA generation is slow.
type testKeyset struct {
	rsa crypto.Signer
	ed  crypto.Signer
	txt map[string]string
}

var testKeysCache *testKeyset

func testKeys(t testing.TB) *testKeyset {
	t.Helper()
	if testKeysCache != nil {
		return testKeysCache
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, ek, _ := ed25519.GenerateKey(rand.Reader)
	ks := &testKeyset{rsa: rk, ed: ek, txt: map[string]string{}}
	for sel, k := range map[string]crypto.Signer{"rsa": rk, "ed": ek} {
		v, err := RecordValue(k.Public())
		if err != nil {
			t.Fatal(err)
		}
		ks.txt[RecordName(sel, "example.com")] = v
	}
	testKeysCache = ks
	return ks
}

func (ks *testKeyset) resolver() Resolver {
	return ResolverFunc(func(_ context.Context, name string) ([]string, error) {
		if v, ok := ks.txt[name]; ok {
			return []string{v}, nil
		}
		return nil, ErrKeyNotFound
	})
}

func (ks *testKeyset) signKeys() []SignKey {
	return []SignKey{
		{Domain: "example.com", Selector: "rsa", Signer: ks.rsa},
		{Domain: "example.com", Selector: "ed", Signer: ks.ed},
	}
}

const testMessage = "From: Alice <alice@example.com>\r\n" +
	"To: Bob <bob@example.net>,\r\n\tCarol <carol@example.net>\r\n" +
	"Subject:   Hello   there \r\n" +
	"Date: Sun, 29 Nov 2026 10:00:00 +0000\r\n" +
	"Message-ID: <1@example.com>\r\n" +
	"\r\n" +
	"Hi Bob,\r\n\r\n  Some   text\twith tabs.  \r\n\r\n\r\n"

func signMessage(t testing.TB, msg string, opts *SignOptions) string {
	t.Helper()
	sigs, err := Sign(strings.NewReader(msg), opts)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(sigs, "") + msg
}

// TestSignVerifyRoundTrip signs with RSA and Ed25519 in one pass and checks
// both signatures with this package and with go-msgauth, the independent
// implementation kept as an oracle.
func TestSignVerifyRoundTrip(t *testing.T) {
	ks := testKeys(t)
	for _, canon := range []Canonicalization{Relaxed, Simple} {
		signed := signMessage(t, testMessage, &SignOptions{Keys: ks.signKeys(), HeaderCanon: canon, BodyCanon: canon, Expiration: time.Hour})
		res, err := Verify(context.Background(), strings.NewReader(signed), &VerifyOptions{Resolver: ks.resolver()})
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 2 {
			t.Fatalf("%s: %d results, want 2", canon, len(res))
		}
		for _, r := range res {
			if r.Status != StatusPass {
				t.Errorf("%s: s=%s: %s (%v)", canon, r.Signature.Selector, r.Status, r.Err)
			}
		}
		vs, err := msgauth.VerifyWithOptions(strings.NewReader(signed), &msgauth.VerifyOptions{
			LookupTXT: func(domain string) ([]string, error) { return []string{ks.txt[domain]}, nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			if v.Err != nil {
				t.Errorf("%s: go-msgauth: %v", canon, v.Err)
			}
		}
	}
}

// TestSignOversignsFrom checks h= lists From once more than it occurs, so a
// second From added later breaks the signature (RFC 6376 §8.15).
func TestSignOversignsFrom(t *testing.T) {
	ks := testKeys(t)
	signed := signMessage(t, testMessage, &SignOptions{Keys: ks.signKeys()[:1]})
	if !strings.Contains(signed, "h=from:") {
		t.Fatalf("h= does not start with from:\n%s", signed)
	}
	sigEnd := strings.Index(signed, "From: Alice")
	field, _ := parseHeader([]byte(signed[:sigEnd]))
	s, err := ParseSignature(field[0].value())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"from", "from", "date", "subject", "to", "message-id"}
	if strings.Join(s.Headers, ":") != strings.Join(want, ":") {
		t.Errorf("h=%s, want %s", strings.Join(s.Headers, ":"), strings.Join(want, ":"))
	}
	forged := strings.Replace(signed, "From: Alice", "From: Mallory <m@evil.example>\r\nFrom: Alice", 1)
	res, err := Verify(context.Background(), strings.NewReader(forged), &VerifyOptions{Resolver: ks.resolver()})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Status != StatusFail {
		t.Errorf("a From added on top verified: %s", res[0].Status)
	}
}

// TestSignLFEqualsCRLF: bare LF input signs to the same signature as CRLF.
func TestSignLFEqualsCRLF(t *testing.T) {
	ks := testKeys(t)
	now := func() time.Time { return time.Unix(1700000000, 0) }
	crlf := signMessage(t, testMessage, &SignOptions{Keys: ks.signKeys()[1:], Now: now})
	lf := signMessage(t, strings.ReplaceAll(testMessage, "\r\n", "\n"), &SignOptions{Keys: ks.signKeys()[1:], Now: now})
	sigCRLF := crlf[:strings.Index(crlf, "From:")]
	sigLF := lf[:strings.Index(lf, "From:")]
	if sigCRLF != sigLF {
		t.Errorf("signatures differ:\n%s\n%s", sigCRLF, sigLF)
	}
	res, err := Verify(context.Background(), strings.NewReader(strings.ReplaceAll(crlf, "\r\n", "\n")), &VerifyOptions{Resolver: ks.resolver()})
	if err != nil || len(res) != 1 || res[0].Status != StatusPass {
		t.Errorf("LF copy of a CRLF-signed message: %v %v", res, err)
	}
}

func TestSignFoldsLines(t *testing.T) {
	ks := testKeys(t)
	signed := signMessage(t, testMessage, &SignOptions{Keys: ks.signKeys()})
	for _, line := range strings.Split(signed[:strings.Index(signed, "From:")], "\r\n") {
		if len(line) > maxLine {
			t.Errorf("line of %d characters: %q", len(line), line)
		}
	}
	if !bytes.HasPrefix([]byte(signed), []byte("DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;")) {
		t.Errorf("unexpected start: %q", signed[:60])
	}
}
