package queue

import (
	"container/heap"
	"time"
)

// The spool keeps the messages that are not leased in a heap ordered by
// when they are due, so that Claim costs O(k log n) for k messages instead
// of scanning and sorting the whole index: with a large backlog (the next
// hop down for a day) a scan per delivery made intake quadratic.
//
// Entries are pushed again whenever their schedule changes; older pushes
// stay in the heap and are skipped by their version (lazy deletion). The
// heap is rebuilt when stale items outnumber live ones.

// dueItem is one push of an entry: 24 bytes. What never changes (queued,
// id) is read through e rather than copied.
type dueItem struct {
	at  int64 // when it is due, in Unix nanoseconds; 0: now
	e   *entry
	ver uint32
}

type dueHeap []dueItem

func (h dueHeap) Len() int { return len(h) }
func (h dueHeap) Less(i, j int) bool {
	a, b := &h[i], &h[j]
	if a.at != b.at {
		return a.at < b.at
	}
	if a.e.queued != b.e.queued {
		return a.e.queued < b.e.queued
	}
	return a.e.id < b.e.id
}
func (h dueHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)   { *h = append(*h, x.(dueItem)) }
func (h *dueHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// dueAt is when the entry's next attempt is due: now (zero) when nothing
// is open, since the message then only waits to be removed.
func (e *entry) dueAt() int64 {
	if e.open == 0 {
		return 0
	}
	return e.next
}

// schedule records a change to e's schedule or lease. Callers hold s.mu.
func (s *Spool) schedule(e *entry) {
	e.ver++
	if e.leased {
		return // Release schedules it again
	}
	if len(s.due) > 2*len(s.idx)+64 {
		s.rebuildDue()
		return
	}
	heap.Push(&s.due, dueItem{at: e.dueAt(), e: e, ver: e.ver})
}

// rebuildDue drops the stale items. Callers hold s.mu.
func (s *Spool) rebuildDue() {
	h := make(dueHeap, 0, len(s.idx))
	for _, e := range s.idx {
		if !e.leased {
			h = append(h, dueItem{at: e.dueAt(), e: e, ver: e.ver})
		}
	}
	heap.Init(&h)
	s.due = h
}

// popDue leases and returns up to max entries due at now, earliest first.
// Callers hold s.mu.
func (s *Spool) popDue(now time.Time, max int) []*entry {
	at := nanos(now)
	var out []*entry
	for len(s.due) > 0 && len(out) < max {
		it := s.due[0]
		if cur, ok := s.idx[it.e.id]; !ok || cur != it.e || it.ver != it.e.ver || it.e.leased {
			heap.Pop(&s.due) // stale
			continue
		}
		if it.at > at {
			break
		}
		heap.Pop(&s.due)
		it.e.leased = true
		out = append(out, it.e)
	}
	return out
}
