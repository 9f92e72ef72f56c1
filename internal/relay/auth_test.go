package relay_test

import (
	"crypto/tls"
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/dkimd/dkimd/internal/policy"
	"github.com/dkimd/dkimd/internal/relay"
)

// The valid path: STARTTLS, AUTH PLAIN, a message From the user's domain,
// signed as that domain with both its keys and queued; 250 names the id.
func TestSubmissionSignsAndQueues(t *testing.T) {
	f := newFixture(t, nil)
	c := f.login("alice", pwAlice)
	code, msg := c.send("alice@tenant-a.example", []string{"bob@elsewhere.example"},
		message("From: Alice <alice@tenant-a.example>", "To: bob@elsewhere.example"))
	if code != 250 {
		t.Fatalf("DATA: %d %s", code, msg)
	}
	m := f.only()
	if !strings.Contains(msg, m.ID) {
		t.Errorf("reply %q does not name queue id %s", msg, m.ID)
	}
	if got := f.verify(m.Body); !slices.Equal(got, []string{"tenant-a.example", "tenant-a.example"}) {
		t.Errorf("signatures d=%v, want tenant-a.example twice (RSA and Ed25519)", got)
	}
	e := m.Transaction
	if e.User != "alice" || e.From != "alice@tenant-a.example" || !slices.Equal(e.To, []string{"bob@elsewhere.example"}) ||
		e.ClientAddr != "127.0.0.1" || e.MsgID == "" {
		t.Errorf("envelope %+v", e)
	}
	if e.Decision.Reason != policy.ReasonFromDomain || len(e.Decision.Sign) != 2 {
		t.Errorf("decision %+v", e.Decision)
	}
	if !strings.HasPrefix(string(m.Body), "Received: from client.test ([127.0.0.1])\r\n\tby relay.test (dkimd) with ESMTPSA id "+e.MsgID) {
		t.Errorf("no Received field on top:\n%.200s", m.Body)
	}
	// The decision is logged with the message it was made for.
	var queued string
	for _, l := range strings.Split(f.logs.String(), "\n") {
		if strings.Contains(l, "msg=message_queued") {
			queued = l
		}
	}
	for _, want := range []string{"decision.reason=from_domain", "decision.domain=tenant-a.example", "msg_id=" + e.MsgID, "queue_id="} {
		if !strings.Contains(queued, want) {
			t.Errorf("message_queued line %q lacks %s", queued, want)
		}
	}
}

