package delivery

import (
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/delivery/deliverytest"
)

// TestLeaseRenewedDuringAttempt: an attempt that outlasts the lease keeps
// it, renewed while the next hop is slow, so no other node claims the
// message meanwhile; a short lease is safe with a long DATA.
func TestLeaseRenewedDuringAttempt(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Lease, o.DataTimeout = 3*time.Second, 20*time.Second })
	e.sink.SetMode(deliverytest.Hang)
	e.enqueue("alice@sender.test", []string{"bob@rcpt.test"}, testBody("slow"))
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.runOnce()
	}()
	if got := e.sink.Wait(1, 10*time.Second); len(got) != 1 {
		t.Fatal("the next hop did not get the message")
	}
	// The fake clock passes twice the lease, in steps shorter than it,
	// with real time for a renewal (every lease/3) between the steps.
	for range 4 {
		e.clk.Advance(1500 * time.Millisecond)
		time.Sleep(1500 * time.Millisecond)
	}
	cs, err := e.sp.Claim(e.ctx, "other-node", time.Minute, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 0 {
		t.Fatalf("another node claimed %s during a renewed attempt", cs[0].ID)
	}
	e.sink.Close() // the attempt ends, however the sink answers
	<-done
}

// TestLeaseLostCancelsAttempt: once the lease is lost (it ran out, so
// another node may claim the message) the attempt is abandoned at once
// instead of running to its timeout, and nothing is recorded.
func TestLeaseLostCancelsAttempt(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Lease, o.DataTimeout = 600*time.Millisecond, 20*time.Second })
	e.sink.SetMode(deliverytest.Hang)
	id := e.enqueue("alice@sender.test", []string{"bob@rcpt.test"}, testBody("lost"))
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.runOnce()
	}()
	if got := e.sink.Wait(1, 10*time.Second); len(got) != 1 {
		t.Fatal("the next hop did not get the message")
	}
	e.clk.Advance(time.Hour) // the lease runs out: the next renewal fails
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the attempt went on after its lease was lost")
	}
	m := e.get(id)
	if m.Recipients[0].Status != "pending" || m.Recipients[0].Attempts != 0 {
		t.Fatalf("a deliverer without a lease recorded %+v", m.Recipients[0])
	}
}
