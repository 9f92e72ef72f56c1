package queue

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestClaimOrder: Claim hands out due messages earliest first, each once
// while leased, skips those not yet due, and sees every schedule change
// (Record, Release, Retry) — the heap's lazy bookkeeping never loses or
// repeats a message.
func TestClaimOrder(t *testing.T) {
	e := newEnv(t)
	now := e.clk.Now()
	const n = 300
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[string]time.Time{}
	for i := range n {
		e.enqueue("a@sender.test", []string{"b@rcpt.test"}, testBody(fmt.Sprint("m", i)))
		// Defer each by a random time, some of them twice.
		for range 1 + i%2 {
			e.clk.Set(now.Add(1000 * time.Hour))
			ms, err := e.sp.Claim(e.ctx, "test", time.Hour, 1)
			if err != nil || len(ms) != 1 {
				t.Fatalf("claim %d: %v %v", i, ms, err)
			}
			m := ms[0]
			m.Recipients[0].Status = Deferred
			m.Recipients[0].Next = now.Add(time.Duration(rng.IntN(100)) * time.Minute)
			if err := e.sp.Record(e.ctx, &m); err != nil {
				t.Fatal(err)
			}
			if err := e.sp.Release(e.ctx, &m); err != nil {
				t.Fatal(err)
			}
			want[m.ID] = m.Recipients[0].Next
		}
	}
	if len(want) != n {
		t.Fatalf("%d messages scheduled, want %d", len(want), n)
	}
	at := now.Add(50 * time.Minute)
	e.clk.Set(at)
	seen := map[string]bool{}
	claimed := map[string]Claim{}
	var last time.Time
	for {
		ms, err := e.sp.Claim(e.ctx, "test", time.Hour, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) == 0 {
			break
		}
		for _, m := range ms {
			next := m.Recipients[0].Next
			if next.After(at) || next.Before(last) || seen[m.ID] || !next.Equal(want[m.ID]) {
				t.Fatalf("claimed %s due %v after %v (seen %v)", m.ID, next, last, seen[m.ID])
			}
			last, seen[m.ID], claimed[m.ID] = next, true, m
		}
	}
	for id, next := range want {
		if !next.After(at) && !seen[id] {
			t.Errorf("%s due %v was never claimed", id, next)
		}
	}
	// Release the claimed ones: they are due again; Retry makes a later
	// one due now.
	for _, c := range claimed {
		if err := e.sp.Release(e.ctx, &c); err != nil {
			t.Fatal(err)
		}
	}
	var later string
	for id, next := range want {
		if next.After(at) {
			later = id
			break
		}
	}
	if err := e.sp.Retry(e.ctx, later); err != nil {
		t.Fatal(err)
	}
	ms, err := e.sp.Claim(e.ctx, "test", time.Hour, 2*n)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, m := range ms {
		got[m.ID] = true
	}
	if len(got) != len(seen)+1 || !got[later] {
		t.Errorf("after release and retry: %d claimed, want %d with the retried one", len(got), len(seen)+1)
	}
}