// go-smtp's own client, as a real MUA would use it: implicit TLS (RFC 8314)
// and AUTH LOGIN.
func TestImplicitTLSAndLogin(t *testing.T) {
	f := newFixture(t, nil)
	cl, err := smtp.DialTLS(f.addrs[relay.ModeSubmissions], &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Auth(sasl.NewLoginClient("alice", pwAlice)); err != nil {
		t.Fatalf("AUTH LOGIN: %v", err)
	}
	msg := message("From: alice@granted.example", "To: bob@elsewhere.example")
	if err := cl.SendMail("alice@granted.example", []string{"bob@elsewhere.example"}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	if got := f.verify(f.only().Body); !slices.Equal(got, []string{"granted.example"}) {
		t.Errorf("signatures d=%v, want granted.example", got)
	}
}

// RFC 4954 §4 and RFC 3207: no AUTH before TLS (not even advertised), and
// no mail without AUTH.
func TestAuthRefusedBeforeTLS(t *testing.T) {
	f := newFixture(t, nil)
	c := dial(t, f.addrs[relay.ModeSubmission], "")
	ehlo := c.ehlo()
	if strings.Contains(ehlo, "AUTH") || !strings.Contains(ehlo, "STARTTLS") {
		t.Errorf("EHLO before TLS: %q", ehlo)
	}
	if code := c.authPlain("alice", pwAlice); code/100 != 5 {
		t.Errorf("AUTH before TLS: %d, want 5xx", code)
	}
	c.want("MAIL FROM:<alice@tenant-a.example>", 530)
	c.want("RCPT TO:<bob@elsewhere.example>", 502)
	if strings.Contains(f.logs.String(), pwAlice) {
		t.Error("password in the log")
	}

	// The relay port without TLS does not take AUTH either.
	c = dial(t, f.addrs[relay.ModeRelay], addrNobody)
	c.ehlo()
	if code := c.authPlain("alice", pwAlice); code/100 != 5 {
		t.Errorf("AUTH on relay port before TLS: %d, want 5xx", code)
	}
	f.none()
}

// Every reason to refuse AUTH gets the same 535 5.7.8, and no mail.
func TestAuthRefused(t *testing.T) {
	f := newFixture(t, func(o *relay.Options) { o.MaxAuthFailuresPerIP = 100; o.MaxAuthFailuresPerUser = 100 })
	for _, tc := range []struct{ name, user, pw string }{
		{"wrong password", "alice", "wrong"},
		{"unknown user", "mallory", pwAlice},
		{"disabled user", "off", pwOff},
		{"IP-only user", "ipuser", ""},
		{"outside the user's networks", "netpw", pwNetpw},
		{"empty password", "alice", ""},
		{"name in another case is the same user, password still checked", "ALICE", "wrong"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, f.addrs[relay.ModeSubmission], "")
			c.ehlo()
			c.starttls()
			if code := c.authPlain(tc.user, tc.pw); code != 535 {
				t.Errorf("AUTH: %d, want 535", code)
			}
			c.want("MAIL FROM:<alice@tenant-a.example>", 530)
		})
	}
	// An authorization identity other than the user (RFC 4616 §2).
	c := dial(t, f.addrs[relay.ModeSubmission], "")
	c.ehlo()
	c.starttls()
	if code, _ := c.cmd("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("foreign\x00alice\x00"+pwAlice))); code != 535 {
		t.Errorf("AUTH as alice for foreign: %d, want 535", code)
	}
	// Malformed exchanges get a fixed reply, not the library's text.
	if code, msg := c.cmd("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("no-nuls"))); code != 501 || strings.Contains(msg, "sasl") {
		t.Errorf("malformed PLAIN: %d %s", code, msg)
	}
	if code, _ := c.cmd("AUTH CRAM-MD5"); code != 504 {
		t.Errorf("unknown mechanism: %d", code)
	}
	for _, pw := range []string{pwAlice, pwOff, pwNetpw} {
		if strings.Contains(f.logs.String(), pw) {
			t.Errorf("password %q in the log", pw)
		}
	}
	f.none()
}

// Re-authenticating users may use AUTH too (here with their own identity
// header); the case of the user name does not matter.
func TestReauthUserByPassword(t *testing.T) {
	f := newFixture(t, nil)
	c := f.login("ReauthPW", pwReauth)
	code, msg := c.send("", []string{"bob@elsewhere.example"},
		message("From: someone@customer.example", "X-Sender-Id: someone@customer.example"))
	if code != 250 {
		t.Fatalf("DATA: %d %s", code, msg)
	}
	m := f.only()
	if m.Transaction.Identity != "someone@customer.example" || m.Transaction.User != "reauthpw" {
		t.Errorf("envelope %+v", m.Transaction)
	}
	if strings.Contains(string(m.Body), "DKIM-Signature") {
		t.Error("re-authenticating user's mail signed")
	}
}

