package queuetest

import (
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/queue"
)

// Open makes an empty queue for one test, reading the time from now. It
// returns the queue and a restart function that closes it and opens the
// same storage again, as after a crash or a restart of the process, and
// returns the new queue. Whatever Open makes is released when t ends.
type Open func(t *testing.T, now func() time.Time) (q queue.DeliveryQueue, restart func() queue.DeliveryQueue)

// Clock is a settable clock: the suite moves it to make leases expire and
// deferred recipients due. Deliverer tests use it too.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock gives a clock standing at 2026-03-01 12:00 UTC.
func NewClock() *Clock { return &Clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Run runs the conformance suite against the queues open makes.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		f    func(*testing.T, *harness)
	}{
		{"EnqueueIsDurable", testEnqueueIsDurable},
		{"EnqueueRefusesBadEnvelope", testEnqueueRefusesBadEnvelope},
		{"EnqueueIDIsIdempotent", testEnqueueIDIsIdempotent},
		{"WaitWakesOnEnqueue", testWaitWakesOnEnqueue},
		{"ClaimGivesDueMessagesOnly", testClaimGivesDueMessagesOnly},
		{"LeaseExpiryReturnsMessageToOthers", testLeaseExpiryReturnsMessage},
		{"ExpiredLeaseCannotComplete", testExpiredLeaseCannotComplete},
		{"RenewKeepsLease", testRenewKeepsLease},
		{"RecordPartialOutcome", testRecordPartialOutcome},
		{"DeferAndBounce", testDeferAndBounce},
		{"CompleteRemovesFinal", testCompleteRemovesFinal},
		{"ReleaseLeavesMessageDue", testReleaseLeavesMessageDue},
		{"QuarantineDropsMessage", testQuarantineDropsMessage},
		{"AdminBusyWhileLeased", testAdminBusyWhileLeased},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &harness{t: t, clk: NewClock()}
			h.q, h.restart = open(t, h.clk.Now)
			tt.f(t, h)
		})
	}
}

type harness struct {
	t       *testing.T
	clk     *Clock
	q       queue.DeliveryQueue
	restart func() queue.DeliveryQueue
}

func (h *harness) enqueue(to ...string) string {
	h.t.Helper()
	id, err := h.q.Enqueue(h.t.Context(), queue.Envelope{From: "alice@sender.test", To: to, User: "alice"},
		strings.NewReader(body(to[0])))
	if err != nil {
		h.t.Fatal(err)
	}
	return id
}

func body(s string) string { return "Subject: " + s + "\r\n\r\nHello, " + s + ".\r\n" }

// claim claims up to max messages for owner with a lease of an hour.
func (h *harness) claim(owner string, max int) []queue.Claim {
	h.t.Helper()
	return h.claimFor(owner, time.Hour, max)
}

func (h *harness) claimFor(owner string, lease time.Duration, max int) []queue.Claim {
	h.t.Helper()
	cs, err := h.q.Claim(h.t.Context(), owner, lease, max)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, c := range cs {
		if c.Owner != owner || !c.Expires.Equal(h.clk.Now().Add(lease)) {
			h.t.Fatalf("claim of %s: owner %q expires %v, want %q and %v", c.ID, c.Owner, c.Expires, owner, h.clk.Now().Add(lease))
		}
	}
	return cs
}

func ids(cs []queue.Claim) string {
	var out []string
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return strings.Join(out, ",")
}

