package delivery

import (
	"github.com/dkimd/dkimd/internal/queue"
	"path/filepath"

	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/dkimd/dkimd/internal/delivery/deliverytest"
)

var (
	tempErr = &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: "mailbox busy"}
	userErr = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
)

func TestSmartHostDelivery(t *testing.T) {
	serverTLS, clientTLS := deliverytest.TLSConfigs(t)
	tests := []struct {
		name    string
		sink    deliverytest.SinkOptions
		opts    func(*Options)
		wantTLS bool
		user    string
	}{
		{"plain, opportunistic TLS not offered", deliverytest.SinkOptions{}, nil, false, ""},
		{"opportunistic STARTTLS taken when offered (RFC 3207)", deliverytest.SinkOptions{TLSConfig: serverTLS}, nil, true, ""},
		{"STARTTLS required, AUTH PLAIN (RFC 4616)", deliverytest.SinkOptions{TLSConfig: serverTLS, Username: "relay", Password: "s3cret"},
			func(o *Options) {
				o.SmartHostTLS, o.TLSConfig, o.Username, o.Password = TLSRequired, clientTLS, "relay", "s3cret"
			}, true, "relay"},
		{"implicit TLS (RFC 8314)", deliverytest.SinkOptions{TLSConfig: serverTLS, ImplicitTLS: true},
			func(o *Options) { o.SmartHostTLS, o.TLSConfig = TLSImplicit, clientTLS }, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			sink := deliverytest.NewSink(t, tt.sink)
			opts := e.d.opts
			opts.SmartHost = sink.Addr
			if tt.opts != nil {
				tt.opts(&opts)
			}
			e.d = NewDeliverer(e.sp, opts)
			body := testBody("smart")
			id := e.enqueue("alice@sender.test", []string{"bob@rcpt.test", "carol@other.test"}, body)
			e.runOnce()
			got := sink.Delivered()
			if len(got) != 1 {
				t.Fatalf("sink got %d messages, want 1 transaction", len(got))
			}
			r := got[0]
			if r.From != "alice@sender.test" || strings.Join(r.To, ",") != "bob@rcpt.test,carol@other.test" ||
				string(r.Data) != body || r.TLS != tt.wantTLS || r.User != tt.user {
				t.Fatalf("received %+v", r)
			}
			if _, err := e.sp.Get(e.ctx, id); err == nil {
				t.Fatal("delivered message still queued")
			}
			if st, _ := e.sp.Stats(e.ctx); st.Delivered != 2 || st.Messages != 0 {
				t.Fatalf("Stats = %+v", st)
			}
		})
	}
}

func TestSmartHostTLSRequiredRefusesPlaintext(t *testing.T) {
	_, clientTLS := deliverytest.TLSConfigs(t)
	e := newEnv(t, func(o *Options) { o.SmartHostTLS, o.TLSConfig = TLSRequired, clientTLS })
	id := e.enqueue("alice@sender.test", []string{"bob@rcpt.test"}, testBody("x"))
	e.runOnce()
	if n := len(e.sink.Messages()); n != 0 {
		t.Fatalf("sent in plaintext with STARTTLS required")
	}
	r := e.get(id).Recipients[0]
	if r.Status != queue.Deferred || !strings.Contains(r.Reply, "STARTTLS not offered") {
		t.Fatalf("recipient = %+v", r)
	}
}

