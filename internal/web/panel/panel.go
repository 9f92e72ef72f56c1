package panel

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/store"
	"github.com/dkimd/dkimd/internal/web"
)

// csrfField is the form field every panel form carries the CSRF token in.
const csrfField = "csrf"

// maxFormBytes bounds a panel form: the largest (a user with many
// networks) is a few kilobytes.
const maxFormBytes = 64 << 10

// panel holds what every page needs.
type panel struct {
	admin  *admin.Service
	log    *slog.Logger
	now    func() time.Time
	logins *web.Logins
	tmpl   *templates
	assets *assets
}

// New gives the handler of the control panel: server-rendered pages for
// people, mounted at "/" beside the API (web.NewAPI) under web.APIPrefix.
// It shares the API's session cookie, so one login serves both. Every
// form carries the session's CSRF token; every change goes through
// Options.Admin, which checks the logged-in account's rights. Failed
// logins count against Options.Logins when set (NewSite sets the API's),
// else against a count of the panel's own.
func New(o web.Options) http.Handler {
	o = o.WithDefaults()
	l := o.Logins
	if l == nil {
		l = web.NewLogins(o)
	}
	return newPanel(o, l)
}

// NewSite gives dkimd's HTTP side as serve mounts it: the JSON API under
// web.APIPrefix (web.NewAPI) and the control panel at "/" (New). The two
// count failed logins together (one web.Logins), so a guess at either
// login counts against the same LoginLimits; the two mounted apart, each
// with a counter of its own, would each allow the limits.
func NewSite(o web.Options) http.Handler {
	o = o.WithDefaults()
	if o.Logins == nil {
		o.Logins = web.NewLogins(o)
	}
	mux := http.NewServeMux()
	mux.Handle(web.APIPrefix+"/", web.NewAPI(o))
	mux.Handle("/", New(o))
	return mux
}

// newPanel takes o with its defaults filled in, and its logins.
func newPanel(o web.Options, l *web.Logins) http.Handler {
	p := &panel{
		admin:  o.Admin,
		log:    o.Log,
		now:    o.Now,
		logins: l,
		tmpl:   loadTemplates(),
		assets: loadAssets(),
	}
	mux := http.NewServeMux()
	pub := func(pattern string, h func(*preq) error) { mux.Handle(pattern, p.handler(h, false)) }
	auth := func(pattern string, h func(*preq) error) { mux.Handle(pattern, p.handler(h, true)) }

	mux.Handle("GET /static/{file}", http.HandlerFunc(p.assets.serve))
	pub("GET /login", (*preq).loginPage)
	pub("POST /login", (*preq).loginSubmit)
	pub("POST /logout", (*preq).logout)

	auth("GET /{$}", (*preq).domainsPage)
	auth("POST /domains", (*preq).addDomain)
	auth("GET /domains/{domain}", (*preq).domainHome)
	auth("GET /domains/{domain}/outgoing/dkim", (*preq).dkimPage)
	auth("POST /domains/{domain}/outgoing/dkim", (*preq).generateKeys)
	auth("GET /domains/{domain}/outgoing/users", (*preq).usersPage)
	auth("GET /domains/{domain}/outgoing/users/new", (*preq).newUserPage)
	auth("POST /domains/{domain}/outgoing/users/new", (*preq).addUser)
	auth("GET /domains/{domain}/outgoing/users/{name}", (*preq).editUserPage)
	auth("POST /domains/{domain}/outgoing/users/{name}", (*preq).updateUser)
	auth("GET /domains/{domain}/keys", (*preq).keysPage)
	auth("POST /domains/{domain}/settings", (*preq).domainSettings)
	auth("POST /domains/{domain}/publishing", (*preq).domainPublishing)
	auth("GET /domains/{domain}/keys/{selector}", (*preq).keyPage)
	auth("POST /domains/{domain}/keys/{selector}/check", (*preq).checkKey)
	auth("GET /domains/{domain}/keys/{selector}/{action}", (*preq).confirmPage)
	auth("POST /domains/{domain}/keys/{selector}/{action}", (*preq).keyAction)
	auth("GET /queue", (*preq).queuePage)
	auth("GET /queue/{id}", (*preq).queuedPage)
	auth("GET /queue/{id}/{action}", (*preq).queueConfirmPage)
	auth("POST /queue/{id}/{action}", (*preq).queueAction)
	auth("GET /audit", (*preq).auditPage)
	auth("GET /accounts", (*preq).accountsPage)
	auth("POST /accounts", (*preq).addAccount)
	auth("GET /accounts/{name}", (*preq).accountPage)
	auth("POST /accounts/{name}/settings", (*preq).accountSettings)
	auth("GET /accounts/{name}/remove", (*preq).removeAccountPage)
	auth("POST /accounts/{name}/remove", (*preq).removeAccount)
	auth("GET /domains/{domain}/outgoing/users/{name}/remove", (*preq).removeUserPage)
	auth("POST /domains/{domain}/outgoing/users/{name}/remove", (*preq).removeUser)
	auth("GET /domains/{domain}/remove", (*preq).removeDomainPage)
	auth("POST /domains/{domain}/remove", (*preq).removeDomain)
	auth("POST /accounts/{name}/password", (*preq).changePassword)
	auth("POST /accounts/{name}/tokens/{token}/revoke", (*preq).revokeToken)
	pub("/", func(q *preq) error {
		return web.NewError(http.StatusNotFound, web.CodeNotFound, "No such page.", nil)
	})
	return mux
}

