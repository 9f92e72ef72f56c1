package relay_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/relay"
)

// RFC 1870: SIZE is advertised; a declared or actual size over it is 552
// 5.3.4; so is a header over its own bound.
func TestSizeLimits(t *testing.T) {
	f := newFixture(t, func(o *relay.Options) { o.MaxMessageBytes = 2000; o.MaxHeaderBytes = 600 })
	c := f.login("alice", pwAlice)
	if ehlo := c.ehlo(); !strings.Contains(ehlo, "SIZE 2000") {
		t.Errorf("EHLO does not advertise SIZE 2000: %q", ehlo)
	}
	c.want("MAIL FROM:<alice@tenant-a.example> SIZE=2001", 552)
	rcpt := []string{"bob@elsewhere.example"}
	big := message("From: alice@tenant-a.example") + strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyz\r\n", 60)
	if code, m := c.send("alice@tenant-a.example", rcpt, big); code != 552 || !strings.HasPrefix(m, "5.3.4") {
		t.Errorf("message over the size: %d %s", code, m)
	}
	hdr := message("From: alice@tenant-a.example", "X-Long: "+strings.Repeat("x", 300), "X-Long: "+strings.Repeat("x", 300))
	if code, m := c.send("alice@tenant-a.example", rcpt, hdr); code != 552 || !strings.HasPrefix(m, "5.3.4") {
		t.Errorf("header over its bound: %d %s", code, m)
	}
	f.none()
	if code, m := c.send("alice@tenant-a.example", rcpt, message("From: alice@tenant-a.example")); code != 250 {
		t.Errorf("a message within the limits: %d %s", code, m)
	}
}

// RFC 5321 §4.5.3.1.10: one recipient too many is 452 4.5.3, and the
// message still goes to the others.
func TestRecipientLimit(t *testing.T) {
	f := newFixture(t, func(o *relay.Options) { o.MaxRecipients = 2 })
	c := f.login("alice", pwAlice)
	c.want("MAIL FROM:<alice@tenant-a.example>", 250)
	c.want("RCPT TO:<a@elsewhere.example>", 250)
	c.want("RCPT TO:<b@elsewhere.example>", 250)
	if m := c.want("RCPT TO:<c@elsewhere.example>", 452); !strings.HasPrefix(m, "4.5.3") {
		t.Errorf("reply %q", m)
	}
	c.want("DATA", 354)
	c.write(message("From: alice@tenant-a.example") + ".\r\n")
	if code, m := c.read(); code != 250 {
		t.Fatalf("DATA: %d %s", code, m)
	}
	if to := f.only().Transaction.To; len(to) != 2 {
		t.Errorf("recipients %v", to)
	}
}

// A command or message line over the limit ends the connection.
func TestLineLengthLimit(t *testing.T) {
	f := newFixture(t, func(o *relay.Options) { o.MaxLineLength = 200 })
	c := dial(t, f.addrs[relay.ModeSubmission], "")
	if code, _ := c.cmd("EHLO " + strings.Repeat("a", 300)); code != 500 {
		t.Errorf("long command: %d, want 500", code)
	}
	if code, _ := c.cmd("NOOP"); code != 0 {
		t.Errorf("connection open after a long line: %d", code)
	}

	c = f.login("alice", pwAlice)
	code, _ := c.send("alice@tenant-a.example", []string{"bob@elsewhere.example"},
		message("From: alice@tenant-a.example", "X-Long: "+strings.Repeat("x", 300)))
	if code/100 != 5 && code != 0 {
		t.Errorf("long message line: %d, want 5xx or a closed connection", code)
	}
	f.none()
}