// TestFailureModes checks each way a next hop fails, and what follows:
// temporary failures retry with backoff and then deliver, permanent ones
// bounce with a DSN.
func TestFailureModes(t *testing.T) {
	tests := []struct {
		name     string
		mode     deliverytest.Mode
		rcpt     error
		want     queue.Status
		replyHas string
		dups     int // copies the sink may have kept without a 250 reaching us
	}{
		{"451 after the final dot is retried", deliverytest.TempFail, nil, queue.Deferred, "451 4.3.0", 0},
		{"421 to MAIL is retried", deliverytest.Shutdown, nil, queue.Deferred, "421 4.3.2", 0},
		{"450 to RCPT is retried", deliverytest.Accept, tempErr, queue.Deferred, "450 4.2.1", 0},
		{"no answer to the final dot times out and is retried", deliverytest.Hang, nil, queue.Deferred, "connection lost after data", 1},
		{"connection dropped after the final dot stays deferred", deliverytest.Drop, nil, queue.Deferred, "connection lost after data", 1},
		{"554 after the final dot bounces; the DSN bounces too and is dropped", deliverytest.PermFail, nil, queue.Bounced, "554 5.6.0", 0},
		{"550 to RCPT bounces", deliverytest.Accept, userErr, queue.Bounced, "550 5.1.1", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(o *Options) { o.DataTimeout = 300 * time.Millisecond })
			e.sink.SetMode(tt.mode)
			if tt.rcpt != nil {
				e.sink.SetRcpt(func(to string) error {
					if to == "bob@rcpt.test" {
						return tt.rcpt
					}
					return nil
				})
			}
			id := e.enqueue("alice@sender.test", []string{"bob@rcpt.test"}, testBody("f"))
			start := e.clk.Now()
			e.runOnce()
			if tt.want == queue.Bounced {
				// The same run bounces the message, queues a DSN and
				// delivers it to the sender through the sink.
				if _, err := e.sp.Get(e.ctx, id); err == nil {
					t.Fatal("bounced message still queued")
				}
				var dsn *deliverytest.Received
				for _, m := range e.sink.Messages() {
					if m.From == "" {
						dsn = &m
					}
				}
				if dsn == nil || strings.Join(dsn.To, ",") != "alice@sender.test" {
					t.Fatalf("no DSN to the sender reached the sink: %+v", e.sink.Messages())
				}
				if !strings.Contains(string(dsn.Data), tt.replyHas) {
					t.Fatalf("DSN lacks %q:\n%s", tt.replyHas, dsn.Data)
				}
				wantDropped := int64(boolInt(tt.mode == deliverytest.PermFail))
				if st, _ := e.sp.Stats(e.ctx); st.Bounced != 1+wantDropped || st.DSNs != 1 || st.DSNsDropped != wantDropped || st.Messages != 0 {
					t.Fatalf("Stats = %+v", st)
				}
				return
			}
			r := e.get(id).Recipients[0]
			if r.Status != queue.Deferred || r.Attempts != 1 || !strings.Contains(r.Reply, tt.replyHas) {
				t.Fatalf("recipient = %+v, want deferred with %q", r, tt.replyHas)
			}
			// First wait: RetryBase (1m) with jitter from its upper half.
			if w := r.Next.Sub(start); w < 30*time.Second || w > time.Minute {
				t.Fatalf("next attempt in %v, want 30s..1m", w)
			}
			if st, _ := e.sp.Stats(e.ctx); st.Deferred != 1 || st.Delivered != 0 {
				t.Fatalf("Stats = %+v", st)
			}
			// Not due yet: no attempt.
			e.runOnce()
			if n := len(e.sink.Messages()); n != 1-boolInt(tt.mode == deliverytest.Shutdown || tt.rcpt != nil) {
				t.Fatalf("attempted before the retry time: sink read %d", n)
			}
			e.sink.SetMode(deliverytest.Accept)
			e.sink.SetRcpt(nil)
			e.clk.Advance(time.Minute)
			e.runOnce()
			if n := len(e.sink.Delivered()); n != 1 {
				t.Fatalf("after retry the sink delivered %d", n)
			}
			if l := e.list(); len(l) != 0 {
				t.Fatalf("queue not drained: %+v", l)
			}
			// A drop or a hang after the final dot: the sink may have kept
			// the message, so the retry is a counted duplicate.
			dups := 0
			for _, m := range e.sink.Messages() {
				if m.Mode == deliverytest.Hang || m.Mode == deliverytest.Drop {
					dups++
				}
			}
			if dups != tt.dups {
				t.Fatalf("sink kept %d unconfirmed copies, want %d", dups, tt.dups)
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestBackoffGrowsToMax(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.RetryBase, o.RetryMax = time.Minute, 5*time.Minute })
	e.sink.SetMode(deliverytest.TempFail)
	id := e.enqueue("alice@sender.test", []string{"bob@rcpt.test"}, testBody("b"))
	for i, max := range []time.Duration{1, 2, 4, 5, 5} {
		max *= time.Minute
		now := e.clk.Now()
		e.runOnce()
		r := e.get(id).Recipients[0]
		if r.Attempts != i+1 {
			t.Fatalf("attempt %d: recorded %d", i+1, r.Attempts)
		}
		if w := r.Next.Sub(now); w < max/2 || w > max {
			t.Fatalf("attempt %d: wait %v, want %v..%v", i+1, w, max/2, max)
		}
		e.clk.Advance(r.Next.Sub(now))
	}
}

func TestExpiryBounces(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.RetryMax = 24 * time.Hour })
	e.sink.SetMode(deliverytest.TempFail)
	id := e.enqueue("alice@sender.test", []string{"bob@rcpt.test"}, testBody("e"))
	e.runOnce()
	e.clk.Advance(5*24*time.Hour + time.Second) // the default expiry
	fromAlice := func() int {
		n := 0
		for _, m := range e.sink.Messages() {
			if m.From == "alice@sender.test" {
				n++
			}
		}
		return n
	}
	attempts := fromAlice()
	e.runOnce()
	l := e.list()
	if len(l) != 1 || l[0].ID != id+"-dsn1" {
		t.Fatalf("List = %+v, want the DSN only", l)
	}
	if n := fromAlice(); n != attempts {
		t.Fatalf("expired message was attempted again")
	}
	dsn := parseDSN(t, e.body(l[0].ID))
	if dsn.rcpts[0].Get("Status") != "5.4.7" || !strings.Contains(dsn.rcpts[0].Get("Diagnostic-Code"), "451 4.3.0") {
		t.Fatalf("DSN recipient fields %v", dsn.rcpts[0])
	}
}

