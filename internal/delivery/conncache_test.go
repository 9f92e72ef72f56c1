package delivery

import (
	"github.com/dkimd/dkimd/internal/queue"

	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// runInBackground runs the deliverer until the test ends.
func (e *env) runInBackground() {
	e.t.Helper()
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.d.Run(ctx)
	}()
	e.t.Cleanup(func() { cancel(); <-done })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkTransactions fails unless each MAIL on a connection comes when no
// mail transaction is open there: before the first, or after the end of a
// message's data (the reply to the final dot closes the transaction, RFC
// 5321 §4.1.1.4) or RSET (§4.1.1.5). It returns how many RSETs were sent.
func checkTransactions(t *testing.T, conns [][]string) (rsets int) {
	t.Helper()
	for i, cmds := range conns {
		open := false
		for j, c := range cmds {
			switch c {
			case "MAIL":
				if open {
					t.Fatalf("connection %d: MAIL in an open transaction: %q", i, cmds[:j+1])
				}
				open = true
			case ".":
				open = false
			case "RSET":
				rsets++
				open = false
			}
		}
	}
	return rsets
}

func TestConnectionReuse(t *testing.T) {
	tests := []struct {
		name      string
		idle      time.Duration
		wantConns int
	}{
		{"one connection for all messages", 0, 1},
		{"reuse off: one connection per message", -1, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(o *Options) { o.Concurrency, o.ConnectionIdle = 1, tc.idle })
			p := e.viaProxy()
			for i := range 5 {
				e.enqueue("alice@sender.test", []string{"bob@rcpt.test"}, testBody(fmt.Sprintf("reuse%d", i)))
			}
			e.runOnce()
			if n := len(e.sink.Delivered()); n != 5 {
				t.Fatalf("%d delivered, want 5", n)
			}
			if n := p.Conns(); n != tc.wantConns {
				t.Fatalf("%d connections to the sink, want %d", n, tc.wantConns)
			}
			if l := e.list(); len(l) != 0 {
				t.Fatalf("%d messages left", len(l))
			}
			// RunOnce leaves no connection open.
			waitFor(t, "connections closed", func() bool { return p.Open() == 0 })
			// After a reply to the final dot the next MAIL follows at once:
			// no RSET, and so no EHLO again either.
			conns := p.Commands()
			if n := checkTransactions(t, conns); n != 0 {
				t.Fatalf("%d RSETs, want none: %q", n, conns)
			}
			for i, cmds := range conns {
				first := slices.Index(cmds, "MAIL")
				if first < 0 || slices.Contains(cmds[first:], "EHLO") {
					t.Fatalf("connection %d: %q, want EHLO only before the first MAIL", i, cmds)
				}
			}
		})
	}
}

// TestReusedConnectionDropped: a cached connection the server closed in the
// meantime fails at MAIL (no RSET goes first); the message goes out on a
// new connection at once, not deferred, and nothing is lost.
func TestReusedConnectionDropped(t *testing.T) {
	tests := []struct {
		name string
		drop func(e *env, p *smtpProxy)
	}{
		{"closed without a word", func(e *env, p *smtpProxy) { e.sink.DropConns() }},
		{"421 then closed, as on an idle timeout (RFC 5321 §3.8)", func(e *env, p *smtpProxy) {
			p.Drop("421 4.4.2 sink.test idle timeout\r\n")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(o *Options) { o.Concurrency, o.PollInterval = 1, 10*time.Millisecond })
			p := e.viaProxy()
			e.runInBackground()
			e.enqueue("alice@sender.test", []string{"bob@rcpt.test"}, testBody("first"))
			waitFor(t, "first message", func() bool { return len(e.sink.Delivered()) == 1 })
			waitFor(t, "first message removed", func() bool { return len(e.list()) == 0 })
			if n := p.Open(); n != 1 {
				t.Fatalf("%d connections open after the first message, want 1 (cached)", n)
			}
			tc.drop(e, p)
			waitFor(t, "connection to drop", func() bool { return p.Open() == 0 })
			e.enqueue("alice@sender.test", []string{"bob@rcpt.test"}, testBody("second"))
			waitFor(t, "second message", func() bool { return len(e.sink.Delivered()) == 2 })
			waitFor(t, "second message removed", func() bool { return len(e.list()) == 0 })
			if n := e.m.Deferred.Load(); n != 0 {
				t.Fatalf("%d deferred: a dropped cached connection must not defer", n)
			}
			if n := p.Conns(); n != 2 {
				t.Fatalf("%d connections, want 2 (the dropped one and a new one)", n)
			}
			if got := e.sink.Delivered()[1]; string(got.Data) != testBody("second") {
				t.Fatalf("second message arrived as %q", got.Data)
			}
			checkTransactions(t, p.Commands())
		})
	}
}

