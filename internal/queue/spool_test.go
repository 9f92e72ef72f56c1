package queue

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestEnqueueStoresDurably(t *testing.T) {
	e := newEnv(t)
	body := testBody("one")
	id := e.enqueue("alice@sender.test", []string{"bob@rcpt.test", "carol@rcpt.test"}, body)
	if !validID(id) {
		t.Fatalf("id %q", id)
	}
	if got := string(e.body(id)); got != body {
		t.Fatalf("body = %q, want %q", got, body)
	}
	m := e.get(id)
	if m.Envelope.From != "alice@sender.test" || m.Envelope.User != "alice" || m.Envelope.Decision != "signed d=sender.test" ||
		!m.Queued.Equal(e.clk.Now()) || m.Size != int64(len(body)) || statuses(m) != "bob@rcpt.test=pending/0 carol@rcpt.test=pending/0" {
		t.Fatalf("Get = %+v", m)
	}
	// Nothing is left in tmp/ once Enqueue returns.
	if tmp, _ := os.ReadDir(filepath.Join(e.dir, "tmp")); len(tmp) != 0 {
		t.Fatalf("tmp/ holds %d files", len(tmp))
	}
	l := e.list()
	if len(l) != 1 || l[0].ID != id || l[0].Recipients != 2 || l[0].Open != 2 || !l[0].Next.IsZero() {
		t.Fatalf("List = %+v", l)
	}
	st, err := e.sp.Stats(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Messages != 1 || st.Recipients != 2 || st.Accepted != 1 || !st.Oldest.Equal(e.clk.Now()) {
		t.Fatalf("Stats = %+v", st)
	}
	free, err := e.sp.FreeSpace()
	if err != nil || free <= 0 {
		t.Fatalf("FreeSpace = %d, %v", free, err)
	}
	if err := e.sp.Remove(e.ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sp.Get(e.ctx, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Remove: %v, want ErrNotFound", err)
	}
	if err := e.sp.Remove(e.ctx, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Remove twice: %v", err)
	}
}

func TestEnqueueRefusesBadEnvelope(t *testing.T) {
	valid := Envelope{From: "a@x.test", To: []string{"b@y.test"}}
	tests := []struct {
		name string
		mod  func(*Envelope)
		want error
	}{
		{"valid", func(*Envelope) {}, nil},
		{"null sender is fine (RFC 5321 §4.5.5)", func(e *Envelope) { e.From = "" }, nil},
		{"no recipients", func(e *Envelope) { e.To = nil }, ErrInvalid},
		{"recipient without domain", func(e *Envelope) { e.To = []string{"bob"} }, ErrInvalid},
		{"recipient of a single-label domain: no route (RFC 5321 §5.1)", func(e *Envelope) { e.To = []string{"bob@localhost"} }, ErrInvalid},
		{"recipient with the percent hack (RFC 1123 §5.2.16)", func(e *Envelope) { e.To = []string{"b%z.test@y.test"} }, ErrInvalid},
		{"recipient with an address literal is routable (RFC 5321 §4.1.3)", func(e *Envelope) { e.To = []string{"b@[192.0.2.1]"} }, nil},
		{"recipient spelt as the relay would not, domain still parses", func(e *Envelope) { e.To = []string{"b@Y.test."} }, nil},
		{"recipient with CRLF (command injection)", func(e *Envelope) { e.To = []string{"b@y.test\r\nDATA"} }, ErrInvalid},
		{"sender with space", func(e *Envelope) { e.From = "a b@x.test" }, ErrInvalid},
		{"sender with angle bracket", func(e *Envelope) { e.From = "a>@x.test" }, ErrInvalid},
		{"metadata with line break", func(e *Envelope) { e.Decision = "x\ny" }, ErrInvalid},
	}
	e := newEnv(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := valid
			env.To = append([]string(nil), valid.To...)
			tt.mod(&env)
			_, err := e.sp.Enqueue(e.ctx, env, strings.NewReader("x\r\n"))
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Enqueue: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestEnqueueFailureStoresNothing(t *testing.T) {
	e := newEnv(t)
	_, err := e.sp.Enqueue(e.ctx, Envelope{From: "a@x.test", To: []string{"b@y.test"}}, errReader{})
	if !errors.Is(err, ErrStorage) {
		t.Fatalf("Enqueue with failing body: %v, want ErrStorage", err)
	}
	if l := e.list(); len(l) != 0 {
		t.Fatalf("List = %+v", l)
	}
	if f, _ := os.ReadDir(filepath.Join(e.dir, "tmp")); len(f) != 0 {
		t.Fatalf("tmp/ holds %d files", len(f))
	}
	// msg/ holds only spares (spare.go): empty, mode 0200.
	msgs, _ := os.ReadDir(filepath.Join(e.dir, "msg"))
	for _, d := range msgs {
		fi, err := d.Info()
		if err != nil || fi.Mode().Perm() != modeSpare || fi.Size() != 0 {
			t.Fatalf("msg/%s left behind: %v %v", d.Name(), fi.Mode(), err)
		}
	}
	// A spool directory that cannot be written to fails Enqueue.
	for _, sub := range []string{"tmp", "msg"} {
		if err := os.RemoveAll(filepath.Join(e.dir, sub)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 * spareBatch { // the spares in memory, then making more
		if _, err := e.sp.Enqueue(e.ctx, Envelope{From: "a@x.test", To: []string{"b@y.test"}}, strings.NewReader("x")); !errors.Is(err, ErrStorage) {
			t.Fatalf("Enqueue %d without tmp/ and msg/: %v, want ErrStorage", i, err)
		}
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("client went away") }

func TestOpenSpoolLocksDirectory(t *testing.T) {
	e := newEnv(t)
	if _, err := OpenSpool(e.dir, SpoolOptions{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second OpenSpool: %v, want ErrLocked", err)
	}
}

// TestRemovalDurability: an administrator's Remove fsyncs msg/, so the
// message cannot come back after a crash; Complete, after delivery, does
// not.
func TestRemovalDurability(t *testing.T) {
	e := newEnv(t)
	removed := e.enqueue("alice@sender.test", []string{"bob@rcpt.test"}, testBody("removed"))
	e.enqueue("alice@sender.test", []string{"bob@rcpt.test"}, testBody("delivered"))
	n := e.sp.msgSync.count()
	if err := e.sp.Remove(e.ctx, removed); err != nil {
		t.Fatal(err)
	}
	if got := e.sp.msgSync.count(); got != n+1 {
		t.Fatalf("Remove made %d fsyncs of msg/, want 1", got-n)
	}
	delivered := e.deliverAll()
	if got := e.sp.msgSync.count(); got != n+1 {
		t.Fatalf("delivery and Complete made %d fsyncs of msg/, want none", got-n-1)
	}
	if l := e.list(); len(l) != 0 || len(delivered) != 1 {
		t.Fatalf("after delivery: %d queued, %d delivered", len(l), len(delivered))
	}
}

// BenchmarkEnqueueConcurrent is eight SMTP sessions enqueueing 4 KiB
// messages at once into a spool on a real disk. fsyncs/op counts the file
// and directory fsyncs per message; the directory's are shared among
// concurrent sessions (dirsync.go), the file's are one per message.
func BenchmarkEnqueueConcurrent(b *testing.B) {
	sp, err := OpenSpool(b.TempDir(), SpoolOptions{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer sp.Close()
	body := strings.Repeat("0123456789 the quick brown fox jumps over the lazy dog 0123456789\r\n", 60)
	env := Envelope{From: "alice@sender.test", To: []string{"bob@rcpt.test"}}
	dirSyncs := sp.msgSync.count()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range 8 {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if _, err := sp.Enqueue(context.Background(), env, strings.NewReader(body)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	dirSyncs = sp.msgSync.count() - dirSyncs
	b.ReportMetric(float64(uint64(b.N)+dirSyncs)/float64(b.N), "fsyncs/op")
	b.ReportMetric(float64(dirSyncs)/float64(b.N), "dirsyncs/op")
}

// TestCompleteWritesOnlyChangedState: a deliverer records the state after
// each attempt; Complete then ends the lease without writing it again (one
// file, fsync, rename and directory fsync saved per deferred message), but
// writes a state it has not seen.
func TestCompleteWritesOnlyChangedState(t *testing.T) {
	e := newEnv(t)
	id := e.enqueue("alice@sender.test", []string{"a@rcpt.test", "b@rcpt.test"}, testBody("state"))
	c := e.claim()[0]
	c.Recipients[0].Status, c.Recipients[0].Attempts = Delivered, 1
	c.Recipients[1].Status, c.Recipients[1].Next = Deferred, e.clk.Now().Add(time.Hour)
	if err := e.sp.Record(e.ctx, &c); err != nil {
		t.Fatal(err)
	}
	n := e.sp.stateSync.count()
	if err := e.sp.Complete(e.ctx, &c); err != nil {
		t.Fatal(err)
	}
	if got := e.sp.stateSync.count(); got != n {
		t.Fatalf("Complete of a recorded state made %d fsyncs of state/, want none", got-n)
	}
	e.clk.Advance(time.Hour)
	c = e.claim()[0]
	c.Recipients[1].Status, c.Recipients[1].Attempts = Deferred, 2
	c.Recipients[1].Next = e.clk.Now().Add(time.Hour)
	if err := e.sp.Complete(e.ctx, &c); err != nil {
		t.Fatal(err)
	}
	if got := e.sp.stateSync.count(); got != n+1 {
		t.Fatalf("Complete of a new state made %d fsyncs of state/, want 1", got-n)
	}
	if m := e.get(id); m.Recipients[1].Attempts != 2 {
		t.Fatalf("state after Complete: %+v", m.Recipients[1])
	}
}
