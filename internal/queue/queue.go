package queue

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"time"
)

// Failure classes, tested with errors.Is.
var (
	// ErrNotFound means no queued message has the given id.
	ErrNotFound error = &class{"queue: message not found", "The message was not found in the queue (it may have been delivered)."}
	// ErrInvalid means the caller passed something the queue refuses: an
	// empty recipient list, a malformed address or id.
	ErrInvalid error = &class{"queue: invalid message", "The message or its ID is not valid."}
	// ErrStorage means the message or its state could not be written to
	// stable storage. The SMTP side answers 4xx (451 4.3.0).
	ErrStorage = errors.New("queue: storage failure")
	// ErrCorrupt means a spool file failed its checks; the message is
	// quarantined and never delivered.
	ErrCorrupt = errors.New("queue: corrupt spool file")
	// ErrLocked means another process has the spool directory open.
	ErrLocked error = &class{"queue: spool in use by another process", "Another dkimd process has the mail queue open."}
	// ErrBusy means the message is being delivered right now; try again.
	ErrBusy error = &class{"queue: message is being delivered", "The message is being delivered right now; try again in a moment."}
	// ErrLeaseLost means a deliverer's claim on a message is no longer
	// current: its lease expired, or the message was claimed again or
	// removed since. The deliverer must drop the message without recording
	// anything.
	ErrLeaseLost = errors.New("queue: lease lost")
)

// Envelope is the SMTP envelope of a message and what dkimd knows about how
// it came in. It is stored beside the body and never changes.
type Envelope struct {
	// From is the reverse-path (MAIL FROM) without angle brackets. Empty is
	// the null sender: such a message is never bounced.
	From string `json:"from"`
	// To are the forward-paths (RCPT TO), one per recipient, at least one.
	To []string `json:"to"`
	// User is the outgoing user that submitted the message, for logs and
	// the admin API. Empty for messages dkimd made itself (bounces).
	User string `json:"user,omitempty"`
	// Decision is the signing decision in words ("signed d=example.com
	// s=sel1: From domain key"), for logs and the admin API.
	Decision string `json:"decision,omitempty"`
	// ClientAddr is the address the message came from, if any.
	ClientAddr string `json:"client_addr,omitempty"`
}

// Status is the state of one recipient of a queued message.
type Status string

// Recipient states. Pending and Deferred recipients are still to be
// delivered; Delivered and Bounced are final.
const (
	Pending   Status = "pending"
	Delivered Status = "delivered"
	Deferred  Status = "deferred"
	Bounced   Status = "bounced"
)

// Final reports whether no more delivery attempts are made for s.
func (s Status) Final() bool { return s == Delivered || s == Bounced }

// Recipient is the delivery state of one recipient.
type Recipient struct {
	// Addr is the forward-path, as in Envelope.To.
	Addr string `json:"addr"`
	// Status is where delivery stands.
	Status Status `json:"status"`
	// Attempts counts delivery attempts that ended in a temporary failure
	// or a final answer.
	Attempts int `json:"attempts,omitempty"`
	// Next is when the next attempt is due (Deferred only).
	Next time.Time `json:"next,omitzero"`
	// Last is when the last attempt ended.
	Last time.Time `json:"last,omitzero"`
	// Reply is the last answer or error, e.g. "451 4.3.0 try later" or
	// "dial tcp: connection refused", for logs, the admin API and DSNs.
	Reply string `json:"reply,omitempty"`
	// Remote is the host that gave Reply, if any.
	Remote string `json:"remote,omitempty"`
	// Notified is set once a DSN for a Bounced recipient was queued (or
	// deliberately not made, for the null sender).
	Notified bool `json:"notified,omitempty"`
}

// Message is a queued message without its body.
type Message struct {
	ID       string   `json:"id"`
	Envelope Envelope `json:"envelope"`
	// Queued is when Enqueue stored the message.
	Queued time.Time `json:"queued"`
	// Size is the body size in bytes.
	Size int64 `json:"size"`
	// Recipients has one entry per Envelope.To, in the same order.
	Recipients []Recipient `json:"recipients"`
	// DSNs counts the delivery status notifications made for this message;
	// it makes their ids stable across restarts.
	DSNs int `json:"dsns"`
}

