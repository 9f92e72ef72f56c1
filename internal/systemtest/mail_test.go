package systemtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/dkimd/dkimd/internal/delivery/deliverytest"
	"github.com/dkimd/dkimd/internal/dkim"
	"github.com/dkimd/dkimd/internal/peertest"
)

// outcome is what a client knows about one message it tried to send.
type outcome int

const (
	// notSent: the transaction failed before the server answered DATA with
	// 354, so no byte of the message reached it. It must not be delivered.
	notSent outcome = iota
	// refused: the server answered with an error code (to MAIL, RCPT,
	// DATA or the final dot). It must not be delivered.
	refused
	// unanswered: the connection broke after 354, while the message or the
	// final dot was on its way or while waiting for the answer. The server
	// may have queued it (its 250 was lost) or not: delivering it is
	// legitimate, delivering part of it is not.
	unanswered
	// accepted: the server answered 250 to the final dot. It must be
	// delivered, complete.
	accepted
)

func (o outcome) String() string {
	return [...]string{"not sent", "refused", "unanswered", "accepted"}[o]
}

// sent is the record of one message.
type sent struct {
	outcome outcome
	reply   string
	sum     [sha256.Size]byte // of the body as sent (CRLF, before dot-stuffing)
}

// ledger records every message the clients tried, by Message-ID.
type ledger struct {
	mu   sync.Mutex
	msgs map[string]sent
	n    [4]int
}

func newLedger() *ledger { return &ledger{msgs: make(map[string]sent)} }

func (l *ledger) record(id string, s sent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs[id] = s
	l.n[s.outcome]++
}

func (l *ledger) count(o outcome) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n[o]
}

func (l *ledger) snapshot() map[string]sent {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]sent, len(l.msgs))
	for k, v := range l.msgs {
		out[k] = v
	}
	return out
}

// bodySizes are the message body sizes the clients cycle through: mostly
// small, with a large one now and then so that some kills land in the
// middle of a transfer or of the signing.
var bodySizes = []int{900, 3000, 900, 12000, 900, 3000, 900, 150000}

// newMessage builds a message of example.com with a unique Message-ID and a
// body of about size bytes whose every line names the message, so that a
// truncated or mixed-up body shows.
func newMessage(id string, size int) (msg, body []byte) {
	var b bytes.Buffer
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "line %06d of %s: the quick brown fox jumps over the lazy dog\r\n", i, id)
	}
	fmt.Fprintf(&b, "end of %s\r\n", id)
	body = b.Bytes()
	head := "From: System Test <srv@example.com>\r\nTo: Bob <bob@example.net>\r\n" +
		"Subject: system test " + id + "\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\n" +
		"Message-ID: " + id + "\r\n\r\n"
	return append([]byte(head), body...), body
}

// client sends messages over the relay port from its own source address
// until ctx ends, reconnecting whenever the connection breaks, to whatever
// address relay returns at the time ("" while the server is down).
type client struct {
	name   string
	source string // local IP address
	relay  func() string
	ledger *ledger
}

func (c *client) run(ctx context.Context) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(c.source)}, Timeout: 5 * time.Second}
	seq := 0
	for ctx.Err() == nil {
		addr := c.relay()
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			sleep(ctx, 20*time.Millisecond)
			continue
		}
		sc := smtp.NewClient(conn)
		sc.CommandTimeout = 30 * time.Second
		sc.SubmissionTimeout = 30 * time.Second
		if err := sc.Hello("client.test"); err != nil {
			sc.Close()
			sleep(ctx, 20*time.Millisecond)
			continue
		}
		for ctx.Err() == nil {
			id := fmt.Sprintf("<%s.%d@systemtest.example.com>", c.name, seq)
			msg, body := newMessage(id, bodySizes[seq%len(bodySizes)])
			seq++
			s := sent{sum: sha256.Sum256(body)}
			s.outcome, s.reply = send(sc, msg)
			c.ledger.record(id, s)
			if s.outcome == notSent || s.outcome == unanswered {
				break // the connection is gone
			}
			if s.outcome == refused {
				if err := sc.Reset(); err != nil {
					break
				}
				sleep(ctx, 50*time.Millisecond)
			}
		}
		sc.Close()
	}
}