// The idle timeout closes a silent client with 421; the session timeout
// closes a busy one.
func TestTimeouts(t *testing.T) {
	f := newFixture(t, func(o *relay.Options) {
		o.IdleTimeout = 200 * time.Millisecond
		o.SessionTimeout = 700 * time.Millisecond
	})
	c := dial(t, f.addrs[relay.ModeSubmission], "")
	start := time.Now()
	if code, m := c.read(); code != 421 {
		t.Errorf("idle client: %d %s, want 421", code, m)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 2*time.Second {
		t.Errorf("idle timeout after %v", d)
	}

	c = dial(t, f.addrs[relay.ModeSubmission], "")
	start = time.Now()
	for time.Since(start) < 3*time.Second {
		code, _ := c.cmd("NOOP")
		if code != 250 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if d := time.Since(start); d < 500*time.Millisecond || d > 2*time.Second {
		t.Errorf("busy session ended after %v, want about 700ms", d)
	}
}

// One connection over a listener's budget or over the bound per address is
// answered 421 and closed; the bound per address leaves room for other
// addresses.
func TestConnectionLimits(t *testing.T) {
	f := newFixture(t, func(o *relay.Options) { o.MaxConnections = 3; o.MaxConnectionsPerIP = 2 })
	sub := f.addrs[relay.ModeSubmission]
	a1 := dial(t, sub, "127.0.0.1")
	dial(t, sub, "127.0.0.1")
	c, err := netDial(t, sub, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if code, m := c.read(); code != 421 || !strings.HasPrefix(m, "4.7.0") {
		t.Errorf("over the per-address bound: %d %s", code, m)
	}
	dial(t, sub, "127.0.0.3")
	if c, err = netDial(t, sub, "127.0.0.4"); err != nil {
		t.Fatal(err)
	}
	if code, _ := c.read(); code != 421 {
		t.Errorf("over the listener's budget: %d, want 421", code)
	}
	// Over implicit TLS the refusal is readable too.
	tlsRaw(t, f.addrs[relay.ModeSubmissions])
	tlsRaw(t, f.addrs[relay.ModeSubmissions])
	tc := tlsRaw(t, f.addrs[relay.ModeSubmissions])
	if code, _ := tc.read(); code != 421 {
		t.Errorf("over the per-address bound, implicit TLS: %d, want 421", code)
	}
	// A closed connection frees its place.
	a1.cmd("QUIT")
	a1.c.Close()
	deadline := time.Now().Add(2 * time.Second)
	for {
		c, err := netDial(t, sub, "127.0.0.4")
		if err != nil {
			t.Fatal(err)
		}
		code, _ := c.read()
		c.c.Close()
		if code == 220 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("place not freed: %d", code)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Issue 10.7: idle unauthenticated connections filling the submission port
// do not lock an IP-authorised server out of the relay port (each listener
// has its own budget), and one source cannot take a listener's whole budget.
func TestListenerBudgetsAreSeparate(t *testing.T) {
	f := newFixture(t, func(o *relay.Options) { o.MaxConnections = 4; o.MaxConnectionsPerIP = 2 })
	sub := f.addrs[relay.ModeSubmission]
	dial(t, sub, "127.0.0.5")
	dial(t, sub, "127.0.0.5")
	c, err := netDial(t, sub, "127.0.0.5")
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := c.read(); code != 421 {
		t.Errorf("third connection from one source with room left: %d, want 421", code)
	}
	dial(t, sub, "127.0.0.6")
	dial(t, sub, "127.0.0.6")
	if c, err = netDial(t, sub, "127.0.0.7"); err != nil {
		t.Fatal(err)
	}
	if code, _ := c.read(); code != 421 {
		t.Fatalf("submission port full: %d, want 421", code)
	}
	// The submission port is full of idle strangers; the relay port is not.
	r := dial(t, f.addrs[relay.ModeRelay], addrIPUser)
	r.ehlo()
	if code, m := r.send("x@tenant-a.example", []string{"bob@elsewhere.example"}, message("From: x@tenant-a.example")); code != 250 {
		t.Fatalf("IP-authorised relay client: %d %s", code, m)
	}
	f.only()
}

// Until a client is authorised (AUTH, or on the relay port a MAIL accepted
// for its source address) it gets the short PreAuthIdleTimeout; then the
// session's IdleTimeout.
func TestPreAuthIdleTimeout(t *testing.T) {
	f := newFixture(t, func(o *relay.Options) {
		o.PreAuthIdleTimeout = 150 * time.Millisecond
		o.IdleTimeout = time.Minute
	})
	for _, tc := range []struct{ name, addr, local string }{
		{"submission", f.addrs[relay.ModeSubmission], ""},
		{"relay before MAIL", f.addrs[relay.ModeRelay], addrIPUser},
	} {
		c := dial(t, tc.addr, tc.local)
		c.ehlo()
		if code, m := c.read(); code != 421 || !strings.HasPrefix(m, "4.4.2") {
			t.Errorf("%s: idle before authorisation: %d %s, want 421 4.4.2", tc.name, code, m)
		}
	}
	pause := 500 * time.Millisecond // over PreAuthIdleTimeout, far under IdleTimeout
	c := f.login("alice", pwAlice)
	time.Sleep(pause)
	if code, m := c.cmd("NOOP"); code != 250 {
		t.Errorf("after AUTH: %d %s, want 250", code, m)
	}
	r := dial(t, f.addrs[relay.ModeRelay], addrIPUser)
	r.ehlo()
	r.want("MAIL FROM:<x@tenant-a.example>", 250)
	time.Sleep(pause)
	if code, m := r.cmd("RCPT TO:<bob@elsewhere.example>"); code != 250 {
		t.Errorf("relay port after MAIL: %d %s, want 250", code, m)
	}
}

// Messages per user per hour and per day: 451 4.7.1 beyond, counted per
// user, reset with the clock.
func TestMessageRateLimits(t *testing.T) {
	f := newFixture(t, func(o *relay.Options) { o.MessagesPerHour = 2; o.MessagesPerDay = 3 })
	c := f.login("alice", pwAlice)
	send := func() (int, string) {
		return c.send("alice@tenant-a.example", []string{"bob@elsewhere.example"}, message("From: alice@tenant-a.example"))
	}
	for i := 0; i < 2; i++ {
		if code, m := send(); code != 250 {
			t.Fatalf("message %d: %d %s", i+1, code, m)
		}
	}
	if code, m := send(); code != 451 || !strings.HasPrefix(m, "4.7.1") {
		t.Errorf("third message in the hour: %d %s, want 451 4.7.1", code, m)
	}
	// Another user is not affected.
	o := f.login("foreign", pwForeign)
	if code, m := o.send("x@tenant-a.example", []string{"bob@elsewhere.example"}, message("From: x@tenant-a.example")); code != 250 {
		t.Errorf("other user: %d %s", code, m)
	}
	f.clock.Advance(time.Hour)
	if code, m := send(); code != 250 {
		t.Errorf("next hour: %d %s", code, m)
	}
	if code, m := send(); code != 451 {
		t.Errorf("fourth message of the day: %d %s, want 451", code, m)
	}
	f.clock.Advance(24 * time.Hour)
	if code, m := send(); code != 250 {
		t.Errorf("next day: %d %s", code, m)
	}
}

// Shutdown ends Serve with nil and closes what is still open when its
// context ends.
func TestShutdown(t *testing.T) {
	f := newFixture(t, nil)
	c := dial(t, f.addrs[relay.ModeSubmission], "")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	// The open connection outlives the deadline: Shutdown says so.
	if err := f.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v, want the deadline", err)
	}
	if code, _ := c.cmd("NOOP"); code != 0 {
		t.Errorf("connection open after Shutdown: %d", code)
	}
	if _, err := netDial(t, f.addrs[relay.ModeSubmission], ""); err == nil {
		t.Error("listener still accepts")
	}
}

func netDial(t *testing.T, addr, local string) (*client, error) {
	c, err := dialRaw(t, addr, local)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	return c, nil
}

// MAIL FROM is 452 4.3.1 while the queue's disk has less than 1.5 times the
// largest message left, so that an accepted message always fits.
func TestDiskSpaceLimit(t *testing.T) {
	f := newFixture(t, func(o *relay.Options) { o.MaxMessageBytes = 1000 })
	c := f.login("alice", pwAlice)
	c.ehlo()
	f.q.SetFreeSpace(1499)
	if code, m := c.cmd("MAIL FROM:<alice@tenant-a.example>"); code != 452 || !strings.HasPrefix(m, "4.3.1") {
		t.Errorf("MAIL with 1499 bytes free: %d %s", code, m)
	}
	f.q.SetFreeSpace(1500)
	c.cmd("RSET")
	if code, m := c.send("alice@tenant-a.example", []string{"bob@elsewhere.example"}, message("From: alice@tenant-a.example")); code != 250 {
		t.Errorf("with 1500 bytes free: %d %s", code, m)
	}
}

// Signatures carry x= the signature lifetime after t= (7 days by default),
// longer than the queue keeps retrying.
func TestSignatureExpiry(t *testing.T) {
	f := newFixture(t, nil)
	c := f.login("alice", pwAlice)
	c.ehlo()
	if code, m := c.send("alice@tenant-a.example", []string{"bob@elsewhere.example"}, message("From: alice@tenant-a.example")); code != 250 {
		t.Fatalf("send: %d %s", code, m)
	}
	body := string(f.only().Body)
	now := f.clock.Now().Unix()
	want := fmt.Sprintf("t=%d; x=%d;", now, now+7*24*3600)
	if !strings.Contains(strings.ReplaceAll(body, "\r\n ", " "), want) {
		t.Errorf("signature lacks %q:\n%s", want, body[:min(len(body), 600)])
	}
}
