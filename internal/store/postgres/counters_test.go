package postgres

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestCounters(t *testing.T) {
	ctx := context.Background()
	db1 := openTest(t, pg.Database(t), nil)
	defer db1.Close()
	c := db1.Counters()
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	if n, _, err := c.Count(ctx, "k", t0); err != nil || n != 0 {
		t.Fatalf("Count of a new key: %d %v", n, err)
	}
	// Fixed: the window runs from the first Add.
	for i := 1; i <= 3; i++ {
		n, end, err := c.Add(ctx, "k", 1, t0.Add(time.Duration(i)*time.Minute), time.Hour, false)
		if err != nil || n != i || !end.Equal(t0.Add(61*time.Minute)) {
			t.Fatalf("Add #%d: %d until %v, %v", i, n, end, err)
		}
	}
	if n, _, _ := c.Count(ctx, "k", t0.Add(60*time.Minute)); n != 3 {
		t.Fatalf("Count inside the window: %d", n)
	}
	if n, _, _ := c.Count(ctx, "k", t0.Add(61*time.Minute)); n != 0 {
		t.Fatalf("Count after the window: %d", n)
	}
	if n, end, _ := c.Add(ctx, "k", 1, t0.Add(2*time.Hour), time.Hour, false); n != 1 || !end.Equal(t0.Add(3*time.Hour)) {
		t.Fatalf("Add after the window: %d until %v, want a new window", n, end)
	}
	// Sliding: each Add moves the end.
	for i := 1; i <= 3; i++ {
		now := t0.Add(time.Duration(i) * 50 * time.Minute)
		if n, end, _ := c.Add(ctx, "s", 1, now, time.Hour, true); n != i || !end.Equal(now.Add(time.Hour)) {
			t.Fatalf("sliding Add #%d: %d until %v", i, n, end)
		}
	}
	if err := c.Remove(ctx, "s", "k"); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := c.Count(ctx, "s", t0); n != 0 {
		t.Fatalf("Count after Remove: %d", n)
	}
	// Counting at once on several connections loses nothing.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 25 {
				if _, _, err := c.Add(ctx, "p", 1, t0, time.Hour, false); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if n, _, _ := c.Count(ctx, "p", t0); n != 100 {
		t.Fatalf("100 concurrent Adds counted %d", n)
	}
	if n, err := c.Expire(ctx, t0.Add(24*time.Hour)); err != nil || n != 1 {
		t.Fatalf("Expire: %d %v, want 1 (p)", n, err)
	}
}
