package queue

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable clock for tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// env is a spool under a test clock.
type env struct {
	t   *testing.T
	ctx context.Context
	clk *clock
	m   *Metrics
	dir string
	sp  *Spool
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, ctx: t.Context(), clk: newClock(), m: new(Metrics), dir: t.TempDir()}
	e.open()
	return e
}

// claim leases every message due now, for an hour.
func (e *env) claim() []Claim {
	e.t.Helper()
	cs, err := e.sp.Claim(e.ctx, "test", time.Hour, 1<<20)
	if err != nil {
		e.t.Fatal(err)
	}
	return cs
}

// deliverAll claims every due message, records each open recipient as
// delivered and completes it, as a deliverer whose next hop takes
// everything does; it returns the ids delivered.
func (e *env) deliverAll() []string {
	e.t.Helper()
	var ids []string
	for _, c := range e.claim() {
		for i := range c.Recipients {
			if !c.Recipients[i].Status.Final() {
				c.Recipients[i].Status = Delivered
				c.Recipients[i].Attempts++
			}
		}
		if err := e.sp.Complete(e.ctx, &c); err != nil {
			e.t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	return ids
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
	sp, err := OpenSpool(e.dir, SpoolOptions{Now: e.clk.Now, Log: testLogger(e.t), Metrics: e.m})
	if err != nil {
		e.t.Fatal(err)
	}
	e.sp = sp
}

func testBody(subject string) string {
	return "From: Alice <alice@sender.test>\r\nTo: bob@rcpt.test\r\nSubject: " + subject +
		"\r\nMessage-ID: <" + subject + "@sender.test>\r\n\r\nHello, " + subject + ".\r\n"
}

func (e *env) enqueue(from string, to []string, body string) string {
	e.t.Helper()
	id, err := e.sp.Enqueue(e.ctx, Envelope{From: from, To: to, User: "alice", Decision: "signed d=sender.test"}, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

func (e *env) get(id string) Message {
	e.t.Helper()
	m, err := e.sp.Get(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

func (e *env) list() []Summary {
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

func statuses(m Message) string {
	var b bytes.Buffer
	for i, r := range m.Recipients {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%s/%d", r.Addr, r.Status, r.Attempts)
	}
	return b.String()
}
