package relay_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/dkimd/dkimd/internal/relay"
	"github.com/dkimd/dkimd/internal/store"
)

// discardQueue reads each body to the end, by Read calls as queue.Spool
// does, and keeps nothing: the benchmark measures the relay, not a disk's
// fsync.
type discardQueue struct{}

func (discardQueue) Enqueue(_ context.Context, _ relay.Transaction, body io.Reader) (string, error) {
	if _, err := io.Copy(io.Discard, struct{ io.Reader }{body}); err != nil {
		return "", err
	}
	return "bench", nil
}

// sizedMessage builds a message from alice's domain of exactly size bytes:
// extra header fields, a short header, then lines of 78 bytes and CRLF and
// a shorter last one.
func sizedMessage(size int, extra ...string) string {
	var b strings.Builder
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("From: app@tenant-a.example\r\nTo: bob@elsewhere.example\r\nSubject: sized\r\n" +
		"Date: Wed, 02 Jan 2030 10:00:00 +0000\r\nMessage-ID: <sized@client.test>\r\n\r\n")
	if b.Len()+2 > size {
		panic(fmt.Sprintf("sizedMessage: the header alone is %d bytes, over %d", b.Len(), size))
	}
	line := strings.Repeat("abcdefghijklmnopqrstuvwxyz", 3) + "\r\n"
	for b.Len()+len(line)+2 <= size {
		b.WriteString(line)
	}
	b.WriteString(strings.Repeat("x", size-b.Len()-2) + "\r\n")
	return b.String()
}

// BenchmarkTransaction runs whole SMTP transactions (MAIL, RCPT and DATA
// pipelined, then the message) on one connection over loopback to the
// relay port, for the two message sizes of scripts/bench-relay.sh: signed
// with Ed25519 alone (so RSA does not hide the rest), and unsigned (a
// re-authenticating user). The queue discards; the store is SQLite, as in
// the tests.
func BenchmarkTransaction(b *testing.B) {
	f := newFixture(b, func(o *relay.Options) {
		o.Queue = discardQueue{}
		o.MessagesPerHour, o.MessagesPerDay = -1, -1
		o.Log = slog.New(slog.DiscardHandler)
	})
	// Only the Ed25519 key of tenant-a.example signs.
	if _, err := f.db.SetKeyState(context.Background(), f.keys["a2._domainkey.tenant-a.example"].ID, store.KeyRetired); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name, src string
		extra     []string
	}{
		{"ed25519", addrIPUser, nil},
		{"unsigned", addrReauth, []string{"X-AuthUser: carol@tenant-a.example"}},
	} {
		for _, size := range []int{2 << 10, 200 << 10} {
			b.Run(fmt.Sprintf("%s/%dKiB", tc.name, size>>10), func(b *testing.B) {
				msg := []byte(sizedMessage(size, tc.extra...) + ".\r\n")
				c := dial(b, f.addrs[relay.ModeRelay], tc.src)
				c.ehlo()
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					c.write("MAIL FROM:<app@tenant-a.example>\r\nRCPT TO:<bob@elsewhere.example>\r\nDATA\r\n")
					for _, want := range []int{250, 250, 354} {
						if code, m := c.read(); code != want {
							b.Fatalf("got %d %s, want %d", code, m, want)
						}
					}
					if _, err := c.c.Write(msg); err != nil {
						b.Fatal(err)
					}
					if code, m := c.read(); code != 250 {
						b.Fatalf("DATA: %d %s", code, m)
					}
				}
			})
		}
	}
}
