package postgres

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dkimd/dkimd/internal/queue"
)

// queueChannel is the LISTEN/NOTIFY channel that wakes idle deliverers on
// every node when mail arrives or is retried.
const queueChannel = "dkimd_queue"

// QueueOptions configure DB.Queue. The zero value is ready to use.
type QueueOptions struct {
	// Now is the clock of leases and due times; nil means time.Now. Nodes
	// compare their clocks through the leases they write, so keep them in
	// step (NTP): a node whose clock runs ahead takes leases over early.
	Now func() time.Time
	// Metrics are this node's counters; nil means private ones.
	Metrics *queue.Metrics
	// Log gets the listener's reconnections; nil discards.
	Log *slog.Logger
	// Listen turns on LISTEN/NOTIFY wake-ups from other nodes. Without it
	// Wait wakes only on this node's Enqueue and Retry (deliverers poll).
	Listen bool
}

// Queue is queue.DeliveryQueue in PostgreSQL, shared by every node on the
// database: Enqueue commits the message and its body in one transaction
// (synchronous_commit on) before it returns; Claim leases due messages
// with SELECT … FOR UPDATE SKIP LOCKED, so nodes never claim the same
// message; every change a deliverer makes is one statement fenced on the
// claim's lease token and lease end, and no transaction or lock is held
// while a message is being delivered.
//
// At a steady flow a relayed message costs about two statements (see
// queue_batch.go): its INSERT, which leases it to this node's deliverer
// when that has room (a claim made in the same statement, handed over by
// the next Claim without another), and its share of a DELETE that the
// completions of concurrent deliveries share. Bodies of small messages
// come with their claims.
type Queue struct {
	pool *pgxpool.Pool // Enqueue, admin operations: commits wait for the disk
	lazy *pgxpool.Pool // a deliverer's changes: see DB.lazy
	now  func() time.Time
	m    *queue.Metrics
	log  *slog.Logger
	wake chan struct{}
	// self names this queue in its notifications, so that its listener
	// skips its own: a wake-up is a Claim, a statement on the database.
	self string

	// wakes counts the wake-ups (poke) and the Releases: a Claim after
	// one that found every due message asks the database again only if
	// it moved (or idleRecheck passed).
	wakes  atomic.Uint64
	idleMu sync.Mutex
	idle   idleMark
	bodies bodyCache
	comp   completions
	hand   handoff

	stop context.CancelFunc
	done chan struct{}
}

var _ queue.DeliveryQueue = (*Queue)(nil)

