package delivery

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/delivery/deliverytest"
	"github.com/dkimd/dkimd/internal/queue"
	"github.com/dkimd/dkimd/internal/queue/queuetest"
)

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// env is a spool, a sink and a deliverer that sends everything to the sink
// as a smart host, under a test clock.
type env struct {
	t    *testing.T
	ctx  context.Context
	clk  *queuetest.Clock
	m    *queue.Metrics
	dir  string
	sp   *queue.Spool
	sink *deliverytest.Sink
	d    *Deliverer
}

func newEnv(t *testing.T, mod func(*Options)) *env {
	t.Helper()
	e := &env{t: t, ctx: t.Context(), clk: queuetest.NewClock(), m: new(queue.Metrics), dir: t.TempDir()}
	e.sink = deliverytest.NewSink(t, deliverytest.SinkOptions{})
	e.open()
	opts := Options{
		SmartHost:      e.sink.Addr,
		HeloName:       "dkimd.test",
		Now:            e.clk.Now,
		Log:            testLogger(t),
		Metrics:        e.m,
		CommandTimeout: 2 * time.Second,
		DataTimeout:    2 * time.Second,
		ConnectTimeout: 2 * time.Second,
		RetryBase:      time.Minute,
		RetryMax:       time.Hour,
	}
	if mod != nil {
		mod(&opts)
	}
	e.d = NewDeliverer(e.sp, opts)
	return e
}

// open (re)opens the spool, as after a restart.
func (e *env) open() {
	e.t.Helper()
	if e.sp != nil {
		if err := e.sp.Close(); err != nil {
			e.t.Fatal(err)
		}
	} else {
		e.t.Cleanup(func() {
			if err := e.sp.Close(); err != nil {
				e.t.Error(err)
			}
		})
	}
	sp, err := queue.OpenSpool(e.dir, queue.SpoolOptions{Now: e.clk.Now, Log: testLogger(e.t), Metrics: e.m})
	if err != nil {
		e.t.Fatal(err)
	}
	e.sp = sp
	if e.d != nil {
		e.d.q = sp
	}
}

func testBody(subject string) string {
	return "From: Alice <alice@sender.test>\r\nTo: bob@rcpt.test\r\nSubject: " + subject +
		"\r\nMessage-ID: <" + subject + "@sender.test>\r\n\r\nHello, " + subject + ".\r\n"
}

func (e *env) enqueue(from string, to []string, body string) string {
	e.t.Helper()
	id, err := e.sp.Enqueue(e.ctx, queue.Envelope{From: from, To: to, User: "alice", Decision: "signed d=sender.test"}, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

func (e *env) runOnce() {
	e.t.Helper()
	if err := e.d.RunOnce(e.ctx); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) get(id string) queue.Message {
	e.t.Helper()
	m, err := e.sp.Get(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

func (e *env) list() []queue.Summary {
	e.t.Helper()
	l, err := e.sp.List(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return l
}

// readAll reads a message body from the spool.
func (e *env) body(id string) []byte {
	e.t.Helper()
	rc, err := e.sp.Body(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func statuses(m queue.Message) string {
	var b bytes.Buffer
	for i, r := range m.Recipients {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%s/%d", r.Addr, r.Status, r.Attempts)
	}
	return b.String()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

func readFile(p string) ([]byte, error) { return os.ReadFile(p) }

func writeFile(p string, b []byte) error { return os.WriteFile(p, b, 0o600) }

func contextWithCancel(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithCancel(ctx)
}
