package dkim

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"slices"
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

// signedHeaders gives the h= list of the first signature on signed.
func signedHeaders(t *testing.T, signed string) string {
	t.Helper()
	fields, err := parseHeader([]byte(signed[:strings.Index(signed, "\r\n\r\n")+2]))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSignature(fields[0].value())
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(s.Headers, ":")
}

// verifyFirst gives the status of the first signature of msg.
func verifyFirst(t *testing.T, ks *testKeyset, msg string) Status {
	t.Helper()
	res, err := Verify(context.Background(), strings.NewReader(msg), &VerifyOptions{Resolver: ks.resolver()})
	if err != nil {
		t.Fatal(err)
	}
	return res[0].Status
}

// TestSignOversignsDefault checks that by default h= lists every field of
// the default set once more than it occurs, absent ones included, so that
// no such field can be added after signing (RFC 6376 §5.4.2, §8.15): a
// copy added on top or at the bottom of the header, of a field the message
// has or lacks, fails verification.
func TestSignOversignsDefault(t *testing.T) {
	ks := testKeys(t)
	signed := signMessage(t, testMessage, &SignOptions{Keys: ks.signKeys()[:1]})
	want := "from:from:date:date:subject:subject:reply-to:sender:to:to:cc:bcc:message-id:message-id:" +
		"in-reply-to:references:content-type:mime-version:content-transfer-encoding"
	if got := signedHeaders(t, signed); got != want {
		t.Errorf("h=%s\nwant %s", got, want)
	}
	if st := verifyFirst(t, ks, signed); st != StatusPass {
		t.Fatalf("the signed message: %s", st)
	}
	added := map[string]string{
		"From":                      "Mallory <m@evil.example>",
		"Sender":                    "m@evil.example",
		"Reply-To":                  "m@evil.example",
		"To":                        "victim@example.org",
		"Cc":                        "victim@example.org",
		"Bcc":                       "victim@example.org",
		"Date":                      "Mon, 30 Nov 2026 10:00:00 +0000",
		"Subject":                   "Urgent: your invoice",
		"Message-ID":                "<2@evil.example>",
		"In-Reply-To":               "<0@example.com>",
		"References":                "<0@example.com>",
		"MIME-Version":              "1.0",
		"Content-Type":              "text/html",
		"Content-Transfer-Encoding": "base64",
	}
	if len(added) != len(DefaultOversign) {
		t.Fatalf("the table covers %d fields, DefaultOversign has %d", len(added), len(DefaultOversign))
	}
	body := strings.Index(signed, "\r\n\r\n") + 2
	sigEnd := strings.Index(signed, "From: Alice")
	for _, name := range DefaultOversign {
		line := name + ": " + added[name] + "\r\n"
		for _, at := range []struct {
			where string
			msg   string
		}{
			{"on top", signed[:sigEnd] + line + signed[sigEnd:]},
			{"at the bottom", signed[:body] + line + signed[body:]},
		} {
			t.Run("RFC 6376 §8.15: "+name+" added "+at.where, func(t *testing.T) {
				if st := verifyFirst(t, ks, at.msg); st != StatusFail {
					t.Errorf("a %s added %s after signing: %s, want fail", name, at.where, st)
				}
			})
		}
	}
}

// TestSignOversignChoices checks the other oversigning choices: From alone
// (dkimd's behaviour before every default field was oversigned), none, and
// a field outside the signed set, which oversigning also signs.
func TestSignOversignChoices(t *testing.T) {
	ks := testKeys(t)
	addOnTop := func(signed, line string) string {
		i := strings.Index(signed, "From: Alice")
		return signed[:i] + line + signed[i:]
	}
	tests := []struct {
		name     string
		oversign []string
		headers  []string
		msg      string
		wantH    string
		add      string
		want     Status
	}{
		{name: "from only: a second From fails", oversign: []string{"From"},
			wantH: "from:from:date:subject:to:message-id", add: "From: m@evil.example\r\n", want: StatusFail},
		{name: "from only: an added Reply-To still verifies", oversign: []string{"From"},
			wantH: "from:from:date:subject:to:message-id", add: "Reply-To: m@evil.example\r\n", want: StatusPass},
		{name: "none: an added Subject still verifies", oversign: []string{},
			wantH: "from:date:subject:to:message-id", add: "Subject: Urgent\r\n", want: StatusPass},
		{name: "a field outside the signed set is signed and oversigned", oversign: []string{"From", "list-id", "List-Id"},
			msg: "List-Id: <l.example.com>\r\n" + testMessage, wantH: "from:from:date:subject:to:message-id:list-id:list-id",
			add: "List-Id: <evil.example>\r\n", want: StatusFail},
		{name: "own header list", oversign: []string{"Subject"}, headers: []string{"From", "Subject"},
			wantH: "from:subject:subject", add: "Subject: Urgent\r\n", want: StatusFail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := tt.msg
			if msg == "" {
				msg = testMessage
			}
			signed := signMessage(t, msg, &SignOptions{Keys: ks.signKeys()[:1], Oversign: tt.oversign, HeaderKeys: tt.headers})
			if got := signedHeaders(t, signed); got != tt.wantH {
				t.Errorf("h=%s, want %s", got, tt.wantH)
			}
			if st := verifyFirst(t, ks, signed); st != StatusPass {
				t.Fatalf("the signed message: %s", st)
			}
			if st := verifyFirst(t, ks, addOnTop(signed, tt.add)); st != tt.want {
				t.Errorf("after adding %q: %s, want %s", tt.add, st, tt.want)
			}
		})
	}
}

