//go:build unix

package dkim

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"strings"
	"syscall"
	"testing"

	msgauth "github.com/emersion/go-msgauth/dkim"
)

// The benchmarks here measure the real signing and verifying paths beside
// their ceilings (crypto/rsa and crypto/sha256 on their own) and beside
// go-msgauth, so that ratios can be read from one run. Absolute numbers say
// little on a shared machine; compare within a run (scripts/bench.sh does,
// and docs/performance.md records the figures). None of them is a test: no
// timing decides pass or fail.
//
// Each benchmark also reports cpu-ns/op, the CPU time of the process per
// operation: on a shared machine other programs delay a benchmark (ns/op)
// far more than they slow the CPU it gets, so cpu-ns/op gives steadier
// ratios. It counts the garbage collector's work too.

const (
	// benchSmall is the size of the messages of the signing benchmarks, a
	// typical short mail.
	benchSmall = 2 << 10
	// benchLarge is the size of the bodies of the canonicalization
	// benchmarks.
	benchLarge = 2 << 20
	// benchChunk is the size of the writes into the body canonicalizer: the
	// largest body chunk a milter receives (MILTER_CHUNK_SIZE in libmilter),
	// odd so that lines are cut at varying places.
	benchChunk = 65535
)

// BenchmarkRawRSASign2048 is the ceiling for RSA signing: PKCS #1 v1.5 over
// a ready SHA-256 digest, nothing else.
func BenchmarkRawRSASign2048(b *testing.B) {
	key := loadFixedKeys(b).rsa2048
	digest := sha256.Sum256([]byte("dkimd"))
	defer cpuPerOp(b)()
	for b.Loop() {
		if _, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawEd25519Sign is the ceiling for Ed25519 signing:
// ed25519.Sign over a ready SHA-256 digest, nothing else (RFC 8463 §3 signs
// the digest).
func BenchmarkRawEd25519Sign(b *testing.B) {
	key := loadFixedKeys(b).ed
	digest := sha256.Sum256([]byte("dkimd"))
	defer cpuPerOp(b)()
	for b.Loop() {
		ed25519.Sign(key, digest[:])
	}
}

// BenchmarkSign2KiB signs a 2 KiB plain-text message through Sign, the path
// the milter and the API take, with one or two keys.
func BenchmarkSign2KiB(b *testing.B) {
	ks := loadFixedKeys(b)
	msg := benchPlainMessage(benchSmall)
	for _, bc := range []struct {
		name string
		keys []crypto.Signer
	}{
		{"rsa2048", []crypto.Signer{ks.rsa2048}},
		{"ed25519", []crypto.Signer{ks.ed}},
		{"rsa2048+ed25519", []crypto.Signer{ks.rsa2048, ks.ed}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			opts := benchSignOptions(bc.keys...)
			b.SetBytes(int64(len(msg)))
			defer cpuPerOp(b)()
			for b.Loop() {
				if _, err := Sign(bytes.NewReader(msg), opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSign2MiB signs the 2 MiB mixed message through Sign with an
// Ed25519 key, which costs little beside the body: the counterpart of
// BenchmarkGoMsgauthBody2MiB.
func BenchmarkSign2MiB(b *testing.B) {
	msg := benchMixedMessage(benchLarge)
	opts := benchSignOptions(loadFixedKeys(b).ed)
	b.Run("ed25519", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		defer cpuPerOp(b)()
		for b.Loop() {
			if _, err := Sign(bytes.NewReader(msg), opts); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkVerify2KiB verifies a signed 2 KiB message through Verify, the
// key record coming from a resolver that answers at once.
func BenchmarkVerify2KiB(b *testing.B) {
	ks := loadFixedKeys(b)
	for _, bc := range []struct {
		name string
		key  crypto.Signer
	}{
		{"rsa2048", ks.rsa2048},
		{"ed25519", ks.ed},
	} {
		b.Run(bc.name, func(b *testing.B) {
			msg := benchPlainMessage(benchSmall)
			sigs, err := Sign(bytes.NewReader(msg), benchSignOptions(bc.key))
			if err != nil {
				b.Fatal(err)
			}
			signed := append([]byte(sigs[0]), msg...)
			rec, err := RecordValue(bc.key.Public())
			if err != nil {
				b.Fatal(err)
			}
			opts := &VerifyOptions{
				Resolver: ResolverFunc(func(context.Context, string) ([]string, error) { return []string{rec}, nil }),
				Now:      clockAt(fixedNow),
			}
			check := func() {
				res, err := Verify(context.Background(), bytes.NewReader(signed), opts)
				if err != nil {
					b.Fatal(err)
				}
				if len(res) != 1 || res[0].Status != StatusPass {
					b.Fatalf("results %+v, want one pass", res)
				}
			}
			check()
			b.SetBytes(int64(len(signed)))
			defer cpuPerOp(b)()
			for b.Loop() {
				check()
			}
		})
	}
}

// BenchmarkSHA256_2MiB is the ceiling for body hashing: crypto/sha256 over
// 2 MiB already in canonical form, in the same writes as the canonicalizer
// gets.
func BenchmarkSHA256_2MiB(b *testing.B) {
	body := benchMixedBody(benchLarge)
	b.SetBytes(int64(len(body)))
	defer cpuPerOp(b)()
	for b.Loop() {
		h := sha256.New()
		benchWriteChunks(h, body)
		h.Sum(nil)
	}
}

// BenchmarkBodyCanon2MiB canonicalizes and hashes the 2 MiB mixed body
// (benchMixedBody) as Sign and Verify do, fed in milter-sized chunks.
func BenchmarkBodyCanon2MiB(b *testing.B) {
	body := benchMixedBody(benchLarge)
	for _, c := range []Canonicalization{Relaxed, Simple} {
		b.Run(string(c), func(b *testing.B) { benchBodyCanon(b, c, body) })
	}
}

// BenchmarkBodyCanon2MiBPart takes each kind of line of the mixed body
// alone, to show where the cost of BenchmarkBodyCanon2MiB comes from.
func BenchmarkBodyCanon2MiBPart(b *testing.B) {
	for _, part := range []struct {
		name string
		gen  func(*bytes.Buffer, *mrand.Rand, int)
	}{
		{"text", benchText},
		{"html", benchHTML},
		{"base64", benchBase64},
	} {
		var body bytes.Buffer
		part.gen(&body, mrand.New(mrand.NewPCG(1, 2)), benchLarge)
		for _, c := range []Canonicalization{Relaxed, Simple} {
			b.Run(part.name+"/"+string(c), func(b *testing.B) { benchBodyCanon(b, c, body.Bytes()) })
		}
	}
}

func benchBodyCanon(b *testing.B, c Canonicalization, body []byte) {
	b.SetBytes(int64(len(body)))
	defer cpuPerOp(b)()
	for b.Loop() {
		h := sha256.New()
		bc := newBodyCanon(c, h)
		benchWriteChunks(bc, body)
		if err := bc.Close(); err != nil {
			b.Fatal(err)
		}
		h.Sum(nil)
	}
}

// BenchmarkGoMsgauthBody2MiB signs the 2 MiB mixed message with go-msgauth
// and an Ed25519 key, so that nearly all of the cost is its body
// canonicalization and hash: the reference for BenchmarkSign2MiB and
// BenchmarkBodyCanon2MiB.
func BenchmarkGoMsgauthBody2MiB(b *testing.B) {
	msg := benchMixedMessage(benchLarge)
	key := loadFixedKeys(b).ed
	for _, c := range []Canonicalization{Relaxed, Simple} {
		b.Run(string(c), func(b *testing.B) {
			opts := &msgauth.SignOptions{
				Domain:                 "example.com",
				Selector:               "bench",
				Signer:                 key,
				HeaderCanonicalization: msgauth.CanonicalizationRelaxed,
				BodyCanonicalization:   msgauth.Canonicalization(c),
			}
			benchSameBodyHash(b, c, msg, opts)
			b.SetBytes(int64(len(msg)))
			defer cpuPerOp(b)()
			for b.Loop() {
				if err := msgauth.Sign(io.Discard, bytes.NewReader(msg), opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchSameBodyHash checks that go-msgauth and the package agree on the body
// hash of msg, so that the two benchmarks do the same work.
func benchSameBodyHash(b *testing.B, c Canonicalization, msg []byte, opts *msgauth.SignOptions) {
	var out bytes.Buffer
	if err := msgauth.Sign(&out, bytes.NewReader(msg), opts); err != nil {
		b.Fatal(err)
	}
	_, rest, _ := strings.Cut(out.String(), " bh=")
	theirs, _, _ := strings.Cut(rest, ";")
	h := sha256.New()
	bc := newBodyCanon(c, h)
	benchWriteChunks(bc, msg[bytes.Index(msg, []byte("\r\n\r\n"))+4:])
	if err := bc.Close(); err != nil {
		b.Fatal(err)
	}
	if ours := base64.StdEncoding.EncodeToString(h.Sum(nil)); ours != theirs {
		b.Fatalf("%s: bh=%s, go-msgauth bh=%s", c, ours, theirs)
	}
}

// cpuPerOp starts counting the CPU time of the process; the function it
// returns reports it per operation as cpu-ns/op. Call it just before b.Loop.
func cpuPerOp(b *testing.B) (report func()) {
	start := cpuTime(b)
	return func() { b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op") }
}

// cpuTime is the user and system CPU time of the process, in nanoseconds.
func cpuTime(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func benchSignOptions(keys ...crypto.Signer) *SignOptions {
	opts := &SignOptions{Now: clockAt(fixedNow)}
	for i, k := range keys {
		opts.Keys = append(opts.Keys, SignKey{Domain: "example.com", Selector: fmt.Sprintf("bench%d", i), Signer: k})
	}
	return opts
}

func benchWriteChunks(w io.Writer, p []byte) {
	for len(p) > 0 {
		n := min(len(p), benchChunk)
		w.Write(p[:n])
		p = p[n:]
	}
}

const benchHeader = "From: Bench <bench@example.com>\r\n" +
	"To: Someone <someone@example.net>\r\n" +
	"Subject: dkimd benchmark message\r\n" +
	"Date: Sun, 29 Nov 2026 10:00:00 +0000\r\n" +
	"Message-ID: <bench@example.com>\r\n" +
	"MIME-Version: 1.0\r\n"

// benchPlainMessage is a plain-text message of exactly size bytes, body
// lines of about 72 characters: the 2 KiB message of the signing
// benchmarks and of "dkimd bench sign".
func benchPlainMessage(size int) []byte {
	var b bytes.Buffer
	b.WriteString(benchHeader + "Content-Type: text/plain; charset=utf-8\r\n\r\n")
	benchText(&b, mrand.New(mrand.NewPCG(1, 2)), size-b.Len())
	return benchExact(b.Bytes(), size)
}

// benchMixedMessage is benchMixedBody under a header.
func benchMixedMessage(size int) []byte {
	body := benchMixedBody(size)
	return append([]byte(benchHeader+"Content-Type: multipart/mixed; boundary=\"mixed\"\r\n\r\n"), body...)
}

// benchMixedBody is a multipart body of about size bytes: a quarter plain
// text (lines of up to 72 characters, paragraphs between empty lines), a
// quarter HTML (indented two spaces a level, the lines relaxed
// canonicalization must rewrite), and half a base64 attachment (76-character
// lines), with their MIME headers and boundaries.
func benchMixedBody(size int) []byte {
	r := mrand.New(mrand.NewPCG(1, 2))
	var b bytes.Buffer
	b.WriteString("--mixed\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n" +
		"--alt\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	benchText(&b, r, size/4)
	b.WriteString("\r\n--alt\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	benchHTML(&b, r, size/4)
	b.WriteString("\r\n--alt--\r\n\r\n--mixed\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\n" +
		"Content-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	benchBase64(&b, r, size-b.Len()-len("\r\n--mixed--\r\n"))
	b.WriteString("\r\n--mixed--\r\n")
	return b.Bytes()
}

var benchWords = strings.Fields(`the quarterly figures for our northern region are attached as
	a report please review them before the meeting on Thursday and let me know whether
	you agree with the forecast we will discuss budget staffing and the new office lease
	in detail, including costs, timelines and risks; thanks to everyone who helped.`)

// benchText writes about n bytes of paragraphs wrapped at 72 characters.
func benchText(b *bytes.Buffer, r *mrand.Rand, n int) {
	end := b.Len() + n
	line := 0
	for b.Len() < end {
		w := benchWords[r.IntN(len(benchWords))]
		if line > 0 && line+1+len(w) > 72 {
			b.WriteString("\r\n")
			line = 0
			if r.IntN(8) == 0 {
				b.WriteString("\r\n")
			}
		}
		if line > 0 {
			b.WriteByte(' ')
			line++
		}
		b.WriteString(w)
		line += len(w)
	}
	b.WriteString("\r\n")
}

// benchHTML writes about n bytes of table rows as HTML mailers indent them.
func benchHTML(b *bytes.Buffer, r *mrand.Rand, n int) {
	end := b.Len() + n
	b.WriteString("<!DOCTYPE html>\r\n<html>\r\n  <head>\r\n    <meta charset=\"utf-8\">\r\n  </head>\r\n" +
		"  <body style=\"font-family: Arial, sans-serif;\">\r\n    <table width=\"100%\" cellpadding=\"0\">\r\n")
	for row := 0; b.Len() < end; row++ {
		fmt.Fprintf(b, "      <tr class=\"row-%d\">\r\n", row%2)
		for col := range 3 {
			fmt.Fprintf(b, "        <td style=\"padding: 8px; border-bottom: 1px solid #ddd;\">\r\n"+
				"          %s %s %d\r\n        </td>\r\n",
				benchWords[r.IntN(len(benchWords))], benchWords[r.IntN(len(benchWords))], row*3+col)
		}
		b.WriteString("      </tr>\r\n")
	}
	b.WriteString("    </table>\r\n  </body>\r\n</html>\r\n")
}

// benchBase64 writes about n bytes of base64 in 76-character lines.
func benchBase64(b *bytes.Buffer, r *mrand.Rand, n int) {
	raw := make([]byte, 57) // 76 base64 characters
	line := make([]byte, 76)
	for end := b.Len() + n; b.Len()+78 <= end; {
		for i := range raw {
			raw[i] = byte(r.Uint32())
		}
		base64.StdEncoding.Encode(line, raw)
		b.Write(line)
		b.WriteString("\r\n")
	}
}

// benchExact cuts or pads msg to size bytes, ending in CRLF.
func benchExact(msg []byte, size int) []byte {
	for len(msg) < size {
		msg = append(msg, "padding\r\n"...)
	}
	msg = append(msg[:size-2], '\r', '\n')
	if msg[size-3] == '\r' {
		msg[size-3] = '.' // no lone CR before the final CRLF
	}
	return msg
}