// send runs one transaction and classifies its end.
func send(c *smtp.Client, msg []byte) (outcome, string) {
	var se *smtp.SMTPError
	step := func(err error) (outcome, string) {
		if errors.As(err, &se) {
			return refused, fmt.Sprintf("%d %s", se.Code, se.Message)
		}
		return notSent, err.Error()
	}
	if err := c.Mail("srv@example.com", nil); err != nil {
		return step(err)
	}
	if err := c.Rcpt("bob@example.net", nil); err != nil {
		return step(err)
	}
	w, err := c.Data()
	if err != nil {
		return step(err)
	}
	// From here on a broken connection leaves the outcome open.
	if _, err := w.Write(msg); err != nil {
		_ = w.Close()
		return unanswered, err.Error()
	}
	if err := w.Close(); err != nil {
		if errors.As(err, &se) {
			return refused, fmt.Sprintf("%d %s", se.Code, se.Message)
		}
		return unanswered, err.Error()
	}
	return accepted, "250"
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// delivery is one message the sink accepted, parsed.
type delivery struct {
	id   string
	data []byte
	sum  [sha256.Size]byte
}

// deliveries parses what the sink accepted; a message without exactly one
// Message-ID, or that does not parse, fails the test.
func deliveries(t *testing.T, sink *deliverytest.Sink) []delivery {
	t.Helper()
	var out []delivery
	for _, r := range sink.Delivered() {
		m, err := mail.ReadMessage(bytes.NewReader(r.Data))
		if err != nil {
			t.Errorf("delivered message does not parse: %v\n%.500s", err, r.Data)
			continue
		}
		ids := m.Header["Message-Id"]
		if len(ids) != 1 {
			t.Errorf("delivered message with %d Message-ID fields:\n%.500s", len(ids), r.Data)
			continue
		}
		i := bytes.Index(r.Data, []byte("\r\n\r\n"))
		if i < 0 {
			t.Errorf("delivered message %s without a body", ids[0])
			continue
		}
		out = append(out, delivery{id: ids[0], data: r.Data, sum: sha256.Sum256(r.Data[i+4:])})
	}
	return out
}

// checkSignatures verifies the DKIM signature of each message with dkimd's
// own verifier (the key record as "dkimd key record" printed it) and, when
// it is installed, with dkimpy in one batch.
func checkSignatures(t *testing.T, msgs []delivery, record string) {
	t.Helper()
	const name = "s1._domainkey.example.com"
	resolver := dkim.ResolverFunc(func(_ context.Context, n string) ([]string, error) {
		if strings.EqualFold(strings.TrimSuffix(n, "."), name) {
			return []string{record}, nil
		}
		return nil, fmt.Errorf("%w: %s", dkim.ErrKeyNotFound, n)
	})
	bad := 0
	for _, m := range msgs {
		res, err := dkim.Verify(t.Context(), bytes.NewReader(m.data), &dkim.VerifyOptions{Resolver: resolver})
		ok := err == nil && len(res) == 1 && res[0].Status == dkim.StatusPass && res[0].Domain() == "example.com"
		if !ok {
			bad++
			if bad <= 5 {
				var why []string
				for _, r := range res {
					why = append(why, fmt.Sprintf("%s (%s)", r.Status, r.Reason()))
				}
				t.Errorf("%s: DKIM %v %v, want one passing signature of example.com\n%.800s", m.id, why, err, m.data)
			}
		}
	}
	if bad > 5 {
		t.Errorf("... %d messages in all without a valid signature", bad)
	}
	t.Run("dkimpy", func(t *testing.T) {
		py := peertest.Dkimpy(t)
		raw := make([][]byte, len(msgs))
		for i, m := range msgs {
			raw[i] = m.data
		}
		failed := 0
		for i, v := range py.VerifyAll(raw, map[string]string{name: record}) {
			if !v.Pass() {
				failed++
				if failed <= 5 {
					t.Errorf("%s: dkimpy: %v", msgs[i].id, v)
				}
			}
		}
		t.Logf("dkimpy %s checked %d messages, %d failed", py.Version, len(raw), failed)
	})
}
