package milter_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/dkimd/dkimd/internal/milter"
)

// BenchmarkMilter is one SMTP session's worth of milter work, as Postfix
// makes it: a new milter connection, negotiation, one message from an
// authenticated user, its header and body in 64 KiB chunks, and the
// signature back. Client and server share the process; profile with
// -cpuprofile and read the server's part (milter, dkim, go-milter's
// session). cpu-ns/op is the process's CPU time (user and system, client
// and server) per message, which the wall time is only on an idle core.
func BenchmarkMilter(b *testing.B) {
	f := newFixture(b, func(o *milter.Options) { o.Log = slog.New(slog.NewTextHandler(io.Discard, nil)) })
	// serve caches the store's per-message reads (sqlite.DB.CacheReads).
	cctx, stopCache := context.WithCancel(context.Background())
	b.Cleanup(stopCache)
	f.db.CacheReads(cctx, nil)
	for _, tc := range []struct {
		name string
		from string // tenant-a: Ed25519; granted: RSA-1024 and Ed25519
		size int
	}{
		{"ed25519/2KiB", "a@tenant-a.example", 2 << 10},
		{"ed25519/2MiB", "a@tenant-a.example", 2 << 20},
		{"rsa1024+ed25519/2KiB", "a@granted.example", 2 << 10},
	} {
		msg := plain(tc.from)
		line := "The quick brown fox jumps over the lazy dog; pack my box with five dozen jugs.\r\n"
		msg.body = []byte(strings.Repeat(line, tc.size/len(line)))
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(tc.size))
			cpu0 := cpuTime(b)
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
				if err != nil || len(mods) == 0 {
					b.Fatalf("not signed: %v %v", mods, err)
				}
				s.Close()
			}
			b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is the CPU time the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