// Summary is one line of List: what an admin needs to see at a glance.
type Summary struct {
	ID     string    `json:"id"`
	From   string    `json:"from"`
	Queued time.Time `json:"queued"`
	Size   int64     `json:"size"`
	// Recipients is the total, Open those not yet delivered or bounced.
	Recipients int `json:"recipients"`
	Open       int `json:"open"`
	// Next is when the next attempt is due; zero means now.
	Next time.Time `json:"next,omitzero"`
}

// Stats is a snapshot of the queue and of the counters since start.
type Stats struct {
	// Messages and Recipients are what is queued now (Recipients counts
	// only those still to deliver).
	Messages, Recipients int
	// Oldest is when the oldest queued message was accepted (zero if the
	// queue is empty).
	Oldest time.Time
	// Counters since the process started.
	Accepted, Delivered, Deferred, Bounced int64
	// DSNs counts notifications queued, DSNsDropped those not made because
	// the bounced message had the null sender.
	DSNs, DSNsDropped int64
	// Quarantined counts spool files found corrupt.
	Quarantined int64
}

// Metrics are the counters a queue and its deliverers share; the service
// exports them at /metrics. The zero value is ready to use.
type Metrics struct {
	Accepted    atomic.Int64 // messages stored by Enqueue
	Delivered   atomic.Int64 // recipients delivered (2xx after the final dot)
	Deferred    atomic.Int64 // recipient attempts that failed temporarily
	Bounced     atomic.Int64 // recipients that failed permanently or expired
	DSNs        atomic.Int64 // DSNs queued
	DSNsDropped atomic.Int64 // DSNs not made: the sender was null
	Quarantined atomic.Int64 // corrupt messages moved aside
}

// Queue is the queue as the SMTP receiving side and the admin API see it.
// Spool implements it on local disk; a PostgreSQL-backed queue shared by
// several nodes can implement it too.
type Queue interface {
	// Enqueue stores a message and returns its id only once both the body
	// and the envelope are on stable storage; after that the message
	// survives a crash. An error (wrapping ErrStorage or ErrInvalid) means
	// nothing was stored: the SMTP side answers 4xx (or 5xx for
	// ErrInvalid).
	Enqueue(ctx context.Context, env Envelope, body io.Reader) (id string, err error)
	// List summarizes every queued message, oldest first.
	List(ctx context.Context) ([]Summary, error)
	// Get returns a queued message with its recipients' state, or an error
	// wrapping ErrNotFound.
	Get(ctx context.Context, id string) (Message, error)
	// Retry makes the deferred recipients of a message due now.
	Retry(ctx context.Context, id string) error
	// Remove deletes a message without delivering it further or bouncing
	// it.
	Remove(ctx context.Context, id string) error
	// Stats is a snapshot of size, age and counters.
	Stats(ctx context.Context) (Stats, error)
}

// Claim is a message leased to one deliverer by DeliveryQueue.Claim. The
// deliverer changes the state of Message.Recipients (and DSNs) as its
// attempts end and hands the claim back to Record, Complete and the others;
// none of them accepts a claim whose lease is no longer the current one.
type Claim struct {
	Message
	// Owner names the deliverer that holds the lease (a node and process),
	// for logs and the admin API.
	Owner string
	// Token fences the lease: every claim of a message gets a new one, and
	// the queue refuses, with ErrLeaseLost, a change made under an older
	// one, so a deliverer whose lease expired cannot overwrite the work of
	// the one that claimed the message next.
	Token uint64
	// Expires is when the lease ends unless renewed; after that the message
	// is claimable by others.
	Expires time.Time
}

