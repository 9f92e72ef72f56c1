package postgres

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/dkimd/dkimd/internal/queue"
)

// The statements a relayed message costs PostgreSQL are its enqueue, its
// share of a claim and its share of a completion. This file holds what
// keeps the last two shares small:
//
//   - bodies: a claim returns the bodies of small messages with their rows,
//     so that Body reads them from memory instead of with a statement of
//     its own;
//   - completions: the final Completes of concurrent deliverers share one
//     DELETE (group commit), and each returns only once that DELETE has
//     committed, so a completed message is gone from the table, for every
//     node, before Complete returns;
//   - idle: a Claim right after one that found fewer due messages than it
//     asked for, with no wake-up since, asks nothing of the database.

// Bodies up to this size come with their claim.
const claimBodyMax = 128 << 10

// A claim carries at most this many bytes of bodies, whatever its max:
// claims of many messages at once (RunOnce) read their bodies one by one.
const claimBodyTotal = 4 << 20

// bodyCacheMax bounds the bytes of claimed bodies held at once; a body
// that does not fit is read when asked for.
const bodyCacheMax = 32 << 20

// idleRecheck is how long a Claim that found the queue drained of due
// messages stands for the claims after it, unless a wake-up (an Enqueue, a
// Retry, a Release here or a notification from another node) came since.
// What becomes due by the clock alone (a deferred recipient's next
// attempt, another node's lease that ran out, another node's Release) is
// found at most this much later. Deliverers poll every second.
const idleRecheck = 500 * time.Millisecond

// claimBodyLimit is the largest body a claim of up to max messages
// returns with its rows.
func claimBodyLimit(max int) int64 {
	return int64(min(claimBodyMax, claimBodyTotal/max))
}

// cachedBody is the body of a claimed message, kept until its lease ends.
type cachedBody struct {
	body  []byte
	until int64 // the claim's lease end: after it the entry is dropped
}

// bodyCache holds the bodies that claims returned.
type bodyCache struct {
	mu    sync.Mutex
	m     map[string]cachedBody
	bytes int
}

func (bc *bodyCache) put(id string, b []byte, until int64) {
	bc.mu.Lock()
	defer bc.mu.Unlock()
	bc.dropLocked(id)
	if bc.bytes+len(b) > bodyCacheMax {
		return
	}
	if bc.m == nil {
		bc.m = make(map[string]cachedBody)
	}
	bc.m[id] = cachedBody{body: b, until: until}
	bc.bytes += len(b)
}

func (bc *bodyCache) get(id string) ([]byte, bool) {
	bc.mu.Lock()
	defer bc.mu.Unlock()
	e, ok := bc.m[id]
	return e.body, ok
}

func (bc *bodyCache) drop(id string) {
	bc.mu.Lock()
	bc.dropLocked(id)
	bc.mu.Unlock()
}

func (bc *bodyCache) dropLocked(id string) {
	if e, ok := bc.m[id]; ok {
		bc.bytes -= len(e.body)
		delete(bc.m, id)
	}
}

// expire drops the bodies of claims whose lease ended by now without
// Complete, Release or Quarantine (a deliverer that lost its lease).
func (bc *bodyCache) expire(now int64) {
	bc.mu.Lock()
	defer bc.mu.Unlock()
	for id, e := range bc.m {
		if e.until <= now {
			bc.bytes -= len(e.body)
			delete(bc.m, id)
		}
	}
}

// completion is one final Complete waiting for the DELETE it shares.
type completion struct {
	id    string
	token int64
	done  chan error
}

// completions gathers the final Completes that arrive while a DELETE is
// running; the next DELETE takes all of them.
type completions struct {
	mu      sync.Mutex
	pending []*completion
	running bool
}