// Failures slow down, then lock the address out with 421 4.7.0 and a closed
// connection, even for the right password.
func TestAuthLockoutPerIP(t *testing.T) {
	f := newFixture(t, func(o *relay.Options) { o.MaxAuthFailuresPerIP = 3; o.MaxAuthFailuresPerUser = 100 })
	c := f.login("alice", pwAlice) // a success does not reset the address
	c = dial(t, f.addrs[relay.ModeSubmission], "")
	c.ehlo()
	c.starttls()
	for i := 1; i <= 2; i++ {
		if code := c.authPlain("alice", "wrong"); code != 535 {
			t.Fatalf("failure %d: %d", i, code)
		}
	}
	if code := c.authPlain("alice", "wrong"); code != 421 {
		t.Fatalf("failure 3: %d, want 421", code)
	}
	if code, _ := c.cmd("NOOP"); code != 0 {
		t.Errorf("connection still open after 421: %d", code)
	}
	c = dial(t, f.addrs[relay.ModeSubmission], "")
	c.ehlo()
	c.starttls()
	if code := c.authPlain("foreign", pwForeign); code != 421 {
		t.Errorf("locked address, right password: %d, want 421", code)
	}
	// Another address is not locked.
	c = dial(t, f.addrs[relay.ModeSubmission], "127.0.0.9")
	c.ehlo()
	c.starttls()
	if code := c.authPlain("foreign", pwForeign); code != 235 {
		t.Errorf("other address: %d, want 235", code)
	}
	// The window passes.
	f.clock.Advance(relay.DefaultAuthFailureWindow + time.Second)
	c = dial(t, f.addrs[relay.ModeSubmission], "")
	c.ehlo()
	c.starttls()
	if code := c.authPlain("alice", pwAlice); code != 235 {
		t.Errorf("after the window: %d, want 235", code)
	}
}

// Guesses at one user spread over addresses lock the user, not others.
func TestAuthLockoutPerUser(t *testing.T) {
	f := newFixture(t, func(o *relay.Options) { o.MaxAuthFailuresPerIP = 100; o.MaxAuthFailuresPerUser = 2 })
	for i, src := range []string{"127.0.0.11", "127.0.0.12"} {
		c := dial(t, f.addrs[relay.ModeSubmission], src)
		c.ehlo()
		c.starttls()
		want := []int{535, 421}[i]
		if code := c.authPlain("alice", "wrong"); code != want {
			t.Fatalf("failure %d from %s: %d, want %d", i+1, src, code, want)
		}
	}
	c := dial(t, f.addrs[relay.ModeSubmission], "127.0.0.13")
	c.ehlo()
	c.starttls()
	if code := c.authPlain("alice", pwAlice); code != 421 {
		t.Errorf("locked user from a fresh address: %d, want 421", code)
	}
	c = dial(t, f.addrs[relay.ModeSubmission], "127.0.0.13")
	c.ehlo()
	c.starttls()
	if code := c.authPlain("foreign", pwForeign); code != 235 {
		t.Errorf("other user: %d, want 235", code)
	}
	// Unknown names are not tracked per user (the table stays bounded by
	// the users that exist), but still count against the address.
	c = dial(t, f.addrs[relay.ModeSubmission], "127.0.0.14")
	c.ehlo()
	c.starttls()
	for i := 0; i < 3; i++ {
		if code := c.authPlain("nobody-"+string(rune('a'+i)), "x"); code != 535 {
			t.Errorf("unknown user %d: %d, want 535", i, code)
		}
	}
}

// The delay grows with each failure.
func TestAuthFailureDelayGrows(t *testing.T) {
	f := newFixture(t, func(o *relay.Options) {
		o.AuthFailureDelay = 40 * time.Millisecond
		o.MaxAuthFailureDelay = 80 * time.Millisecond
	})
	c := dial(t, f.addrs[relay.ModeSubmission], "")
	c.ehlo()
	c.starttls()
	var took []time.Duration
	for i := 0; i < 3; i++ {
		start := time.Now()
		if code := c.authPlain("alice", "wrong"); code != 535 {
			t.Fatalf("attempt %d: %d, want 535", i+1, code)
		}
		took = append(took, time.Since(start))
	}
	if took[0] < 40*time.Millisecond || took[1] < 80*time.Millisecond || took[2] < 80*time.Millisecond {
		t.Errorf("delays %v, want at least 40ms, 80ms, 80ms", took)
	}
}
