package cli

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dkimd/dkimd/internal/dkim"
)

// benchResult is what "dkimd bench sign --json" prints.
type benchResult struct {
	Algorithm string `json:"algorithm"`
	Bits      int    `json:"bits,omitempty"`
	// RSALibrary is what made the RSA signatures: Go's crypto/rsa or
	// OpenSSL's version line (--openssl).
	RSALibrary        string  `json:"rsa_library,omitempty"`
	Size              int     `json:"size"`
	Messages          int     `json:"messages"`
	Seconds           float64 `json:"seconds"`
	MessagesPerSecond float64 `json:"messages_per_second"`
	MBPerSecond       float64 `json:"mb_per_second"`
	// RawSignPerSecond is the ceiling measured in the same run: how many
	// messages' worth of bare signature operations (rsa.SignPKCS1v15 or
	// OpenSSL's, or ed25519.Sign, over a ready SHA-256 digest, one per key)
	// one core does,
	// with no parsing, canonicalization or hashing of the message.
	RawSignPerSecond float64 `json:"raw_sign_per_second"`
	// RawRatio is MessagesPerSecond / RawSignPerSecond: the share of the
	// ceiling that the real path reaches.
	RawRatio float64 `json:"raw_ratio"`
}

// benchRounds is how many slices the measuring time is cut into. The real
// path and the raw signatures take turns slice by slice, so that load from
// other programs on the machine falls on both alike and the ratio stays
// meaningful where the absolute rates do not.
const benchRounds = 10

// benchSign runs the real signing path (dkim.Sign over a whole message) in
// one goroutine, and beside it the bare signature operations, taking turns
// for about d in all, and reports both rates.
func benchSign(ctx context.Context, signers []crypto.Signer, size int, d time.Duration) (*benchResult, error) {
	msg := benchMessage(size)
	var keys []dkim.SignKey
	for i, s := range signers {
		keys = append(keys, dkim.SignKey{Domain: "example.com", Selector: fmt.Sprintf("bench%d", i), Signer: s})
	}
	opts := &dkim.SignOptions{Keys: keys}
	signMsg := func() error {
		_, err := dkim.Sign(bytes.NewReader(msg), opts)
		return err
	}
	digest := sha256.Sum256(msg)
	signRaw := func() error {
		for _, s := range signers {
			if err := rawSign(s, digest[:]); err != nil {
				return err
			}
		}
		return nil
	}
	slice := d / (2 * benchRounds)
	var n, rawN int
	var secs, rawSecs float64
	for range benchRounds {
		k, t, err := benchFor(ctx, slice, signMsg)
		if err != nil {
			return nil, err
		}
		n, secs = n+k, secs+t
		if k, t, err = benchFor(ctx, slice, signRaw); err != nil {
			return nil, err
		}
		rawN, rawSecs = rawN+k, rawSecs+t
	}
	r := &benchResult{
		Size: size, Messages: n, Seconds: secs,
		MessagesPerSecond: float64(n) / secs,
		MBPerSecond:       float64(n) * float64(size) / secs / 1e6,
		RawSignPerSecond:  float64(rawN) / rawSecs,
	}
	r.RawRatio = r.MessagesPerSecond / r.RawSignPerSecond
	return r, nil
}

// benchFor calls op until d has passed (at least once, so that a short
// slice still counts) and returns the calls and the seconds they took.
func benchFor(ctx context.Context, d time.Duration, op func() error) (int, float64, error) {
	start := time.Now()
	n := 0
	for n == 0 || time.Since(start) < d {
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		if err := op(); err != nil {
			return 0, 0, err
		}
		n++
	}
	return n, time.Since(start).Seconds(), nil
}

// rawSign makes the signature that the DKIM path makes for digest, straight
// with the standard library: the ceiling of the real path.
func rawSign(s crypto.Signer, digest []byte) error {
	switch k := s.(type) {
	case *rsa.PrivateKey:
		_, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, digest)
		return err
	case ed25519.PrivateKey:
		ed25519.Sign(k, digest)
		return nil
	}
	_, err := s.Sign(rand.Reader, digest, crypto.SHA256)
	return err
}

// benchMessage builds a plain-text message of exactly size bytes with
// typical 72-character lines.
func benchMessage(size int) []byte {
	var b bytes.Buffer
	b.WriteString("From: Bench <bench@example.com>\r\nTo: Someone <someone@example.net>\r\n" +
		"Subject: dkimd benchmark message\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\n" +
		"Message-ID: <bench@example.com>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\n")
	line := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 2)[:70] + "\r\n"
	for b.Len() < size {
		io.WriteString(&b, line)
	}
	out := b.Bytes()[:size]
	if !bytes.HasSuffix(out, []byte("\r\n")) {
		out = append(out[:size-2], '\r', '\n')
	}
	return out
}