// remove deletes c's message with its body, fenced on c's lease, in a
// DELETE shared with the Completes of other deliverers of this node that
// arrive meanwhile. It returns once that DELETE committed (with the lazy
// pool's synchronous_commit off: a crash of PostgreSQL itself within a
// fraction of a second may undo it, as it may undo any deliverer's write;
// the death of this node cannot).
func (q *Queue) remove(ctx context.Context, c *queue.Claim) error {
	me := &completion{id: c.ID, token: int64(c.Token), done: make(chan error, 1)}
	q.comp.mu.Lock()
	q.comp.pending = append(q.comp.pending, me)
	if q.comp.running {
		q.comp.mu.Unlock()
		return <-me.done
	}
	q.comp.running = true
	batch := q.comp.pending
	q.comp.pending = nil
	q.comp.mu.Unlock()

	q.removeBatch(ctx, batch)
	// Whatever arrived meanwhile is the next batch; its callers wait, so
	// it goes on without this one.
	q.comp.mu.Lock()
	if len(q.comp.pending) == 0 {
		q.comp.running = false
		q.comp.mu.Unlock()
	} else {
		q.comp.mu.Unlock()
		go q.drainCompletions(context.WithoutCancel(ctx))
	}
	return <-me.done
}

// drainCompletions runs batches until none is waiting.
func (q *Queue) drainCompletions(ctx context.Context) {
	for {
		q.comp.mu.Lock()
		batch := q.comp.pending
		q.comp.pending = nil
		if len(batch) == 0 {
			q.comp.running = false
			q.comp.mu.Unlock()
			return
		}
		q.comp.mu.Unlock()
		q.removeBatch(ctx, batch)
	}
}

// completionTimeout bounds one shared DELETE: no caller's context ends
// it, since it serves others too.
const completionTimeout = 30 * time.Second

// removeBatch runs one DELETE for batch and answers each of its callers:
// nil when its row was deleted, ErrLeaseLost when its lease was no longer
// the current one, the statement's error for all when it failed.
func (q *Queue) removeBatch(ctx context.Context, batch []*completion) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), completionTimeout)
	defer cancel()
	ids := make([]string, len(batch))
	tokens := make([]int64, len(batch))
	for i, c := range batch {
		ids[i], tokens[i] = c.id, c.token
	}
	deleted, err := q.deleteFenced(ctx, ids, tokens)
	// Should PostgreSQL still roll the DELETE back to break a deadlock
	// (with a transaction that locks rows in another order), failing it
	// would fail every Complete of the batch, and each of those messages,
	// delivered already, would go out again when its lease ends: run it
	// again instead (nothing of it was done).
	for try := 1; try < 4 && (isCode(err, codeDeadlockDetected) || isCode(err, codeSerializationFailure)); try++ {
		deleted, err = q.deleteFenced(ctx, ids, tokens)
	}
	for _, c := range batch {
		switch {
		case err != nil:
			c.done <- storageErr("complete", err)
		case deleted[leaseKey{c.id, c.token}]:
			c.done <- nil
		default:
			c.done <- fmt.Errorf("%w: %s", queue.ErrLeaseLost, c.id)
		}
	}
}

type leaseKey struct {
	id    string
	token int64
}

// deleteFenced deletes the messages ids whose lease is still tokens' and
// unexpired, and says which it deleted.
func (q *Queue) deleteFenced(ctx context.Context, ids []string, tokens []int64) (map[leaseKey]bool, error) {
	// The rows are locked in id order first (FOR UPDATE after ORDER BY), so
	// that two nodes' DELETEs never wait for each other in a cycle; a row
	// another node's lease took over meanwhile is left out when its lock
	// is granted (the conditions are checked again on the row as it is
	// then).
	rows, err := q.lazy.Query(ctx, `WITH d AS MATERIALIZED (
	SELECT m.id FROM queue_messages m JOIN unnest($1::text[], $2::bigint[]) AS c(id, token)
		ON m.id = c.id AND m.lease_token = c.token
	WHERE m.lease_until > $3 ORDER BY m.id FOR UPDATE OF m)
DELETE FROM queue_messages m USING d WHERE m.id = d.id
RETURNING m.id, m.lease_token`, ids, tokens, nanos(q.now()))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	deleted := make(map[leaseKey]bool, len(ids))
	for rows.Next() {
		var k leaseKey
		if err := rows.Scan(&k.id, &k.token); err != nil {
			return nil, err
		}
		deleted[k] = true
	}
	return deleted, rows.Err()
}

// idleMark is what the last Claim that found fewer due messages than it
// asked for knew: the wake-ups counted before it ran, and its time.
type idleMark struct {
	set   bool
	wakes uint64
	at    time.Time
}

