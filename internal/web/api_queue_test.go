package web

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/admin/admintest"
	"github.com/dkimd/dkimd/internal/queue"
	"github.com/dkimd/dkimd/internal/store"
)

// TestAPIQueue goes through the queue routes over a real spool: the list,
// one message with a deferred recipient, retry, a message being delivered
// (409), removal, and the audit of both changes.
func TestAPIQueue(t *testing.T) {
	e := newEnv(t)
	now := e.clk.Now()
	deferAll(t, e.spool, e.msgID, now, now.Add(20*time.Minute))

	var list []map[string]any
	r := e.call(roleAdmin, "GET", "/api/v1/queue", nil)
	r.want(t, http.StatusOK, "", "")
	r.into(t, &list)
	if len(list) != 1 {
		t.Fatalf("queue %s, want one message", r.body)
	}
	m := list[0]
	if m["id"] != e.msgID || m["from"] != "ann@a.example" || m["recipients"] != 2.0 || m["open"] != 2.0 ||
		m["next"] != now.Add(20*time.Minute).UTC().Format(time.RFC3339) || m["size"].(float64) <= 0 {
		t.Errorf("summary %s", r.body)
	}
	if _, ok := m["Next"]; ok {
		t.Errorf("summary with a Go field name: %s", r.body)
	}

	var msg queue.Message
	r = e.call(roleAdmin, "GET", "/api/v1/queue/"+e.msgID, nil)
	r.want(t, http.StatusOK, "", "")
	r.into(t, &msg)
	if msg.Envelope.User != "ua@a.example" || len(msg.Recipients) != 2 {
		t.Fatalf("message %s", r.body)
	}
	if rc := msg.Recipients[0]; rc.Status != queue.Deferred || rc.Reply != "451 4.7.1 greylisted, try again later" || !rc.Next.Equal(now.Add(20*time.Minute)) {
		t.Errorf("deferred recipient %+v", rc)
	}
	if rc := msg.Recipients[1]; rc.Status != queue.Deferred || rc.Attempts != 2 || rc.Remote != "" {
		t.Errorf("second recipient %+v", rc)
	}

	// Retry: the deferred recipient is due now.
	e.call(roleAdmin, "POST", "/api/v1/queue/"+e.msgID+"/retry", nil).want(t, http.StatusNoContent, "", "")
	msg = queue.Message{}
	e.call(roleAdmin, "GET", "/api/v1/queue/"+e.msgID, nil).into(t, &msg)
	if !msg.Recipients[0].Next.IsZero() || !msg.Recipients[1].Next.IsZero() || msg.Recipients[0].Status != queue.Deferred {
		t.Errorf("after retry: %+v, want deferred and due now", msg.Recipients[0])
	}

	// While a deliverer holds it, retry and remove answer 409 and change
	// nothing.
	claims, err := e.spool.Claim(e.ctx, "test", time.Hour, 10)
	if err != nil {
		t.Fatal(err)
	}
	before := e.snapshot()
	e.call(roleAdmin, "POST", "/api/v1/queue/"+e.msgID+"/retry", nil).want(t, http.StatusConflict, codeConflict, "")
	e.call(roleAdmin, "DELETE", "/api/v1/queue/"+e.msgID, nil).want(t, http.StatusConflict, codeConflict, "")
	if e.snapshot() != before {
		t.Errorf("a refused queue change changed something")
	}
	for _, c := range claims {
		if err := e.spool.Release(e.ctx, &c); err != nil {
			t.Fatal(err)
		}
	}

	e.call(roleAdmin, "DELETE", "/api/v1/queue/"+e.msgID, nil).want(t, http.StatusNoContent, "", "")
	e.call(roleAdmin, "GET", "/api/v1/queue/"+e.msgID, nil).want(t, http.StatusNotFound, codeNotFound, "")
	r = e.call(roleAdmin, "GET", "/api/v1/queue", nil)
	if r.status != http.StatusOK || string(r.body) != "[]\n" {
		t.Errorf("empty queue: %d %s", r.status, r.body)
	}

	var audit []store.AuditEntry
	e.call(roleAdmin, "GET", "/api/v1/audit?limit=2", nil).into(t, &audit)
	if len(audit) != 2 || audit[0].Action != "queue.remove" || audit[0].ObjectID != e.msgID || audit[0].Actor != "root" ||
		audit[1].Action != "queue.retry" {
		t.Errorf("audit %+v, want queue.remove then queue.retry by root", audit)
	}
}

// TestAPINoQueue: a process without a queue answers 503 unavailable to an
// admin, and still 403 to a domain admin (rights first).
func TestAPINoQueue(t *testing.T) {
	e := newEnv(t)
	other := httptest.NewServer(NewAPI(Options{Admin: admintest.New(t, admintest.Options{Store: e.db, Master: e.mk, Now: e.clk.Now}).Admin, Now: e.clk.Now}))
	defer other.Close()
	mine := e.srv
	e.srv = other
	defer func() { e.srv = mine }()
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v1/queue"},
		{"GET", "/api/v1/queue/" + e.msgID},
		{"POST", "/api/v1/queue/" + e.msgID + "/retry"},
		{"DELETE", "/api/v1/queue/" + e.msgID},
	} {
		r := e.call(roleAdmin, c.method, c.path, nil)
		r.want(t, http.StatusServiceUnavailable, codeUnavailable, "")
		if r.apiErr().Message == "" || r.apiErr().RequestID == "" {
			t.Errorf("%s %s: %s", c.method, c.path, r.body)
		}
		e.call(roleDomA, c.method, c.path, nil).want(t, http.StatusForbidden, codeForbidden, "")
	}
}
