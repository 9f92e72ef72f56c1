package relay_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/dkimd/dkimd/internal/relay"
)

// RFC 4954 §4: a client response that is not valid base64 is refused with
// 501 5.5.2, in the initial response and in a continuation alike, and the
// session goes on.
func TestAuthBadBase64(t *testing.T) {
	f := newFixture(t, nil)
	c := dial(t, f.addrs[relay.ModeSubmission], "")
	c.ehlo()
	c.starttls()
	if code, m := c.cmd("AUTH PLAIN !!not-base64!!"); code != 501 || !strings.HasPrefix(m, "5.5.2") {
		t.Errorf("initial response: %d %s, want 501 5.5.2", code, m)
	}
	c.want("AUTH LOGIN", 334)
	if code, m := c.cmd("%%%"); code != 501 || !strings.HasPrefix(m, "5.5.2") {
		t.Errorf("continuation: %d %s, want 501 5.5.2", code, m)
	}
	if code := c.authPlain("alice", pwAlice); code != 235 {
		t.Errorf("AUTH after the refusals: %d", code)
	}
}

// A message line over MaxLineLength gets exactly one reply (500 5.5.2) and
// the connection is closed after it; the message is not queued.
func TestLongDataLineOneReply(t *testing.T) {
	f := newFixture(t, func(o *relay.Options) { o.MaxLineLength = 200 })
	c := f.login("alice", pwAlice)
	c.want("MAIL FROM:<alice@tenant-a.example>", 250)
	c.want("RCPT TO:<bob@elsewhere.example>", 250)
	c.want("DATA", 354)
	c.write(message("From: alice@tenant-a.example") + strings.Repeat("x", 300) + "\r\nmore\r\n.\r\n")
	if code, m := c.read(); code != 500 || !strings.HasPrefix(m, "5.5.2") {
		t.Errorf("long line: %d %s, want 500 5.5.2", code, m)
	}
	if code, m := c.read(); code != 0 {
		t.Errorf("a second reply: %d %s, want the connection closed", code, m)
	}
	f.none()
}

// RFC 5321 §4.1.2 has no trailing dot in a Domain. The envelope addresses
// are stored and relayed with their domain canonical (mailaddr.ParseDomain,
// the parser the From field's domain goes through too): bob@Example.NET.
// goes on as bob@example.net, not verbatim.
func TestEnvelopeDomainCanonical(t *testing.T) {
	f := newFixture(t, nil)
	c := f.login("alice", pwAlice)
	code, m := c.send("alice@Tenant-A.example.", []string{"bob@example.net.", "Carol@Elsewhere.Example"},
		message("From: alice@tenant-a.example"))
	if code != 250 {
		t.Fatalf("send: %d %s", code, m)
	}
	env := f.only().Transaction
	if env.From != "alice@tenant-a.example" {
		t.Errorf("MAIL FROM stored as %q", env.From)
	}
	if want := []string{"bob@example.net", "Carol@elsewhere.example"}; !slices.Equal(env.To, want) {
		t.Errorf("RCPT TO stored as %q, want %q", env.To, want)
	}
	// The From field is signed as written, so it is not rewritten: with a
	// trailing dot it is no RFC 5322 address and is refused.
	if code, m := c.send("alice@tenant-a.example", []string{"bob@example.net"}, message("From: alice@tenant-a.example.")); code != 550 {
		t.Errorf("From with a trailing dot: %d %s, want 550", code, m)
	}
}
