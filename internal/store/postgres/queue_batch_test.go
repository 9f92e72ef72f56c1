package postgres

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/queue"
	"github.com/dkimd/dkimd/internal/store/storetest"
	"github.com/jackc/pgx/v5"
)

// clockNode opens the database and its queue as one dkimd node whose clock
// is clk, without LISTEN (so that only its own Enqueue wakes it).
func clockNode(t *testing.T, url string, clk *storetest.Clock) (*DB, *Queue) {
	t.Helper()
	db := openTest(t, url, clk.Now)
	q := db.Queue(QueueOptions{Now: clk.Now})
	t.Cleanup(func() {
		q.Close()
		db.Close()
	})
	return db, q
}

// newClock is a settable clock shared by the nodes of a test.
func newClock() *storetest.Clock {
	return storetest.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
}

func readBody(t *testing.T, q *Queue, id string) (string, error) {
	t.Helper()
	rc, err := q.Body(context.Background(), id)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return string(b), err
}

// TestQueueClaimReturnsSmallBodies: a claim brings the bodies of small
// messages with their rows, so that the deliverer reads them without a
// statement of its own (the body's row is gone from the table here, and
// Body still gives it); a large body is read when asked for; once the
// claim ends the body is read from the table again.
func TestQueueClaimReturnsSmallBodies(t *testing.T) {
	ctx := context.Background()
	db, q := node(t, pg.Database(t))
	small := "Subject: small\r\n\r\nhello\r\n"
	large := "Subject: large\r\n\r\n" + strings.Repeat("x", claimBodyMax) + "\r\n"
	ids := map[string]string{}
	for _, b := range []string{small, large} {
		id, err := q.Enqueue(ctx, queue.Envelope{From: "a@example.com", To: []string{"r@example.org"}}, strings.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		ids[b] = id
	}
	cs, err := q.Claim(ctx, "node1", time.Hour, 10)
	if err != nil || len(cs) != 2 {
		t.Fatalf("claim: %d messages, %v", len(cs), err)
	}
	if _, err := db.pool.Exec(ctx, `DELETE FROM queue_bodies`); err != nil {
		t.Fatal(err)
	}
	if got, err := readBody(t, q, ids[small]); err != nil || got != small {
		t.Fatalf("small body after its claim: %q %v, want it from the claim", got, err)
	}
	if _, err := readBody(t, q, ids[large]); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("large body: %v, want it read from the table (ErrNotFound, its row is gone)", err)
	}
	for i := range cs {
		if cs[i].ID == ids[small] {
			if err := q.Release(ctx, &cs[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := readBody(t, q, ids[small]); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("small body after Release: %v, want it read from the table again", err)
	}
}

// TestQueueClaimDamagedBodyNotServed: a body that came with its claim but
// does not match its digest is not served from the claim; Body reads it
// and reports it corrupt.
func TestQueueClaimDamagedBodyNotServed(t *testing.T) {
	ctx := context.Background()
	db, q := node(t, pg.Database(t))
	var id string
	for k := range enqueueN(t, q, 1) {
		id = k
	}
	if _, err := db.pool.Exec(ctx, `UPDATE queue_bodies SET body = 'Subject: y' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if cs, err := q.Claim(ctx, "node1", time.Hour, 10); err != nil || len(cs) != 1 {
		t.Fatalf("claim: %d messages, %v", len(cs), err)
	}
	if b, err := readBody(t, q, id); !errors.Is(err, queue.ErrCorrupt) || b != "" {
		t.Fatalf("reading a damaged body: %q %v, want nothing and ErrCorrupt", b, err)
	}
}

// TestQueueSharedCompletionSurvivesNodeDeath: Completes that arrive while
// another Complete's DELETE is running (here: waiting on a row lock) wait
// and share the next DELETE; each returns only once its message is
// deleted, a Complete under a lease that another node took over fails with
// ErrLeaseLost without holding up the others, and after the node dies
// (its connections drop, nothing released) and every lease it held runs
// out, another node finds none of the completed messages: they are never
// delivered again.
func TestQueueSharedCompletionSurvivesNodeDeath(t *testing.T) {
	ctx := context.Background()
	url := pg.Database(t)
	clk := newClock()
	db1, q1 := clockNode(t, url, clk)
	_, q2 := clockNode(t, url, clk)

	stale := enqueueN(t, q1, 1)
	clk.Advance(time.Millisecond)
	want := enqueueN(t, q1, 20)
	lost, err := q1.Claim(ctx, "node1", time.Minute, 1)
	if err != nil || len(lost) != 1 || !stale[lost[0].ID] {
		t.Fatalf("claim: %d messages, %v", len(lost), err)
	}
	cs, err := q1.Claim(ctx, "node1", time.Hour, 100)
	if err != nil || len(cs) != 20 {
		t.Fatalf("claim: %d messages, %v", len(cs), err)
	}
	// node1's first lease runs out; node2 takes that message over.
	clk.Advance(2 * time.Minute)
	if got, err := q2.Claim(ctx, "node2", time.Hour, 100); err != nil || len(got) != 1 || !stale[got[0].ID] {
		t.Fatalf("node2 claimed %d messages (%v), want the one whose lease ran out", len(got), err)
	}

	// A transaction holds the row of the first message: its DELETE waits.
	tx, err := db1.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT 1 FROM queue_messages WHERE id = $1 FOR UPDATE`, cs[0].ID); err != nil {
		t.Fatal(err)
	}
	all := append([]queue.Claim{lost[0]}, cs...)
	errs := make([]error, len(all))
	var returned sync.WaitGroup
	for i := range all {
		for j := range all[i].Recipients {
			all[i].Recipients[j].Status = queue.Delivered
		}
	}
	returned.Go(func() { errs[1] = q1.Complete(ctx, &all[1]) })
	waitFor(t, "the first Complete's DELETE", func() bool {
		q1.comp.mu.Lock()
		defer q1.comp.mu.Unlock()
		return q1.comp.running
	})
	for i := range all {
		if i != 1 {
			returned.Go(func() { errs[i] = q1.Complete(ctx, &all[i]) })
		}
	}
	waitFor(t, "the other Completes to wait for the next DELETE", func() bool {
		q1.comp.mu.Lock()
		defer q1.comp.mu.Unlock()
		return len(q1.comp.pending) == len(all)-1
	})
	// None of them has returned: their messages are not deleted yet.
	if l, err := q2.List(ctx); err != nil || len(l) != len(all) {
		t.Fatalf("queue while the DELETE waits: %d messages, %v", len(l), err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	returned.Wait()
	for i, err := range errs {
		switch {
		case i == 0 && !errors.Is(err, queue.ErrLeaseLost):
			t.Errorf("Complete under a lease node2 took over: %v, want ErrLeaseLost", err)
		case i > 0 && err != nil:
			t.Errorf("Complete %d: %v", i, err)
		}
	}

	// node1 dies holding nothing it has not completed.
	q1.Close()
	db1.Close()
	clk.Advance(2 * time.Hour)
	got, err := q2.Claim(ctx, "node2", time.Hour, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range got {
		if want[c.ID] {
			t.Errorf("completed message %s claimed again after node1 died", c.ID)
		}
	}
	if len(got) != 1 || !stale[got[0].ID] {
		t.Errorf("node2 claimed %d messages, want only the one node1 had lost", len(got))
	}
	if st, err := q2.Stats(ctx); err != nil || st.Messages != 1 {
		t.Errorf("stats after the completions: %+v %v, want 1 message", st, err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestQueueIdleClaimFindsWhatBecameDue: after a Claim found every due
// message, the next finds a message at once when this node enqueued it or
// released it, or when another node's notification woke this one; a
// message that became due without a wake-up here (another node enqueued it
// without LISTEN) is found within idleRecheck.
func TestQueueIdleClaimFindsWhatBecameDue(t *testing.T) {
	ctx := context.Background()
	url := pg.Database(t)
	clk := newClock()
	_, q1 := clockNode(t, url, clk)
	_, q2 := clockNode(t, url, clk)
	claim := func(what string, want int) []queue.Claim {
		t.Helper()
		cs, err := q1.Claim(ctx, "node1", time.Hour, 10)
		if err != nil || len(cs) != want {
			t.Fatalf("%s: claimed %d, %v; want %d", what, len(cs), err, want)
		}
		return cs
	}
	claim("empty queue", 0)
	enqueueN(t, q1, 1)
	cs := claim("after an Enqueue here", 1)
	claim("drained", 0)
	if err := q1.Release(ctx, &cs[0]); err != nil {
		t.Fatal(err)
	}
	cs = claim("after a Release here", 1)
	cs[0].Recipients[0].Status = queue.Delivered
	if err := q1.Complete(ctx, &cs[0]); err != nil {
		t.Fatal(err)
	}
	claim("drained", 0)
	enqueueN(t, q2, 1)
	claim("another node's Enqueue, no wake-up, at once", 0)
	clk.Advance(idleRecheck)
	claim("another node's Enqueue, no wake-up, idleRecheck later", 1)

	// With LISTEN, another node's Enqueue wakes this one.
	db3 := openTest(t, url, clk.Now)
	q3 := db3.Queue(QueueOptions{Now: clk.Now, Listen: true})
	defer db3.Close()
	defer q3.Close()
	select { // the wake-up on connecting
	case <-q3.Wait():
	case <-time.After(10 * time.Second):
		t.Fatal("no wake-up when the listener connected")
	}
	if cs, err := q3.Claim(ctx, "node3", time.Hour, 10); err != nil || len(cs) != 0 {
		t.Fatalf("node3 claimed %d, %v", len(cs), err)
	}
	enqueueN(t, q2, 1)
	select {
	case <-q3.Wait():
	case <-time.After(5 * time.Second):
		t.Fatal("node3 was not woken by mail enqueued on node2")
	}
	if cs, err := q3.Claim(ctx, "node3", time.Hour, 10); err != nil || len(cs) != 1 {
		t.Fatalf("node3 after a notification: claimed %d, %v; want 1", len(cs), err)
	}
}

// TestQueueEnqueueLeasesToIdleDeliverer: while this node's deliverer has
// room (its last Claim gave fewer messages than it asked for), Enqueue
// leases the new message to it in the same statement: no other node can
// claim it, an admin sees it busy, and the deliverer's next Claim gives
// it, body included, fenced like any claim. A busy deliverer (its last
// Claim was full), or one that stopped claiming, leaves new mail to every
// node.
func TestQueueEnqueueLeasesToIdleDeliverer(t *testing.T) {
	ctx := context.Background()
	url := pg.Database(t)
	clk := newClock()
	db1, q1 := clockNode(t, url, clk)
	_, q2 := clockNode(t, url, clk)
	if cs, err := q1.Claim(ctx, "node1", time.Minute, 2); err != nil || len(cs) != 0 {
		t.Fatalf("claim: %d, %v", len(cs), err)
	}
	var id string
	for k := range enqueueN(t, q1, 1) {
		id = k
	}
	clk.Advance(idleRecheck)
	if cs, err := q2.Claim(ctx, "node2", time.Minute, 10); err != nil || len(cs) != 0 {
		t.Fatalf("node2 claimed %d (%v) a message leased to node1 at its enqueue", len(cs), err)
	}
	if err := q2.Remove(ctx, id); !errors.Is(err, queue.ErrBusy) {
		t.Fatalf("Remove of a message leased at its enqueue: %v, want ErrBusy", err)
	}
	if _, err := db1.pool.Exec(ctx, `DELETE FROM queue_bodies`); err != nil {
		t.Fatal(err)
	}
	cs, err := q1.Claim(ctx, "node1", time.Minute, 2)
	if err != nil || len(cs) != 1 || cs[0].ID != id || cs[0].Owner != "node1" || cs[0].Token == 0 ||
		cs[0].Recipients[0].Status != queue.Pending || cs[0].Envelope.From != "a@example.com" {
		t.Fatalf("node1's claim after its enqueue: %+v, %v", cs, err)
	}
	if b, err := readBody(t, q1, id); err != nil || b != "Subject: x\r\n\r\nbody\r\n" {
		t.Fatalf("body of a message leased at its enqueue: %q %v", b, err)
	}
	// The lease is in the table: a change under another token is refused.
	forged := cs[0]
	forged.Token++
	if err := q1.Release(ctx, &forged); !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("Release under a forged token: %v, want ErrLeaseLost", err)
	}
	cs[0].Recipients[0].Status = queue.Delivered
	if err := q1.Complete(ctx, &cs[0]); err != nil {
		t.Fatal(err)
	}

	// node1's deliverer is full: its last Claim gave all it asked for.
	_, q3 := clockNode(t, url, clk) // a node without a deliverer
	enqueueN(t, q3, 1)
	clk.Advance(idleRecheck)
	if cs, err := q1.Claim(ctx, "node1", time.Minute, 1); err != nil || len(cs) != 1 {
		t.Fatalf("claim: %d, %v", len(cs), err)
	}
	enqueueN(t, q1, 1)
	if cs, err := q2.Claim(ctx, "node2", time.Minute, 10); err != nil || len(cs) != 1 {
		t.Fatalf("node2 claimed %d (%v) of what node1 took while its deliverer was full, want 1", len(cs), err)
	}
	// node1's deliverer stopped claiming a while ago.
	if cs, err := q1.Claim(ctx, "node1", time.Minute, 5); err != nil || len(cs) != 0 {
		t.Fatalf("claim: %d, %v", len(cs), err)
	}
	clk.Advance(handoffFresh)
	enqueueN(t, q1, 1)
	if cs, err := q2.Claim(ctx, "node2", time.Minute, 10); err != nil || len(cs) != 1 {
		t.Fatalf("node2 claimed %d (%v) of what node1 took with no deliverer claiming, want 1", len(cs), err)
	}
}

// TestQueueHandoffOnCloseAndDeath: the messages Enqueue leased to this
// node's deliverer and that it did not take go to the other nodes at once
// when the node closes its queue, and when the lease runs out if it dies:
// an acknowledged message is never lost.
func TestQueueHandoffOnCloseAndDeath(t *testing.T) {
	ctx := context.Background()
	url := pg.Database(t)
	clk := newClock()
	_, q2 := clockNode(t, url, clk)
	for _, death := range []bool{false, true} {
		db1 := openTest(t, url, clk.Now)
		q1 := db1.Queue(QueueOptions{Now: clk.Now})
		if cs, err := q1.Claim(ctx, "node1", time.Minute, 5); err != nil || len(cs) != 0 {
			t.Fatalf("claim: %d, %v", len(cs), err)
		}
		want := enqueueN(t, q1, 3)
		if death {
			db1.Close() // its connections drop; nothing is given back
		}
		q1.Close()
		db1.Close()
		if death {
			if cs, err := q2.Claim(ctx, "node2", time.Minute, 10); err != nil || len(cs) != 0 {
				t.Fatalf("claimed %d (%v) while the dead node's leases run", len(cs), err)
			}
			clk.Advance(time.Minute)
		}
		cs, err := q2.Claim(ctx, "node2", time.Minute, 10)
		if err != nil || len(cs) != len(want) {
			t.Fatalf("death %v: node2 claimed %d (%v), want %d", death, len(cs), err, len(want))
		}
		for _, c := range cs {
			if !want[c.ID] {
				t.Fatalf("claimed %s, not one of node1's", c.ID)
			}
			c.Recipients[0].Status = queue.Delivered
			if err := q2.Complete(ctx, &c); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestQueueNodesDeliverEachMessageOnce has three nodes take mail and
// deliver from one queue at once, each with a deliverer that claims
// whenever it is woken or a message is done, as delivery.Deliverer does:
// whether a message is leased at its enqueue or claimed, and whichever
// completions share a DELETE, every message is delivered exactly once and
// the queue ends empty.
func TestQueueNodesDeliverEachMessageOnce(t *testing.T) {
	url := pg.Database(t)
	ctx, cancel := context.WithCancel(context.Background())
	var deliverers sync.WaitGroup
	defer func() {
		cancel()
		deliverers.Wait()
	}()
	var mu sync.Mutex
	got := map[string]string{}
	var nodes []*Queue
	for i := range 3 {
		_, q := node(t, url)
		nodes = append(nodes, q)
		owner := string(rune('1' + i))
		deliverers.Go(func() {
			const slots = 4
			free := make(chan struct{}, slots)
			for range slots {
				free <- struct{}{}
			}
			done := make(chan struct{}, 1)
			var work sync.WaitGroup
			defer work.Wait()
			for ctx.Err() == nil {
				if n := len(free); n > 0 {
					cs, err := q.Claim(ctx, "node"+owner, time.Minute, n)
					if err != nil && ctx.Err() == nil {
						t.Error(err)
					}
					for _, c := range cs {
						<-free
						work.Go(func() {
							defer func() {
								free <- struct{}{}
								select {
								case done <- struct{}{}:
								default:
								}
							}()
							mu.Lock()
							if prev, dup := got[c.ID]; dup {
								t.Errorf("%s delivered by node%s and node%s", c.ID, prev, owner)
							}
							got[c.ID] = owner
							mu.Unlock()
							if _, err := readBody(t, q, c.ID); err != nil {
								t.Error(err)
							}
							c.Recipients[0].Status = queue.Delivered
							if err := q.Complete(ctx, &c); err != nil {
								t.Error(err)
							}
						})
					}
				}
				select {
				case <-ctx.Done():
				case <-q.Wait():
				case <-done:
				case <-time.After(100 * time.Millisecond):
				}
			}
		})
	}
	want := map[string]bool{}
	var senders sync.WaitGroup
	for _, q := range nodes {
		for range 2 {
			senders.Go(func() {
				for range 50 {
					id, err := q.Enqueue(ctx, queue.Envelope{From: "a@example.com", To: []string{"r@example.org"}},
						strings.NewReader("Subject: x\r\n\r\nbody\r\n"))
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					want[id] = true
					mu.Unlock()
				}
			})
		}
	}
	senders.Wait()
	waitFor(t, "every message delivered", func() bool {
		st, err := nodes[0].Stats(ctx)
		return err == nil && st.Messages == 0
	})
	cancel()
	deliverers.Wait()
	mu.Lock()
	defer mu.Unlock()
	for id := range want {
		if got[id] == "" {
			t.Errorf("%s never delivered", id)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d delivered, %d enqueued", len(got), len(want))
	}
}

// TestQueueSharedCompletionRetriesDeadlock: a shared DELETE that PostgreSQL
// rolls back to break a deadlock (here with a transaction that locks the
// batch's rows in the other order; two nodes' DELETEs lock in the same
// order and do not deadlock) is run again: its Completes succeed, and
// their messages, delivered already, are not left to be delivered again
// when their leases end.
func TestQueueSharedCompletionRetriesDeadlock(t *testing.T) {
	ctx := context.Background()
	url := pg.Database(t)
	clk := newClock()
	db, q := clockNode(t, url, clk)
	enqueueN(t, q, 3)
	cs, err := q.Claim(ctx, "node1", time.Hour, 10)
	if err != nil || len(cs) != 3 {
		t.Fatalf("claim: %d messages, %v", len(cs), err)
	}
	for i := range cs {
		for j := range cs[i].Recipients {
			cs[i].Recipients[j].Status = queue.Delivered
		}
	}
	// blocker's DELETE runs first and waits, so that the other two share
	// the next one, which locks their rows in id order (the database's).
	blocker := cs[2]
	var first, second string
	if err := db.pool.QueryRow(ctx, `SELECT min(id), max(id) FROM queue_messages WHERE id = ANY($1)`,
		[]string{cs[0].ID, cs[1].ID}).Scan(&first, &second); err != nil {
		t.Fatal(err)
	}
	lock := func(id string) pgx.Tx {
		tx, err := db.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tx.Rollback(ctx) })
		// It waits long before looking for a deadlock, so that the DELETE
		// is the one rolled back.
		if _, err := tx.Exec(ctx, `SET LOCAL deadlock_timeout = '60s'`); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `SELECT 1 FROM queue_messages WHERE id = $1 FOR UPDATE`, id); err != nil {
			t.Fatal(err)
		}
		return tx
	}
	hold := lock(blocker.ID)
	errs := make([]error, 3)
	var done sync.WaitGroup
	done.Go(func() { errs[2] = q.Complete(ctx, &cs[2]) })
	waitFor(t, "the blocker's DELETE", func() bool {
		q.comp.mu.Lock()
		defer q.comp.mu.Unlock()
		return q.comp.running
	})
	for i := range 2 {
		done.Go(func() { errs[i] = q.Complete(ctx, &cs[i]) })
	}
	waitFor(t, "the two Completes to wait for the next DELETE", func() bool {
		q.comp.mu.Lock()
		defer q.comp.mu.Unlock()
		return len(q.comp.pending) == 2
	})
	// The other side of the deadlock holds the second row; the shared
	// DELETE takes the first, then waits for it.
	other := lock(second)
	if err := hold.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the shared DELETE to hold the first row", func() bool {
		tx, err := db.pool.Begin(ctx)
		if err != nil {
			return false
		}
		defer tx.Rollback(ctx)
		_, err = tx.Exec(ctx, `SELECT 1 FROM queue_messages WHERE id = $1 FOR UPDATE NOWAIT`, first)
		return isCode(err, "55P03") // lock_not_available
	})
	// Locking the first row closes the cycle; PostgreSQL breaks it by
	// rolling the DELETE back, and this lock is granted.
	if _, err := other.Exec(ctx, `SELECT 1 FROM queue_messages WHERE id = $1 FOR UPDATE`, first); err != nil {
		t.Fatalf("the transaction's second lock: %v (want the DELETE to be the one rolled back)", err)
	}
	if err := other.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	done.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Complete of %s: %v", cs[i].ID, err)
		}
	}
	if l, err := q.List(ctx); err != nil || len(l) != 0 {
		t.Fatalf("queue after the Completes: %d messages (%v), want none", len(l), err)
	}
}
