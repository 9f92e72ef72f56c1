package queue

import (
	"runtime"
	"strings"
	"testing"
)

// The index holds no bodies: heap growth per queued message stays small
// whatever the message size, also after a restart reloads the spool.
func TestMemoryFlatWithManyQueuedMessages(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 25 MB")
	}
	e := newEnv(t, nil)
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
