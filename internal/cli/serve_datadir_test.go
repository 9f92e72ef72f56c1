package cli

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/dkimd/dkimd/internal/delivery/deliverytest"
	"github.com/dkimd/dkimd/internal/logtest"
)

// TestServeRelayTempDir: a message too long to hold in memory goes, while
// it is received, to a temporary file in DIR/tmp, a directory of the
// relay's own, never into the queue's private spool/tmp (which the queue
// empties when it opens). serve empties DIR/tmp of what a killed serve
// left, and keeps the spool and the rest of the data directory as they are.
func TestServeRelayTempDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	ok := mustData(t, dir)
	ok("", "domain", "add", "example.com")
	ok("", "key", "generate", "--domain", "example.com", "--selector", "s1", "--algorithm", "ed25519")
	ok("", "key", "activate", "--domain", "example.com", "--selector", "s1", "--force")
	ok("a long enough password\n", "user", "add", "--domain", "example.com", "--name", "alice", "--password-stdin")

	tmp, spoolTmp := filepath.Join(dir, "tmp"), filepath.Join(dir, "spool", "tmp")
	left := filepath.Join(tmp, "relay-killed.eml")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(left, []byte("From: a message never acknowledged\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	sink := deliverytest.NewSink(t, deliverytest.SinkOptions{})
	sink.SetMode(deliverytest.TempFail) // the message stays queued
	var logs logtest.Buffer
	addrs, _ := startServe(t, &logs, "--data", dir, "--listen-http", "127.0.0.1:0",
		"--listen-submission", "127.0.0.1:0", "--listen-submissions", "", "--listen-relay", "",
		"--hostname", "mail.test", "--smarthost", sink.Addr, "--smarthost-tls", "none")
	subAddr := addrs["submission"]
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("a file left in %s by a killed serve is still there: %v", tmp, err)
	}
	for _, p := range []string{filepath.Join(dir, "dkimd.db"), filepath.Join(dir, "master.key")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}

	c, err := smtp.DialStartTLS(subAddr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "alice", "a long enough password")); err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	if err := c.Mail("alice@example.com", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("bob@example.net", nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("From: Alice <alice@example.com>\r\nTo: bob@example.net\r\nSubject: long\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	// Twice the relay's default memory buffer (256 KiB): the relay must
	// move the message to a temporary file before the end of DATA.
	line := strings.Repeat("x", 76) + "\r\n"
	for range (512 << 10) / len(line) {
		if _, err := w.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	names := func(d string) []string {
		ents, _ := os.ReadDir(d)
		var n []string
		for _, e := range ents {
			n = append(n, e.Name())
		}
		return n
	}
	var inTmp []string
	for deadline := time.Now().Add(10 * time.Second); len(inTmp) == 0; time.Sleep(10 * time.Millisecond) {
		inTmp = names(tmp)
		if time.Now().After(deadline) {
			t.Fatalf("no temporary file in %s while a 512 KiB message is received (spool/tmp: %v)", tmp, names(spoolTmp))
		}
	}
	if n := names(spoolTmp); len(n) != 0 {
		t.Errorf("the relay's temporary file went to the queue's spool/tmp: %v", n)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("end of DATA: %v", err)
	}
	if n := names(tmp); len(n) != 0 {
		t.Errorf("temporary file %v left in %s after the message was queued", n, tmp)
	}
	if _, out, _ := runData(t, dir, "", "queue", "list", "--json"); strings.Count(out, `"id"`) != 1 {
		t.Errorf("queue after the message: %s, want one message", out)
	}
}
