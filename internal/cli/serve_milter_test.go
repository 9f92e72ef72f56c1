package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
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

// TestServeMilterInPostfix is the milter as a mail administrator deploys
// it: "dkimd serve --listen-milter unix:..." beside a real Postfix (a
// private instance, started once for these cases), mail sent through
// Postfix over SMTP, captured at the next hop, and every signature checked
// by dkimpy against the records dkimd printed.
func TestServeMilterInPostfix(t *testing.T) {
	peertest.RequirePostfix(t, true)
	py := peertest.Dkimpy(t)
	od := peertest.OpenDKIM(t)
	dir := filepath.Join(t.TempDir(), "data")
	ok := mustData(t, dir)
	records := map[string]string{}
	key := func(domain, sel string, alg ...string) {
		ok("", append([]string{"key", "generate", "--domain", domain, "--selector", sel}, alg...)...)
		ok("", "key", "activate", "--domain", domain, "--selector", sel, "--force")
		records[sel+"._domainkey."+domain] = strings.TrimSpace(ok("", "key", "record", "--domain", domain, "--selector", sel, "--format", "value"))
	}
	ok("", "domain", "add", "example.com")
	ok("", "domain", "add", "other.example")
	key("example.com", "s1", "--bits", "2048")
	key("example.com", "e1", "--algorithm", "ed25519")
	key("other.example", "o1", "--bits", "2048")
	ok("unused by the milter\n", "user", "add", "--domain", "example.com", "--name", "alice", "--password-stdin", "--dkim-selector", "s1")
	ok("unused by the milter\n", "user", "add", "--domain", "other.example", "--name", "bob@other.example", "--password-stdin")
	ok("", "user", "add", "--domain", "example.com", "--name", "server1", "--ip", "127.0.0.2", "--dkim-selector", "s1")
	ok("", "user", "add", "--domain", "example.com", "--name", "gateway", "--ip", "127.0.0.4", "--reauth")
	// Postfix hands mail from its sendmail command over as from 127.0.0.1.
	ok("", "user", "add", "--domain", "example.com", "--name", "localhost", "--ip", "127.0.0.1")

	sink := deliverytest.NewSink(t, deliverytest.SinkOptions{})
	// The socket's folder must be reachable by Postfix's smtpd (user
	// postfix); the test's TempDir is not.
	sockDir, err := os.MkdirTemp("", "dkimd-milter-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sockDir)
	if err := os.Chmod(sockDir, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(sockDir, "milter.sock")

	var logs logtest.Buffer
	// serve starts "dkimd serve" with the milter on; it gives the HTTP
	// address and a function that stops it.
	serve := func() (string, func()) {
		t.Helper()
		addrs, stop := startServe(t, &logs, "--data", dir, "--listen-http", "127.0.0.1:0",
			"--listen-submission", "", "--listen-submissions", "", "--listen-relay", "",
			"--listen-milter", "unix:"+sock, "--milter-socket-mode", "0666")
		return addrs["http"], stop
	}
	httpAddr, stop := serve()
	defer func() { stop() }()

	pf, err := peertest.StartPostfix(peertest.PostfixOptions{RelayHost: sink.Addr, Milter: "unix:" + sock,
		SASLUsers: map[string]string{"alice": "pw-alice", "bob@other.example": "pw-bob"}})
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Stop()
	defer func() {
		if t.Failed() {
			t.Logf("postfix log:\n%s\ndkimd log:\n%s", pf.Log(), logs.String())
		}
	}()

	var signed [][]byte // for OpenDKIM, in one run at the end
	big := strings.Repeat("A line of a long message, with  spaces\tand tabs. \r\n", 2<<20/50)
	for _, tc := range []struct {
		name       string
		local      string // client address; all of 127/8 is loopback
		sendmail   bool   // through Postfix's sendmail command, not SMTP
		login, pw  string // SMTP AUTH on the submission listener
		header     string
		body       string
		rejected   string // the reply code Postfix passes on from dkimd
		wantDomain string // "" means unsigned
		wantSigs   int
	}{
		{name: "SASL user", login: "alice", pw: "pw-alice", header: "From: Alice <alice@example.com>\r\n",
			wantDomain: "example.com", wantSigs: 2},
		{name: "SASL login with a domain", login: "bob@other.example", pw: "pw-bob", header: "From: bob@other.example\r\n",
			wantDomain: "other.example", wantSigs: 1},
		{name: "IP user", local: "127.0.0.2", header: "From: app@example.com\r\n", wantDomain: "example.com", wantSigs: 2},
		{name: "sendmail command", sendmail: true, header: "From: cron@example.com\r\n", wantDomain: "example.com", wantSigs: 2},
		{name: "re-authenticating server", local: "127.0.0.4", header: "From: someone@example.com\r\nX-AuthUser: someone\r\n"},
		{name: "unknown client: inbound mail", local: "127.0.0.3", header: "From: outsider@example.com\r\n"},
		// Never d=other.example: refused, as the relay refuses it.
		{name: "From domain the user may not send from", login: "alice", pw: "pw-alice", header: "From: ceo@other.example\r\n",
			rejected: "550"},
		{name: "2 MiB message", login: "alice", pw: "pw-alice", header: "From: alice@example.com\r\n", body: big,
			wantDomain: "example.com", wantSigs: 2},
		{name: "folded and 8-bit header fields", login: "alice", pw: "pw-alice",
			header:     "From: =?utf-8?q?J=C3=BCrgen?=\r\n\t<alice@example.com>\r\nTo: Jürgen Müller <a@example.net>,\r\n  b@example.net\r\nReply-To:  Grüße   <alice@example.com>\r\nX-Note:   Grüße aus Köln  \r\n\tzweite Zeile\r\n",
			wantDomain: "example.com", wantSigs: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("<%d@milter.test>", time.Now().UnixNano())
			body := tc.body
			if body == "" {
				body = "Hello.\r\n"
			}
			msg := tc.header + "Subject: " + tc.name + "\r\nDate: Mon, 07 Dec 2026 10:00:00 +0000\r\nMessage-ID: " + id + "\r\n\r\n" + body
			addr := pf.SMTP
			if tc.login != "" {
				addr = pf.Submission
			}
			if tc.sendmail {
				cmd := exec.Command("/usr/sbin/sendmail", "-C", pf.Dir, "-f", "cron@example.com", "rcpt@example.net")
				cmd.Stdin = strings.NewReader(msg)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("sendmail: %v: %s", err, out)
				}
			} else if tc.rejected != "" {
				if err := trySend(addr, tc.local, tc.login, tc.pw, msg); err == nil || !strings.Contains(err.Error(), tc.rejected) {
					t.Fatalf("send: %v, want a rejection %s", err, tc.rejected)
				}
				return
			} else {
				sendVia(t, addr, tc.local, tc.login, tc.pw, msg)
			}
			got := waitFor(t, sink, id)
			n := bytes.Count(got, []byte("DKIM-Signature:"))
			if tc.wantDomain == "" {
				if n != 0 {
					t.Fatalf("signed:\n%s", got)
				}
				return
			}
			if n != tc.wantSigs {
				t.Fatalf("%d signatures, want %d:\n%.2000s", n, tc.wantSigs, got)
			}
			v := py.Verify(got, records)
			if !v.Pass() {
				t.Fatalf("dkimpy: %s\n%.3000s", v, got)
			}
			for _, r := range v.Sigs {
				if r.Domain != tc.wantDomain {
					t.Fatalf("d=%s, want d=%s", r.Domain, tc.wantDomain)
				}
			}
			signed = append(signed, got)
			// With SMFIP_HDR_LEADSPC the field must bring its own space.
			if !bytes.Contains(got, []byte("DKIM-Signature: v=1;")) {
				t.Errorf("signature field not written as \"DKIM-Signature: v=1;...\":\n%.500s", got)
			}
		})
	}

	for i, v := range od.Verify(signed, records) {
		for _, r := range v.Sigs {
			if r.Algorithm != "" && !od.Supports(r.Algorithm) {
				continue // an OpenDKIM built without Ed25519
			}
			if !r.Pass {
				t.Errorf("OpenDKIM, message %d, s=%s: %s\n%.2000s", i, r.Selector, r.Reason, signed[i])
			}
		}
		if len(v.Sigs) == 0 {
			t.Errorf("OpenDKIM, message %d: %s", i, v)
		}
	}

	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`dkimd_milter_messages_total{reason="from_domain",result="signed"} 6`,
		`dkimd_milter_messages_total{reason="from_not_permitted",result="rejected"} 1`,
		`dkimd_milter_messages_total{reason="reauth_user",result="unsigned"} 1`,
		`dkimd_milter_messages_total{reason="no_user",result="unsigned"} 1`,
	} {
		if !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// A restart of dkimd while Postfix runs: meanwhile Postfix answers 4xx
	// (milter_default_action = tempfail) and keeps nothing; afterwards
	// mail is signed again.
	stop()
	down := "From: app@example.com\r\nSubject: while down\r\nMessage-ID: <down@milter.test>\r\n\r\nHi.\r\n"
	var se *smtp.SMTPError
	if err := trySend(pf.SMTP, "127.0.0.2", "", "", down); !errors.As(err, &se) || se.Code/100 != 4 {
		t.Errorf("with dkimd down, Postfix answered %v, want 4xx", err)
	}
	_, stop = serve()
	up := "From: app@example.com\r\nSubject: back\r\nMessage-ID: <up@milter.test>\r\n\r\nHi.\r\n"
	sendVia(t, pf.SMTP, "127.0.0.2", "", "", up)
	if v := py.Verify(waitFor(t, sink, "<up@milter.test>"), records); !v.Pass() {
		t.Errorf("after the restart: %s", v)
	}
	for _, r := range sink.Delivered() {
		if bytes.Contains(r.Data, []byte("<down@milter.test>")) {
			t.Error("a message sent while dkimd was down went out (unsigned)")
		}
	}

	for _, secret := range []string{"pw-alice", "pw-bob"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("a password reached dkimd's log")
		}
	}
}

// sendVia sends msg over SMTP from local (an address on loopback; "" for
// any), with AUTH PLAIN if login is set.
func sendVia(t *testing.T, addr, local, login, pw, msg string) {
	t.Helper()
	if err := trySend(addr, local, login, pw, msg); err != nil {
		t.Fatal(err)
	}
}

func trySend(addr, local, login, pw, msg string) error {
	d := net.Dialer{Timeout: 10 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return err
	}
	c := smtp.NewClient(conn)
	defer c.Close()
	if login != "" {
		if err := c.Auth(sasl.NewPlainClient("", login, pw)); err != nil {
			return fmt.Errorf("AUTH %s: %w", login, err)
		}
	}
	if err := c.SendMail("sender@example.com", []string{"rcpt@example.net"}, strings.NewReader(msg)); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return c.Quit()
}

// waitFor waits for the message with Message-ID id at the sink.
func waitFor(t *testing.T, sink *deliverytest.Sink, id string) []byte {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for _, r := range sink.Delivered() {
			if bytes.Contains(r.Data, []byte(id)) {
				return r.Data
			}
		}
	}
	t.Fatalf("message %s not delivered", id)
	return nil
}
