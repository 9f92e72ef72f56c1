package cli

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/dkimd/dkimd/internal/delivery/deliverytest"
	"github.com/dkimd/dkimd/internal/logtest"
	"github.com/dkimd/dkimd/internal/peertest"
)

// TestServeRelaysSignedMail is the mail path end to end, as a user meets it:
// set up with the admin commands, "dkimd serve" with a smart host, a
// message submitted over STARTTLS with AUTH, delivered to the next hop,
// and its signature checked by dkimpy against the record dkimd printed.
func TestServeRelaysSignedMail(t *testing.T) {
	py := peertest.Dkimpy(t)
	dir := filepath.Join(t.TempDir(), "data")
	ok := mustData(t, dir)
	ok("", "domain", "add", "example.com")
	ok("", "key", "generate", "--domain", "example.com", "--selector", "s1", "--bits", "2048")
	ok("", "key", "activate", "--domain", "example.com", "--selector", "s1", "--force")
	record := strings.TrimSpace(ok("", "key", "record", "--domain", "example.com", "--selector", "s1", "--format", "value"))
	ok("a long enough password\n", "user", "add", "--domain", "example.com", "--name", "alice", "--password-stdin")

	sink := deliverytest.NewSink(t, deliverytest.SinkOptions{})
	var logs logtest.Buffer
	addrs, _ := startServe(t, &logs, "--data", dir, "--listen-http", "127.0.0.1:0",
		"--listen-submission", "127.0.0.1:0", "--listen-submissions", "", "--listen-relay", "",
		"--hostname", "mail.test", "--smarthost", sink.Addr, "--smarthost-tls", "none")
	httpAddr, subAddr := addrs["http"], addrs["submission"]

	c, err := smtp.DialStartTLS(subAddr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "alice", "a long enough password")); err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	// The next hop fails for now: the message waits in the queue, and the
	// queue commands reach the running serve over its control socket.
	sink.SetMode(deliverytest.TempFail)
	msg := "From: Alice <alice@example.com>\r\nTo: bob@example.net\r\nSubject: end to end\r\n" +
		"Date: Sun, 29 Nov 2026 10:00:00 +0000\r\nMessage-ID: <e2e@example.com>\r\n\r\nHello Bob.\r\n"
	if err := c.SendMail("alice@example.com", []string{"bob@example.net"}, strings.NewReader(msg)); err != nil {
		t.Fatalf("send: %v", err)
	}
	var queued []struct{ ID string }
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out := ok("", "queue", "show", "--json", queueID(t, ok))
		if strings.Contains(out, `"status": "deferred"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("message not deferred: %s", out)
		}
	}
	if err := json.Unmarshal([]byte(ok("", "queue", "list", "--json")), &queued); err != nil || len(queued) != 1 {
		t.Fatalf("queue list: %v %v", queued, err)
	}
	sink.SetMode(deliverytest.Accept)
	// The attempt that deferred it may still hold the message for a moment
	// (its lease ends after the state is written): retry says so, and the
	// user tries again, as its answer asks.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		code, _, errs := runData(t, dir, "", "queue", "retry", queued[0].ID)
		if code == 0 {
			break
		}
		if !strings.Contains(errs, "being delivered right now") || time.Now().After(deadline) {
			t.Fatalf("queue retry: exit %d: %s", code, errs)
		}
	}
	var got []deliverytest.Received
	for deadline := time.Now().Add(20 * time.Second); len(got) == 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		got = sink.Delivered()
	}
	if len(got) != 1 {
		t.Fatalf("delivered %d messages, want 1\n%s", len(got), logs.String())
	}
	if v := py.Verify(got[0].Data, map[string]string{"s1._domainkey.example.com": record}); !v.Pass() {
		t.Fatalf("dkimpy: %s\n%s", v.Summary, got[0].Data)
	}
	if !strings.Contains(string(got[0].Data), "x=") {
		t.Error("signature without x=")
	}
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"dkimd_messages_signed_total 1", "dkimd_queue_delivered_total 1", "dkimd_queue_messages 0"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if out := ok("", "queue", "list"); strings.Contains(out, queued[0].ID) {
		t.Errorf("delivered message still listed:\n%s", out)
	}
	if !strings.Contains(ok("", "audit", "--action", "queue.retry"), queued[0].ID) {
		t.Error("queue retry not audited")
	}
	if strings.Contains(logs.String(), "a long enough password") {
		t.Error("the password reached the log")
	}
}

// queueID waits for one message in the queue and gives its ID.
func queueID(t *testing.T, ok func(string, ...string) string) string {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var l []struct{ ID string }
		if json.Unmarshal([]byte(ok("", "queue", "list", "--json")), &l) == nil && len(l) == 1 {
			return l[0].ID
		}
	}
	t.Fatal("no message in the queue")
	return ""
}
