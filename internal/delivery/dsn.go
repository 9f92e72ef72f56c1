package delivery

import (
	"github.com/dkimd/dkimd/internal/queue"

	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"strings"
	"time"
)

// maxDSNHeader bounds the original header copied into a DSN.
const maxDSNHeader = 64 << 10

// notify queues one DSN for the recipients that bounced since the last one,
// to the envelope sender; for the null sender (a bounce itself) it only
// logs, so bounces never loop (RFC 5321 §4.5.5, RFC 3464 §2).
func (d *Deliverer) notify(ctx context.Context, log *slog.Logger, c *queue.Claim) error {
	m := &c.Message
	var idx []int
	for i, r := range m.Recipients {
		if r.Status == queue.Bounced && !r.Notified {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	if m.Envelope.From == "" {
		d.m.DSNsDropped.Add(int64(len(idx)))
		log.Warn("queue_dsn_dropped_null_sender", "recipients", len(idx))
	} else {
		// A stable id: if we crash after queueing the DSN but before
		// saving that we did, the retry queues nothing new.
		id := fmt.Sprintf("%s-dsn%d", m.ID, m.DSNs+1)
		var hdr []byte
		if body, err := d.q.Body(ctx, m.ID); err == nil {
			hdr = readHeader(body)
			if err := body.Close(); err != nil {
				log.Warn("queue_body_close_failed", "err", err)
			}
		}
		msg := d.buildDSN(m, idx, hdr, id)
		env := queue.Envelope{To: []string{m.Envelope.From}, Decision: "delivery status notification for " + m.ID}
		if err := d.q.EnqueueID(ctx, id, env, bytes.NewReader(msg)); err != nil {
			return err
		}
		d.m.DSNs.Add(1)
		log.Info("queue_dsn_queued", "dsn_id", id, "recipients", len(idx))
		m.DSNs++
	}
	for _, i := range idx {
		m.Recipients[i].Notified = true
	}
	return d.q.Record(ctx, c)
}

// readHeader returns the header section of a message, up to and including
// the blank line, cut at maxDSNHeader.
func readHeader(r io.Reader) []byte {
	br := bufio.NewReader(io.LimitReader(r, maxDSNHeader))
	var out []byte
	for {
		line, err := br.ReadBytes('\n')
		out = append(out, line...)
		if err != nil || len(bytes.TrimRight(line, "\r\n")) == 0 {
			break
		}
	}
	return out
}

// buildDSN renders an RFC 3464 multipart/report (RFC 6522) for the
// recipients idx of m, with hdr as the text/rfc822-headers part.
func (d *Deliverer) buildDSN(m *queue.Message, idx []int, hdr []byte, id string) []byte {
	var rnd [12]byte
	_, _ = rand.Read(rnd[:]) // never fails (Go 1.24+)
	boundary := "dkimd-" + hex.EncodeToString(rnd[:])
	now := d.now()
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\r\n", args...) }
	w("From: Mail Delivery System <MAILER-DAEMON@%s>", d.helo)
	w("To: <%s>", m.Envelope.From)
	w("Subject: Undelivered Mail Returned to Sender")
	w("Date: %s", now.Format(time.RFC1123Z))
	w("Message-ID: <%s@%s>", id, d.helo)
	w("Auto-Submitted: auto-replied") // RFC 3834 §5
	w("MIME-Version: 1.0")
	w("Content-Type: %s", mime.FormatMediaType("multipart/report",
		map[string]string{"report-type": "delivery-status", "boundary": boundary}))
	w("")
	w("This is a MIME-encapsulated delivery status notification.")
	w("")
	w("--%s", boundary)
	w("Content-Type: text/plain; charset=utf-8")
	w("Content-Transfer-Encoding: 8bit")
	w("")
	w("This is the mail system at %s.", d.helo)
	w("")
	w("Your message could not be delivered to the following recipients:")
	w("")
	for _, i := range idx {
		r := m.Recipients[i]
		w("<%s>: %s", r.Addr, oneLine(r.Reply))
	}
	w("")
	w("--%s", boundary)
	w("Content-Type: message/delivery-status")
	w("")
	// Per-message fields, RFC 3464 §2.2.
	w("Reporting-MTA: dns; %s", d.helo)
	w("X-Dkimd-Queue-ID: %s", m.ID)
	w("Arrival-Date: %s", m.Queued.Format(time.RFC1123Z))
	for _, i := range idx {
		r := m.Recipients[i]
		// Per-recipient fields, RFC 3464 §2.3.
		w("")
		w("Final-Recipient: rfc822; %s", r.Addr)
		w("Action: failed")
		w("Status: %s", statusCode(r.Reply))
		if r.Remote != "" {
			w("Remote-MTA: dns; %s", r.Remote)
		}
		if isSMTPText(r.Reply) {
			w("Diagnostic-Code: smtp; %s", oneLine(r.Reply))
		} else {
			w("Diagnostic-Code: X-dkimd; %s", oneLine(r.Reply))
		}
		if !r.Last.IsZero() {
			w("Last-Attempt-Date: %s", r.Last.Format(time.RFC1123Z))
		}
	}
	w("")
	w("--%s", boundary)
	w("Content-Type: text/rfc822-headers")
	w("")
	b.Write(hdr)
	if len(hdr) > 0 && !bytes.HasSuffix(hdr, []byte("\n")) {
		b.WriteString("\r\n")
	}
	w("")
	w("--%s--", boundary)
	return b.Bytes()
}

func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 900 {
		s = s[:900]
	}
	return s
}

// isSMTPText reports whether reply starts with a three-digit SMTP code.
func isSMTPText(reply string) bool {
	return len(reply) >= 3 && reply[0] >= '2' && reply[0] <= '5' &&
		reply[1] >= '0' && reply[1] <= '9' && reply[2] >= '0' && reply[2] <= '9' &&
		(len(reply) == 3 || reply[3] == ' ')
}

// statusCode finds the enhanced status code (RFC 3463) in a reply such as
// "550 5.1.1 no such user" or "5.1.2 domain does not exist"; without one, a
// permanent failure is 5.0.0 and an expiry 4.4.7.
func statusCode(reply string) string {
	f := strings.Fields(reply)
	for i := 0; i < len(f) && i < 2; i++ {
		p := strings.Split(f[i], ".")
		if len(p) == 3 && len(p[0]) == 1 && (p[0] == "4" || p[0] == "5" || p[0] == "2") && allDigits(p[1]) && allDigits(p[2]) {
			if p[0] == "4" {
				// A temporary code on a recipient that bounced: it
				// expired (RFC 3463 §3.5, 4.4.7 delivery time expired
				// would be reported as failed 5.4.7).
				return "5." + p[1] + "." + p[2]
			}
			return f[i]
		}
	}
	if strings.HasPrefix(reply, "message expired") {
		return "5.4.7"
	}
	return "5.0.0"
}

func allDigits(s string) bool {
	if s == "" || len(s) > 3 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
