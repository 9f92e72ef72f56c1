package web

import (
	"net/http"

	"github.com/dkimd/dkimd/internal/queue"
)

// The queue routes are for admins (admin.ListQueue and the rest refuse
// anyone else with 403). A process that runs no queue answers 503
// unavailable: the route exists and the request is sound, but the queue
// is elsewhere.

func (a *api) listQueue(c *call) (int, any, error) {
	ss, err := a.admin.ListQueue(c.ctx, c.actor)
	if err != nil {
		return 0, nil, err
	}
	if ss == nil {
		ss = []queue.Summary{} // [] in JSON, not null
	}
	return http.StatusOK, ss, nil
}

func (a *api) getQueued(c *call) (int, any, error) {
	m, err := a.admin.GetQueued(c.ctx, c.actor, c.r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, m, nil
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
