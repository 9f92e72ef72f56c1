package queue

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Leases on the disk spool live in memory: one process opens a spool
// (lockDir), so no other process can hold one. They still expire, and every
// change is fenced by the claim's token, so that the spool keeps the
// promises of DeliveryQueue that a database queue shared by several nodes
// keeps with a lease column: a deliverer that overran its lease cannot
// record over the one that claimed the message next.
//
// A leased entry is out of the due heap (entry.leased); its lease is in
// leases.byID, which holds only the messages being delivered or changed by
// an admin operation right now, so it stays as small as the deliverers'
// concurrency.

// lease is one message's lease.
type lease struct {
	token uint64
	owner string
	until int64 // Unix nanoseconds; math.MaxInt64 for admin operations
	// saved is the recipients' state and DSN count as last stored, so that
	// Complete writes only a state that changed.
	saved     []Recipient
	savedDSNs int
}

// leases is the spool's table of leases. Guarded by Spool.mu.
type leases struct {
	byID   map[string]*lease
	tokens uint64 // the last token given
	// next is no later than the earliest until in byID, so that Claim
	// looks for expired leases only when one may have expired.
	next int64
}

func (ls *leases) init() {
	ls.byID = make(map[string]*lease)
	ls.next = math.MaxInt64
}

// grant leases e (already marked leased) to owner until until and returns
// the lease. Callers hold s.mu.
func (s *Spool) grant(e *entry, owner string, until int64) *lease {
	s.leases.tokens++
	l := &lease{token: s.leases.tokens, owner: owner, until: until}
	s.leases.byID[e.id] = l
	s.leases.next = min(s.leases.next, until)
	return l
}

// expireLeases ends the leases that ran out by at, making their messages
// claimable again. Callers hold s.mu.
func (s *Spool) expireLeases(at int64) {
	if at < s.leases.next {
		return
	}
	next := int64(math.MaxInt64)
	for id, l := range s.leases.byID {
		if l.until > at {
			next = min(next, l.until)
			continue
		}
		s.log.Warn("queue_lease_expired", "msg_id", id, "owner", l.owner)
		s.endLease(id)
	}
	s.leases.next = next
}

// endLease drops the lease of id and schedules its message. Callers hold
// s.mu.
func (s *Spool) endLease(id string) {
	delete(s.leases.byID, id)
	if e, ok := s.idx[id]; ok && e.leased {
		e.leased = false
		s.schedule(e)
	}
}

// owns returns the entry and lease of c if c's lease is the current one
// and has not expired. Callers hold s.mu.
func (s *Spool) owns(c *Claim) (*entry, *lease, error) {
	e, ok := s.idx[c.ID]
	l := s.leases.byID[c.ID]
	if !ok || l == nil || l.token != c.Token {
		return nil, nil, fmt.Errorf("%w: %s", ErrLeaseLost, c.ID)
	}
	if nanos(s.now()) >= l.until {
		s.endLease(c.ID)
		return nil, nil, fmt.Errorf("%w: %s: lease expired", ErrLeaseLost, c.ID)
	}
	return e, l, nil
}