// preq is one panel request on its way through a handler.
type preq struct {
	p   *panel
	w   http.ResponseWriter
	r   *http.Request
	ctx context.Context
	log *slog.Logger
	id  string
	// remote is the client's address, for the audit log and throttling.
	remote string
	// actor, account and session are set once logged in; csrf is the
	// session's CSRF token for the forms of the page.
	actor   admin.Actor
	account *store.Account
	token   store.Token
	session string
	csrf    string
	// status is what was answered, for the log line.
	status int
}

// handler runs one page: security headers, the session, the CSRF token of
// a form, the page, and the request's one log line.
func (p *panel) handler(h func(*preq) error, needLogin bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now() // for the duration only
		q := &preq{p: p, w: w, r: r, ctx: r.Context(), id: web.NewRequestID(), remote: web.RemoteIP(r)}
		q.log = p.log.With("request_id", q.id)
		hd := w.Header()
		hd.Set("X-Request-ID", q.id)
		hd.Set("Cache-Control", "no-store")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		// Every script and style comes from /static: an injected
		// <script> or inline handler does not run.
		hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")

		err := q.run(h, needLogin)
		if err != nil {
			q.fail(err)
		}
		attrs := []any{"method", r.Method, "path", r.URL.Path, "remote", q.remote, "status", q.status,
			"duration_ms", time.Since(start).Milliseconds()}
		switch {
		case err != nil && q.status >= 500:
			q.log.Error("panel_request", append(attrs, "err", err)...)
		case err != nil:
			q.log.Info("panel_request", append(attrs, "err", err)...)
		default:
			q.log.Info("panel_request", attrs...)
		}
	})
}

func (q *preq) run(h func(*preq) error, needLogin bool) error {
	if web.UnsafeMethod(q.r.Method) {
		q.r.Body = http.MaxBytesReader(q.w, q.r.Body, maxFormBytes)
		if err := q.r.ParseForm(); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return err // classify: 413
			}
			return web.NewError(http.StatusBadRequest, web.CodeBadRequest, "The form could not be read.", err)
		}
	}
	if err := q.authenticate(); err != nil {
		return err
	}
	if needLogin && q.account == nil {
		return q.toLogin()
	}
	if q.account != nil && web.UnsafeMethod(q.r.Method) && q.r.URL.Path != "/logout" && !q.validCSRF() {
		return errForged
	}
	return h(q)
}

// errForged answers a form without the session's CSRF token: posted from
// another site, or from a page older than the session.
var errForged = web.NewError(http.StatusForbidden, web.CodeForbidden, "This form was not sent from a page of this session (it may be from another site, or older than your login). Nothing was changed: reload the page and try again.", nil)