func TestPartialBounceAndDSNContent(t *testing.T) {
	e := newEnv(t, nil)
	e.sink.SetRcpt(func(to string) error {
		if to == "nobody@rcpt.test" {
			return userErr
		}
		return nil
	})
	body := testBody("partial")
	id := e.enqueue("alice@sender.test", []string{"bob@rcpt.test", "nobody@rcpt.test"}, body)
	e.runOnce() // delivers to bob, bounces nobody, queues and delivers the DSN
	got := e.sink.Delivered()
	if len(got) != 2 {
		t.Fatalf("sink got %d messages, want the message and the DSN", len(got))
	}
	if strings.Join(got[0].To, ",") != "bob@rcpt.test" {
		t.Fatalf("message went to %v", got[0].To)
	}
	d := got[1]
	if d.From != "" || strings.Join(d.To, ",") != "alice@sender.test" {
		t.Fatalf("DSN envelope %q -> %v, want null sender to the original sender", d.From, d.To)
	}
	dsn := parseDSN(t, d.Data)
	if dsn.hdr.Get("To") != "<alice@sender.test>" || dsn.hdr.Get("Auto-Submitted") != "auto-replied" {
		t.Fatalf("DSN header %v", dsn.hdr)
	}
	if dsn.msg.Get("Reporting-MTA") != "dns; dkimd.test" || dsn.msg.Get("X-Dkimd-Queue-ID") != id || dsn.msg.Get("Arrival-Date") == "" {
		t.Fatalf("per-message fields %v", dsn.msg)
	}
	if len(dsn.rcpts) != 1 {
		t.Fatalf("DSN lists %d recipients, want only the bounced one", len(dsn.rcpts))
	}
	r := dsn.rcpts[0]
	want := map[string]string{
		"Final-Recipient": "rfc822; nobody@rcpt.test",
		"Action":          "failed",
		"Status":          "5.1.1",
		"Diagnostic-Code": "smtp; 550 5.1.1 no such user",
	}
	for k, v := range want {
		if r.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, r.Get(k), v)
		}
	}
	if r.Get("Remote-MTA") == "" || r.Get("Last-Attempt-Date") == "" {
		t.Errorf("recipient fields %v", r)
	}
	if !strings.Contains(dsn.orig, "Subject: partial\r\n") || strings.Contains(dsn.orig, "Hello, partial") {
		t.Fatalf("original headers part %q: want the header, not the body", dsn.orig)
	}
	if st, _ := e.sp.Stats(e.ctx); st.Messages != 0 || st.Delivered != 2 || st.Bounced != 1 || st.DSNs != 1 {
		t.Fatalf("Stats = %+v", st)
	}
}

type parsedDSN struct {
	hdr   mail.Header
	msg   textproto.MIMEHeader
	rcpts []textproto.MIMEHeader
	orig  string
}

