package queue

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// The index holds no bodies: heap growth per queued message stays small
// whatever the message size, also after a restart reloads the spool.
func TestMemoryFlatWithManyQueuedMessages(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 25 MB")
	}
	e := newEnv(t)
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	const n, size = 400, 64 << 10
	body := testBody("big") + strings.Repeat("x", size)
	e.open() // the body above is not counted
	before := heap()
	for range n {
		e.enqueue("alice@sender.test", []string{"bob@rcpt.test"}, body)
	}
	e.open()
	after := heap()
	per := (int64(after) - int64(before)) / n
	t.Logf("heap per queued %d KiB message: %d bytes", size>>10, per)
	if per > 2048 {
		t.Fatalf("heap grows %d bytes per queued message: bodies or state held in memory?", per)
	}
	runtime.KeepAlive(body)
}

// The index entry of a message that waits (the next hop down), measured on
// 100,000 of them, as in the backlog run: the entry, its map slot, its due
// heap item and its strings. Before the index was made compact (index.go)
// it was 316 bytes (332 with a sender per message), about 525 bytes of
// resident memory; 173 (221) now, about 305 resident.
func TestIndexBytesPerMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("indexes 100,000 messages")
	}
	tests := []struct {
		name string
		from func(i int) string
		max  int64
	}{
		{"one sender", func(int) string { return strings.Clone("newsletter@sender.example") }, 200},
		{"a sender per message (VERP)", func(i int) string { return fmt.Sprintf("bounce-%08d-bob=rcpt.test@sender.example", i) }, 250},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n = 100_000
			heap := func() uint64 {
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				return ms.HeapAlloc
			}
			s := &Spool{idx: make(map[string]*entry)} // as OpenSpool makes it
			now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			before := heap()
			for i := range n {
				// What load returns: strings of their own, a deferred recipient.
				to := []string{strings.Clone("bob@rcpt.test")}
				rs := initialState(to).Rcpts
				rs[0].Status, rs[0].Attempts, rs[0].Next = Deferred, 3, now.Add(time.Duration(i)*time.Second)
				rs[0].Reply = "dial tcp 192.0.2.1:25: connection refused"
				s.index(Message{ID: newID(now.Add(time.Duration(i) * time.Millisecond)), Queued: now, Size: 4000,
					Envelope: Envelope{From: tt.from(i), To: to, User: "alice", Decision: "signed d=sender.example"}, Recipients: rs})
			}
			per := (int64(heap()) - int64(before)) / n
			t.Logf("%d bytes per queued message", per)
			if per > tt.max {
				t.Errorf("index holds %d bytes per queued message, want at most %d", per, tt.max)
			}
			runtime.KeepAlive(s)
		})
	}
}

// TestIndexEntrySize guards the layout that keeps an entry in an 80-byte
// allocation and a heap item at 24 bytes: a field added carelessly moves
// the entry to the 96-byte class, for every queued message.
func TestIndexEntrySize(t *testing.T) {
	if got := unsafe.Sizeof(entry{}); got > 80 {
		t.Errorf("entry is %d bytes, want at most 80", got)
	}
	if got := unsafe.Sizeof(dueItem{}); got > 24 {
		t.Errorf("dueItem is %d bytes, want at most 24", got)
	}
}
