package queue

import (
	"math"
	"strings"
	"sync"
	"time"
)

// The in-memory index. A Spool keeps one entry per queued message, plus
// its map slot and its item in the due heap (due.go); with a large backlog
// (100,000 messages while the next hop is down) that is most of the
// process's memory, so it is kept small:
//
//   - times are Unix nanoseconds (8 bytes) rather than time.Time (24);
//   - counts are int32, and the fields are ordered to fit an 80-byte
//     allocation (TestIndexEntrySize);
//   - the heap item points at the entry for what never changes (queued,
//     id) instead of copying it;
//   - the sender address is shared among the messages that have it
//     (senderCache).
//
// What only Get (dkimd queue show) needs, the other envelope fields and the
// per-recipient state, stays on disk and is read on demand.

// entry is the in-memory index of one message: what Claim, List and Stats
// need without touching the disk.
type entry struct {
	// fileMu serializes writes to this message's files.
	fileMu sync.Mutex

	// Set when the message is indexed, never changed.
	id     string // the same string as its key in Spool.idx
	from   string
	queued int64 // Unix nanoseconds
	size   int64
	rcpts  int32

	// Guarded by Spool.mu.
	open       int32
	next       int64  // Unix nanoseconds; see setRcpts
	ver        uint32 // bumped at every schedule change (due.go)
	tmpCounter uint16 // names state temp files; wrapping is harmless
	leased     bool
	// noState is set for a message queued by this process until its first
	// state file is written: there is no state file to read or remove, so
	// delivery and removal skip those calls. Recovered messages may have
	// one, and leave it false.
	noState bool
}

// index adds m to the index and schedules it. Callers hold s.mu, or own s
// exclusively (recover).
func (s *Spool) index(m Message) *entry {
	e := &entry{
		id:     m.ID,
		from:   s.senders.intern(m.Envelope.From),
		queued: nanos(m.Queued),
		size:   m.Size,
		rcpts:  int32(len(m.Recipients)), // bounded by maxRecordLen
	}
	e.setRcpts(m.Recipients)
	s.idx[e.id] = e
	s.schedule(e)
	return e
}

// setRcpts records how many recipients are open and when the earliest of
// them is due (0: now, for a pending one). Callers hold Spool.mu or own e
// exclusively.
func (e *entry) setRcpts(rs []Recipient) {
	e.open, e.next = 0, 0
	first := true
	for _, r := range rs {
		if r.Status.Final() {
			continue
		}
		e.open++
		var next int64
		if r.Status == Deferred {
			next = nanos(r.Next)
		}
		if first || next < e.next {
			e.next, first = next, false
		}
	}
}

// summary is e's line in List. Callers hold Spool.mu.
func (e *entry) summary() Summary {
	return Summary{ID: e.id, From: e.from, Queued: fromNanos(e.queued), Size: e.size,
		Recipients: int(e.rcpts), Open: int(e.open), Next: fromNanos(e.next)}
}

// nanos converts t for the index: the zero time is 0, and times beyond
// what Unix nanoseconds can hold (years before 1678 or after 2262, which a
// hand-edited state file could name) are clamped, keeping their order, so
// that a far-future Next stays far in the future instead of wrapping into
// the past and making the message due in a loop.
func nanos(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.Before(minNanos):
		return math.MinInt64
	case t.After(maxNanos):
		return math.MaxInt64
	}
	return t.UnixNano()
}

var (
	minNanos = time.Unix(0, math.MinInt64)
	maxNanos = time.Unix(0, math.MaxInt64)
)

// fromNanos is the inverse of nanos, in UTC.
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// senderCache shares sender addresses among index entries: a large
// backlog is mostly the mail of a few senders (a newsletter, a busy
// mailbox), and a copy of the address per message cost 32 to 48 bytes. It
// is small and direct-mapped, so when every sender differs (VERP) it costs
// nothing per message, and it keeps only its own copies, never a substring
// of a caller's larger buffer. Guarded by Spool.mu.
type senderCache struct {
	slots [256]string
}

func (c *senderCache) intern(s string) string {
	h := uint32(2166136261) // FNV-1a; collisions only cost sharing
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	slot := &c.slots[h%uint32(len(c.slots))]
	if *slot != s {
		*slot = strings.Clone(s)
	}
	return *slot
}