// parseDSN reads an RFC 3464 report with net/mail and mime/multipart.
func parseDSN(t *testing.T, b []byte) parsedDSN {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("Content-Type %q: %v", m.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	var types []string
	out := parsedDSN{hdr: m.Header}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ct := p.Header.Get("Content-Type")
		types = append(types, strings.SplitN(ct, ";", 2)[0])
		data, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case ct == "message/delivery-status":
			// RFC 3464 §2.1: groups of header-style fields separated by
			// blank lines.
			tr := textproto.NewReader(bufioReader(data))
			if out.msg, err = tr.ReadMIMEHeader(); err != nil {
				t.Fatalf("per-message fields: %v", err)
			}
			for {
				h, err := tr.ReadMIMEHeader()
				if len(h) > 0 {
					out.rcpts = append(out.rcpts, h)
				}
				if err != nil {
					break
				}
			}
		case ct == "text/rfc822-headers":
			out.orig = string(data)
		}
	}
	if strings.Join(types, ",") != "text/plain,message/delivery-status,text/rfc822-headers" {
		t.Fatalf("parts %v", types)
	}
	if len(out.rcpts) == 0 {
		t.Fatal("no per-recipient fields")
	}
	return out
}

func TestNoDSNToNullSender(t *testing.T) {
	e := newEnv(t, nil)
	e.sink.SetMode(deliverytest.PermFail)
	e.enqueue("", []string{"bob@rcpt.test"}, testBody("bounce-of-bounce"))
	e.runOnce()
	if l := e.list(); len(l) != 0 {
		t.Fatalf("List = %+v, want nothing: a bounce is never bounced", l)
	}
	if n := len(e.sink.Messages()); n != 1 {
		t.Fatalf("sink read %d messages, want the one attempt", n)
	}
	if st, _ := e.sp.Stats(e.ctx); st.Bounced != 1 || st.DSNs != 0 || st.DSNsDropped != 1 {
		t.Fatalf("Stats = %+v", st)
	}
}

// A body damaged on disk is never sent whole: the transfer stops before
// the final dot and the message is quarantined.
func TestCorruptBodyNeverDelivered(t *testing.T) {
	e := newEnv(t, nil)
	id := e.enqueue("alice@sender.test", []string{"bob@rcpt.test"}, testBody("corrupt")+strings.Repeat("line of text\r\n", 10000))
	path := filepath.Join(e.dir, "msg", id)
	b, err := readFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-100] ^= 0x20
	if err := writeFile(path, b); err != nil {
		t.Fatal(err)
	}
	e.runOnce()
	if n := len(e.sink.Messages()); n != 0 {
		t.Fatalf("sink read %d messages to the final dot", n)
	}
	if l := e.list(); len(l) != 0 {
		t.Fatalf("corrupt message still queued: %+v", l)
	}
	if st, _ := e.sp.Stats(e.ctx); st.Quarantined != 1 || st.Delivered != 0 {
		t.Fatalf("Stats = %+v", st)
	}
}

func TestRunDeliversAsMessagesArrive(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Concurrency, o.PerDestination = 3, 2 })
	ctx, cancel := contextWithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- e.d.Run(ctx) }()
	const n = 20
	for i := range n {
		e.enqueue("alice@sender.test", []string{"bob@rcpt.test"}, testBody("run"+string(rune('a'+i))))
	}
	if got := e.sink.Wait(n, 10*time.Second); len(got) != n {
		t.Fatalf("sink got %d of %d", len(got), n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(e.list()) != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if l := e.list(); len(l) != 0 {
		t.Fatalf("queue not drained: %d left", len(l))
	}
}

func TestPerDestinationConcurrency(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Concurrency, o.PerDestination, o.DataTimeout = 10, 2, 200*time.Millisecond
	})
	e.sink.SetMode(deliverytest.Hang) // every transaction holds its slot 200ms
	for i := range 6 {
		e.enqueue("alice@sender.test", []string{"bob@rcpt.test"}, testBody("c"+string(rune('a'+i))))
	}
	start := time.Now()
	e.runOnce()
	elapsed := time.Since(start)
	if n := len(e.sink.Messages()); n != 6 {
		t.Fatalf("sink read %d messages, want 6", n)
	}
	// Two at a time: three rounds of 200ms. Unbounded it would be one.
	// (The sink's own count of open connections lags the client's
	// hang-ups, so time is the measure.)
	if elapsed < 550*time.Millisecond || e.sink.Peak() < 2 {
		t.Fatalf("6 transactions took %v with peak %d: want 2 at a time, 3 rounds", elapsed, e.sink.Peak())
	}
}