// TestSignRejectsBadFieldNames checks that a name which cannot stand in h=
// is refused up front rather than making a broken signature (RFC 5322
// §3.6.8 field names; RFC 6376 §3.2, ";" ends a tag).
func TestSignRejectsBadFieldNames(t *testing.T) {
	ks := testKeys(t)
	for _, opts := range []SignOptions{
		{HeaderKeys: []string{"From", "X Bad"}},
		{HeaderKeys: []string{"From", ""}},
		{Oversign: []string{"Sub:ject"}},
		{Oversign: []string{"a;b"}},
	} {
		opts.Keys = ks.signKeys()[:1]
		if _, err := NewSigner(&opts); err == nil {
			t.Errorf("NewSigner(headers %q, oversign %q) accepted", opts.HeaderKeys, opts.Oversign)
		}
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

// Signing a short message with Ed25519 takes about 40 µs, so what Sign
// allocates per message weighs on the rate (issue 13): one copy of the
// header, one buffer for the header hash, one for each signature field.
// Before, each header field, each canonical field, each h= name and each
// tag string had its own allocation, 76 in all for this message.
func TestSignAllocationsPerMessage(t *testing.T) {
	ks := loadFixedKeys(t)
	msg := []byte("From: Bench <bench@example.com>\r\nTo: Someone <someone@example.net>\r\n" +
		"Subject: dkimd benchmark message\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\n" +
		"Message-ID: <bench@example.com>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\n" +
		strings.Repeat("the quarterly figures for our northern region are attached as a\r\n", 28))
	opts := &SignOptions{Keys: []SignKey{{Domain: "example.com", Selector: "s", Signer: ks.ed}}, Now: clockAt(fixedNow)}
	var r bytes.Reader
	allocs := testing.AllocsPerRun(20, func() {
		r.Reset(msg)
		if _, err := Sign(&r, opts); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 24 {
		t.Errorf("Sign allocates %v times for a 2 KiB message, want at most 24", allocs)
	}
}

// A Signer keeps what it worked out from HeaderKeys and Oversign for the
// next message signed with the same lists; h= must still follow the lists
// of each message, also when the caller changes a list in place, and a bad
// name must still be refused (RFC 6376 §3.5: h= names the signed fields).
func TestSignHeaderListsPerMessage(t *testing.T) {
	ks := loadFixedKeys(t)
	msg := "From: a@example.com\r\nTo: b@example.net\r\nSubject: hi\r\n\r\nbody\r\n"
	keys := []string{"From", "Subject"}
	sign := func(over []string) (string, error) {
		opts := &SignOptions{
			Keys:       []SignKey{{Domain: "example.com", Selector: "s", Signer: ks.ed}},
			HeaderKeys: keys, Oversign: over, Now: clockAt(fixedNow),
		}
		sigs, err := Sign(strings.NewReader(msg), opts)
		if err != nil {
			return "", err
		}
		sig, err := ParseSignature(strings.TrimPrefix(strings.TrimSuffix(sigs[0], "\r\n"), "DKIM-Signature:"))
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(sig.Headers, ":"), nil
	}
	for _, step := range []struct {
		change func()
		over   []string
		want   string
	}{
		{func() {}, []string{}, "from:subject"},
		{func() {}, []string{"from"}, "from:from:subject"},
		{func() { keys[1] = "TO" }, []string{}, "from:to"},
		{func() { keys = append(keys, "Cc") }, []string{"CC", "cc", "Subject"}, "from:to:cc:subject:subject"},
		{func() { keys = []string{"From", "Subject"} }, []string{}, "from:subject"},
	} {
		step.change()
		if got, err := sign(step.over); err != nil || got != step.want {
			t.Errorf("HeaderKeys %q, Oversign %q: h=%s (%v), want %s", keys, step.over, got, err, step.want)
		}
	}
	keys[1] = "Bad;Name"
	if _, err := sign([]string{}); err == nil {
		t.Errorf("HeaderKeys %q signed, want an error", keys)
	}
	keys[1] = "Subject"
	if got, err := sign([]string{}); err != nil || got != "from:subject" {
		t.Errorf("after the error: h=%s (%v), want from:subject", got, err)
	}
}

// Close hands the Signer's working memory to the next message, so a Write
// or a second Close after it must fail rather than touch that memory, and
// the signatures made stay as they were.
func TestSignerUseAfterClose(t *testing.T) {
	ks := loadFixedKeys(t)
	s, err := NewSigner(&SignOptions{Keys: []SignKey{{Domain: "example.com", Selector: "s", Signer: ks.ed}}, Now: clockAt(fixedNow)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte("From: a@example.com\r\n\r\nbody\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	sigs := slices.Clone(s.Signatures())
	if _, err := s.Write([]byte("more\r\n")); err == nil {
		t.Error("Write after Close succeeded")
	}
	if err := s.Close(); err == nil {
		t.Error("second Close succeeded")
	}
	if !slices.Equal(s.Signatures(), sigs) || len(sigs) != 1 {
		t.Errorf("signatures changed after Close: %q, were %q", s.Signatures(), sigs)
	}
}