// TestAllRecipientsRefusedThenRSET: a transaction in which every RCPT was
// refused sends no DATA, so it is still open on the server; the next MAIL
// on that connection must come after RSET, or a server that refuses a
// nested MAIL (Postfix: 503 5.5.1) would fail the next message.
func TestAllRecipientsRefusedThenRSET(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Concurrency = 1 })
	p := e.viaProxy()
	e.sink.SetRcpt(func(to string) error {
		if to == "nobody@rcpt.test" {
			return userErr
		}
		return nil
	})
	// Whatever the order, one of the two refused messages is followed by
	// another message.
	refused := []string{
		e.enqueue("alice@sender.test", []string{"nobody@rcpt.test"}, testBody("refused1")),
		e.enqueue("alice@sender.test", []string{"nobody@rcpt.test"}, testBody("refused2")),
	}
	e.enqueue("alice@sender.test", []string{"bob@rcpt.test"}, testBody("ok1"))
	e.enqueue("alice@sender.test", []string{"bob@rcpt.test"}, testBody("ok2"))
	e.runOnce()
	if n := p.Conns(); n != 1 {
		t.Fatalf("%d connections, want 1 (reused after RSET)", n)
	}
	bob := 0
	for _, r := range e.sink.Delivered() {
		if slices.Contains(r.To, "bob@rcpt.test") {
			bob++
		}
	}
	if bob != 2 {
		t.Fatalf("bob got %d messages, want 2", bob)
	}
	for _, id := range refused {
		if _, err := e.sp.Get(e.ctx, id); err == nil {
			t.Fatalf("refused message %s still queued, want bounced", id)
		}
	}
	conns := p.Commands()
	if n := checkTransactions(t, conns); n == 0 {
		t.Fatalf("no RSET after a transaction with every recipient refused: %q", conns)
	}
}

// TestIdleConnectionClosed: a cached connection is closed once idle for
// ConnectionIdle.
func TestIdleConnectionClosed(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Concurrency, o.PollInterval, o.ConnectionIdle = 1, 10*time.Millisecond, 100*time.Millisecond
	})
	e.runInBackground()
	e.enqueue("alice@sender.test", []string{"bob@rcpt.test"}, testBody("idle"))
	waitFor(t, "message", func() bool { return len(e.sink.Delivered()) == 1 })
	start := time.Now()
	waitFor(t, "idle connection closed", func() bool { return e.sink.Open() == 0 })
	if time.Since(start) > 2*time.Second {
		t.Fatalf("idle connection closed after %v, want about 100ms", time.Since(start))
	}
}

// stateSpy is a spool that counts state writes and can fail removals.
type stateSpy struct {
	*queue.Spool
	updates    int
	failDone   bool // Complete fails
	failUpdate bool
}

func (s *stateSpy) Record(ctx context.Context, c *queue.Claim) error {
	s.updates++
	if s.failUpdate {
		return fmt.Errorf("%w: test", queue.ErrStorage)
	}
	return s.Spool.Record(ctx, c)
}

func (s *stateSpy) Complete(ctx context.Context, c *queue.Claim) error {
	if s.failDone {
		return fmt.Errorf("%w: test", queue.ErrStorage)
	}
	return s.Spool.Complete(ctx, c)
}