func (h *harness) get(id string) queue.Message {
	h.t.Helper()
	m, err := h.q.Get(h.t.Context(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return m
}

func (h *harness) must(err error) {
	h.t.Helper()
	if err != nil {
		h.t.Fatal(err)
	}
}

// deliverAll marks every open recipient of c delivered.
func deliverAll(c *queue.Claim) {
	for i := range c.Recipients {
		if !c.Recipients[i].Status.Final() {
			c.Recipients[i].Status = queue.Delivered
			c.Recipients[i].Attempts++
		}
	}
}

func testEnqueueIsDurable(t *testing.T, h *harness) {
	id := h.enqueue("bob@rcpt.test", "carol@rcpt.test")
	h.q = h.restart()
	m := h.get(id)
	if m.Envelope.From != "alice@sender.test" || len(m.Recipients) != 2 ||
		m.Recipients[0].Status != queue.Pending || m.Recipients[1].Addr != "carol@rcpt.test" {
		t.Fatalf("after a restart: %+v", m)
	}
	rc, err := h.q.Body(t.Context(), id)
	h.must(err)
	b, err := io.ReadAll(rc)
	h.must(err)
	h.must(rc.Close())
	if string(b) != body("bob@rcpt.test") {
		t.Fatalf("body after a restart: %q", b)
	}
	if cs := h.claim("one", 10); ids(cs) != id {
		t.Fatalf("claimed %q after a restart, want %s", ids(cs), id)
	}
}

func testEnqueueRefusesBadEnvelope(t *testing.T, h *harness) {
	_, err := h.q.Enqueue(t.Context(), queue.Envelope{From: "alice@sender.test"}, strings.NewReader(body("x")))
	if !errors.Is(err, queue.ErrInvalid) {
		t.Fatalf("Enqueue without recipients: %v, want ErrInvalid", err)
	}
	if l, err := h.q.List(t.Context()); err != nil || len(l) != 0 {
		t.Fatalf("List after a refused Enqueue: %v %v", l, err)
	}
}

func testEnqueueIDIsIdempotent(t *testing.T, h *harness) {
	env := queue.Envelope{To: []string{"alice@sender.test"}}
	for range 2 {
		h.must(h.q.EnqueueID(t.Context(), "dsn-1", env, strings.NewReader(body("dsn"))))
	}
	if l, err := h.q.List(t.Context()); err != nil || len(l) != 1 || l[0].ID != "dsn-1" {
		t.Fatalf("List after EnqueueID twice: %+v %v", l, err)
	}
}

func testWaitWakesOnEnqueue(t *testing.T, h *harness) {
	// Drain a wake-up left from an earlier call, if any.
	select {
	case <-h.q.Wait():
	default:
	}
	h.enqueue("bob@rcpt.test")
	select {
	case <-h.q.Wait():
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not wake after Enqueue")
	}
}

func testClaimGivesDueMessagesOnly(t *testing.T, h *harness) {
	a := h.enqueue("a@rcpt.test")
	h.clk.Advance(time.Second)
	b := h.enqueue("b@rcpt.test")
	if got := h.claimFor("one", 24*time.Hour, 1); ids(got) != a {
		t.Fatalf("first claim %q, want the older %s", ids(got), a)
	}
	cb := h.claim("two", 10)
	if ids(cb) != b {
		t.Fatalf("second claim %q, want %s (a is leased)", ids(cb), b)
	}
	if got := h.claim("three", 10); len(got) != 0 {
		t.Fatalf("claimed %q while both are leased", ids(got))
	}
	// b's recipient is deferred an hour: not due until then.
	h.must(h.q.Defer(t.Context(), &cb[0], h.clk.Now().Add(time.Hour), "451 4.3.0 try later"))
	h.must(h.q.Complete(t.Context(), &cb[0]))
	if got := h.claim("three", 10); len(got) != 0 {
		t.Fatalf("claimed %q before it is due", ids(got))
	}
	h.clk.Advance(time.Hour)
	got := h.claim("three", 10)
	if ids(got) != b || got[0].Recipients[0].Status != queue.Deferred || got[0].Recipients[0].Attempts != 1 {
		t.Fatalf("claim once due: %+v", got)
	}
}

func testLeaseExpiryReturnsMessage(t *testing.T, h *harness) {
	id := h.enqueue("bob@rcpt.test")
	c1 := h.claimFor("one", time.Minute, 10)
	if len(c1) != 1 {
		t.Fatalf("claimed %q", ids(c1))
	}
	h.clk.Advance(59 * time.Second)
	if got := h.claim("two", 10); len(got) != 0 {
		t.Fatalf("claimed %q while leased", ids(got))
	}
	h.clk.Advance(2 * time.Second)
	c2 := h.claim("two", 10)
	if ids(c2) != id || c2[0].Token == c1[0].Token {
		t.Fatalf("after the lease ran out: claimed %q, token %d (was %d)", ids(c2), c2[0].Token, c1[0].Token)
	}
	// The first owner lost the message: it can change nothing.
	deliverAll(&c1[0])
	for name, err := range map[string]error{
		"Record":   h.q.Record(t.Context(), &c1[0]),
		"Complete": h.q.Complete(t.Context(), &c1[0]),
		"Release":  h.q.Release(t.Context(), &c1[0]),
		"Renew":    h.q.Renew(t.Context(), &c1[0], time.Hour),
	} {
		if !errors.Is(err, queue.ErrLeaseLost) {
			t.Errorf("%s under the lost lease: %v, want ErrLeaseLost", name, err)
		}
	}
	if m := h.get(id); m.Recipients[0].Status != queue.Pending {
		t.Fatalf("the lost lease changed the message: %+v", m.Recipients[0])
	}
	deliverAll(&c2[0])
	h.must(h.q.Complete(t.Context(), &c2[0]))
	if _, err := h.q.Get(t.Context(), id); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("Get after Complete: %v, want ErrNotFound", err)
	}
}

func testExpiredLeaseCannotComplete(t *testing.T, h *harness) {
	id := h.enqueue("bob@rcpt.test")
	c := h.claimFor("one", time.Minute, 10)
	h.clk.Advance(time.Minute)
	deliverAll(&c[0])
	if err := h.q.Complete(t.Context(), &c[0]); !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("Complete after the lease ran out: %v, want ErrLeaseLost", err)
	}
	if got := h.claim("two", 10); ids(got) != id || got[0].Recipients[0].Status != queue.Pending {
		t.Fatalf("after a refused Complete: claimed %+v, want %s still pending", got, id)
	}
}

