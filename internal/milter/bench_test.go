package milter_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	gomilter "github.com/d--j/go-milter"

	"github.com/dkimd/dkimd/internal/milter"
)

// BenchmarkMilter is one SMTP session's worth of milter work, as Postfix
// makes it: a new milter connection, negotiation, one message from an
// authenticated user, its header and body in 64 KiB chunks, and the
// signature back. Client and server share the process; profile with
// -cpuprofile and read the server's part (milter, dkim, go-milter's
// session).
func BenchmarkMilter(b *testing.B) {
	f := newFixture(b, func(o *milter.Options) { o.Log = slog.New(slog.NewTextHandler(io.Discard, nil)) })
	for _, size := range []int{2 << 10, 2 << 20} {
		msg := plain("a@tenant-a.example")
		line := "The quick brown fox jumps over the lazy dog; pack my box with five dozen jugs.\r\n"
		msg.body = []byte(strings.Repeat(line, size/len(line)))
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				bag := gomilter.NewMacroBag()
				bag.Set(gomilter.MacroAuthAuthen, "alice")
				s, err := gomilter.NewClient("tcp", f.addr, gomilter.WithActions(gomilter.AllClientSupportedActionMasks)).Session(bag)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.Conn("c", gomilter.FamilyInet, 1, addrUnknown); err != nil {
					b.Fatal(err)
				}
				if _, err := s.Helo("c"); err != nil {
					b.Fatal(err)
				}
				if _, err := s.Mail("s@tenant-a.example", ""); err != nil {
					b.Fatal(err)
				}
				if _, err := s.Rcpt("r@example.net", ""); err != nil {
					b.Fatal(err)
				}
				if _, err := s.DataStart(); err != nil {
					b.Fatal(err)
				}
				for _, h := range msg.header {
					if _, err := s.HeaderField(h[0], h[1], nil); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := s.HeaderEnd(); err != nil {
					b.Fatal(err)
				}
				mods, _, err := s.BodyReadFrom(bytes.NewReader(msg.body))
				if err != nil || len(mods) != 1 {
					b.Fatalf("not signed: %v %v", mods, err)
				}
				s.Close()
			}
		})
	}
}
