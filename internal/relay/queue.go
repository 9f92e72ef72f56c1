package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/dkimd/dkimd/internal/policy"
	"github.com/dkimd/dkimd/internal/queue"
)

// Queue stores accepted messages durably.
type Queue interface {
	// Enqueue stores the message read from body (DKIM-Signature fields
	// already on top) with its transaction, and returns its id only once both
	// are on stable storage. An error wrapping ErrRefused is permanent
	// (the client gets 554); any other error is temporary (451).
	Enqueue(ctx context.Context, tx Transaction, body io.Reader) (id string, err error)
}

// ErrRefused is what a Queue wraps when it will never take the message.
var ErrRefused = errors.New("relay: message refused by the queue")

// Transaction is one SMTP mail transaction (RFC 5321 §3.3) the relay
// accepted: its envelope (MAIL FROM, RCPT TO) and what the relay knows of
// it, the user and the signing decision above all. The queue keeps what it
// needs of it as a queue.Envelope (see QueueOf).
type Transaction struct {
	// From is the reverse-path (MAIL FROM), "" for the null sender.
	From string `json:"from"`
	// To are the forward-paths (RCPT TO), at least one.
	To []string `json:"to"`
	// User is the outgoing user that sent the message.
	User string `json:"user"`
	// Identity is, for a re-authenticating user, the sender named in its
	// identity header; empty otherwise.
	Identity string `json:"identity,omitempty"`
	// ClientAddr is the client's IP address.
	ClientAddr string `json:"client_addr"`
	// MsgID is the relay's id for the transaction, as in its log lines and
	// the Received field.
	MsgID string `json:"msg_id"`
	// Decision is the signing decision: which keys and why, or why not.
	Decision policy.Decision `json:"decision"`
}

// DecisionText gives the decision in a few words for a queue listing:
// "signed d=example.com s=rsa1,ed1 (from_domain)" or "not signed
// (reauth_user) identity=alice@example.com".
func (e Transaction) DecisionText() string {
	var b strings.Builder
	d := e.Decision
	if d.Signs() {
		sels := make([]string, len(d.Sign))
		for i, s := range d.Sign {
			sels[i] = s.Selector
		}
		fmt.Fprintf(&b, "signed d=%s s=%s (%s)", d.Domain, strings.Join(sels, ","), d.Reason)
	} else {
		fmt.Fprintf(&b, "not signed (%s)", d.Reason)
	}
	if e.Identity != "" {
		fmt.Fprintf(&b, " identity=%s", e.Identity)
	}
	return b.String()
}

// QueueOf adapts the queue package's Queue to the relay's: the decision and
// the identity go into its Decision text.
func QueueOf(q queue.Queue) Queue { return queueAdapter{q} }

type queueAdapter struct{ q queue.Queue }

func (a queueAdapter) Enqueue(ctx context.Context, tx Transaction, body io.Reader) (string, error) {
	id, err := a.q.Enqueue(ctx, queue.Envelope{
		From: tx.From, To: tx.To, User: tx.User,
		Decision: tx.DecisionText(), ClientAddr: tx.ClientAddr,
	}, body)
	if errors.Is(err, queue.ErrInvalid) {
		return "", fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return id, err
}

// spaceReporter is a queue that can tell how much disk it has left.
type spaceReporter interface {
	FreeSpace() (int64, error)
}

// FreeSpace reports the adapted queue's free disk space, when it knows.
func (a queueAdapter) FreeSpace() (int64, error) {
	if r, ok := a.q.(spaceReporter); ok {
		return r.FreeSpace()
	}
	return -1, nil
}

// checkSpace refuses a new transaction (452 4.3.1) while the queue's disk
// has less than 1.5 times the largest message left, so an accepted message
// always fits. A queue that cannot tell (-1) or an error reading it does
// not block mail; the enqueue itself still fails safely with 451.
func (s *Server) checkSpace() error {
	r, ok := s.opts.Queue.(spaceReporter)
	if !ok {
		return nil
	}
	free, err := r.FreeSpace()
	if err != nil || free < 0 {
		return nil
	}
	if need := s.opts.MaxMessageBytes * 3 / 2; free < need {
		return fmt.Errorf("%w: %d bytes free, %d needed", errDiskFull, free, need)
	}
	return nil
}