// lease takes the lease of id for an admin operation; unlease ends it. A
// message being delivered is busy, unless its lease expired.
func (s *Spool) lease(id string) (*entry, uint64, error) {
	e, err := s.lookup(id)
	if err != nil {
		return nil, 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.leased {
		if l := s.leases.byID[id]; l == nil || nanos(s.now()) < l.until {
			return nil, 0, fmt.Errorf("%w: %s", ErrBusy, id)
		}
		s.endLease(id)
	}
	e.leased = true
	return e, s.grant(e, "admin", math.MaxInt64).token, nil
}

func (s *Spool) unlease(id string, token uint64) {
	s.mu.Lock()
	if l := s.leases.byID[id]; l != nil && l.token == token {
		s.endLease(id)
	}
	s.mu.Unlock()
}

// Claim implements DeliveryQueue.
func (s *Spool) Claim(ctx context.Context, owner string, d time.Duration, max int) ([]Claim, error) {
	if max <= 0 {
		return nil, nil
	}
	now := s.now()
	until := now.Add(d)
	s.mu.Lock()
	s.expireLeases(nanos(now))
	es := s.popDue(now, max)
	ls := make([]*lease, len(es))
	for i, e := range es {
		ls[i] = s.grant(e, owner, nanos(until))
	}
	s.mu.Unlock()

	out := make([]Claim, 0, len(es))
	for i, e := range es {
		m, err := s.load(e.id, s.mayHaveState(e))
		switch {
		case err == nil:
			c := Claim{Message: m, Owner: owner, Token: ls[i].token, Expires: until}
			s.mu.Lock()
			ls[i].saved, ls[i].savedDSNs = slices.Clone(m.Recipients), m.DSNs
			s.mu.Unlock()
			out = append(out, c)
		case errors.Is(err, ErrCorrupt):
			c := Claim{Message: Message{ID: e.id}, Token: ls[i].token}
			if qerr := s.Quarantine(ctx, &c, err); qerr != nil {
				s.log.Error("queue_quarantine_failed", "msg_id", e.id, "err", qerr)
			}
		default:
			s.unlease(e.id, ls[i].token)
			s.log.Error("queue_message_not_loaded", "msg_id", e.id, "err", err)
		}
	}
	return out, nil
}

// Renew implements DeliveryQueue.
func (s *Spool) Renew(ctx context.Context, c *Claim, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, l, err := s.owns(c)
	if err != nil {
		return err
	}
	until := s.now().Add(d)
	l.until = nanos(until)
	s.leases.next = min(s.leases.next, l.until)
	c.Expires = until
	return nil
}

// Record implements DeliveryQueue.
func (s *Spool) Record(ctx context.Context, c *Claim) error {
	s.mu.Lock()
	e, _, err := s.owns(c)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	e.fileMu.Lock()
	defer e.fileMu.Unlock()
	return s.record(e, c)
}

// record writes c's state; the caller holds e.fileMu. The lease is checked
// again under e.fileMu, which every writer of e's files holds, so that a
// claim that lost its lease since the caller checked writes nothing.
func (s *Spool) record(e *entry, c *Claim) error {
	s.mu.Lock()
	_, _, err := s.owns(c)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if err := s.writeState(c.ID, e, state{Rcpts: c.Recipients, DSNs: c.DSNs}); err != nil {
		return err
	}
	s.mu.Lock()
	e.setRcpts(c.Recipients)
	s.schedule(e)
	if l := s.leases.byID[c.ID]; l != nil && l.token == c.Token {
		l.saved, l.savedDSNs = slices.Clone(c.Recipients), c.DSNs
	}
	s.mu.Unlock()
	return nil
}

// Defer implements DeliveryQueue.
func (s *Spool) Defer(ctx context.Context, c *Claim, next time.Time, reason string) error {
	now := s.now()
	for i := range c.Recipients {
		r := &c.Recipients[i]
		if r.Status.Final() {
			continue
		}
		r.Attempts++
		r.Status, r.Reply, r.Remote, r.Last, r.Next = Deferred, reason, "", now, next
	}
	return s.Record(ctx, c)
}

// Bounce implements DeliveryQueue. With no open recipient it stores
// nothing.
func (s *Spool) Bounce(ctx context.Context, c *Claim, reason string) error {
	if changed := c.BounceOpen(reason, s.now()); !changed {
		s.mu.Lock()
		_, _, err := s.owns(c)
		s.mu.Unlock()
		return err
	}
	return s.Record(ctx, c)
}

// Complete implements DeliveryQueue.
//
// The removal of a message whose recipients are all final is not made
// durable (no fsync of msg/): if a crash loses it, Open finds the message
// again and it goes out again, to the recipients that its state file, if
// any, does not record as final. That is the duplicate window that already
// exists between the remote server's 250 and this removal, widened to the
// few seconds the kernel takes to write the directory back, and only for a
// power failure or kernel crash: the unlink is in the kernel's cache the
// moment it returns, so a kill -9 loses nothing. Nothing is lost either
// way: the message is removed only when every recipient is delivered or
// bounced (and notified).
//
// If the crash keeps the removal of the state file but loses that of the
// message (the unlinks are in different directories, and only a file
// system that journals metadata in order, as ext4 and XFS do with their
// journals, keeps the second from reaching the disk first), the message
// comes back with every recipient pending: the recipients of earlier
// transactions get it again too, and a bounce may be reported twice. More
// duplicates, still no loss.
func (s *Spool) Complete(ctx context.Context, c *Claim) error {
	s.mu.Lock()
	e, l, err := s.owns(c)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	final := true
	for _, r := range c.Recipients {
		if !r.Status.Final() {
			final = false
			break
		}
	}
	changed := c.DSNs != l.savedDSNs || !slices.Equal(c.Recipients, l.saved)
	s.mu.Unlock()

	if final {
		return s.remove(c.ID, e, false) // which ends the lease
	}
	if changed {
		e.fileMu.Lock()
		err = s.record(e, c)
		e.fileMu.Unlock()
		if err != nil {
			return err
		}
	}
	s.unlease(c.ID, c.Token)
	return nil
}

// Release implements DeliveryQueue.
func (s *Spool) Release(ctx context.Context, c *Claim) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, _, err := s.owns(c); err != nil {
		return err
	}
	s.endLease(c.ID)
	return nil
}

// Quarantine implements DeliveryQueue.
func (s *Spool) Quarantine(ctx context.Context, c *Claim, reason error) error {
	s.mu.Lock()
	e, _, err := s.owns(c)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	e.fileMu.Lock()
	defer e.fileMu.Unlock()
	s.quarantineFiles(c.ID, reason)
	s.mu.Lock()
	delete(s.idx, c.ID)
	delete(s.leases.byID, c.ID)
	s.mu.Unlock()
	return nil
}