// TestDeliveredRemovedWithoutStateWrite: a message delivered to every
// recipient is removed without its state being written first; when the
// removal does not happen (a crash, a failed removal) the message is sent
// again after a restart (at least once), unless its state could be saved.
func TestDeliveredRemovedWithoutStateWrite(t *testing.T) {
	rcpts := []string{"bob@rcpt.test", "carol@rcpt.test"}
	tests := []struct {
		name        string
		failDone    bool
		failUpdate  bool
		tempFail    string // a recipient the sink answers 451
		wantUpdates int
		wantQueued  bool // before the restart
		wantCopies  int  // of bob's message at the sink, after the restart
	}{
		{name: "all delivered: removed, no state write", wantUpdates: 0, wantCopies: 1},
		{name: "one deferred: state written", tempFail: "carol@rcpt.test", wantUpdates: 1, wantQueued: true, wantCopies: 1},
		{name: "removal fails: state written instead", failDone: true, wantUpdates: 1, wantQueued: true, wantCopies: 1},
		{name: "crash before removal: sent again", failDone: true, failUpdate: true, wantUpdates: 1, wantQueued: true, wantCopies: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			spy := &stateSpy{Spool: e.sp, failDone: tc.failDone, failUpdate: tc.failUpdate}
			e.d.q = spy
			if tc.tempFail != "" {
				e.sink.SetRcpt(func(to string) error {
					if to == tc.tempFail {
						return tempRcptErr
					}
					return nil
				})
			}
			id := e.enqueue("alice@sender.test", rcpts, testBody("nostate"))
			e.runOnce()
			if spy.updates != tc.wantUpdates {
				t.Fatalf("%d state writes, want %d", spy.updates, tc.wantUpdates)
			}
			if queued := len(e.list()) == 1; queued != tc.wantQueued {
				t.Fatalf("queued after delivery: %v, want %v", queued, tc.wantQueued)
			}
			if !tc.wantQueued {
				if _, err := os.Stat(filepath.Join(e.dir, "state", id)); !os.IsNotExist(err) {
					t.Fatalf("state file of a removed message: %v", err)
				}
			}

			// Restart with a healthy spool and deliver what is left.
			e.sink.SetRcpt(nil)
			e.clk.Advance(2 * time.Hour) // past any retry time
			e.open()
			e.runOnce()
			if l := e.list(); len(l) != 0 {
				t.Fatalf("%d messages left after the restart", len(l))
			}
			copies := 0
			for _, r := range e.sink.Delivered() {
				for _, to := range r.To {
					if to == "bob@rcpt.test" {
						copies++
					}
				}
			}
			if copies != tc.wantCopies {
				t.Fatalf("bob got %d copies, want %d", copies, tc.wantCopies)
			}
		})
	}
}

var tempRcptErr = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}

// leaseLoser is a spool on which every lease is lost before the first
// attempt, as when a deliverer stalled past its lease and another node
// claimed the message.
type leaseLoser struct{ *queue.Spool }

func (l leaseLoser) Renew(ctx context.Context, c *queue.Claim, d time.Duration) error {
	return fmt.Errorf("%w: test", queue.ErrLeaseLost)
}

// TestLostLeaseStopsDelivery: a deliverer whose lease is gone sends
// nothing and records nothing; the message stays as it was, for the owner
// of the new lease.
func TestLostLeaseStopsDelivery(t *testing.T) {
	e := newEnv(t, nil)
	e.d.q = leaseLoser{e.sp}
	id := e.enqueue("alice@sender.test", []string{"bob@rcpt.test"}, testBody("lost"))
	e.runOnce()
	if n := len(e.sink.Messages()); n != 0 {
		t.Fatalf("sink got %d messages under a lost lease", n)
	}
	if got := statuses(e.get(id)); got != "bob@rcpt.test=pending/0" {
		t.Fatalf("state after a lost lease: %s", got)
	}
	e.d.q = e.sp
	e.runOnce()
	if n := len(e.sink.Delivered()); n != 1 {
		t.Fatalf("sink got %d messages from the next owner, want 1", n)
	}
}
