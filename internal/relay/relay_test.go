package relay_test

import (
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dkimd/dkimd/internal/policy"
	"github.com/dkimd/dkimd/internal/relay"
	"github.com/dkimd/dkimd/internal/store"
)

// Servers authorised by address: found on the relay port only, refused when
// disabled, and nobody else gets in without AUTH.
func TestIPAuthorisedUsers(t *testing.T) {
	f := newFixture(t, nil)
	msg := message("From: app@tenant-a.example", "To: bob@elsewhere.example")

	c := dial(t, f.addrs[relay.ModeRelay], addrIPUser)
	c.ehlo()
	if code, m := c.send("app@tenant-a.example", []string{"bob@elsewhere.example"}, msg); code != 250 {
		t.Fatalf("IP user: %d %s", code, m)
	}
	m := f.only()
	if m.Transaction.User != "ipuser" || m.Transaction.ClientAddr != addrIPUser {
		t.Errorf("envelope %+v", m.Transaction)
	}
	if got := f.verify(m.Body); len(got) != 2 {
		t.Errorf("IP user's mail: signatures %v", got)
	}

	for _, tc := range []struct {
		name, mode, src string
		want            int
	}{
		{"disabled IP user", "relay", addrIPDisabled, 550},
		{"address of nobody", "relay", addrNobody, 530},
		{"IP user on the submission port", "submission", addrIPUser, 530},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mode := relay.ModeRelay
			if tc.mode == "submission" {
				mode = relay.ModeSubmission
			}
			c := dial(t, f.addrs[mode], tc.src)
			c.ehlo()
			if code, _ := c.cmd("MAIL FROM:<app@tenant-a.example>"); code != tc.want {
				t.Errorf("MAIL: %d, want %d", code, tc.want)
			}
			if code, _ := c.cmd("RCPT TO:<bob@elsewhere.example>"); code/100 != 5 {
				t.Errorf("RCPT after refused MAIL: %d, want 5xx", code)
			}
		})
	}
	if n := len(f.q.Messages()); n != 1 {
		t.Errorf("%d messages queued, want 1", n)
	}
}

// A re-authenticating server's mail is never signed; the sender it names is
// kept with the message and logged; without that header the message is
// refused.
func TestReauthUser(t *testing.T) {
	f := newFixture(t, nil)
	c := dial(t, f.addrs[relay.ModeRelay], addrReauth)
	c.ehlo()
	code, m := c.send("carol@tenant-a.example", []string{"bob@elsewhere.example"},
		message("From: carol@tenant-a.example", "x-authuser:  carol@tenant-a.example "))
	if code != 250 {
		t.Fatalf("DATA: %d %s", code, m)
	}
	msg := f.only()
	if strings.Contains(string(msg.Body), "DKIM-Signature") {
		t.Error("re-authenticating user's mail was signed")
	}
	if msg.Transaction.Identity != "carol@tenant-a.example" || msg.Transaction.Decision.Reason != policy.ReasonReauth {
		t.Errorf("envelope %+v", msg.Transaction)
	}
	if !strings.Contains(f.logs.String(), "identity=carol@tenant-a.example") {
		t.Error("identity not logged")
	}
	if got := msg.Transaction.DecisionText(); got != "not signed (reauth_user) identity=carol@tenant-a.example" {
		t.Errorf("DecisionText = %q", got)
	}

	for _, tc := range []struct {
		name   string
		header []string
	}{
		{"no identity header", []string{"From: carol@tenant-a.example"}},
		{"empty identity header", []string{"From: carol@tenant-a.example", "X-AuthUser: "}},
		{"identity header twice", []string{"From: carol@tenant-a.example", "X-AuthUser: carol@tenant-a.example", "X-AuthUser: boss@tenant-a.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, m := c.send("carol@tenant-a.example", []string{"bob@elsewhere.example"}, message(tc.header...)); code != 550 || !strings.HasPrefix(m, "5.7.1") {
				t.Errorf("DATA: %d %s, want 550 5.7.1", code, m)
			}
		})
	}
	if n := len(f.q.Messages()); n != 1 {
		t.Errorf("%d messages queued, want 1", n)
	}
}