// Queue gives the mail queue in this database. Close it before the DB.
func (d *DB) Queue(opts QueueOptions) *Queue {
	q := &Queue{pool: d.pool, lazy: d.lazy, now: opts.Now, m: opts.Metrics, log: opts.Log, wake: make(chan struct{}, 1), done: make(chan struct{})}
	if q.now == nil {
		q.now = time.Now
	}
	var r [8]byte
	_, _ = rand.Read(r[:]) // crypto/rand.Read never fails (Go 1.24+)
	q.self = hex.EncodeToString(r[:])
	if q.m == nil {
		q.m = &queue.Metrics{}
	}
	if q.log == nil {
		q.log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	q.stop = cancel
	if opts.Listen {
		go q.listen(ctx)
	} else {
		close(q.done)
	}
	return q
}

// Close stops the listener and gives back the messages Enqueue leased to
// this node's deliverer that it did not take (so that other nodes need not
// wait for their leases to run out). The pool belongs to the DB.
func (q *Queue) Close() error {
	q.stop()
	<-q.done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, c := range q.dropHandoff() {
		q.giveBack(ctx, &c)
	}
	return nil
}

// giveBack releases a claim no deliverer took.
func (q *Queue) giveBack(ctx context.Context, c *queue.Claim) {
	if err := q.Release(ctx, c); err != nil && !errors.Is(err, queue.ErrLeaseLost) {
		q.log.Error("queue_lease_not_released", "msg_id", c.ID, "err", err)
	}
}

// listen holds a connection of its own in LISTEN and turns notifications
// into wake-ups, reconnecting after a failure (a restart of PostgreSQL).
func (q *Queue) listen(ctx context.Context) {
	defer close(q.done)
	for backoff := 100 * time.Millisecond; ctx.Err() == nil; {
		err := q.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		q.log.Warn("queue_listen_lost", "err", err, "retry_in", backoff.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (q *Queue) listenOnce(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, q.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+queueChannel); err != nil {
		return err
	}
	// Whatever arrived while no one listened is found by this wake-up.
	q.poke()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		// This queue's own Enqueue and Retry woke it already.
		if n.Payload != q.self {
			q.poke()
		}
	}
}

// poke wakes this node's deliverer, and its next Claim asks the database.
func (q *Queue) poke() {
	q.wakes.Add(1)
	q.signal()
}

// signal wakes this node's deliverer, for a claim Enqueue made for it.
func (q *Queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Ping checks that the queue's database answers, without counting the
// queue (for /readyz, which a load balancer asks often).
func (q *Queue) Ping(ctx context.Context) error { return storageErr("ping", q.pool.Ping(ctx)) }

// Wait implements queue.DeliveryQueue.
func (q *Queue) Wait() <-chan struct{} { return q.wake }

func nanos(t time.Time) int64 { return t.UnixNano() }

func storageErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, queue.ErrNotFound) || errors.Is(err, queue.ErrBusy) || errors.Is(err, queue.ErrLeaseLost) ||
		errors.Is(err, queue.ErrInvalid) || errors.Is(err, queue.ErrStorage) || errors.Is(err, queue.ErrCorrupt) {
		return err
	}
	return fmt.Errorf("%w: %s: %v", queue.ErrStorage, op, err)
}

// Enqueue implements queue.Queue.
func (q *Queue) Enqueue(ctx context.Context, env queue.Envelope, body io.Reader) (string, error) {
	if err := queue.CheckEnvelope(env); err != nil {
		return "", err
	}
	id := queue.NewID(q.now())
	if _, err := q.store(ctx, id, env, body, false); err != nil {
		return "", err
	}
	return id, nil
}

// EnqueueID implements queue.DeliveryQueue.
func (q *Queue) EnqueueID(ctx context.Context, id string, env queue.Envelope, body io.Reader) error {
	if !queue.ValidID(id) {
		return fmt.Errorf("%w: bad id", queue.ErrInvalid)
	}
	if err := queue.CheckEnvelope(env); err != nil {
		return err
	}
	_, err := q.store(ctx, id, env, body, true)
	return err
}

// store writes the message and its body in one transaction and wakes the
// deliverers of every node when it commits. With idempotent, an id that
// is queued already is success (and nothing is written).
func (q *Queue) store(ctx context.Context, id string, env queue.Envelope, body io.Reader, idempotent bool) (bool, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		return false, fmt.Errorf("%w: read body: %v", queue.ErrStorage, err)
	}
	env.To = slices.Clone(env.To)
	envJSON, err := json.Marshal(env)
	if err != nil {
		return false, fmt.Errorf("%w: %v", queue.ErrStorage, err)
	}
	rcpts := make([]queue.Recipient, len(env.To))
	for i, a := range env.To {
		rcpts[i] = queue.Recipient{Addr: a, Status: queue.Pending}
	}
	rJSON, err := json.Marshal(rcpts)
	if err != nil {
		return false, fmt.Errorf("%w: %v", queue.ErrStorage, err)
	}
	now := q.now()
	queued := now.UTC().Truncate(time.Millisecond)
	sum := sha256.Sum256(b)
	// When this node's deliverer has room the message is leased to it in
	// the same INSERT (see handoff), and no other node is woken.
	var owner *string
	var until *int64
	o, u, leased := q.reserve(now)
	if leased {
		un := nanos(u)
		owner, until = &o, &un
	}
	// One statement, so one implicit transaction and one round trip: the
	// message, its body and the wake-up of every node's deliverers commit
	// together (the notification is sent at the commit), or none of them.
	var token int64
	inserted := true
	err = q.pool.QueryRow(ctx, `WITH m AS (
	INSERT INTO queue_messages (id, envelope, queued, size, recipients, open, due, lease_owner, lease_until, lease_token)
	VALUES ($1, $2, $3, $4, $5, $6, $3, $11::text, $12::bigint,
		CASE WHEN $11::text IS NULL THEN 0 ELSE nextval('queue_lease_tokens') END)
	ON CONFLICT (id) DO NOTHING
	RETURNING id, lease_token),
b AS (INSERT INTO queue_bodies (id, body, sha256) SELECT id, $7, $8 FROM m)
SELECT m.lease_token FROM m LEFT JOIN LATERAL (SELECT pg_notify($9, $10) WHERE $11::text IS NULL) n ON true`,
		id, string(envJSON), nanos(queued), int64(len(b)), string(rJSON), len(rcpts), b, sum[:], queueChannel, q.self,
		owner, until).Scan(&token)
	if errors.Is(err, pgx.ErrNoRows) {
		inserted, err = false, nil
		if !idempotent {
			err = fmt.Errorf("%w: id %s already queued", queue.ErrStorage, id)
		}
	}
	if leased && (err != nil || !inserted) {
		q.unreserve()
	}
	if err != nil {
		// A commit whose answer was lost may have stored the message: it
		// is then delivered although the client was told 4xx and may send
		// it again. That is a duplicate, never a loss. (If it was leased to
		// this node, it waits for that lease to run out.)
		return false, storageErr("enqueue", err)
	}
	if !inserted {
		return false, nil
	}
	q.m.Accepted.Add(1)
	if !leased {
		q.poke()
		return true, nil
	}
	c := queue.Claim{
		Message: queue.Message{ID: id, Envelope: env, Queued: queued.Truncate(time.Millisecond), Size: int64(len(b)), Recipients: rcpts},
		Owner:   o, Token: uint64(token), Expires: u,
	}
	if int64(len(b)) <= claimBodyMax {
		q.bodies.put(id, b, nanos(u))
	}
	q.handed(c)
	q.signal()
	return true, nil
}

