package web

import (
	"net/http"
	"time"

	"github.com/dkimd/dkimd/internal/queue"
)

// The queue routes are for admins (admin.ListQueue and the rest refuse
// anyone else with 403). A process that runs no queue answers 503
// unavailable: the route exists and the request is sound, but the queue
// is elsewhere.

// queuedSummary is one line of GET /queue. It is the API's own type, not
// queue.Summary, so that its JSON names stay fixed whatever the queue
// package calls its fields.
type queuedSummary struct {
	ID     string    `json:"id"`
	From   string    `json:"from"`
	Queued time.Time `json:"queued"`
	Size   int64     `json:"size"`
	// Recipients is the total, Open those not yet delivered or bounced.
	Recipients int `json:"recipients"`
	Open       int `json:"open"`
	// Next is when the next attempt is due; absent means now.
	Next time.Time `json:"next,omitzero"`
}

// queuedMessage is GET /queue/{id}: the envelope and each recipient's
// delivery state, never the body.
type queuedMessage struct {
	ID         string            `json:"id"`
	Envelope   queue.Envelope    `json:"envelope"`
	Queued     time.Time         `json:"queued"`
	Size       int64             `json:"size"`
	Recipients []queue.Recipient `json:"recipients"`
}

func summaries(ss []queue.Summary) []queuedSummary {
	out := make([]queuedSummary, 0, len(ss))
	for _, s := range ss {
		out = append(out, queuedSummary{ID: s.ID, From: s.From, Queued: s.Queued, Size: s.Size,
			Recipients: s.Recipients, Open: s.Open, Next: s.Next})
	}
	return out
}

func messageOf(m queue.Message) queuedMessage {
	rs := m.Recipients
	if rs == nil {
		rs = []queue.Recipient{}
	}
	return queuedMessage{ID: m.ID, Envelope: m.Envelope, Queued: m.Queued, Size: m.Size, Recipients: rs}
}

func (a *api) listQueue(c *call) (int, any, error) {
	ss, err := a.admin.ListQueue(c.ctx, c.actor)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, summaries(ss), nil
}

func (a *api) getQueued(c *call) (int, any, error) {
	m, err := a.admin.GetQueued(c.ctx, c.actor, c.r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, messageOf(m), nil
}

// retryQueued makes the message's deferred recipients due now; the
// deliverer picks it up at once.
func (a *api) retryQueued(c *call) (int, any, error) {
	if err := a.admin.RetryQueued(c.ctx, c.actor, c.r.PathValue("id")); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

// removeQueued drops the message without a bounce.
func (a *api) removeQueued(c *call) (int, any, error) {
	if err := a.admin.RemoveQueued(c.ctx, c.actor, c.r.PathValue("id")); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}
