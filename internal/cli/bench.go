package cli

import (
	"bytes"
	"context"
	"crypto"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dkimd/dkimd/internal/dkim"
)

// benchResult is what "dkimd bench sign --json" prints.
type benchResult struct {
	Algorithm         string  `json:"algorithm"`
	Bits              int     `json:"bits,omitempty"`
	Size              int     `json:"size"`
	Messages          int     `json:"messages"`
	Seconds           float64 `json:"seconds"`
	MessagesPerSecond float64 `json:"messages_per_second"`
	MBPerSecond       float64 `json:"mb_per_second"`
}

// benchSign runs the real signing path (dkim.Signer over a whole message) in
// one goroutine for about d, and reports the rate.
func benchSign(ctx context.Context, signers []crypto.Signer, size int, d time.Duration) (*benchResult, error) {
	msg := benchMessage(size)
	var keys []dkim.SignKey
	for i, s := range signers {
		keys = append(keys, dkim.SignKey{Domain: "example.com", Selector: fmt.Sprintf("bench%d", i), Signer: s})
	}
	opts := &dkim.SignOptions{Keys: keys}
	start := time.Now()
	n := 0
	for time.Since(start) < d && ctx.Err() == nil {
		if _, err := dkim.Sign(bytes.NewReader(msg), opts); err != nil {
			return nil, err
		}
		n++
	}
	secs := time.Since(start).Seconds()
	return &benchResult{
		Size: size, Messages: n, Seconds: secs,
		MessagesPerSecond: float64(n) / secs,
		MBPerSecond:       float64(n) * float64(size) / secs / 1e6,
	}, nil
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