// due gives when a message with these recipients is next claimable.
func due(queued time.Time, rs []queue.Recipient) (int64, int) {
	d, open := int64(0), 0
	for _, r := range rs {
		if r.Status.Final() {
			continue
		}
		open++
		t := nanos(queued)
		if r.Status == queue.Deferred && !r.Next.IsZero() {
			t = nanos(r.Next)
		}
		if open == 1 || t < d {
			d = t
		}
	}
	if open == 0 {
		d = nanos(queued)
	}
	return d, open
}

const messageCols = `id, envelope, queued, size, recipients, dsns`

func scanMessage(row pgx.Row, extra ...any) (queue.Message, error) {
	var m queue.Message
	var env, rcpts []byte
	var queued int64
	if err := row.Scan(append([]any{&m.ID, &env, &queued, &m.Size, &rcpts, &m.DSNs}, extra...)...); err != nil {
		return m, err
	}
	if err := json.Unmarshal(env, &m.Envelope); err != nil {
		return m, fmt.Errorf("%w: %s: envelope: %v", queue.ErrCorrupt, m.ID, err)
	}
	if err := json.Unmarshal(rcpts, &m.Recipients); err != nil {
		return m, fmt.Errorf("%w: %s: recipients: %v", queue.ErrCorrupt, m.ID, err)
	}
	if len(m.Recipients) != len(m.Envelope.To) {
		return m, fmt.Errorf("%w: %s: %d recipients' state for %d recipients", queue.ErrCorrupt, m.ID, len(m.Recipients), len(m.Envelope.To))
	}
	m.Queued = time.Unix(0, queued).UTC()
	return m, nil
}

