package dkim

import (
	"context"
	"strings"
	"testing"
)

// TestAuthenticationResults checks the exact field (RFC 8601, RFC 6008) for
// real verification results of the fixed RSA 2048 key.
func TestAuthenticationResults(t *testing.T) {
	keys := loadFixedKeys(t)
	key := keys.rsa2048
	resolver := mapResolver{RecordName("rsa", "example.com"): {record(t, key.Public())}}
	base := func() *Signature {
		e := &mutEnv{alg: "rsa"}
		return e.baseSignature()
	}
	verify := func(t *testing.T, msg string) []Result {
		t.Helper()
		res, err := Verify(context.Background(), strings.NewReader(msg), &VerifyOptions{Resolver: resolver, Now: clockAt(fixedNow)})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	// bPrefix reads the first 8 characters of b= from the signed text
	// itself, apart from the parser.
	bPrefix := func(signed string) string {
		v := signed[strings.Index(signed, " b=")+len(" b="):]
		return removeFWS(v)[:8]
	}
	quoted := func(v string) string {
		if strings.Contains(v, "/") {
			return `"` + v + `"`
		}
		return v
	}

	t.Run("pass", func(t *testing.T) {
		signed := handSign(t, key, base(), mutMessage)
		got := AuthenticationResults("mx.example.net", verify(t, signed))
		want := "Authentication-Results: mx.example.net;\r\n" +
			" dkim=pass (2048-bit key) header.d=example.com header.s=rsa header.a=rsa-sha256 header.b=" + quoted(bPrefix(signed)) + "\r\n"
		if got != want {
			t.Errorf("got  %q\nwant %q", got, want)
		}
	})
	t.Run("RFC 6008 §4: pass with l= says so", func(t *testing.T) {
		s := base()
		s.BodyLength = canonLen(t)
		signed := handSign(t, key, s, mutMessage)
		got := AuthenticationResults("mx.example.net", verify(t, signed))
		want := "Authentication-Results: mx.example.net;\r\n" +
			" dkim=pass (2048-bit key) reason=\"good signature covering the first " + itoa(int(s.BodyLength)) + " body bytes (l=)\"" +
			" header.d=example.com header.s=rsa header.a=rsa-sha256 header.b=" + quoted(bPrefix(signed)) + "\r\n"
		if got != want {
			t.Errorf("got  %q\nwant %q", got, want)
		}
	})
	t.Run("fail with reason", func(t *testing.T) {
		signed := strings.Replace(handSign(t, key, base(), mutMessage), "numbers", "Numbers", 1)
		got := AuthenticationResults("mx.example.net", verify(t, signed))
		want := "Authentication-Results: mx.example.net;\r\n" +
			" dkim=fail reason=\"body hash did not verify\" header.d=example.com header.s=rsa header.a=rsa-sha256 header.b=" + quoted(bPrefix(signed)) + "\r\n"
		if got != want {
			t.Errorf("got  %q\nwant %q", got, want)
		}
	})
	t.Run("RFC 8601 §2.2: quotes in reason and header.i escaped", func(t *testing.T) {
		s := base()
		s.Identity = `"j\oe"@example.org`
		signed := handSign(t, key, s, mutMessage)
		got := AuthenticationResults("mx.example.net", verify(t, signed))
		want := "Authentication-Results: mx.example.net;\r\n" +
			` dkim=permerror reason="i= is not within d=: i=\"j\\oe\"@example.org, d=example.com (RFC 6376 section 3.5)"` +
			` header.d=example.com header.s=rsa header.i="\"j\\oe\"@example.org" header.a=rsa-sha256 header.b=` + quoted(bPrefix(signed)) + "\r\n"
		if got != want {
			t.Errorf("got  %q\nwant %q", got, want)
		}
	})
	t.Run("none", func(t *testing.T) {
		got := AuthenticationResults("mx.example.net", verify(t, mutMessage))
		if want := "Authentication-Results: mx.example.net;\r\n dkim=none\r\n"; got != want {
			t.Errorf("got  %q\nwant %q", got, want)
		}
	})
	t.Run("neutral without a parsed signature", func(t *testing.T) {
		got := AuthenticationResults("mx.example.net", verify(t, "DKIM-Signature: v=1; garbage\r\n"+mutMessage))
		want := "Authentication-Results: mx.example.net;\r\n" +
			" dkim=neutral reason=\"malformed DKIM-Signature: \\\"garbage\\\" has no \\\"=\\\"\"\r\n"
		if got != want {
			t.Errorf("got  %q\nwant %q", got, want)
		}
	})
	t.Run("one clause per signature, in order", func(t *testing.T) {
		signed := handSign(t, key, base(), mutMessage)
		ed := &mutEnv{alg: "ed"}
		signed = handSign(t, keys.ed, ed.baseSignature(), signed) // no ed record: permerror
		got := AuthenticationResults("mx.example.net", verify(t, signed))
		lines := strings.Split(got, "\r\n")
		if len(lines) != 4 || !strings.HasPrefix(lines[1], " dkim=permerror reason=\"no key record found at ed._domainkey.example.com\" header.d=example.com header.s=ed ") ||
			!strings.HasPrefix(lines[2], " dkim=pass (2048-bit key) header.d=example.com header.s=rsa ") || !strings.HasSuffix(lines[1], ";") {
			t.Errorf("got %q", got)
		}
	})
}

// TestResinfoHeaderB: header.b is the first 8 characters of b= (RFC 6008
// §4), quoted when they are not an RFC 2045 token.
func TestResinfoHeaderB(t *testing.T) {
	for _, tc := range []struct{ b64, want string }{
		{"abcdefghijkl", " header.b=abcdefgh"},
		{"ab+defghijkl", " header.b=ab+defgh"},
		{"ab/defghijkl", ` header.b="ab/defgh"`},
		{"abcdefgh", " header.b=abcdefgh"},
		{"abcdefg", ""},
	} {
		r := Result{Status: StatusFail, Err: ErrSignature, Signature: &Signature{Domain: "example.com", Selector: "s", Algorithm: "rsa-sha256", b64: tc.b64}}
		got := r.resinfo()
		i := strings.Index(got, " header.b=")
		if tc.want == "" {
			if i >= 0 {
				t.Errorf("b=%s: %q has header.b", tc.b64, got)
			}
			continue
		}
		if i < 0 || got[i:] != tc.want {
			t.Errorf("b=%s: %q, want it to end in %q", tc.b64, got, tc.want)
		}
	}
}

// TestResultReason: reasons carry no "dkim: " prefix and no control
// characters.
func TestResultReason(t *testing.T) {
	r := Result{Status: StatusPermError, Err: ErrKeyRevoked}
	if got := r.Reason(); got != "key revoked (empty p=)" {
		t.Errorf("Reason = %q", got)
	}
	// The detail quotes the signature, which may hold anything.
	r.Err = errorf(ErrSignatureSyntax, ": ", "bad\r\nthing\t\"x\"")
	if got, want := r.resinfo(), `dkim=permerror reason="malformed DKIM-Signature: bad  thing \"x\""`; got != want {
		t.Errorf("resinfo = %q, want %q", got, want)
	}
}
