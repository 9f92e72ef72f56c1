package relay_test

import (
	"encoding/base64"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/relay"
)

// FuzzSession sends arbitrary bytes to a live server (AUTH allowed without
// TLS, so the fuzzer reaches every state) and checks that it never panics,
// never queues a message it should not, and still serves a valid session
// afterwards.
func FuzzSession(f *testing.F) {
	auth := "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00alice\x00"+pwAlice)) + "\r\n"
	for _, seed := range []string{
		"EHLO x\r\nQUIT\r\n",
		"EHLO x\r\n" + auth + "MAIL FROM:<alice@tenant-a.example>\r\nRCPT TO:<b@elsewhere.example>\r\nDATA\r\nFrom: alice@tenant-a.example\r\n\r\nHi\r\n.\r\nQUIT\r\n",
		"EHLO x\r\n" + auth + "MAIL FROM:<alice@tenant-a.example>\r\nRCPT TO:<b@elsewhere.example>\r\nDATA\r\nFrom: a@tenant-a.example\r\n\r\nHi\n.\nMAIL FROM:<x@y.example>\r\n.\r\n",
		"EHLO x\r\n" + auth + "MAIL FROM:<alice@tenant-a.example>\r\nRCPT TO:<b@elsewhere.example>\r\nBDAT 5 LAST\r\nFrom:",
		"EHLO x\r\n" + auth + "MAIL FROM:<a%b@tenant-a.example>\r\nRCPT TO:<\"a@b\"@c.example>\r\nRCPT TO:<@a,@b:c@d.example>\r\n",
		"EHLO x\r\nAUTH LOGIN\r\nYWxpY2U=\r\n*\r\nAUTH PLAIN =\r\nSTARTTLS\r\n\x16\x03\x01",
		"HELO \x00\xff\r\nMAIL FROM:<>\r\nRSET\r\nVRFY x\r\nDATA\r\n",
		"EHLO x\r\n" + auth + "MAIL FROM:<> SIZE=99999999999 BODY=BINARYMIME SMTPUTF8\r\nRCPT TO:<b@[IPv6:::1]> NOTIFY=NEVER\r\n",
	} {
		f.Add([]byte(seed))
	}
	fx := newFuzzFixture(f)
	addr := fx.addrs[relay.ModeSubmission]
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		c.Write(in)
		c.(*net.TCPConn).CloseWrite()
		buf := make([]byte, 4096)
		for {
			if _, err := c.Read(buf); err != nil {
				break
			}
		}
		for _, m := range fx.q.Messages() {
			if m.Transaction.User != "alice" {
				t.Fatalf("queued a message for %q", m.Transaction.User)
			}
			if strings.Contains(string(m.Body), "\n.\n") || strings.Contains(strings.ReplaceAll(string(m.Body), "\r\n", ""), "\n") {
				t.Fatalf("queued a message with a bare line end: %q", m.Body)
			}
		}
		// Still up and in its right mind.
		cl := dial(t, addr, "")
		cl.want("EHLO x", 250)
		cl.want("MAIL FROM:<alice@tenant-a.example>", 530)
	})
}

// newFuzzFixture is the fixture with AUTH allowed in clear text on
// loopback, and timeouts short enough for a fuzzer.
func newFuzzFixture(f *testing.F) *fixture {
	f.Helper()
	return newFixture(f, func(o *relay.Options) {
		o.AllowInsecureAuth = true
		o.IdleTimeout = 500 * time.Millisecond
		o.AuthFailureDelay = time.Microsecond
		o.MaxAuthFailuresPerIP = 1 << 30
		o.MaxAuthFailuresPerUser = 1 << 30
	})
}