// Get implements queue.Queue.
func (q *Queue) Get(ctx context.Context, id string) (queue.Message, error) {
	m, err := scanMessage(q.pool.QueryRow(ctx, `SELECT `+messageCols+` FROM queue_messages WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return m, fmt.Errorf("%w: %s", queue.ErrNotFound, id)
	}
	return m, storageErr("get", err)
}

// List implements queue.Queue.
func (q *Queue) List(ctx context.Context) ([]queue.Summary, error) {
	rows, err := q.pool.Query(ctx, `SELECT id, envelope->>'from', queued, size, json_array_length(recipients), open, due
FROM queue_messages ORDER BY queued, id`)
	if err != nil {
		return nil, storageErr("list", err)
	}
	defer rows.Close()
	now := nanos(q.now())
	var out []queue.Summary
	for rows.Next() {
		var s queue.Summary
		var from *string
		var queued, dueAt int64
		if err := rows.Scan(&s.ID, &from, &queued, &s.Size, &s.Recipients, &s.Open, &dueAt); err != nil {
			return nil, storageErr("list", err)
		}
		if from != nil {
			s.From = *from
		}
		s.Queued = time.Unix(0, queued).UTC()
		if dueAt > now {
			s.Next = time.Unix(0, dueAt).UTC()
		}
		out = append(out, s)
	}
	return out, storageErr("list", rows.Err())
}

// Stats implements queue.Queue: what is queued on the whole cluster, and
// this node's counters.
func (q *Queue) Stats(ctx context.Context) (queue.Stats, error) {
	var st queue.Stats
	var oldest *int64
	err := q.pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(open), 0), min(queued) FROM queue_messages`).
		Scan(&st.Messages, &st.Recipients, &oldest)
	if err != nil {
		return st, storageErr("stats", err)
	}
	if oldest != nil {
		st.Oldest = time.Unix(0, *oldest).UTC()
	}
	st.Accepted, st.Delivered, st.Deferred, st.Bounced = q.m.Accepted.Load(), q.m.Delivered.Load(), q.m.Deferred.Load(), q.m.Bounced.Load()
	st.DSNs, st.DSNsDropped, st.Quarantined = q.m.DSNs.Load(), q.m.DSNsDropped.Load(), q.m.Quarantined.Load()
	return st, nil
}

// admin runs fn on message id inside a transaction holding its row lock,
// unless a deliverer holds an unexpired lease on it (ErrBusy).
func (q *Queue) admin(ctx context.Context, op, id string, fn func(tx pgx.Tx, m queue.Message) error) error {
	err := pgx.BeginFunc(ctx, q.pool, func(tx pgx.Tx) error {
		var until *int64
		m, err := scanMessage(tx.QueryRow(ctx, `SELECT `+messageCols+`, lease_until FROM queue_messages WHERE id = $1 FOR UPDATE`, id), &until)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: %s", queue.ErrNotFound, id)
		}
		if err != nil {
			return err
		}
		if until != nil && *until > nanos(q.now()) {
			return fmt.Errorf("%w: %s", queue.ErrBusy, id)
		}
		return fn(tx, m)
	})
	return storageErr(op, err)
}

// Retry implements queue.Queue.
func (q *Queue) Retry(ctx context.Context, id string) error {
	err := q.admin(ctx, "retry", id, func(tx pgx.Tx, m queue.Message) error {
		for i := range m.Recipients {
			if m.Recipients[i].Status == queue.Deferred {
				m.Recipients[i].Next = time.Time{}
			}
		}
		rJSON, err := json.Marshal(m.Recipients)
		if err != nil {
			return err
		}
		d, open := due(m.Queued, m.Recipients)
		if _, err := tx.Exec(ctx, `UPDATE queue_messages SET recipients = $2, open = $3, due = $4,
lease_owner = NULL, lease_until = NULL WHERE id = $1`, id, string(rJSON), open, d); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, queueChannel, q.self)
		return err
	})
	if err == nil {
		q.poke()
	}
	return err
}

// Remove implements queue.Queue.
func (q *Queue) Remove(ctx context.Context, id string) error {
	return q.admin(ctx, "remove", id, func(tx pgx.Tx, _ queue.Message) error {
		_, err := tx.Exec(ctx, `DELETE FROM queue_messages WHERE id = $1`, id)
		return err
	})
}