// authenticate finds the session behind the cookie, if any. Bearer tokens
// are for the API: the panel knows only its cookie.
func (q *preq) authenticate() error {
	ck, err := q.r.Cookie(web.SessionCookie)
	if err != nil || ck.Value == "" {
		return nil
	}
	acc, tok, err := q.p.admin.Authenticate(q.ctx, ck.Value)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil // unknown or expired: as if logged out
	case err != nil:
		return err
	case !acc.Enabled || tok.Kind != store.TokenSession:
		return nil
	}
	q.account, q.token, q.session = &acc, tok, ck.Value
	q.csrf = web.CSRFToken(ck.Value)
	q.actor = admin.Actor{Name: acc.Name, Account: q.account, Remote: q.remote, Session: tok.ID}
	q.log = q.log.With("account", acc.Name)
	return nil
}

func (q *preq) validCSRF() bool {
	got := q.r.PostFormValue(csrfField)
	if got == "" {
		got = q.r.Header.Get(web.CSRFHeader)
	}
	return web.ValidCSRF(q.session, got)
}

// toLogin sends someone without a live session to the login page, and
// back here afterwards when this was a page to see.
func (q *preq) toLogin() error {
	v := url.Values{}
	if _, err := q.r.Cookie(web.SessionCookie); err == nil {
		// The cookie is there but its session is not: it expired or was
		// ended elsewhere.
		http.SetCookie(q.w, web.ClearSessionCookie(q.r))
		v.Set("done", "expired")
	}
	if q.r.Method == http.MethodGet {
		v.Set("next", q.r.URL.RequestURI())
	}
	target := "/login"
	if len(v) > 0 {
		target += "?" + v.Encode()
	}
	q.redirect(target)
	return nil
}

// redirect answers 303 See Other: after a POST, the browser GETs target.
func (q *preq) redirect(target string) {
	q.status = http.StatusSeeOther
	http.Redirect(q.w, q.r, target, http.StatusSeeOther)
}

// fail shows the error page for err: the one mapper (classify) the API
// uses, so a page and an API call answer the same status for the same
// failure. The message of an internal error stays in the log.
func (q *preq) fail(err error) {
	ae := web.Classify(err)
	title := map[int]string{
		http.StatusBadRequest:          "That request could not be read",
		http.StatusForbidden:           "Not allowed",
		http.StatusNotFound:            "Not found",
		http.StatusConflict:            "That cannot be done now",
		http.StatusUnprocessableEntity: "That value is not accepted",
		http.StatusTooManyRequests:     "Too many attempts",
	}[ae.Status]
	msg := ae.Message
	switch {
	case ae.Status == http.StatusNotFound:
		// Not one word about what was asked for: a domain admin must not
		// learn whether another tenant's domain exists.
		msg = "There is no such page, or it is not one you may see."
	case ae.Status == http.StatusServiceUnavailable:
		title = "Not available here"
	case ae.Status >= 500:
		title, msg = "Something went wrong", "The server could not do this. The server log has the details under request "+q.id+"."
	}
	if title == "" {
		title = http.StatusText(ae.Status)
	}
	q.render(ae.Status, "error", &view{Title: title, Data: errorView{Status: ae.Status, Message: msg}})
}

type errorView struct {
	Status  int
	Message string
}

// domain gives the domain of the path, if the account manages it; else
// a not-found error (admin.GetDomain answers the same for both).
func (q *preq) domain() (store.Domain, error) {
	return q.p.admin.GetDomain(q.ctx, q.actor, q.r.PathValue("domain"))
}

// safeNext keeps a post-login target on this site: a path, not "//host"
// or "/\host", which browsers read as another site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	if u, err := url.Parse(next); err != nil || u.Host != "" || u.Scheme != "" {
		return "/"
	}
	return next
}

// domainPath gives the panel path of a domain's page.
func domainPath(domain string, rest ...string) string {
	p := "/domains/" + url.PathEscape(domain)
	for _, r := range rest {
		p += "/" + url.PathEscape(r)
	}
	return p
}
