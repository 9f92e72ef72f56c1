package milter_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/dkimd/dkimd/internal/milter"
	"github.com/dkimd/dkimd/internal/policy"
)

// The milter asks for protocol 6, header values with their leading space,
// only the action it needs, no replies it never uses, and the macros that
// name the sender.
func TestNegotiation(t *testing.T) {
	f := newFixture(t, nil)
	m := f.dial()
	for _, p := range []gomilter.OptProtocol{gomilter.OptHeaderLeadingSpace, gomilter.OptNoHeaderReply, gomilter.OptNoBodyReply, gomilter.OptNoHelo, gomilter.OptNoRcptTo} {
		if !m.s.ProtocolOption(p) {
			t.Errorf("protocol option %s not negotiated", p)
		}
	}
	for _, p := range []gomilter.OptProtocol{gomilter.OptNoBody, gomilter.OptNoHeaders, gomilter.OptNoEOH, gomilter.OptNoMailFrom} {
		if m.s.ProtocolOption(p) {
			t.Errorf("protocol option %s negotiated; the milter needs that event", p)
		}
	}
	if !m.s.ActionOption(gomilter.OptAddHeader) {
		t.Error("add header not negotiated")
	}
	for _, a := range []gomilter.OptAction{gomilter.OptChangeBody, gomilter.OptChangeHeader, gomilter.OptChangeFrom, gomilter.OptAddRcpt, gomilter.OptRemoveRcpt, gomilter.OptQuarantine} {
		if m.s.ActionOption(a) {
			t.Errorf("action %s negotiated; the milter never takes it", a)
		}
	}
	// The macros come because the milter asked for them (SMFIF_SETSYMLIST):
	// the client sends only what was requested, and this one is signed.
	m.macros.Set(gomilter.MacroAuthAuthen, "alice")
	if r := m.send(withAuth(plain("a@tenant-a.example"), "alice")); r.signatures() != 1 {
		t.Fatalf("not signed: %+v", r)
	}
}

// An MTA that cannot pass header values with their leading space, or
// speaks an older protocol, is refused at negotiation: signatures made on
// guessed header bytes could fail.
func TestNegotiationRefused(t *testing.T) {
	f := newFixture(t, nil)
	for name, opts := range map[string][]gomilter.Option{
		"no HDR_LEADSPC": {gomilter.WithProtocols(gomilter.OptNoUnknown | gomilter.OptSkip | gomilter.OptNoHelo | gomilter.OptNoRcptTo | gomilter.OptNoData | gomilter.OptNoConnReply | gomilter.OptNoHeaderReply | gomilter.OptNoBodyReply)},
		"version 2":      {gomilter.WithMaximumVersion(2), gomilter.WithProtocols(gomilter.OptNoConnect)},
		"no add header":  {gomilter.WithActions(gomilter.OptChangeHeader | gomilter.OptSetMacros)},
	} {
		cl := gomilter.NewClient("tcp", f.addr, opts...)
		if s, err := cl.Session(nil); err == nil {
			s.Close()
			t.Errorf("%s: negotiation succeeded", name)
		}
	}
	if !strings.Contains(f.logs.String(), "milter_negotiation_failed") {
		t.Error("no milter_negotiation_failed in the log")
	}
}

func withAuth(m message, user string) message     { m.authUser = user; return m }
func fromAddr(m message, addr string) message     { m.clientAddr = addr; return m }
func withBody(m message, body []byte) message     { m.body = body; return m }
func withChunks(m message, n int) message         { m.chunk = n; return m }
func withHeader(m message, h [][2]string) message { m.header = h; return m }

