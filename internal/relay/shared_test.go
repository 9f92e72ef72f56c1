package relay_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/relay"
)

// memCounters is relay.Counters in memory, as store/postgres.Counters
// keeps them in the database: two relay servers given the same one count
// together, as the nodes of a cluster do.
type memCounters struct {
	mu sync.Mutex
	m  map[string]memCount
}

type memCount struct {
	n   int
	end time.Time
}

func (c *memCounters) Count(_ context.Context, key string, now time.Time) (int, time.Time, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[key]; ok && e.end.After(now) {
		return e.n, e.end, nil
	}
	return 0, time.Time{}, nil
}

func (c *memCounters) Add(_ context.Context, key string, delta int, now time.Time, window time.Duration, sliding bool) (int, time.Time, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]memCount{}
	}
	e, ok := c.m[key]
	if !ok || !e.end.After(now) {
		e = memCount{end: now.Add(window)}
	} else if sliding {
		e.end = now.Add(window)
	}
	e.n += delta
	c.m[key] = e
	return e.n, e.end, nil
}

func (c *memCounters) Remove(_ context.Context, keys ...string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		delete(c.m, k)
	}
	return nil
}

// TestSharedCountersLimitTheCluster: two servers on the same Counters (two
// nodes) hold one user to one hourly limit and one AUTH failure limit
// between them, wherever its connections land.
func TestSharedCountersLimitTheCluster(t *testing.T) {
	shared := &memCounters{}
	tune := func(o *relay.Options) {
		o.Counters = shared
		o.MessagesPerHour, o.MessagesPerDay = 2, -1
		o.MaxAuthFailuresPerIP, o.MaxAuthFailuresPerUser = 100, 2
	}
	a, b := newFixture(t, tune), newFixture(t, tune)
	send := func(f *fixture) (int, string) {
		c := f.login("alice", pwAlice)
		return c.send("alice@tenant-a.example", []string{"bob@elsewhere.example"}, message("From: alice@tenant-a.example"))
	}
	if code, m := send(a); code != 250 {
		t.Fatalf("first message, node a: %d %s", code, m)
	}
	if code, m := send(b); code != 250 {
		t.Fatalf("second message, node b: %d %s", code, m)
	}
	if code, m := send(a); code != 451 || !strings.HasPrefix(m, "4.7.1") {
		t.Errorf("third message in the hour, node a: %d %s, want 451 4.7.1 (the limit is the cluster's)", code, m)
	}

	// One wrong password on each node locks the user on both.
	for i, f := range []*fixture{a, b} {
		c := dial(t, f.addrs[relay.ModeSubmission], "")
		c.ehlo()
		c.starttls()
		want := []int{535, 421}[i]
		if code := c.authPlain("alice", "wrong"); code != want {
			t.Fatalf("failure %d: %d, want %d", i+1, code, want)
		}
	}
	c := dial(t, a.addrs[relay.ModeSubmission], "")
	c.ehlo()
	c.starttls()
	if code := c.authPlain("alice", pwAlice); code != 421 {
		t.Errorf("right password on node a after failures on a and b: %d, want 421", code)
	}
}
