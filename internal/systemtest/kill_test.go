package systemtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/delivery/deliverytest"
)

// TestKill9UnderLoad kills dkimd with SIGKILL at random moments while
// clients send to its relay port, restarts it on the same data directory
// each time, and lets it drain. The spool's promise (250 only once the
// message is on stable storage) and the queue's (at least once) are checked
// against the next hop:
//
//   - every message answered 250 is delivered;
//   - nothing is delivered that was refused or never sent, only messages
//     answered 250 or whose answer was lost with the connection;
//   - every delivery is complete (the body as sent) and carries a valid
//     DKIM signature;
//   - duplicates (a kill between the next hop's 250 and the state write)
//     are allowed, and reported.
func TestKill9UnderLoad(t *testing.T) {
	slow(t)
	const (
		clients = 8
		kills   = 3
	)
	ips := make([]string, clients)
	for i := range ips {
		ips[i] = fmt.Sprintf("127.0.0.%d", 10+i)
	}
	d := newDataDir(t, ips...)
	sink := deliverytest.NewSink(t, deliverytest.SinkOptions{})
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("kill moments drawn with seed %d", seed)

	var relay atomic.Value
	srv := d.serve(sink.Addr)
	relay.Store(srv.Relay)
	led := newLedger()
	ctx, stopClients := context.WithCancel(t.Context())
	defer stopClients()
	var wg sync.WaitGroup
	for i, ip := range ips {
		c := &client{name: fmt.Sprintf("c%d", i), source: ip, relay: func() string { return relay.Load().(string) }, ledger: led}
		wg.Go(func() { c.run(ctx) })
	}

	for k := 1; k <= kills+1; k++ {
		before := led.count(accepted)
		// A random moment, long enough for the clients to reconnect and
		// load the server (restarting takes a fraction of a second).
		wait := 1500*time.Millisecond + time.Duration(rng.Int64N(int64(2*time.Second)))
		deadline := time.Now().Add(wait)
		for time.Now().Before(deadline) && t.Context().Err() == nil {
			time.Sleep(20 * time.Millisecond)
		}
		got := led.count(accepted) - before
		if got == 0 {
			t.Errorf("run %d of dkimd accepted nothing in %v: not under load\n%s", k, wait, srv.logTail(20))
		}
		if k > kills {
			break
		}
		srv.kill()
		t.Logf("run %d: SIGKILL after %v, %d messages accepted in it", k, wait.Round(time.Millisecond), got)
		srv = d.serve(sink.Addr)
		relay.Store(srv.Relay)
	}
	stopClients()
	wg.Wait()
	led.mu.Lock()
	t.Logf("clients: %d accepted, %d unanswered (connection lost after DATA), %d refused, %d not sent",
		led.n[accepted], led.n[unanswered], led.n[refused], led.n[notSent])
	led.mu.Unlock()

	// Drain: everything accepted delivered and the queue empty.
	want := led.snapshot()
	missing := func() []string {
		got := make(map[string]bool)
		for _, m := range deliveries(t, sink) {
			got[m.id] = true
		}
		var out []string
		for id, s := range want {
			if s.outcome == accepted && !got[id] {
				out = append(out, id)
			}
		}
		sort.Strings(out)
		return out
	}
	var miss []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if miss = missing(); len(miss) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if q, ok := srv.waitMetric("dkimd_queue_messages", 30*time.Second, func(v float64) bool { return v == 0 }); !ok {
		t.Errorf("the queue did not drain: %v messages left after 30s\n%s", q, srv.logTail(20))
	}
	if len(miss) > 0 {
		t.Errorf("%d messages answered 250 were never delivered, e.g. %v\n%s", len(miss), miss[:min(5, len(miss))], srv.logTail(30))
	}

	msgs := deliveries(t, sink)
	seen := make(map[string]int)
	var unique []delivery
	lateUnanswered := 0
	for _, m := range msgs {
		seen[m.id]++
		s, ok := want[m.id]
		switch {
		case !ok:
			t.Errorf("delivered %s, which no client sent", m.id)
			continue
		case s.outcome == refused || s.outcome == notSent:
			t.Errorf("delivered %s, which was %s (%s)", m.id, s.outcome, s.reply)
		case s.outcome == unanswered && seen[m.id] == 1:
			lateUnanswered++
		}
		if m.sum != s.sum {
			t.Errorf("delivered %s with a body other than the one sent (partial?):\n%.600s", m.id, m.data)
		}
		if seen[m.id] == 1 {
			unique = append(unique, m)
		}
	}
	dups := 0
	for _, n := range seen {
		dups += n - 1
	}
	t.Logf("next hop: %d deliveries, %d distinct messages, %d duplicate deliveries (at least once), %d of them sent without an answer",
		len(msgs), len(unique), dups, lateUnanswered)
	checkSignatures(t, unique, d.record)
}