// No address trick makes dkimd relay further. Percent hack, bang paths and
// quoted local parts holding @ are refused for everyone; IP literals unless
// the user may use foreign domains; source routes are dropped by go-smtp and
// only the final mailbox is stored.
func TestOpenRelayTricks(t *testing.T) {
	f := newFixture(t, nil)
	type row struct {
		name string
		user string // "" for no AUTH
		cmd  string // MAIL or RCPT line
		want int
	}
	rows := []row{
		{"valid recipient", "alice", "RCPT TO:<victim@tenant-b.example>", 250},
		{"percent hack", "alice", "RCPT TO:<victim%other.example@tenant-b.example>", 550},
		{"percent hack, foreign user", "foreign", "RCPT TO:<victim%other.example@tenant-b.example>", 550},
		{"bang path", "alice", "RCPT TO:<other.example!victim@tenant-b.example>", 550},
		{"bang path, foreign user", "foreign", "RCPT TO:<other.example!victim@tenant-b.example>", 550},
		{"quoted local part with @", "alice", `RCPT TO:<"victim@other.example"@tenant-b.example>`, 550},
		{"quoted local part with @, foreign user", "foreign", `RCPT TO:<"victim@other.example"@tenant-b.example>`, 550},
		{"quoted local part with %", "alice", `RCPT TO:<"victim%other.example"@tenant-b.example>`, 550},
		{"quoted local part with space", "alice", `RCPT TO:<"a b"@tenant-b.example>`, 553},
		{"IP literal", "alice", "RCPT TO:<victim@[192.0.2.1]>", 550},
		{"IPv6 literal", "alice", "RCPT TO:<victim@[IPv6:2001:db8::1]>", 550},
		{"IP literal, foreign user", "foreign", "RCPT TO:<victim@[192.0.2.1]>", 250},
		{"malformed IP literal, foreign user", "foreign", "RCPT TO:<victim@[192.0.2]>", 553},
		{"no domain", "alice", "RCPT TO:<victim>", 501},
		{"domain not a host name", "alice", "RCPT TO:<victim@under_score.example>", 553},
		{"single-label domain", "alice", "RCPT TO:<victim@localhost>", 553},
		{"non-ASCII local part", "alice", "RCPT TO:<vïctim@tenant-b.example>", 553},
		{"sender percent hack", "alice", "MAIL FROM:<alice%tenant-b.example@tenant-a.example>", 550},
		{"sender bang path", "alice", "MAIL FROM:<tenant-b.example!alice@tenant-a.example>", 550},
		{"sender quoted @", "alice", `MAIL FROM:<"alice@tenant-b.example"@tenant-a.example>`, 550},
		{"sender IP literal", "alice", "MAIL FROM:<alice@[127.0.0.1]>", 550},
		{"sender IP literal, foreign user", "foreign", "MAIL FROM:<alice@[127.0.0.1]>", 250},
		{"no AUTH: MAIL", "", "MAIL FROM:<alice@tenant-a.example>", 530},
		{"no AUTH: RCPT", "", "RCPT TO:<victim@tenant-b.example>", 502},
		{"no AUTH: percent hack", "", "RCPT TO:<victim%other.example@tenant-b.example>", 502},
	}
	pw := map[string]string{"alice": pwAlice, "foreign": pwForeign}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			var c *client
			if tc.user == "" {
				c = dial(t, f.addrs[relay.ModeSubmission], "")
				c.ehlo()
				c.starttls()
			} else {
				c = f.login(tc.user, pw[tc.user])
			}
			if strings.HasPrefix(tc.cmd, "RCPT") && tc.user != "" {
				c.want("MAIL FROM:<>", 250)
			}
			if code, m := c.cmd(tc.cmd); code != tc.want {
				t.Errorf("%s: %d %s, want %d", tc.cmd, code, m, tc.want)
			}
		})
	}
	f.none()

	// A source route: the route is gone and only the final mailbox is kept
	// and checked (RFC 5321 Appendix C).
	c := f.login("alice", pwAlice)
	c.want("MAIL FROM:<@relay.example:alice@tenant-a.example>", 250)
	c.want("RCPT TO:<@relay.example,@other.example:victim@tenant-b.example>", 250)
	if code, _ := c.cmd("RCPT TO:<@relay.example:victim%x@tenant-b.example>"); code != 550 {
		t.Errorf("source route to a percent hack: %d, want 550", code)
	}
	c.want("DATA", 354)
	c.write(message("From: alice@tenant-a.example") + ".\r\n")
	if code, m := c.read(); code != 250 {
		t.Fatalf("DATA: %d %s", code, m)
	}
	e := f.only().Transaction
	if e.From != "alice@tenant-a.example" || !slices.Equal(e.To, []string{"victim@tenant-b.example"}) {
		t.Errorf("envelope kept a route: %+v", e)
	}
}