// Claim implements queue.DeliveryQueue. One statement picks and leases:
// rows another node is claiming right now are skipped, not waited for.
// The bodies of small messages come with their rows (see claimBodyLimit)
// and Body serves them until the claim ends. A Claim that follows one that
// found fewer due messages than it asked for, with no wake-up since and
// less than idleRecheck later, returns nothing without asking the
// database: the deliverer asks again whenever one of its messages is done.
func (q *Queue) Claim(ctx context.Context, owner string, lease time.Duration, max int) ([]queue.Claim, error) {
	if max <= 0 {
		return nil, nil
	}
	now := q.now()
	handed, stale := q.takeHanded(owner, max, now)
	for _, c := range stale {
		q.giveBack(ctx, &c)
	}
	if len(handed) == max || !q.claimNeeded(now) {
		q.claimed(owner, lease, max, len(handed), now)
		return handed, nil
	}
	wakes := q.wakes.Load()
	until := now.Add(lease)
	q.bodies.expire(nanos(now))
	rows, err := q.lazy.Query(ctx, `WITH c AS (
	SELECT id, size FROM queue_messages
	WHERE due <= $1 AND (lease_until IS NULL OR lease_until <= $1)
	ORDER BY due, queued, id
	LIMIT $2
	FOR UPDATE SKIP LOCKED)
UPDATE queue_messages m SET lease_owner = $3, lease_until = $4, lease_token = nextval('queue_lease_tokens')
FROM c LEFT JOIN queue_bodies b ON b.id = c.id AND c.size <= $5
WHERE m.id = c.id
RETURNING m.id, m.envelope, m.queued, m.size, m.recipients, m.dsns, m.lease_token, m.due, b.body, b.sha256`,
		nanos(now), max-len(handed), owner, nanos(until), claimBodyLimit(max))
	if err != nil {
		q.unhand(handed)
		return nil, storageErr("claim", err)
	}
	type claimed struct {
		c         queue.Claim
		due       int64
		body, sum []byte
		err       error
	}
	var got []claimed
	for rows.Next() {
		var cl claimed
		var token int64
		cl.c.Message, cl.err = scanMessage(rows, &token, &cl.due, &cl.body, &cl.sum)
		if cl.err != nil && !errors.Is(cl.err, queue.ErrCorrupt) {
			rows.Close()
			return nil, storageErr("claim", cl.err)
		}
		cl.c.Owner, cl.c.Token, cl.c.Expires = owner, uint64(token), until
		got = append(got, cl)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		q.unhand(handed)
		return nil, storageErr("claim", err)
	}
	if len(got) < max-len(handed) {
		q.markIdle(wakes, now)
	}
	q.claimed(owner, lease, max, len(handed)+len(got), now)
	for _, c := range handed {
		got = append(got, claimed{c: c, due: nanos(c.Queued)})
	}
	slices.SortFunc(got, func(a, b claimed) int {
		if a.due != b.due {
			return cmp.Compare(a.due, b.due)
		}
		if c := a.c.Queued.Compare(b.c.Queued); c != 0 {
			return c
		}
		return strings.Compare(a.c.ID, b.c.ID)
	})
	out := make([]queue.Claim, 0, len(got))
	for _, cl := range got {
		if cl.err != nil {
			if err := q.Quarantine(ctx, &cl.c, cl.err); err != nil {
				q.log.Error("queue_quarantine_failed", "msg_id", cl.c.ID, "err", err)
			}
			continue
		}
		// A body that does not match its digest is not kept: Body reads
		// it again and reports it.
		if cl.sum != nil {
			if sum := sha256.Sum256(cl.body); bytes.Equal(sum[:], cl.sum) {
				q.bodies.put(cl.c.ID, cl.body, nanos(until))
			}
		}
		out = append(out, cl.c)
	}
	return out, nil
}