func testRenewKeepsLease(t *testing.T, h *harness) {
	h.enqueue("bob@rcpt.test")
	c := h.claimFor("one", time.Minute, 10)
	h.clk.Advance(50 * time.Second)
	h.must(h.q.Renew(t.Context(), &c[0], time.Minute))
	if want := h.clk.Now().Add(time.Minute); !c[0].Expires.Equal(want) {
		t.Fatalf("Renew: expires %v, want %v", c[0].Expires, want)
	}
	h.clk.Advance(50 * time.Second)
	if got := h.claim("two", 10); len(got) != 0 {
		t.Fatalf("claimed %q under a renewed lease", ids(got))
	}
	deliverAll(&c[0])
	h.must(h.q.Complete(t.Context(), &c[0]))
}

func testRecordPartialOutcome(t *testing.T, h *harness) {
	id := h.enqueue("now@rcpt.test", "later@rcpt.test", "never@rcpt.test")
	c := h.claim("one", 10)[0]
	now := h.clk.Now()
	c.Recipients[0].Status, c.Recipients[0].Attempts, c.Recipients[0].Reply = queue.Delivered, 1, "250 2.0.0 ok"
	c.Recipients[1].Status, c.Recipients[1].Attempts, c.Recipients[1].Next = queue.Deferred, 1, now.Add(time.Hour)
	c.Recipients[2].Status, c.Recipients[2].Attempts, c.Recipients[2].Reply = queue.Bounced, 1, "550 5.1.1 no such user"
	c.DSNs = 1
	h.must(h.q.Record(t.Context(), &c))
	h.q = h.restart() // the lease is gone with the process; the state is not
	m := h.get(id)
	if m.Recipients[0].Status != queue.Delivered || m.Recipients[1].Status != queue.Deferred ||
		!m.Recipients[1].Next.Equal(now.Add(time.Hour)) || m.Recipients[2].Reply != "550 5.1.1 no such user" || m.DSNs != 1 {
		t.Fatalf("recorded state after a restart: %+v", m)
	}
	if got := h.claim("one", 10); len(got) != 0 {
		t.Fatalf("claimed %q before the deferred recipient is due", ids(got))
	}
	h.clk.Advance(time.Hour)
	got := h.claim("one", 10)
	if ids(got) != id || got[0].Recipients[0].Status != queue.Delivered {
		t.Fatalf("claim once due: %+v", got)
	}
}