// The envelope sender and the From domain must be the user's own or
// granted, unless the user may use foreign domains; a sub-domain is a
// domain of its own.
func TestSenderDomains(t *testing.T) {
	f := newFixture(t, nil)
	rcpt := []string{"bob@elsewhere.example"}
	for _, tc := range []struct {
		name, user, from string
		header           []string
		want             int
	}{
		{"own domain", "alice", "alice@tenant-a.example", []string{"From: alice@tenant-a.example"}, 250},
		{"granted domain", "alice", "alice@granted.example", []string{"From: alice@granted.example"}, 250},
		{"null sender", "alice", "", []string{"From: alice@tenant-a.example"}, 250},
		{"From in another case", "alice", "alice@TENANT-A.example", []string{"From: Alice <alice@Tenant-A.Example>"}, 250},
		{"envelope of another tenant", "alice", "alice@tenant-b.example", []string{"From: alice@tenant-a.example"}, 550},
		{"envelope of a sub-domain", "alice", "alice@sub.tenant-a.example", []string{"From: alice@tenant-a.example"}, 550},
		{"From of another tenant", "alice", "alice@tenant-a.example", []string{"From: x@tenant-b.example"}, 550},
		{"From of a sub-domain", "alice", "alice@tenant-a.example", []string{"From: x@sub.tenant-a.example"}, 550},
		{"From without address", "alice", "alice@tenant-a.example", []string{"From: undisclosed"}, 550},
		{"From with two addresses", "alice", "alice@tenant-a.example", []string{"From: alice@tenant-a.example, x@tenant-b.example"}, 550},
		{"two From fields", "alice", "alice@tenant-a.example", []string{"From: alice@tenant-a.example", "From: x@tenant-b.example"}, 550},
		{"no From field", "alice", "alice@tenant-a.example", []string{"To: bob@elsewhere.example"}, 550},
		{"malformed header line", "alice", "alice@tenant-a.example", []string{"From: alice@tenant-a.example", "not a field"}, 550},
		{"foreign user, foreign envelope and From", "foreign", "x@tenant-b.example", []string{"From: x@tenant-b.example"}, 250},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pw := map[string]string{"alice": pwAlice, "foreign": pwForeign}[tc.user]
			c := f.login(tc.user, pw)
			if code, m := c.send(tc.from, rcpt, message(tc.header...)); code != tc.want {
				t.Errorf("%d %s, want %d", code, m, tc.want)
			}
		})
	}
}

