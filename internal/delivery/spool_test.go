package delivery

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/delivery/deliverytest"
	"github.com/dkimd/dkimd/internal/queue"
)

// Delivery from a spool across restarts and admin operations: what a
// crash leaves is cleaned up, and no recipient recorded as delivered gets
// the message again.

func TestRestartRecovery(t *testing.T) {
	e := newEnv(t, nil)
	e.sink.SetRcpt(func(to string) error {
		if strings.HasPrefix(to, "later") {
			return tempErr
		}
		return nil
	})
	a := e.enqueue("alice@sender.test", []string{"now@rcpt.test", "later@rcpt.test"}, testBody("a"))
	b := e.enqueue("alice@sender.test", []string{"bob@rcpt.test"}, testBody("b"))
	e.runOnce()
	if got := statuses(e.get(a)); got != "now@rcpt.test=delivered/1 later@rcpt.test=deferred/1" {
		t.Fatalf("after first run: %s", got)
	}
	if len(e.sink.Delivered()) != 2 {
		t.Fatalf("sink got %d messages", len(e.sink.Delivered()))
	}
	e.clk.Advance(time.Second)
	c := e.enqueue("alice@sender.test", []string{"carol@rcpt.test"}, testBody("c"))

	// What a crash leaves: a half-written message in tmp/ and the state of
	// a message whose removal was cut short.
	if err := os.WriteFile(filepath.Join(e.dir, "tmp", "x.msg"), []byte("DKIMDQ1 half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "state", "gone"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.open()
	for _, sub := range []string{"tmp", "state"} {
		f, _ := os.ReadDir(filepath.Join(e.dir, sub))
		for _, x := range f {
			if x.Name() == "x.msg" || x.Name() == "gone" {
				t.Fatalf("%s/%s survived the restart", sub, x.Name())
			}
		}
	}
	if l := e.list(); len(l) != 2 || l[0].ID != a || l[1].ID != c {
		t.Fatalf("after restart List = %+v (b=%s)", l, b)
	}
	if got := statuses(e.get(a)); got != "now@rcpt.test=delivered/1 later@rcpt.test=deferred/1" {
		t.Fatalf("after restart: %s", got)
	}

	e.sink.SetRcpt(nil)
	e.clk.Advance(time.Hour)
	e.runOnce()
	got := e.sink.Delivered()
	if len(got) != 4 {
		t.Fatalf("sink got %d messages, want 4", len(got))
	}
	// The recipient delivered before the restart is not sent to again.
	var toA []string
	for _, m := range got {
		if strings.Contains(string(m.Data), "Subject: a\r\n") {
			toA = append(toA, strings.Join(m.To, ","))
		}
	}
	if strings.Join(toA, " ") != "now@rcpt.test later@rcpt.test" {
		t.Fatalf("message a went to %v", toA)
	}
	if l := e.list(); len(l) != 0 {
		t.Fatalf("queue not drained: %+v", l)
	}
}

func TestRetryAndRemoveAdmin(t *testing.T) {
	e := newEnv(t, nil)
	e.sink.SetMode(deliverytest.TempFail)
	id := e.enqueue("alice@sender.test", []string{"bob@rcpt.test"}, testBody("r"))
	e.runOnce()
	m := e.get(id)
	if m.Recipients[0].Status != queue.Deferred || !m.Recipients[0].Next.After(e.clk.Now()) {
		t.Fatalf("after tempfail: %+v", m.Recipients[0])
	}
	e.runOnce() // not due: no attempt
	if n := len(e.sink.Messages()); n != 1 {
		t.Fatalf("not-due message attempted: %d", n)
	}
	if err := e.sp.Retry(e.ctx, id); err != nil {
		t.Fatal(err)
	}
	e.runOnce()
	if n := len(e.sink.Messages()); n != 2 {
		t.Fatalf("Retry did not make the message due: %d attempts", n)
	}
	if err := e.sp.Retry(e.ctx, "../etc/passwd"); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("Retry bad id: %v", err)
	}
	if err := e.sp.Remove(e.ctx, id); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(24 * time.Hour)
	e.runOnce()
	if n := len(e.sink.Messages()); n != 2 {
		t.Fatalf("removed message delivered")
	}
	if st, _ := e.sp.Stats(e.ctx); st.Bounced != 0 || st.DSNs != 0 || st.Messages != 0 {
		t.Fatalf("Remove bounced or kept the message: %+v", st)
	}
}

// TestLostRemovalDeliversAgain: when a power failure loses the removal
// that Complete did not fsync, Open finds the message again and it goes out
// again: to the recipients its state does not record as final, or, if
// only the state file's removal reached the disk, to all of them. Never
// is anything lost or half-delivered.
func TestLostRemovalDeliversAgain(t *testing.T) {
	tests := []struct {
		name    string
		restore []string // files whose removal the crash lost
		want    string   // recipients that get the message again
	}{
		{"both removals lost", []string{"msg", "state"}, "later@rcpt.test"},
		{"only the message's removal lost", []string{"msg"}, "now@rcpt.test,later@rcpt.test"},
		{"only the state's removal lost (an orphan)", []string{"state"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.sink.SetRcpt(func(to string) error {
				if strings.HasPrefix(to, "later") {
					return tempErr
				}
				return nil
			})
			id := e.enqueue("alice@sender.test", []string{"now@rcpt.test", "later@rcpt.test"}, testBody("a"))
			e.runOnce()
			saved := map[string][]byte{}
			for _, sub := range []string{"msg", "state"} {
				b, err := os.ReadFile(filepath.Join(e.dir, sub, id))
				if err != nil {
					t.Fatal(err)
				}
				saved[sub] = b
			}
			e.sink.SetRcpt(nil)
			e.clk.Advance(time.Hour)
			e.runOnce()
			if l := e.list(); len(l) != 0 {
				t.Fatalf("not removed after delivery: %+v", l)
			}
			before := len(e.sink.Delivered())

			for _, sub := range tt.restore {
				if err := os.WriteFile(filepath.Join(e.dir, sub, id), saved[sub], 0o600); err != nil {
					t.Fatal(err)
				}
			}
			e.open()
			e.runOnce()
			var again []string
			for _, m := range e.sink.Delivered()[before:] {
				if !strings.Contains(string(m.Data), "Subject: a\r\n") {
					t.Fatalf("damaged message delivered: %.200q", m.Data)
				}
				again = append(again, m.To...)
			}
			if got := strings.Join(again, ","); got != tt.want {
				t.Errorf("delivered again to %q, want %q", got, tt.want)
			}
			if l := e.list(); len(l) != 0 {
				t.Errorf("queue not drained: %+v", l)
			}
			if f, _ := os.ReadDir(filepath.Join(e.dir, "state")); len(f) != 0 {
				t.Errorf("state/ holds %d files", len(f))
			}
		})
	}
}
