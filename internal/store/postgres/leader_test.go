package postgres

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestLeadOneAtATime: of three nodes calling Lead, one runs the job; when
// it stops (its process dies: its session ends), another takes over.
func TestLeadOneAtATime(t *testing.T) {
	url := pg.Database(t)
	var running, maxRunning atomic.Int32
	var leader atomic.Int32
	type node struct {
		cancel context.CancelFunc
		done   chan struct{}
	}
	start := func(id int32) node {
		db := openTest(t, url, nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer db.Close()
			db.Lead(ctx, "test-job", 100*time.Millisecond, nil, func(ctx context.Context) {
				n := running.Add(1)
				for m := maxRunning.Load(); n > m && !maxRunning.CompareAndSwap(m, n); m = maxRunning.Load() {
				}
				leader.Store(id)
				<-ctx.Done()
				running.Add(-1)
			})
		}()
		return node{cancel, done}
	}
	nodes := map[int32]node{1: start(1), 2: start(2), 3: start(3)}
	waitLeader := func(not int32) int32 {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if id := leader.Load(); id != 0 && id != not && running.Load() == 1 {
				return id
			}
		}
		t.Fatalf("no leader other than %d", not)
		return 0
	}
	first := waitLeader(0)
	time.Sleep(500 * time.Millisecond) // the others keep trying meanwhile
	nodes[first].cancel()
	<-nodes[first].done
	second := waitLeader(first)
	for _, n := range nodes {
		n.cancel()
		<-n.done
	}
	if m := maxRunning.Load(); m != 1 {
		t.Fatalf("%d nodes ran the job at once", m)
	}
	t.Logf("leader %d, then %d", first, second)
}