// BounceOpen marks every recipient that is not final bounced at now, with
// reason and the last error it had, as DeliveryQueue.Bounce does in every
// implementation, and reports whether there was any.
func (c *Claim) BounceOpen(reason string, now time.Time) bool {
	changed := false
	for i := range c.Recipients {
		r := &c.Recipients[i]
		if r.Status.Final() {
			continue
		}
		reply := reason
		if r.Reply != "" {
			reply += "; last error: " + r.Reply
		}
		r.Status, r.Reply, r.Last, r.Next = Bounced, reply, now, time.Time{}
		changed = true
	}
	return changed
}

// DeliveryQueue is the queue as a deliverer sees it: leases on due
// messages, and the outcome of each attempt. Spool implements it on local
// disk, where a lease lives in memory; a database queue implements it with
// a lease column and SELECT ... FOR UPDATE SKIP LOCKED, so that several
// nodes can deliver from one queue. Every method that takes a claim fails
// with an error wrapping ErrLeaseLost when the lease has expired or the
// message was claimed again or removed since.
//
// Record, Defer and Bounce keep the lease; Complete and Release end it.
type DeliveryQueue interface {
	Queue
	// Claim leases up to max messages to owner for lease: those with a
	// recipient due now, and those whose recipients are all final (so that
	// the deliverer can notify the sender and complete them). A message
	// whose lease expired is claimable again. Messages are given earliest
	// due first.
	Claim(ctx context.Context, owner string, lease time.Duration, max int) ([]Claim, error)
	// Renew extends the lease of c to lease from now and updates
	// c.Expires.
	Renew(ctx context.Context, c *Claim, lease time.Duration) error
	// Body opens the message body. Reading it returns an error wrapping
	// ErrCorrupt instead of io.EOF if the body does not match what was
	// stored, so a damaged body is never sent whole.
	Body(ctx context.Context, id string) (io.ReadCloser, error)
	// Record durably stores the recipients' state and DSN count of c, as
	// one attempt left them (some recipients delivered, others deferred or
	// bounced), before the next attempt starts.
	Record(ctx context.Context, c *Claim) error
	// Defer records every open recipient of c as deferred until next, with
	// reason as its last reply, counting an attempt.
	Defer(ctx context.Context, c *Claim, next time.Time, reason string) error
	// Bounce records every open recipient of c as bounced, with reason as
	// its last reply followed by the reply it had, if any ("; last error:
	// ..."), so that the notification says both.
	Bounce(ctx context.Context, c *Claim, reason string) error
	// Complete ends the lease of c. When every recipient of c is final the
	// message is removed; otherwise c's state is stored (if it changed
	// since it was last recorded) and the message waits for its earliest
	// deferred recipient. The removal need not be durable when Complete
	// returns: a message that comes back after a crash goes out again to
	// the recipients not recorded as final (delivery is at least once).
	// When Complete fails the lease is still held: the caller may Record
	// the state instead (so that a message whose removal failed is not
	// sent again meanwhile) and then Releases it.
	Complete(ctx context.Context, c *Claim) error
	// Release ends the lease of c and leaves the message as last recorded,
	// due as before: for a deliverer that stops.
	Release(ctx context.Context, c *Claim) error
	// Quarantine moves a message whose stored data is damaged out of the
	// queue; it is never delivered.
	Quarantine(ctx context.Context, c *Claim, reason error) error
	// EnqueueID is Enqueue with a caller-chosen id; storing an id that is
	// already queued does nothing. DSNs use it so that making one twice
	// after a crash queues it once.
	EnqueueID(ctx context.Context, id string, env Envelope, body io.Reader) error
	// Wait receives a value when a message may have become due: after
	// Enqueue or Retry. Deliverers also poll, so a lost wake-up only delays.
	Wait() <-chan struct{}
}

// class is a sentinel error of this package: its text for the log, and a
// sentence for people, which the HTTP and CLI boundaries find by the
// UserMessage method (this package imports nothing of dkimd, so it cannot
// use store.Class).
type class struct{ text, message string }

func (c *class) Error() string       { return c.text }
func (c *class) UserMessage() string { return c.message }
