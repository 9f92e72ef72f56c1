package systemtest

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/dkimd/dkimd/internal/delivery/deliverytest"
)

// blackHole accepts connections and never says a word: a next hop that is
// down in the way that keeps a delivery attempt waiting for the greeting.
type blackHole struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	done  chan struct{}
}

func newBlackHole(t *testing.T) *blackHole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackHole{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(b.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns = append(b.conns, c)
			b.mu.Unlock()
		}
	}()
	t.Cleanup(b.close)
	return b
}

func (b *blackHole) close() {
	_ = b.ln.Close()
	<-b.done
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.conns {
		_ = c.Close()
	}
	b.conns = nil
}

// sendAll sends n messages over one connection to the relay port and fails
// the test unless each is answered 250. It returns their Message-IDs.
func sendAll(t *testing.T, relay, tag string, n int) []string {
	t.Helper()
	c, err := smtp.Dial(relay)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.CommandTimeout, c.SubmissionTimeout = 30*time.Second, 30*time.Second
	var ids []string
	for i := range n {
		id := fmt.Sprintf("<%s.%d@systemtest.example.com>", tag, i)
		msg, _ := newMessage(id, bodySizes[i%len(bodySizes)])
		if o, reply := send(c, msg); o != accepted {
			t.Fatalf("sending %s: %s (%s)", id, o, reply)
		}
		ids = append(ids, id)
	}
	if err := c.Quit(); err != nil {
		t.Errorf("QUIT: %v", err)
	}
	return ids
}

// TestServeRestartKeepsQueue queues mail while the next hop is down, stops
// dkimd with SIGTERM, brings the next hop up and starts dkimd again on the
// same data directory: the queued mail goes out, once, signed.
//
// The next hop is down first as a black hole (it accepts and never
// answers), so that the messages are still due when dkimd restarts, and
// then refusing connections: a refused attempt defers the message for the
// retry time (2.5 to 5 minutes for the first, with no command to retry
// sooner), far beyond this test, so there it checks only that the deferred
// messages are still queued after the restart.
func TestServeRestartKeepsQueue(t *testing.T) {
	slow(t)
	const n = 24
	d := newDataDir(t, "127.0.0.1")
	hole := newBlackHole(t)
	hop := hole.ln.Addr().String()

	srv := d.serve(hop)
	ids := sendAll(t, srv.Relay, "held", n)
	if q, ok := srv.waitMetric("dkimd_queue_messages", 10*time.Second, func(v float64) bool { return v == n }); !ok {
		t.Fatalf("dkimd_queue_messages is %v, want %d", q, n)
	}
	hole.mu.Lock()
	held := len(hole.conns)
	hole.mu.Unlock()
	if held == 0 {
		t.Error("dkimd never tried the next hop")
	}
	stopped := time.Now()
	srv.stop() // with delivery attempts hanging on the black hole
	t.Logf("SIGTERM with %d delivery attempts hanging: stopped in %v", held, time.Since(stopped).Round(time.Millisecond))

	hole.close()
	sink, err := deliverytest.StartSink(deliverytest.SinkOptions{Addr: hop})
	if err != nil {
		t.Fatalf("sink on the next hop's address %s: %v", hop, err)
	}
	t.Cleanup(sink.Close)
	srv = d.serve(hop)
	if q, ok := srv.waitMetric("dkimd_queue_messages", 30*time.Second, func(v float64) bool { return v == 0 }); !ok {
		t.Fatalf("queue not drained after the restart: %v messages left\n%s", q, srv.logTail(30))
	}
	got := deliveries(t, sink)
	count := make(map[string]int)
	for _, m := range got {
		count[m.id]++
	}
	for _, id := range ids {
		if count[id] != 1 {
			t.Errorf("%s delivered %d times, want once", id, count[id])
		}
	}
	if len(got) != n {
		t.Errorf("the next hop got %d messages, want %d", len(got), n)
	}
	checkSignatures(t, got, d.record)

	// Now the next hop refuses connections: the messages are tried,
	// deferred, and must survive a restart as deferred.
	sink.Close()
	const m = 5
	sendAll(t, srv.Relay, "deferred", m)
	if v, ok := srv.waitMetric("dkimd_queue_deferred_total", 10*time.Second, func(v float64) bool { return v >= m }); !ok {
		t.Fatalf("dkimd_queue_deferred_total is %v, want %d (next hop refusing)\n%s", v, m, srv.logTail(20))
	}
	srv.stop()
	srv = d.serve(hop)
	if q, err := srv.metric("dkimd_queue_messages"); err != nil || q != m {
		t.Errorf("after the restart dkimd_queue_messages is %v (%v), want the %d deferred messages", q, err, m)
	}
	if !strings.Contains(srv.log(), fmt.Sprintf("messages=%d", m)) {
		t.Errorf("the spool did not report loading %d messages:\n%s", m, srv.logTail(10))
	}
}
