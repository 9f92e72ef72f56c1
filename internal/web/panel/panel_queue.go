package panel

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/queue"
	"github.com/dkimd/dkimd/internal/web"
)

// The queue pages are for admins: a queued message may come from any
// tenant's user, so admin.ListQueue and the rest refuse a domain admin
// with 403, and the top navigation links them for admins only.

type queueView struct {
	Messages []queue.Summary
	// NoQueue says this process runs no queue (admin.ErrNoQueue).
	NoQueue bool
}

// queuePage lists the queued messages, oldest first.
func (q *preq) queuePage() error {
	ss, err := q.p.admin.ListQueue(q.ctx, q.actor)
	qv := queueView{Messages: ss}
	switch {
	case errors.Is(err, admin.ErrNoQueue):
		qv.NoQueue = true
	case err != nil:
		return err
	}
	q.render(http.StatusOK, "queue", &view{Title: "Mail queue", Nav: "queue",
		Notice: notices[q.r.URL.Query().Get("done")], Data: qv})
	return nil
}

// queueActionInfo is what can be done to a queued message, each behind a
// confirmation page.
type queueActionInfo struct {
	Name    string
	Title   string
	Button  string
	Explain string
	Danger  bool
}

func queueActions() []queueActionInfo {
	return []queueActionInfo{
		{Name: "retry", Title: "Retry this message now", Button: "Retry now",
			Explain: "Its deferred recipients become due at once: the next delivery attempt starts now instead of at its scheduled time. Recipients already delivered or bounced are left alone."},
		{Name: "remove", Title: "Remove this message", Button: "Remove from the queue", Danger: true,
			Explain: "The message is deleted from the queue: its open recipients never get it, and the sender gets no bounce. It cannot be undone."},
	}
}

func queueAction(name string) (queueActionInfo, bool) {
	for _, a := range queueActions() {
		if a.Name == name {
			return a, true
		}
	}
	return queueActionInfo{}, false
}

type queuedView struct {
	Message queue.Message
	// Open counts the recipients not yet delivered or bounced.
	Open    int
	Actions []queueActionInfo
	// Action is set on a confirmation page.
	Action *queueActionInfo
}

func (q *preq) queued() (queuedView, error) {
	m, err := q.p.admin.GetQueued(q.ctx, q.actor, q.r.PathValue("id"))
	if err != nil {
		return queuedView{}, err
	}
	qv := queuedView{Message: m, Actions: queueActions()}
	for _, r := range m.Recipients {
		if !r.Status.Final() {
			qv.Open++
		}
	}
	return qv, nil
}

// queuedPage shows one message: envelope, and each recipient's state and
// last reply.
func (q *preq) queuedPage() error {
	qv, err := q.queued()
	if err != nil {
		return err
	}
	q.render(http.StatusOK, "queued", &view{Title: "Queued message", Nav: "queue",
		Crumbs: []crumb{{Label: "Mail queue", Href: "/queue"}, {Label: q.r.PathValue("id")}},
		Notice: notices[q.r.URL.Query().Get("done")], Data: qv})
	return nil
}

// queueConfirmPage asks before a retry or a removal.
func (q *preq) queueConfirmPage() error {
	a, ok := queueAction(q.r.PathValue("action"))
	if !ok {
		return web.NewError(http.StatusNotFound, web.CodeNotFound, "No such page.", nil)
	}
	qv, err := q.queued()
	if err != nil {
		return err
	}
	qv.Action = &a
	q.render(http.StatusOK, "queueconfirm", &view{Title: a.Title, Nav: "queue", Data: qv})
	return nil
}

// queueAction does what the confirmation page asked.
func (q *preq) queueAction() error {
	a, ok := queueAction(q.r.PathValue("action"))
	if !ok {
		return web.NewError(http.StatusNotFound, web.CodeNotFound, "No such page.", nil)
	}
	id := q.r.PathValue("id")
	switch a.Name {
	case "retry":
		if err := q.p.admin.RetryQueued(q.ctx, q.actor, id); err != nil {
			return err
		}
		q.redirect("/queue/" + url.PathEscape(id) + "?done=queue_retried")
	case "remove":
		if err := q.p.admin.RemoveQueued(q.ctx, q.actor, id); err != nil {
			return err
		}
		q.redirect("/queue?done=queue_removed")
	}
	return nil
}
