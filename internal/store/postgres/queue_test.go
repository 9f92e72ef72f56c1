package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/store/postgres/pgtest"

	"github.com/dkimd/dkimd/internal/queue"
	"github.com/dkimd/dkimd/internal/queue/queuetest"
)

// TestQueueConformance runs the DeliveryQueue conformance suite against the
// queue in PostgreSQL; a restart closes the queue and its database pool and
// opens both again, as a node does after a crash.
func TestQueueConformance(t *testing.T) {
	queuetest.Run(t, func(t *testing.T, now func() time.Time) (queue.DeliveryQueue, func() queue.DeliveryQueue) {
		url := pg.Database(t)
		var db *DB
		var q *Queue
		open := func() *Queue {
			db = openTest(t, url, now)
			q = db.Queue(QueueOptions{Now: now, Listen: true})
			return q
		}
		shut := func() {
			if err := q.Close(); err != nil {
				t.Error(err)
			}
			if err := db.Close(); err != nil {
				t.Error(err)
			}
		}
		open()
		t.Cleanup(shut)
		return q, func() queue.DeliveryQueue {
			shut()
			return open()
		}
	})
}

// node opens the database and its queue as one dkimd node would.
func node(t *testing.T, url string) (*DB, *Queue) {
	t.Helper()
	db := openTest(t, url, nil)
	q := db.Queue(QueueOptions{Listen: true})
	t.Cleanup(func() {
		q.Close()
		db.Close()
	})
	return db, q
}

func enqueueN(t *testing.T, q *Queue, n int) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	for i := range n {
		id, err := q.Enqueue(context.Background(), queue.Envelope{From: "a@example.com", To: []string{fmt.Sprintf("r%d@example.org", i)}},
			strings.NewReader("Subject: x\r\n\r\nbody\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		ids[id] = true
	}
	return ids
}

// TestQueueNodesClaimEachMessageOnce has three nodes claim from one queue
// at once, as fast as they can: SKIP LOCKED gives every message to exactly
// one of them.
func TestQueueNodesClaimEachMessageOnce(t *testing.T) {
	url := pg.Database(t)
	_, q1 := node(t, url)
	_, q2 := node(t, url)
	_, q3 := node(t, url)
	want := enqueueN(t, q1, 200)
	var mu sync.Mutex
	got := map[string]string{}
	var wg sync.WaitGroup
	for i, q := range []*Queue{q1, q2, q3} {
		owner := fmt.Sprintf("node%d", i+1)
		wg.Go(func() {
			for {
				cs, err := q.Claim(context.Background(), owner, time.Minute, 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(cs) == 0 {
					return
				}
				for _, c := range cs {
					mu.Lock()
					if prev, dup := got[c.ID]; dup {
						t.Errorf("%s claimed by %s and %s", c.ID, prev, owner)
					}
					got[c.ID] = owner
					mu.Unlock()
					for i := range c.Recipients {
						c.Recipients[i].Status = queue.Delivered
					}
					if err := q.Complete(context.Background(), &c); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	if len(got) != len(want) {
		t.Fatalf("%d of %d messages claimed", len(got), len(want))
	}
	if st, err := q2.Stats(context.Background()); err != nil || st.Messages != 0 {
		t.Fatalf("queue after every message completed: %+v %v", st, err)
	}
}

// TestQueueNotifyWakesOtherNodes: mail enqueued on one node wakes an idle
// deliverer on another through LISTEN/NOTIFY.
func TestQueueNotifyWakesOtherNodes(t *testing.T) {
	url := pg.Database(t)
	_, q1 := node(t, url)
	_, q2 := node(t, url)
	// The listener's first wake-up (on connecting) comes first.
	select {
	case <-q2.Wait():
	case <-time.After(10 * time.Second):
		t.Fatal("no wake-up when the listener connected")
	}
	enqueueN(t, q1, 1)
	select {
	case <-q2.Wait():
	case <-time.After(5 * time.Second):
		t.Fatal("node 2 was not woken by mail enqueued on node 1")
	}
}

// TestQueueDamagedBodyNotSent: a body that no longer matches its digest
// reads as ErrCorrupt, never as the damaged bytes.
func TestQueueDamagedBodyNotSent(t *testing.T) {
	db, q := node(t, pg.Database(t))
	var id string
	for k := range enqueueN(t, q, 1) {
		id = k
	}
	if _, err := db.pool.Exec(context.Background(), `UPDATE queue_bodies SET body = 'Subject: y' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	rc, err := q.Body(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	if !errors.Is(err, queue.ErrCorrupt) || len(b) != 0 {
		t.Fatalf("reading a damaged body: %q %v, want nothing and ErrCorrupt", b, err)
	}
}

// TestQueueSurvivesDatabaseRestart takes PostgreSQL away under a node:
// Enqueue fails with ErrStorage (the SMTP side answers 4xx) rather than
// acknowledging what was not committed, and works again once the database
// is back, without reopening anything; what was acknowledged before is
// still there.
func TestQueueSurvivesDatabaseRestart(t *testing.T) {
	own := pgtest.New(pgtest.Options{Durable: true})
	defer own.Close()
	_, q := node(t, own.Database(t))
	before := enqueueN(t, q, 5)
	if err := own.Stop(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := q.Enqueue(ctx, queue.Envelope{To: []string{"r@example.org"}}, strings.NewReader("x")); !errors.Is(err, queue.ErrStorage) {
		t.Fatalf("Enqueue with the database down: %v, want ErrStorage", err)
	}
	if err := own.Start(); err != nil {
		t.Fatal(err)
	}
	var after map[string]bool
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := q.Enqueue(ctx, queue.Envelope{To: []string{"r@example.org"}}, strings.NewReader("x"))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Enqueue after the database came back: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	after = enqueueN(t, q, 1)
	l, err := q.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, s := range l {
		seen[s.ID] = true
	}
	for id := range before {
		if !seen[id] {
			t.Errorf("acknowledged message %s lost over the restart", id)
		}
	}
	for id := range after {
		if !seen[id] {
			t.Errorf("message %s enqueued after the restart missing", id)
		}
	}
}