// A user of tenant A with From: x@tenant-b never gets d=tenant-b: with a
// selector it is signed as its own domain, without one not at all.
func TestNoCrossTenantSignature(t *testing.T) {
	f := newFixture(t, nil)
	c := f.login("foreign", pwForeign)
	if code, m := c.send("x@tenant-b.example", []string{"bob@elsewhere.example"}, message("From: x@tenant-b.example")); code != 250 {
		t.Fatalf("DATA: %d %s", code, m)
	}
	m := f.only()
	if got := f.verify(m.Body); !slices.Equal(got, []string{"tenant-a.example"}) {
		t.Errorf("signatures d=%v, want only tenant-a.example", got)
	}
	if strings.Contains(string(m.Body), "d=tenant-b.example") {
		t.Error("a signature names tenant-b")
	}
	if m.Transaction.Decision.Reason != policy.ReasonUserSelector {
		t.Errorf("decision %+v", m.Transaction.Decision)
	}

	c = f.login("nosel", pwNosel)
	if code, msg := c.send("x@tenant-b.example", []string{"bob@elsewhere.example"}, message("From: x@tenant-b.example")); code != 250 {
		t.Fatalf("DATA: %d %s", code, msg)
	}
	ms := f.q.Messages()
	if body := ms[len(ms)-1].Body; strings.Contains(string(body), "DKIM-Signature") {
		t.Error("user without a selector and foreign From was signed")
	}
	if r := ms[len(ms)-1].Transaction.Decision.Reason; r != policy.ReasonNoKey {
		t.Errorf("reason %s, want %s", r, policy.ReasonNoKey)
	}
}

// A signature that is due but cannot be made defers the message: never
// unsigned.
func TestKeyCannotBeOpened(t *testing.T) {
	f := newFixture(t, nil)
	if _, err := f.db.UpdateUser(t.Context(), withSelector(t, f, "broken", "bk")); err != nil {
		t.Fatal(err)
	}
	c := f.login("broken", pwBroken)
	code, m := c.send("b@broken.example", []string{"bob@elsewhere.example"}, message("From: b@broken.example"))
	if code != 451 || !strings.HasPrefix(m, "4.3.0") {
		t.Errorf("DATA: %d %s, want 451 4.3.0", code, m)
	}
	if strings.Contains(m, "key") || strings.Contains(m, "cipher") {
		t.Errorf("reply %q leaks the error", m)
	}
	f.none()
	if !strings.Contains(f.logs.String(), "signature due but not made") {
		t.Error("failure not logged")
	}
	// The refusal names the decision that could not be carried out.
	if !regexp.MustCompile(`msg=message_refused .*decision\.reason=\S+ .*decision\.selectors=bk`).MatchString(f.logs.String()) {
		t.Errorf("refusal logged without its decision:\n%s", f.logs.String())
	}
}

func withSelector(t *testing.T, f *fixture, user, sel string) store.OutgoingUser {
	u, err := f.db.GetUser(t.Context(), user)
	if err != nil {
		t.Fatal(err)
	}
	u.Selector = sel
	return u
}

// 250 only once the queue said durable: a queue failure is 451, a refusal
// 554, and the client can try again.
func TestQueueFailure(t *testing.T) {
	f := newFixture(t, nil)
	c := f.login("alice", pwAlice)
	msg := message("From: alice@tenant-a.example")
	f.q.SetFail(errors.New("disk full"))
	if code, m := c.send("alice@tenant-a.example", []string{"bob@elsewhere.example"}, msg); code != 451 || strings.Contains(m, "disk") {
		t.Errorf("queue failure: %d %s, want 451 without the error", code, m)
	}
	f.q.SetFail(relay.ErrRefused)
	if code, m := c.send("alice@tenant-a.example", []string{"bob@elsewhere.example"}, msg); code != 554 {
		t.Errorf("queue refusal: %d %s, want 554", code, m)
	}
	f.q.SetFail(nil)
	if code, m := c.send("alice@tenant-a.example", []string{"bob@elsewhere.example"}, msg); code != 250 {
		t.Errorf("after recovery: %d %s", code, m)
	}
	f.only()
}
