package dkim

import (
	"bytes"
	"context"
	"crypto"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	msgauth "github.com/emersion/go-msgauth/dkim"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// golden compares got with testdata/golden/name, or writes it there with
// -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -run %s -update creates it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test -run %s -update rewrites it; review the diff)\n got: %q\nwant: %q", path, t.Name(), got, want)
	}
}

// TestGoldenRecords: RecordName, RecordValue and ZoneLine for the fixed
// keys of testdata/keys.
func TestGoldenRecords(t *testing.T) {
	keys := loadFixedKeys(t)
	for _, k := range []struct {
		sel string
		pub crypto.PublicKey
	}{
		{"rsa1024", keys.rsa1024.Public()},
		{"rsa2048", keys.rsa2048.Public()},
		{"rsa4096", keys.rsa4096.Public()},
		{"ed25519", keys.ed.Public()},
	} {
		t.Run(k.sel, func(t *testing.T) {
			name := RecordName(k.sel, "example.com")
			value := record(t, k.pub)
			var b strings.Builder
			fmt.Fprintf(&b, "name: %s\nvalue: %s\nzone: %s\n", name, value, ZoneLine(name, value))
			golden(t, "record-"+k.sel+".txt", []byte(b.String()))
		})
	}
}

// goldenMessage is signed for the golden signatures.
const goldenMessage = "Received: from client.example.com by mx.example.com; Sun, 29 Nov 2026 09:59:58 +0000\r\n" +
	"From: \"Alice Example\" <alice@example.com>\r\n" +
	"To: Bob <bob@example.net>,\r\n\tCarol <carol@example.net>\r\n" +
	"Cc: dave@example.org\r\n" +
	"Subject:  Golden   signature \r\n" +
	"Date: Sun, 29 Nov 2026 09:59:57 +0000\r\n" +
	"Message-ID: <golden@example.com>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"\r\n" +
	"Hi Bob,\r\n" +
	"\r\n" +
	"  White space\tand trailing space  \r\n" +
	"caf\xc3\xa9\r\n" +
	"\r\n" +
	"\r\n"

// TestGoldenSignatures: a fixed key, clock and message give an exact
// DKIM-Signature (RSA PKCS#1 v1.5 and Ed25519 are deterministic). The golden
// signatures must also verify, here and with go-msgauth, so that -update
// cannot bless a broken one.
func TestGoldenSignatures(t *testing.T) {
	keys := loadFixedKeys(t)
	txt := map[string]string{
		RecordName("rsa2048", "example.com"): record(t, keys.rsa2048.Public()),
		RecordName("ed25519", "example.com"): record(t, keys.ed.Public()),
	}
	for _, canon := range []Canonicalization{Relaxed, Simple} {
		t.Run(string(canon), func(t *testing.T) {
			sigs, err := Sign(strings.NewReader(goldenMessage), &SignOptions{
				Keys: []SignKey{
					{Domain: "example.com", Selector: "rsa2048", Signer: keys.rsa2048},
					{Domain: "example.com", Selector: "ed25519", Signer: keys.ed},
				},
				HeaderCanon: canon,
				BodyCanon:   canon,
				// No x=: go-msgauth checks it against the real clock.
				Now: clockAt(fixedNow),
			})
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(sigs, "")
			golden(t, "signature-"+string(canon)+".eml", []byte(got))

			signed := got + goldenMessage
			res, err := Verify(context.Background(), strings.NewReader(signed), &VerifyOptions{
				Resolver: mapResolver{
					RecordName("rsa2048", "example.com"): {txt[RecordName("rsa2048", "example.com")]},
					RecordName("ed25519", "example.com"): {txt[RecordName("ed25519", "example.com")]},
				},
				Now: clockAt(fixedNow),
			})
			if err != nil || len(res) != 2 {
				t.Fatalf("Verify: %d results, %v", len(res), err)
			}
			for _, r := range res {
				if r.Status != StatusPass {
					t.Errorf("s=%s: %s (%v)", r.Signature.Selector, r.Status, r.Err)
				}
			}
			vs, err := msgauth.VerifyWithOptions(strings.NewReader(signed), &msgauth.VerifyOptions{
				LookupTXT: func(name string) ([]string, error) { return []string{txt[name]}, nil },
			})
			if err != nil || len(vs) != 2 {
				t.Fatalf("go-msgauth: %d results, %v", len(vs), err)
			}
			for _, v := range vs {
				if v.Err != nil {
					t.Errorf("go-msgauth: s=%s: %v", v.Domain, v.Err)
				}
			}
		})
	}
}