// Who is sending decides, by the signing rule, exactly as on the relay.
// Each case is its own SMTP session, so its own milter connection: the
// client address is a connect-stage macro.
func TestWhoIsSending(t *testing.T) {
	f := newFixture(t, nil)
	for _, tc := range []struct {
		name   string
		msg    message
		stage  string   // where the milter answered
		want   []string // d=/s= of the signatures
		reject string   // the enhanced status of a rejection, as the relay's
	}{
		{"SASL user, own domain", withAuth(plain("a@tenant-a.example"), "alice"), "eom", []string{"tenant-a.example/a1"}, ""},
		{"SASL login is case-insensitive", withAuth(plain("a@tenant-a.example"), "Alice"), "eom", []string{"tenant-a.example/a1"}, ""},
		{"SASL user, granted domain: RSA first, Ed25519 second", withAuth(plain("a@granted.example"), "alice"), "eom", []string{"granted.example/g1", "granted.example/g2"}, ""},
		// What the relay refuses is rejected (policy.Evaluate): never
		// d=tenant-b.example.
		{"SASL user, From domain not its own", withAuth(plain("a@tenant-b.example"), "alice"), "eoh", nil, "5.7.1"},
		// Rule 3, for a user that may send any From: never d=tenant-b.example,
		// its own domain by its selector instead.
		{"user allowed any From: its own domain", withAuth(plain("a@tenant-b.example"), "anyfrom"), "eom", []string{"tenant-a.example/a1"}, ""},
		{"SASL login with a domain", withAuth(plain("b@tenant-b.example"), "bob@tenant-b.example"), "eom", []string{"tenant-b.example/b1"}, ""},
		{"SASL login unknown to dkimd", withAuth(plain("a@tenant-a.example"), "mallory"), "mail", nil, ""},
		{"SASL login is not tried as another form", withAuth(plain("b@tenant-b.example"), "bob"), "mail", nil, ""},
		{"SASL login of an IP user", withAuth(plain("a@tenant-a.example"), "ipuser"), "mail", nil, ""},
		{"SASL user from its network", fromAddr(withAuth(plain("a@tenant-a.example"), "netpw"), addrNetpw), "eom", []string{"tenant-a.example/a1"}, ""},
		{"SASL user outside its networks", fromAddr(withAuth(plain("a@tenant-a.example"), "netpw"), addrUnknown), "mail", nil, ""},
		{"disabled user", withAuth(plain("a@tenant-a.example"), "off"), "mail", nil, ""},
		{"IP user", fromAddr(plain("a@tenant-a.example"), addrIPUser), "eom", []string{"tenant-a.example/a1"}, ""},
		{"IP user, IPv4-mapped address", fromAddr(plain("a@tenant-a.example"), "::ffff:"+addrIPUser), "eom", []string{"tenant-a.example/a1"}, ""},
		{"IP user, Sendmail's IPv6: form", fromAddr(plain("a@tenant-a.example"), "IPv6:::ffff:"+addrIPUser), "eom", []string{"tenant-a.example/a1"}, ""},
		{"IP user, in brackets", fromAddr(plain("a@tenant-a.example"), "["+addrIPUser+"]"), "eom", []string{"tenant-a.example/a1"}, ""},
		{"re-authenticating server: never signed", fromAddr(plain("a@tenant-a.example"), addrReauth), "mail", nil, ""},
		{"unknown client: inbound mail", fromAddr(plain("a@tenant-a.example"), addrUnknown), "mail", nil, ""},
		// RFC 5322 §3.6: exactly one From, as on the relay.
		{"no From", withAuth(withHeader(plain(""), [][2]string{{"Subject", " x"}}), "alice"), "eoh", nil, "5.6.0"},
		{"two From fields", withAuth(withHeader(plain("a@tenant-a.example"), [][2]string{{"From", " a@tenant-a.example"}, {"From", " b@tenant-a.example"}}), "alice"), "eoh", nil, "5.6.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.dial().send(tc.msg)
			if r.stage != tc.stage {
				t.Fatalf("answered at %s (%v), want %s", r.stage, r.action, tc.stage)
			}
			if tc.reject != "" {
				if r.action.Type != gomilter.ActionRejectWithCode || r.action.SMTPCode != 550 || !strings.Contains(r.action.SMTPReply, tc.reject) {
					t.Fatalf("action %v, want 550 %s", r.action, tc.reject)
				}
			} else if r.action.Type != gomilter.ActionAccept {
				t.Fatalf("action %v, want accept", r.action)
			}
			if tc.want == nil {
				if len(r.mods) != 0 {
					t.Fatalf("modifications %v on an unsigned message", r.mods)
				}
				return
			}
			if got := f.verify(r.out); strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Fatalf("signatures %v, want %v", got, tc.want)
			}
			for _, a := range r.mods {
				// With SMFIP_HDR_LEADSPC the value brings its own space.
				if a.Type != gomilter.ActionInsertHeader || a.HeaderName != "DKIM-Signature" || !strings.HasPrefix(a.HeaderValue, " v=1;") {
					t.Errorf("modification %v, want DKIM-Signature inserted with value \" v=1; ...\"", a)
				}
			}
		})
	}
	snap := f.metrics.Snapshot()
	if snap[milter.MetricKey{Result: milter.ResultSigned, Reason: policy.ReasonFromDomain}] == 0 ||
		snap[milter.MetricKey{Result: milter.ResultUnsigned, Reason: policy.ReasonNoUser}] != 3 ||
		snap[milter.MetricKey{Result: milter.ResultUnsigned, Reason: policy.ReasonReauth}] != 1 ||
		snap[milter.MetricKey{Result: milter.ResultUnsigned, Reason: milter.ReasonOutsideNetworks}] != 1 {
		t.Errorf("metrics %v", snap)
	}
	for _, want := range []string{"milter_signed", "milter_not_signed", "milter_refused", "reason=reauth_user", "reason=no_user", "reason=user_selector", "reason=from_not_permitted", "reason=from_count"} {
		if !strings.Contains(f.logs.String(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

// The connect-stage macros ({daemon_name}, {client_addr}) come once per
// connection and must hold for every message on it: the trusted listener
// is still recognised on the second message and after an abort, and each
// message's own SASL login counts. (go-milter's mailfilter layer lost them
// on the second message before v0.10.2, its bug #39.)
func TestMacrosSecondMessage(t *testing.T) {
	f := newFixture(t, func(o *milter.Options) { o.TrustedDaemon = "ORIGINATING" })
	m := f.dial()
	m.connect(addrUnknown)
	for i, tc := range []struct {
		user string
		want int
	}{{"alice", 1}, {"alice", 1}, {"mallory", 0}, {"alice", 1}} {
		r := m.send(withAuth(plain("a@tenant-a.example"), tc.user))
		if r.signatures() != tc.want {
			t.Fatalf("message %d (%s): %d signatures, want %d", i+1, tc.user, r.signatures(), tc.want)
		}
	}
	// Another listener (port 25, inbound) is never signed for.
	m2 := f.dial()
	m2.macros.Set(gomilter.MacroDaemonName, "smtpd")
	m2.connect(addrUnknown)
	if r := m2.send(withAuth(plain("a@tenant-a.example"), "alice")); r.stage != "mail" || r.signatures() != 0 {
		t.Fatalf("message on an untrusted listener: %+v", r)
	}
	if !strings.Contains(f.logs.String(), "reason=untrusted_daemon") {
		t.Error("no untrusted_daemon decision in the log")
	}
}

// The client address comes from {client_addr}, or else the connect event.
func TestClientAddrFromConnect(t *testing.T) {
	f := newFixture(t, nil)
	m := f.dial()
	m.connect(addrIPUser)
	if r := m.send(plain("a@tenant-a.example")); r.signatures() != 1 {
		t.Fatalf("IP user by its connect address not signed: %+v", r)
	}
}

// The body hashes as it arrives, in chunks of any size; the signature is
// the same as over the whole message.
func TestBodyChunks(t *testing.T) {
	f := newFixture(t, nil)
	m := f.dial()
	big := bytes.Repeat([]byte("a line of text   with  spaces \t \r\n"), 2<<20/35)
	for _, tc := range []struct {
		name  string
		body  []byte
		chunk int
	}{
		{"2 MiB in 64 KiB chunks", big, 65535},
		{"2 MiB in odd chunks splitting CRLF", big, 4093},
		{"1-byte chunks", []byte("Hi  there \r\n\r\n\r\n"), 1},
		{"trailing empty lines only", []byte("\r\n\r\n"), 1},
		{"empty body", nil, 0},
		// The MTA sends it on with CRLF line ends: the signature must hold
		// for that (the signer reads a bare LF as CRLF).
		{"bare LF in odd chunks", []byte("one  \ntwo\r\n\nthree \t\n\n\n"), 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := m.send(withChunks(withBody(withAuth(plain("a@tenant-a.example"), "alice"), tc.body), tc.chunk))
			end := bytes.Index(r.out, []byte("\r\n\r\n")) + 4
			sent := append(slices.Clone(r.out[:end]), bytes.ReplaceAll(bytes.ReplaceAll(r.out[end:], []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))...)
			if got := f.verify(sent); len(got) != 1 {
				t.Fatalf("signatures %v", got)
			}
		})
	}
}

// Folded and 8-bit header fields reach the signer as the MTA has them:
// folded lines come with LF, values keep their leading white space.
func TestFoldedAndEightBitHeaders(t *testing.T) {
	f := newFixture(t, nil)
	m := f.dial()
	msg := withAuth(plain("a@tenant-a.example"), "alice")
	msg.header = [][2]string{
		{"From", "  \"Jürgen Müller\"\n\t<a@tenant-a.example>"},
		{"To", " rcpt@example.net,\n other@example.net"},
		{"Subject", "\tGrüße   aus\n   Köln"},
		{"Date", " Wed, 02 Jan 2030 10:00:00 +0000"},
	}
	r := m.send(msg)
	if got := f.verify(r.out); len(got) != 1 {
		t.Fatalf("signatures %v", got)
	}
}

// An abort mid-message forgets it; the next message on the connection is
// signed over its own bytes only.
func TestAbortMidMessage(t *testing.T) {
	f := newFixture(t, nil)
	m := f.dial()
	m.macros.Set(gomilter.MacroAuthAuthen, "alice")
	m.connect(addrUnknown)
	if _, err := m.s.Mail("s@tenant-a.example", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := m.s.Rcpt("r@example.net", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := m.s.DataStart(); err != nil {
		t.Fatal(err)
	}
	for _, h := range plain("a@tenant-a.example").header {
		if _, err := m.s.HeaderField(h[0], h[1], nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.s.HeaderField("X-Aborted", " yes", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := m.s.HeaderEnd(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.s.BodyChunk([]byte("half a body that never ends")); err != nil {
		t.Fatal(err)
	}
	if err := m.s.Abort(nil); err != nil {
		t.Fatal(err)
	}
	r := m.send(withAuth(plain("a@tenant-a.example"), "alice"))
	if got := f.verify(r.out); len(got) != 1 {
		t.Fatalf("signatures %v", got)
	}
}

// A signature that is due but cannot be made is never half made: the MTA
// is told to try later, or, if so configured, passes the message unsigned.
func TestSigningFailure(t *testing.T) {
	for _, tc := range []struct {
		name    string
		onError milter.OnError
		msg     message
		code    uint16
		result  string
	}{
		{"key cannot be opened", milter.OnErrorTempfail, withAuth(plain("a@broken.example"), "broken"), 451, milter.ResultTempfail},
		{"key cannot be opened, on-error accept", milter.OnErrorAccept, withAuth(plain("a@broken.example"), "broken"), 0, milter.ResultAcceptedOnError},
		{"header too large", milter.OnErrorTempfail,
			withAuth(withHeader(plain(""), [][2]string{{"From", " a@tenant-a.example"}, {"X-Big", " " + strings.Repeat("x", 300<<10)}}), "alice"), 550, milter.ResultRejected},
		// Not to be signed anyway (no key for that From, no selector):
		// the MTA's own limits judge the header, not dkimd.
		{"header too large, no signature due", milter.OnErrorTempfail,
			withAuth(withHeader(plain(""), [][2]string{{"X-Big", " " + strings.Repeat("x", 300<<10)}, {"From", " a@tenant-a.example"}}), "anyfrom-nosel"), 0, milter.ResultUnsigned},
		{"header field that does not parse", milter.OnErrorTempfail,
			withAuth(withHeader(plain(""), [][2]string{{"From", " a@tenant-a.example"}, {"Bad Name", " x"}}), "alice"), 550, milter.ResultRejected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(o *milter.Options) { o.OnError = tc.onError })
			r := f.dial().send(tc.msg)
			if r.signatures() != 0 || len(r.mods) != 0 {
				t.Fatalf("signed anyway: %+v", r)
			}
			switch {
			case tc.code == 0 && r.action.Type != gomilter.ActionAccept:
				t.Fatalf("action %v, want accept", r.action)
			case tc.code != 0 && (r.action.Type != gomilter.ActionRejectWithCode || r.action.SMTPCode != tc.code):
				t.Fatalf("action %v, want %d", r.action, tc.code)
			}
			var n int64
			for k, v := range f.metrics.Snapshot() {
				if k.Result == tc.result {
					n += v
				}
			}
			if n != 1 {
				t.Errorf("metrics %v, want one %s", f.metrics.Snapshot(), tc.result)
			}
			if tc.result != milter.ResultUnsigned && !strings.Contains(f.logs.String(), "milter_signing_failed") {
				t.Error("no milter_signing_failed in the log")
			}
		})
	}
}

// Several MTA connections at once each get their own messages signed.
func TestConcurrentConnections(t *testing.T) {
	f := newFixture(t, nil)
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		go func() {
			cl := gomilter.NewClient("tcp", f.addr, gomilter.WithActions(gomilter.AllClientSupportedActionMasks))
			bag := gomilter.NewMacroBag()
			bag.Set(gomilter.MacroAuthAuthen, "alice")
			s, err := cl.Session(bag)
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			if _, err := s.Conn("c", gomilter.FamilyInet, 1, addrUnknown); err != nil {
				errs <- err
				return
			}
			if _, err := s.Helo("c"); err != nil {
				errs <- err
				return
			}
			for j := 0; j < 5; j++ {
				if _, err := s.Mail("s@tenant-a.example", ""); err != nil {
					errs <- err
					return
				}
				if _, err := s.Rcpt("r@example.net", ""); err != nil {
					errs <- err
					return
				}
				if _, err := s.DataStart(); err != nil {
					errs <- err
					return
				}
				msg := plain("a@tenant-a.example")
				for _, h := range msg.header {
					if _, err := s.HeaderField(h[0], h[1], nil); err != nil {
						errs <- err
						return
					}
				}
				if _, err := s.HeaderEnd(); err != nil {
					errs <- err
					return
				}
				mods, _, err := s.BodyReadFrom(bytes.NewReader(msg.body))
				if err != nil {
					errs <- err
					return
				}
				if len(mods) != 1 {
					errs <- errors.New("message not signed")
					return
				}
			}
			errs <- nil
		}()
	}
	for i := 0; i < 8; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// negotiateRaw opens a connection and negotiates by hand, as an MTA
// offering everything.
func negotiateRaw(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	data := make([]byte, 12)
	binary.BigEndian.PutUint32(data[0:], 6)
	binary.BigEndian.PutUint32(data[4:], 0x1ff)
	binary.BigEndian.PutUint32(data[8:], 0x1fffff)
	writePacket(t, c, 'O', data)
	var lb [4]byte
	if _, err := io.ReadFull(c, lb[:]); err != nil {
		t.Fatalf("negotiation reply: %v", err)
	}
	if _, err := io.ReadFull(c, make([]byte, binary.BigEndian.Uint32(lb[:]))); err != nil {
		t.Fatalf("negotiation reply: %v", err)
	}
	return c
}

func writePacket(t *testing.T, c net.Conn, code byte, data []byte) {
	t.Helper()
	b := binary.BigEndian.AppendUint32(nil, uint32(len(data)+1))
	b = append(append(b, code), data...)
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
}

// A malformed packet closes its connection with a clear log line; the
// server goes on serving (go-milter v0.10.2 itself would panic on several
// of these and end the process).
func TestMalformedPackets(t *testing.T) {
	f := newFixture(t, nil)
	for _, tc := range []struct {
		name string
		raw  []byte // after negotiation
	}{
		{"zero length", []byte{0, 0, 0, 0}},
		{"connect without family", append([]byte{0, 0, 0, 6, 'C'}, "host\x00"...)},
		{"connect without NUL", append([]byte{0, 0, 0, 5, 'C'}, "host"...)},
		{"connect without port", append([]byte{0, 0, 0, 8, 'C'}, "host\x004\x00"...)},
		{"MAIL without NUL", append([]byte{0, 0, 0, 4, 'M'}, "<a>"...)},
		{"RCPT without NUL", append([]byte{0, 0, 0, 4, 'R'}, "<a>"...)},
		{"huge length", []byte{0x7f, 0xff, 0xff, 0xff, 'B'}},
		{"unknown command", []byte{0, 0, 0, 1, 'Z'}},
		{"bad IPv4 address", append([]byte{0, 0, 0, 17, 'C'}, "host\x004\x00\x19not-an-ip\x00"...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := negotiateRaw(t, f.addr)
			if _, err := c.Write(tc.raw); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if n, err := c.Read(make([]byte, 64)); err == nil {
				t.Fatalf("connection open after a malformed packet (read %d bytes)", n)
			} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("connection not closed after a malformed packet")
			}
		})
	}
	if !strings.Contains(f.logs.String(), "milter_malformed_packet") {
		t.Error("no milter_malformed_packet in the log")
	}
	// Still serving.
	if r := f.dial().send(withAuth(plain("a@tenant-a.example"), "alice")); r.signatures() != 1 {
		t.Fatalf("after malformed packets: %+v", r)
	}
}

// IdleTimeout ends a connection the MTA sends nothing on, however cheaply
// the deadline is kept (at most a second late), and not one it keeps
// sending on for longer than that.
func TestIdleTimeout(t *testing.T) {
	const idle = 400 * time.Millisecond
	f := newFixture(t, func(o *milter.Options) { o.IdleTimeout = idle })

	silent := negotiateRaw(t, f.addr)
	start := time.Now()
	silent.SetReadDeadline(start.Add(10 * time.Second))
	_, err := silent.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("silent connection still open after 10 s")
	}
	// The deadline falls up to a second late; another second for a
	// loaded machine.
	if d := time.Since(start); d < idle || d > idle+2*time.Second {
		t.Errorf("silent connection closed after %v, want %v to %v", d, idle, idle+2*time.Second)
	}

	busy := negotiateRaw(t, f.addr)
	for range 10 {
		// A macro packet: the milter answers none.
		writePacket(t, busy, 'D', []byte("C{daemon_name}\x00ORIGINATING\x00"))
		time.Sleep(idle / 4)
	}
	busy.SetReadDeadline(time.Now().Add(idle / 4))
	if _, err := busy.Read(make([]byte, 1)); err == nil {
		t.Fatal("busy connection: unexpected reply")
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("busy connection closed after %v of packets: %v", 10*idle/4, err)
	}
}

// A decision's log line names the message (queue ID), who sent it and the
// decision; a failure's adds its class, error and result, in that order.
func TestLogLines(t *testing.T) {
	f := newFixture(t, nil)
	m := f.dial()
	if r := m.send(withAuth(plain("a@tenant-a.example"), "alice")); r.signatures() != 1 {
		t.Fatalf("not signed: %+v", r)
	}
	if r := m.send(withAuth(plain("a@broken.example"), "broken")); r.signatures() != 0 {
		t.Fatalf("signed: %+v", r)
	}
	signed := regexp.MustCompile(`level=INFO msg=milter_signed queue_id=Q\d+ auth_user=alice client_addr=` + addrUnknown + ` daemon=ORIGINATING decision\.outcome=signed decision\.reason=from_domain .*\n`)
	failed := regexp.MustCompile(`level=WARN msg=milter_signing_failed queue_id=Q\d+ auth_user=broken client_addr=` + addrUnknown + ` daemon=ORIGINATING decision\.outcome=signed .* class=key_unavailable err="open key bk\._domainkey\.broken\.example: .*" result=tempfail\n`)
	logs := f.logs.String()
	if !signed.MatchString(logs) || !failed.MatchString(logs) {
		t.Errorf("log lines not as expected:\n%s", logs)
	}
}
