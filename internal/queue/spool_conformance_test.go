package queue_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/queue"
	"github.com/dkimd/dkimd/internal/queue/queuetest"
)

// TestSpoolConformance runs the DeliveryQueue conformance suite against the
// disk spool, restarting it on the same directory where the suite asks.
func TestSpoolConformance(t *testing.T) {
	queuetest.Run(t, func(t *testing.T, now func() time.Time) (queue.DeliveryQueue, func() queue.DeliveryQueue) {
		dir := t.TempDir()
		open := func() *queue.Spool {
			sp, err := queue.OpenSpool(dir, queue.SpoolOptions{Now: now, Log: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			return sp
		}
		sp := open()
		t.Cleanup(func() {
			if err := sp.Close(); err != nil {
				t.Error(err)
			}
		})
		return sp, func() queue.DeliveryQueue {
			if err := sp.Close(); err != nil {
				t.Fatal(err)
			}
			sp = open()
			return sp
		}
	})
}
