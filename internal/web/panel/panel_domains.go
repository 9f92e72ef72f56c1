package panel

import (
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/store"
	"github.com/dkimd/dkimd/internal/web"
)

type domainRow struct {
	Domain                  store.Domain
	Active, Pending, Others int
	Users                   int
	// Status is the domain's one status, as its own pages show it.
	Status lifecycle.DomainStatus
}

type domainsView struct {
	Rows []domainRow
	// Sort is "status" (worst first) or "" (by name); Show is "problems"
	// (warnings and failures only) or "" (every domain).
	Sort, Show string
	// Total and Problems count the domains before the filter.
	Total, Problems int
	// Form and Errors are the add-domain form (admins only).
	Form   struct{ Name string }
	Errors formErrors
}

// domainsPage lists the domains the account manages, with an add form for
// admins.
func (q *preq) domainsPage() error {
	return q.showDomains(http.StatusOK, domainsView{}, q.r.URL.Query().Get("done"))
}

func (q *preq) showDomains(status int, dv domainsView, done string) error {
	ds, err := q.p.admin.ListDomains(q.ctx, q.actor)
	if err != nil {
		return err
	}
	ks, err := q.p.admin.ListKeys(q.ctx, q.actor, "")
	if err != nil {
		return err
	}
	us, err := q.p.admin.ListUsers(q.ctx, q.actor, "")
	if err != nil {
		return err
	}
	rows := map[string]*domainRow{}
	for _, d := range ds {
		dv.Rows = append(dv.Rows, domainRow{Domain: d})
	}
	for i := range dv.Rows {
		rows[dv.Rows[i].Domain.Name] = &dv.Rows[i]
	}
	for _, k := range ks {
		if r := rows[k.Domain]; r != nil {
			switch k.State {
			case store.KeyActive:
				r.Active++
			case store.KeyPending:
				r.Pending++
			default:
				r.Others++
			}
		}
	}
	for _, u := range us {
		if r := rows[u.Domain]; r != nil {
			r.Users++
		}
	}
	for i := range dv.Rows {
		r := &dv.Rows[i]
		if r.Status, err = q.p.admin.DomainStatus(q.ctx, q.actor, r.Domain.Name); err != nil {
			return err
		}
		if r.Status.Level.Rank() >= lifecycle.LevelWarn.Rank() {
			dv.Problems++
		}
	}
	dv.Total = len(dv.Rows)
	qs := q.r.URL.Query()
	if qs.Get("show") == "problems" {
		dv.Show = "problems"
		dv.Rows = slices.DeleteFunc(dv.Rows, func(r domainRow) bool { return r.Status.Level.Rank() < lifecycle.LevelWarn.Rank() })
	}
	if qs.Get("sort") == "status" {
		dv.Sort = "status"
		slices.SortStableFunc(dv.Rows, func(a, b domainRow) int { return b.Status.Level.Rank() - a.Status.Level.Rank() })
	}
	q.render(status, "domains", &view{Title: "Domains", Nav: "domains", Notice: notices[done], Data: dv})
	return nil
}

// addDomain adds a domain (admins only: admin.AddDomain says so).
func (q *preq) addDomain() error {
	var dv domainsView
	dv.Form.Name = q.r.PostFormValue("name")
	d, err := q.p.admin.AddDomain(q.ctx, q.actor, store.Domain{Name: dv.Form.Name, AutoActivate: q.r.PostFormValue("auto_activate") == "on"})
	if errs, ok := formProblem(err, map[string]string{"name": "name", "domain": "name"}); ok {
		if web.Classify(err).Code == web.CodeExists {
			errs = formErrors{"name": "That domain is already in dkimd."}
		}
		dv.Errors = errs
		return q.showDomains(statusOf(err), dv, "")
	}
	if err != nil {
		return err
	}
	q.redirect(domainPath(d.Name, "outgoing", "dkim") + "?done=domain_added")
	return nil
}

// domainHome is the domain's first page: Outgoing > DKIM.
func (q *preq) domainHome() error {
	d, err := q.domain()
	if err != nil {
		return err
	}
	q.redirect(domainPath(d.Name, "outgoing", "dkim"))
	return nil
}

// domainSettings saves the domain's settings: whether pending keys start
// signing by themselves once seen in DNS, and the oversigned fields. A form
// without the oversign field (an older page) leaves that as it is; a
// refused value is set first, so that nothing changes.
func (q *preq) domainSettings() error {
	d, err := q.domain()
	if err != nil {
		return err
	}
	oversign := q.r.PostFormValue("oversign") // parses the form
	if _, ok := q.r.PostForm["oversign"]; ok {
		if _, err := q.p.admin.SetOversign(q.ctx, q.actor, d.Name, oversign); err != nil {
			return err
		}
	}
	if _, err := q.p.admin.SetAutoActivate(q.ctx, q.actor, d.Name, q.r.PostFormValue("auto_activate") == "on"); err != nil {
		return err
	}
	q.redirect(domainPath(d.Name, "keys") + "?done=settings")
	return nil
}

// formProblem sorts an error for a form: a problem with what was typed
// (a field, a taken name, a state that forbids it) is shown on the form,
// beside the field when one is named, and reported true; anything else is
// for the error page. fields maps store field names to form fields; a
// field not in it is shown at the top of the form.
func formProblem(err error, fields map[string]string) (formErrors, bool) {
	if err == nil {
		return nil, false
	}
	ae := web.Classify(err)
	switch ae.Status {
	case http.StatusUnprocessableEntity, http.StatusConflict, http.StatusForbidden:
	default:
		return nil, false
	}
	field := ae.Field
	// "networks[2]" is the networks field.
	for i, c := range field {
		if c == '[' {
			field = field[:i]
			break
		}
	}
	if f, ok := fields[field]; ok && field != "" {
		return formErrors{f: ae.Message}, true
	}
	return formErrors{"": ae.Message}, true
}

// statusOf gives the HTTP status classify maps err to.
func statusOf(err error) int { return web.Classify(err).Status }

// sentence starts a message with a capital letter, for a page.
func sentence(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// domainPublishing saves how the domain's records reach DNS and how often
// its key rotates. An empty secret keeps the sealed one.
func (q *preq) domainPublishing() error {
	d, err := q.domain()
	if err != nil {
		return err
	}
	req := admin.PublishRequest{
		Mode: store.PublishMode(q.r.PostFormValue("publish")), Zone: q.r.PostFormValue("zone"),
		UpdateServer: q.r.PostFormValue("update_server"), TSIGName: q.r.PostFormValue("tsig_name"),
		TSIGSecret: []byte(q.r.PostFormValue("tsig_secret")),
	}
	if v := q.r.PostFormValue("rotate_every_days"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return store.Invalid("rotate_every_days", "want a number of days")
		}
		req.RotateEvery = time.Duration(n) * 24 * time.Hour
	}
	if _, err := q.p.admin.SetPublishing(q.ctx, q.actor, d.Name, req); err != nil {
		return err
	}
	q.redirect(domainPath(d.Name, "keys") + "?done=publishing")
	return nil
}