func testDeferAndBounce(t *testing.T, h *harness) {
	id := h.enqueue("a@rcpt.test", "b@rcpt.test")
	c := h.claim("one", 10)[0]
	c.Recipients[0].Status, c.Recipients[0].Attempts = queue.Delivered, 1
	next := h.clk.Now().Add(10 * time.Minute)
	h.must(h.q.Defer(t.Context(), &c, next, "451 4.3.0 try later"))
	if r := c.Recipients[1]; r.Status != queue.Deferred || !r.Next.Equal(next) || r.Attempts != 1 || r.Reply != "451 4.3.0 try later" {
		t.Fatalf("after Defer: %+v", r)
	}
	if r := c.Recipients[0]; r.Status != queue.Delivered || r.Attempts != 1 {
		t.Fatalf("Defer changed a final recipient: %+v", r)
	}
	h.must(h.q.Bounce(t.Context(), &c, "message expired"))
	want := "message expired; last error: 451 4.3.0 try later"
	if r := c.Recipients[1]; r.Status != queue.Bounced || r.Reply != want || !r.Next.IsZero() {
		t.Fatalf("after Bounce: %+v, want bounced with %q", r, want)
	}
	if m := h.get(id); m.Recipients[1].Status != queue.Bounced || m.Recipients[1].Reply != want || m.Recipients[0].Status != queue.Delivered {
		t.Fatalf("stored after Bounce: %+v", m.Recipients)
	}
	h.must(h.q.Complete(t.Context(), &c))
	if _, err := h.q.Get(t.Context(), id); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("Get after Complete of a final message: %v, want ErrNotFound", err)
	}
}

func testCompleteRemovesFinal(t *testing.T, h *harness) {
	done := h.enqueue("a@rcpt.test")
	open := h.enqueue("b@rcpt.test", "c@rcpt.test")
	for _, c := range h.claim("one", 10) {
		if c.ID == done {
			deliverAll(&c)
		} else {
			// Not recorded before Complete: Complete stores it.
			c.Recipients[0].Status, c.Recipients[0].Attempts = queue.Delivered, 1
			c.Recipients[1].Status, c.Recipients[1].Attempts, c.Recipients[1].Next = queue.Deferred, 1, h.clk.Now().Add(time.Hour)
		}
		h.must(h.q.Complete(t.Context(), &c))
	}
	if _, err := h.q.Get(t.Context(), done); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("Get of a completed message: %v, want ErrNotFound", err)
	}
	h.q = h.restart()
	if m := h.get(open); m.Recipients[0].Status != queue.Delivered || m.Recipients[1].Status != queue.Deferred {
		t.Fatalf("state stored by Complete, after a restart: %+v", m.Recipients)
	}
}

func testReleaseLeavesMessageDue(t *testing.T, h *harness) {
	id := h.enqueue("bob@rcpt.test")
	c := h.claim("one", 10)[0]
	deliverAll(&c) // changed, but not recorded: Release keeps nothing of it
	h.must(h.q.Release(t.Context(), &c))
	got := h.claim("two", 10)
	if ids(got) != id || got[0].Recipients[0].Status != queue.Pending {
		t.Fatalf("after Release: claimed %+v, want %s pending", got, id)
	}
}

func testQuarantineDropsMessage(t *testing.T, h *harness) {
	id := h.enqueue("bob@rcpt.test")
	c := h.claim("one", 10)[0]
	h.must(h.q.Quarantine(t.Context(), &c, errors.New("test: damaged")))
	if _, err := h.q.Get(t.Context(), id); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("Get of a quarantined message: %v, want ErrNotFound", err)
	}
	h.clk.Advance(24 * time.Hour)
	if got := h.claim("one", 10); len(got) != 0 {
		t.Fatalf("claimed %q after quarantine", ids(got))
	}
}

func testAdminBusyWhileLeased(t *testing.T, h *harness) {
	id := h.enqueue("bob@rcpt.test")
	c := h.claimFor("one", time.Minute, 10)
	if err := h.q.Remove(t.Context(), id); !errors.Is(err, queue.ErrBusy) {
		t.Fatalf("Remove while leased: %v, want ErrBusy", err)
	}
	if err := h.q.Retry(t.Context(), id); !errors.Is(err, queue.ErrBusy) {
		t.Fatalf("Retry while leased: %v, want ErrBusy", err)
	}
	// Once the lease ran out an admin may remove it, and the old claim is
	// fenced off.
	h.clk.Advance(2 * time.Minute)
	h.must(h.q.Remove(t.Context(), id))
	if err := h.q.Record(t.Context(), &c[0]); !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("Record after Remove: %v, want ErrLeaseLost", err)
	}
}