// fenced runs one statement that changes c's message, made conditional on
// c's lease being the current one and unexpired ($1 id, $2 token, $3 now;
// the statement's own arguments follow). No row: ErrLeaseLost.
func (q *Queue) fenced(ctx context.Context, op string, c *queue.Claim, stmt string, args ...any) error {
	tag, err := q.lazy.Exec(ctx, stmt+` WHERE id = $1 AND lease_token = $2 AND lease_until > $3`,
		append([]any{c.ID, int64(c.Token), nanos(q.now())}, args...)...)
	if err != nil {
		return storageErr(op, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: %s", queue.ErrLeaseLost, c.ID)
	}
	return nil
}

// Renew implements queue.DeliveryQueue. A lease with more than two thirds
// of lease left (one just claimed or renewed) is left as it is, saving a
// write per message: c.Expires stays what it is, and it is still far off.
func (q *Queue) Renew(ctx context.Context, c *queue.Claim, lease time.Duration) error {
	now := q.now()
	until := now.Add(lease)
	if c.Expires.Sub(now) > lease*2/3 {
		return nil
	}
	if err := q.fenced(ctx, "renew", c, `UPDATE queue_messages SET lease_until = $4`, nanos(until)); err != nil {
		return err
	}
	c.Expires = until
	return nil
}

// Body implements queue.DeliveryQueue. The body is read whole: messages
// are bounded by the relay's size limit, and the read holds no lock.
func (q *Queue) Body(ctx context.Context, id string) (io.ReadCloser, error) {
	if b, ok := q.bodies.get(id); ok {
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	var b, sum []byte
	err := q.pool.QueryRow(ctx, `SELECT body, sha256 FROM queue_bodies WHERE id = $1`, id).Scan(&b, &sum)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", queue.ErrNotFound, id)
	}
	if err != nil {
		return nil, storageErr("body", err)
	}
	if got := sha256.Sum256(b); !bytes.Equal(got[:], sum) {
		return io.NopCloser(&corruptReader{fmt.Errorf("%w: %s: body does not match its SHA-256", queue.ErrCorrupt, id)}), nil
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// corruptReader fails every read: a damaged body is never sent, not even
// in part.
type corruptReader struct{ err error }

func (r *corruptReader) Read([]byte) (int, error) { return 0, r.err }

// record stores c's state, fenced on its lease; with release the lease
// ends too.
func (q *Queue) record(ctx context.Context, op string, c *queue.Claim, release bool) error {
	rJSON, err := json.Marshal(c.Recipients)
	if err != nil {
		return storageErr(op, err)
	}
	d, open := due(c.Queued, c.Recipients)
	stmt := `UPDATE queue_messages SET recipients = $4, dsns = $5, open = $6, due = $7`
	if release {
		stmt += `, lease_owner = NULL, lease_until = NULL`
	}
	return q.fenced(ctx, op, c, stmt, string(rJSON), c.DSNs, open, d)
}

// Record implements queue.DeliveryQueue.
func (q *Queue) Record(ctx context.Context, c *queue.Claim) error {
	return q.record(ctx, "record", c, false)
}

// Defer implements queue.DeliveryQueue.
func (q *Queue) Defer(ctx context.Context, c *queue.Claim, next time.Time, reason string) error {
	now := q.now()
	for i := range c.Recipients {
		r := &c.Recipients[i]
		if r.Status.Final() {
			continue
		}
		r.Attempts++
		r.Status, r.Reply, r.Remote, r.Last, r.Next = queue.Deferred, reason, "", now, next
	}
	return q.record(ctx, "defer", c, false)
}

// Bounce implements queue.DeliveryQueue.
func (q *Queue) Bounce(ctx context.Context, c *queue.Claim, reason string) error {
	c.BounceOpen(reason, q.now())
	return q.record(ctx, "bounce", c, false)
}

// Complete implements queue.DeliveryQueue: a message whose recipients are
// all final is deleted with its body, fenced, in a DELETE shared with the
// other deliverers of this node that complete at the same time (remove);
// it is deleted, for every node, when Complete returns. Otherwise its state
// is stored and the lease ends.
func (q *Queue) Complete(ctx context.Context, c *queue.Claim) error {
	q.bodies.drop(c.ID)
	for _, r := range c.Recipients {
		if !r.Status.Final() {
			err := q.record(ctx, "complete", c, true)
			q.wakes.Add(1)
			return err
		}
	}
	return q.remove(ctx, c)
}

// Release implements queue.DeliveryQueue.
func (q *Queue) Release(ctx context.Context, c *queue.Claim) error {
	q.bodies.drop(c.ID)
	err := q.fenced(ctx, "release", c, `UPDATE queue_messages SET lease_owner = NULL, lease_until = NULL`)
	// The message is due again: the next Claim asks for it.
	q.wakes.Add(1)
	return err
}

// Quarantine implements queue.DeliveryQueue: the message and its body move
// to queue_quarantine, in one transaction fenced on c's lease.
func (q *Queue) Quarantine(ctx context.Context, c *queue.Claim, reason error) error {
	q.bodies.drop(c.ID)
	msg := "damaged"
	if reason != nil {
		msg = reason.Error()
	}
	err := pgx.BeginFunc(ctx, q.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO queue_quarantine (id, envelope, body, reason, time)
SELECT m.id, m.envelope, b.body, $4, $3 FROM queue_messages m LEFT JOIN queue_bodies b ON b.id = m.id
WHERE m.id = $1 AND m.lease_token = $2 AND m.lease_until > $3
ON CONFLICT (id) DO UPDATE SET reason = EXCLUDED.reason, time = EXCLUDED.time`,
			c.ID, int64(c.Token), nanos(q.now()), msg)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("%w: %s", queue.ErrLeaseLost, c.ID)
		}
		_, err = tx.Exec(ctx, `DELETE FROM queue_messages WHERE id = $1`, c.ID)
		return err
	})
	if err != nil {
		return storageErr("quarantine", err)
	}
	q.m.Quarantined.Add(1)
	q.log.Error("queue_message_quarantined", "msg_id", c.ID, "reason", msg)
	return nil
}
