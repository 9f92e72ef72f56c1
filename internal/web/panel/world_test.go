package panel

import (
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/queue"
	"github.com/dkimd/dkimd/internal/web/webtest"
)

// The shared test world (webtest), by the names these tests use.
type testDNS = webtest.DNS

func newTestDNS(t *testing.T, zones ...string) *testDNS { return webtest.NewDNS(t, zones...) }

func testQueue(t *testing.T, now func() time.Time) *queue.Spool { return webtest.Queue(t, now) }

func enqueue(t *testing.T, sp *queue.Spool) string { return webtest.Enqueue(t, sp) }

func deferAll(t *testing.T, sp *queue.Spool, id string, now, next time.Time) {
	webtest.DeferAll(t, sp, id, now, next)
}