// claimNeeded reports whether a Claim at now must ask the database.
func (q *Queue) claimNeeded(now time.Time) bool {
	q.idleMu.Lock()
	defer q.idleMu.Unlock()
	return !q.idle.set || q.idle.wakes != q.wakes.Load() || now.Sub(q.idle.at) >= idleRecheck || now.Before(q.idle.at)
}

// markIdle records that a claim that started after wakes wake-ups found
// every due message.
func (q *Queue) markIdle(wakes uint64, at time.Time) {
	q.idleMu.Lock()
	q.idle = idleMark{set: true, wakes: wakes, at: at}
	q.idleMu.Unlock()
}

// handoffFresh is how recently this node's deliverer must have called
// Claim for Enqueue to lease a message to it: a deliverer with free room
// calls Claim at least every poll interval (a second).
const handoffFresh = 3 * time.Second

// handoff holds what Enqueue needs to lease a new message to this node's
// deliverer at once, in the INSERT that stores it, and the claims so made
// that Claim has not handed over yet. The INSERT then sends no NOTIFY
// (no other node could claim the message) and the deliverer's next Claim
// takes the message without a statement. Enqueue does so only while the
// deliverer has room for it: room is the free slots it had after its last
// Claim (max less what that Claim gave) less the claims made since, so
// that a deliverer that is busy leaves new mail to the other nodes, and an
// older due message is never passed over for a new one (a Claim that left
// room found every due message).
type handoff struct {
	mu    sync.Mutex
	owner string
	lease time.Duration
	room  int
	seen  time.Time // the last Claim
	ready []queue.Claim
}

// reserve takes a place for a new message if the deliverer has room,
// returning its owner and lease end; ok false means no handoff.
func (q *Queue) reserve(now time.Time) (owner string, until time.Time, ok bool) {
	h := &q.hand
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.owner == "" || h.room <= 0 || now.Sub(h.seen) >= handoffFresh || now.Before(h.seen) {
		return "", time.Time{}, false
	}
	h.room--
	return h.owner, now.Add(h.lease), true
}

// unreserve gives back a place reserve took, for a message not stored.
func (q *Queue) unreserve() {
	q.hand.mu.Lock()
	q.hand.room++
	q.hand.mu.Unlock()
}

// handed adds a claim Enqueue made.
func (q *Queue) handed(c queue.Claim) {
	q.hand.mu.Lock()
	q.hand.ready = append(q.hand.ready, c)
	q.hand.mu.Unlock()
}

// takeHanded gives up to max of the claims Enqueue made for owner, and the
// ones that can no longer be handed over: their lease ran out, or they
// were made for another owner (another deliverer on this queue).
func (q *Queue) takeHanded(owner string, max int, now time.Time) (out, stale []queue.Claim) {
	h := &q.hand
	h.mu.Lock()
	defer h.mu.Unlock()
	keep := h.ready[:0]
	for _, c := range h.ready {
		switch {
		case c.Owner != owner || !c.Expires.After(now):
			stale = append(stale, c)
		case len(out) < max:
			out = append(out, c)
		default:
			keep = append(keep, c)
		}
	}
	clear(h.ready[len(keep):])
	h.ready = keep
	return out, stale
}

// unhand puts back claims takeHanded gave, for a Claim that failed.
func (q *Queue) unhand(cs []queue.Claim) {
	q.hand.mu.Lock()
	q.hand.ready = append(cs, q.hand.ready...)
	q.hand.mu.Unlock()
}

// claimed records a Claim by owner for lease that gave n of max, so that
// Enqueue leases new messages to it while it has room.
func (q *Queue) claimed(owner string, lease time.Duration, max, n int, now time.Time) {
	h := &q.hand
	h.mu.Lock()
	h.owner, h.lease, h.seen = owner, lease, now
	h.room = max - n - len(h.ready)
	h.mu.Unlock()
}

// dropHandoff stops leasing new messages to this node's deliverer and
// returns the claims made for it that it did not take.
func (q *Queue) dropHandoff() []queue.Claim {
	h := &q.hand
	h.mu.Lock()
	defer h.mu.Unlock()
	h.owner, h.room = "", 0
	out := h.ready
	h.ready = nil
	return out
}
