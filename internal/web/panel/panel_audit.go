package panel

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/dkimd/dkimd/internal/store"
	"github.com/dkimd/dkimd/internal/web"
)

// auditActions are offered in the audit log's action filter: the actions
// admin writes.
var auditActions = []string{
	"account.add", "account.login", "account.login_failed", "account.logout", "account.password", "account.remove", "account.update",
	"domain.add", "domain.remove", "domain.update",
	"key.create", "key.rotate", "key.state",
	"queue.remove", "queue.retry",
	"token.add", "token.remove",
	"user.add", "user.remove", "user.update",
}

// auditPageSize is how many entries one page of the audit log shows.
const auditPageSize = 50

type auditView struct {
	Domains []store.Domain
	// All is offered to admins: every domain, and entries of none.
	All     bool
	Filter  auditFilterForm
	Actions []string
	Entries []store.AuditEntry
	// Older links to the next page back, when there may be one.
	Older  string
	Errors formErrors
}

type auditFilterForm struct {
	Domain, Actor, Action string
}

// auditPage shows the audit log, newest first, filtered by domain, actor
// and action, fifty entries a page. A domain admin sees one of its domains
// at a time (admin.ListAudit).
func (q *preq) auditPage() error {
	qs := q.r.URL.Query()
	ds, err := q.p.admin.ListDomains(q.ctx, q.actor)
	if err != nil {
		return err
	}
	av := auditView{Domains: ds, All: q.actor.IsAdmin(), Actions: auditActions,
		Filter: auditFilterForm{Domain: qs.Get("domain"), Actor: strings.TrimSpace(qs.Get("actor")), Action: qs.Get("action")}}
	if av.Filter.Domain == "" && !av.All && len(ds) > 0 {
		av.Filter.Domain = ds[0].Name
	}
	f := store.AuditFilter{Domain: av.Filter.Domain, Actor: strings.ToLower(av.Filter.Actor), Action: av.Filter.Action, Limit: auditPageSize}
	if v := qs.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return web.BadRequest("before", "The before parameter must be an audit entry ID.")
		}
		f.Before = n
	}
	var d *store.Domain
	for i := range ds {
		if ds[i].Name == av.Filter.Domain {
			d = &ds[i]
		}
	}
	status := http.StatusOK
	av.Entries, err = q.p.admin.ListAudit(q.ctx, q.actor, f)
	if errs, ok := formProblem(err, map[string]string{"domain": "domain"}); ok {
		status, av.Errors = statusOf(err), errs
	} else if err != nil {
		return err
	}
	if n := len(av.Entries); n == auditPageSize {
		v := url.Values{}
		for k, x := range map[string]string{"domain": av.Filter.Domain, "actor": av.Filter.Actor, "action": av.Filter.Action} {
			if x != "" {
				v.Set(k, x)
			}
		}
		v.Set("before", strconv.FormatInt(av.Entries[n-1].ID, 10))
		av.Older = "/audit?" + v.Encode()
	}
	v := &view{Title: "Audit log", Nav: "audit", Data: av}
	if d != nil && qs.Get("tab") == "1" {
		v.Domain, v.Tab, v.Nav = d, "audit", "domains"
	}
	q.render(status, "audit", v)
	return nil
}
