package relay_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// SMTP smuggling (SEC Consult, 2023): only CRLF.CRLF ends DATA, and a
// message holding a bare CR, bare LF or NUL is refused with 550 5.6.0, so
// no sequence another MTA might take for the end of data passes through.
// Each payload tries to end the first message early and slip in a second
// one from a victim; the second must never be queued, and the session must
// stay in step (the smuggled commands are not run).
func TestSmuggling(t *testing.T) {
	f := newFixture(t, nil)
	smuggled := "MAIL FROM:<ceo@tenant-a.example>\r\nRCPT TO:<victim@elsewhere.example>\r\nDATA\r\nFrom: ceo@tenant-a.example\r\n\r\nPay now.\r\n"
	for _, tc := range []struct {
		name, end string
	}{
		{"LF.LF", "\n.\n"},
		{"CR.CR", "\r.\r"},
		{"LF.CRLF", "\n.\r\n"},
		{"CR.CRLF", "\r.\r\n"},
		{"CRLF.LF", "\r\n.\n"},
		{"LF.CR", "\n.\r"},
		{"CR.LF", "\r.\n"},
		{"CRLF NUL . CRLF", "\r\n\x00.\r\n"},
		{"bare LF line end", "\n"},
		{"bare CR line end", "\r"},
		{"CR CRLF", "\r\r\n"},
		{"CRLF.CR", "\r\n.\r"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := f.login("alice", pwAlice)
			c.want("MAIL FROM:<alice@tenant-a.example>", 250)
			c.want("RCPT TO:<bob@elsewhere.example>", 250)
			c.want("DATA", 354)
			c.write("From: alice@tenant-a.example\r\n\r\nHello." + tc.end + smuggled + ".\r\n")
			if code, m := c.read(); code != 550 || !strings.HasPrefix(m, "5.6.0") {
				t.Errorf("DATA: %d %s, want 550 5.6.0", code, m)
			}
			// In step: the next reply answers NOOP, not a smuggled command.
			c.want("NOOP", 250)
			if code, _ := c.cmd("RCPT TO:<x@elsewhere.example>"); code != 502 {
				t.Errorf("RCPT after the refused DATA: %d, want 502 (no transaction)", code)
			}
		})
	}
	// In the header too.
	c := f.login("alice", pwAlice)
	if code, _ := c.send("alice@tenant-a.example", []string{"bob@elsewhere.example"}, "From: alice@tenant-a.example\nSubject: x\r\n\r\nHello.\r\n"); code != 550 {
		t.Errorf("bare LF in the header: %d, want 550", code)
	}
	// And in BDAT chunks (RFC 3030), which carry no dot-stuffing at all.
	body := "From: alice@tenant-a.example\r\n\r\nHello.\n.\nMore.\r\n"
	c.want("MAIL FROM:<alice@tenant-a.example>", 250)
	c.want("RCPT TO:<bob@elsewhere.example>", 250)
	c.write(fmt.Sprintf("BDAT %d LAST\r\n%s", len(body), body))
	if code, m := c.read(); code != 550 {
		t.Errorf("BDAT with bare LF: %d %s, want 550", code, m)
	}
	f.none()
}

// CRLF . CR followed by anything but LF is not an end of data, and the dot
// is a stuffed one (RFC 5321 §4.5.2): what is left is a bare CR, refused
// with 550 5.6.0 like every other bare CR. (go-smtp v0.25.1 dropped the CR
// with the dot and the message was taken as "Hello.\r\nMAIL FROM:...".)
func TestDotCRIsRefused(t *testing.T) {
	f := newFixture(t, nil)
	c := f.login("alice", pwAlice)
	c.want("MAIL FROM:<alice@tenant-a.example>", 250)
	c.want("RCPT TO:<bob@elsewhere.example>", 250)
	c.want("DATA", 354)
	c.write("From: alice@tenant-a.example\r\n\r\nHello.\r\n.\rMAIL FROM:<ceo@tenant-a.example>\r\n.\r\n")
	if code, m := c.read(); code != 550 || !strings.HasPrefix(m, "5.6.0") {
		t.Fatalf("DATA: %d %s, want 550 5.6.0", code, m)
	}
	c.want("NOOP", 250)
	f.none()
}

// Dot-stuffing is undone (RFC 5321 §4.5.2) and the signature covers the
// message as the recipient will see it.
func TestDotStuffing(t *testing.T) {
	f := newFixture(t, nil)
	c := f.login("alice", pwAlice)
	code, m := c.send("alice@tenant-a.example", []string{"bob@elsewhere.example"},
		"From: alice@tenant-a.example\r\n\r\n..leading dot\r\n")
	if code != 250 {
		t.Fatalf("DATA: %d %s", code, m)
	}
	body := f.only().Body
	if !bytes.HasSuffix(body, []byte("\r\n\r\n.leading dot\r\n")) {
		t.Errorf("body %q", body)
	}
	if ds := f.verify(body); len(ds) != 2 {
		t.Errorf("signatures %v", ds)
	}
}
