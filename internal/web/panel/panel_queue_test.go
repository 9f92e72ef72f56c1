package panel

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestPanelQueue: an admin sees the queue and a message's recipients,
// retries and removes it behind a confirmation and the CSRF token; a
// domain admin gets no link and 403 on every queue page and form.
func TestPanelQueue(t *testing.T) {
	e := newPanelEnv(t, panelEnvOptions{})
	now := e.clk.Now()
	deferAll(t, e.spool, e.msgID, now, now.Add(20*time.Minute))
	msg := "/queue/" + e.msgID

	alice := e.browser()
	aliceCSRF := alice.login("alice", alicePassword)
	if strings.Contains(alice.get("/").body, `href="/queue"`) {
		t.Errorf("a domain admin's navigation links the queue")
	}
	for _, p := range []string{"/queue", msg, msg + "/retry", msg + "/remove"} {
		r := alice.get(p)
		r.want(t, http.StatusForbidden, "Not allowed")
		if strings.Contains(r.body, "ann@a.example") || strings.Contains(r.body, "remote.example") {
			t.Errorf("GET %s shows the message to a domain admin", p)
		}
	}
	before := e.snapshot()
	for _, p := range []string{msg + "/retry", msg + "/remove"} {
		alice.post(p, url.Values{"csrf": {aliceCSRF}}, nil).want(t, http.StatusForbidden)
	}
	if _, err := e.spool.Get(e.ctx, e.msgID); err != nil || e.snapshot() != before {
		t.Fatalf("a domain admin's post changed something: %v", err)
	}

	b := e.browser()
	csrf := b.login("root", rootPassword)
	b.get("/").want(t, http.StatusOK, `<a href="/queue">Queue</a>`)
	b.get("/queue").want(t, http.StatusOK, e.msgID, "ann@a.example", "2 of 2", "in 20 minutes")
	b.get(msg).want(t, http.StatusOK, "bo@remote.example", "cy@remote.example", "deferred",
		"451 4.7.1 greylisted, try again later", "mx.remote.example", "connection refused", "ua@a.example", "in 20 minutes", "in 1 hour")
	b.get(msg+"/remove").want(t, http.StatusOK, "It cannot be undone", `action="`+msg+`/remove"`)
	b.get(msg+"/explode").want(t, http.StatusNotFound)
	b.get("/queue/20260101T000000-nothing").want(t, http.StatusNotFound)

	// Without the token nothing happens.
	for _, p := range []string{msg + "/retry", msg + "/remove"} {
		b.post(p, url.Values{}, nil).want(t, http.StatusForbidden, "Nothing was changed")
	}
	if m, err := e.spool.Get(e.ctx, e.msgID); err != nil || m.Recipients[0].Next.IsZero() {
		t.Fatalf("a post without the token changed the message: %+v %v", m, err)
	}

	r := b.post(msg+"/retry", url.Values{"csrf": {csrf}}, nil)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != msg+"?done=queue_retried" {
		t.Fatalf("retry: %d %q", r.status, r.header.Get("Location"))
	}
	b.get(msg+"?done=queue_retried").want(t, http.StatusOK, "delivery is being tried again")
	if m, err := e.spool.Get(e.ctx, e.msgID); err != nil || !m.Recipients[0].Next.IsZero() || !m.Recipients[1].Next.IsZero() {
		t.Errorf("after retry: %+v %v, want every deferred recipient due now", m, err)
	}

	// A message being delivered: 409, and it stays.
	claims, err := e.spool.Claim(e.ctx, "test", time.Hour, 10)
	if err != nil {
		t.Fatal(err)
	}
	b.post(msg+"/remove", url.Values{"csrf": {csrf}}, nil).want(t, http.StatusConflict, "being delivered")
	for _, c := range claims {
		if err := e.spool.Release(e.ctx, &c); err != nil {
			t.Fatal(err)
		}
	}

	r = b.post(msg+"/remove", url.Values{"csrf": {csrf}}, nil)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/queue?done=queue_removed" {
		t.Fatalf("remove: %d %q", r.status, r.header.Get("Location"))
	}
	b.get("/queue?done=queue_removed").want(t, http.StatusOK, "No bounce was sent", "The queue is empty")
	b.get(msg).want(t, http.StatusNotFound)
	b.get("/audit").want(t, http.StatusOK, "queue.remove", "queue.retry")
}
