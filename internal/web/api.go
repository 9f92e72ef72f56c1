package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/store"
)

// APIPrefix is where the JSON API lives.
const APIPrefix = "/api/v1"

// DefaultSessionTTL is how long a panel login lasts when Options.SessionTTL
// is zero.
const DefaultSessionTTL = 12 * time.Hour

// Options configure NewAPI, NewControl and the control panel (package
// panel). Admin is required; the zero value of every other field is
// usable.
type Options struct {
	// Admin runs every operation and checks the caller's rights.
	Admin *admin.Service
	// Log receives one line per request; nil discards.
	Log *slog.Logger
	// Now is the clock for sessions and login throttling; nil means
	// time.Now.
	Now func() time.Time
	// SessionTTL is how long a login session lasts; zero means
	// DefaultSessionTTL.
	SessionTTL time.Duration
	// LoginLimits bound password guessing; the zero value means
	// DefaultLoginLimits.
	LoginLimits LoginLimits
	// LoginThrottle, when set, replaces the throttle in memory under
	// LoginLimits: one shared by every node of a cluster.
	LoginThrottle LoginThrottle
	// Logins, when set, is the login counter the handler shares with
	// another (NewLogins): serve gives the API and the panel the same, so
	// alternating between their logins gains no guesses. Nil gives the
	// handler a counter of its own.
	Logins *Logins
}

// WithDefaults gives o with the documented zero values filled in.
func (o Options) WithDefaults() Options {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = DefaultSessionTTL
	}
	return o
}

// api holds what every handler needs.
type api struct {
	admin  *admin.Service
	log    *slog.Logger
	logins *Logins
	// local, set by NewControl, makes every authenticated route act as
	// admin.CLI() without credentials.
	local bool
}

// access says who may call a route.
type access int

const (
	// public routes need no credentials (login, the OpenAPI document).
	public access = iota
	// authed routes need a bearer token or a session cookie.
	authed
)

// route is one entry of the API: kept as data so the OpenAPI test can
// check the document against exactly what is served.
type route struct {
	method string
	// path is the http.ServeMux pattern path, including APIPrefix.
	path   string
	access access
	// handle does the operation and gives the status and the value to
	// send as JSON (nil for none), or an error for classify to map.
	handle func(*api, *call) (int, any, error)
}

// routes lists every operation of the API.
func routes() []route {
	return []route{
		{"GET", "/api/v1/openapi.json", public, (*api).openAPI},
		{"POST", "/api/v1/login", public, (*api).login},
		{"POST", "/api/v1/logout", public, (*api).logout},
		{"GET", "/api/v1/whoami", authed, (*api).whoami},

		{"GET", "/api/v1/domains", authed, (*api).listDomains},
		{"POST", "/api/v1/domains", authed, (*api).addDomain},
		{"GET", "/api/v1/domains/{domain}", authed, (*api).getDomain},
		{"PATCH", "/api/v1/domains/{domain}", authed, (*api).updateDomain},
		{"DELETE", "/api/v1/domains/{domain}", authed, (*api).removeDomain},
		{"PUT", "/api/v1/domains/{domain}/publishing", authed, (*api).setPublishing},
		{"GET", "/api/v1/domains/{domain}/delegation", authed, (*api).delegation},

		{"GET", "/api/v1/domains/{domain}/keys", authed, (*api).listKeys},
		{"POST", "/api/v1/domains/{domain}/keys", authed, (*api).generateKey},
		// status and rotate shadow a key of that selector for GET and
		// POST on .../keys/{selector} alone; its other paths still serve it.
		{"GET", "/api/v1/domains/{domain}/keys/status", authed, (*api).keyStatus},
		{"POST", "/api/v1/domains/{domain}/keys/rotate", authed, (*api).rotateKey},
		{"GET", "/api/v1/domains/{domain}/keys/{selector}", authed, (*api).getKey},
		{"DELETE", "/api/v1/domains/{domain}/keys/{selector}", authed, (*api).deleteKey},
		{"GET", "/api/v1/domains/{domain}/keys/{selector}/record", authed, (*api).keyRecord},
		{"POST", "/api/v1/domains/{domain}/keys/{selector}/state", authed, (*api).setKeyState},
		{"GET", "/api/v1/domains/{domain}/keys/{selector}/checks", authed, (*api).keyChecks},
		{"POST", "/api/v1/domains/{domain}/keys/{selector}/check", authed, (*api).checkKey},

		{"GET", "/api/v1/domains/{domain}/users", authed, (*api).listUsers},
		{"POST", "/api/v1/domains/{domain}/users", authed, (*api).addUser},
		{"GET", "/api/v1/users/{name}", authed, (*api).getUser},
		{"PATCH", "/api/v1/users/{name}", authed, (*api).updateUser},
		{"DELETE", "/api/v1/users/{name}", authed, (*api).removeUser},

		{"GET", "/api/v1/accounts", authed, (*api).listAccounts},
		{"POST", "/api/v1/accounts", authed, (*api).addAccount},
		{"PATCH", "/api/v1/accounts/{name}", authed, (*api).updateAccount},
		{"DELETE", "/api/v1/accounts/{name}", authed, (*api).removeAccount},
		{"PUT", "/api/v1/accounts/{name}/password", authed, (*api).setPassword},
		{"GET", "/api/v1/accounts/{name}/tokens", authed, (*api).listTokens},
		{"POST", "/api/v1/accounts/{name}/tokens", authed, (*api).newToken},
		{"DELETE", "/api/v1/accounts/{name}/tokens/{token}", authed, (*api).removeToken},

		{"GET", "/api/v1/queue", authed, (*api).listQueue},
		{"GET", "/api/v1/queue/{id}", authed, (*api).getQueued},
		{"DELETE", "/api/v1/queue/{id}", authed, (*api).removeQueued},
		{"POST", "/api/v1/queue/{id}/retry", authed, (*api).retryQueued},

		{"GET", "/api/v1/audit", authed, (*api).listAudit},
		{"POST", "/api/v1/policy/explain", authed, (*api).explain},
	}
}

// NewAPI gives the handler of the JSON API under /api/v1/. Anything else
// under that prefix answers 404, a known path with another method 405, both
// with a JSON error body.
func NewAPI(o Options) http.Handler {
	o = o.WithDefaults()
	l := o.Logins
	if l == nil {
		l = newLogins(o)
	}
	return newAPI(o, l)
}

// newAPI takes o with its defaults filled in, and its logins.
func newAPI(o Options, l *Logins) http.Handler {
	return (&api{admin: o.Admin, log: o.Log, logins: l}).mux(routes())
}

// mux serves rts, with JSON answers for an unknown path or method.
func (a *api) mux(rts []route) http.Handler {
	mux := http.NewServeMux()
	allowed := map[string][]string{}
	var paths []string
	for _, rt := range rts {
		mux.Handle(rt.method+" "+rt.path, a.handler(rt))
		if _, ok := allowed[rt.path]; !ok {
			paths = append(paths, rt.path)
		}
		allowed[rt.path] = append(allowed[rt.path], rt.method)
	}
	// A pattern without a method is less specific than one with, so these
	// only catch the methods a path does not serve: answer 405 in JSON
	// rather than ServeMux's plain text.
	for _, p := range paths {
		methods := allowed[p]
		if slices.Contains(methods, "GET") {
			methods = append(methods, "HEAD")
		}
		allow := strings.Join(methods, ", ")
		h := a.handler(route{path: p, handle: func(*api, *call) (int, any, error) {
			return 0, nil, &apiError{status: http.StatusMethodNotAllowed, code: codeMethodNotAllowed,
				message: "This path accepts " + allow + ".", allow: allow}
		}})
		if !shadowed(p, paths) {
			mux.Handle(p, h)
			continue
		}
		// A literal path that a wildcard path also matches (.../keys/rotate
		// and .../keys/{selector}): a pattern without a method would
		// conflict with the wildcard's, so name each other method.
		for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"} {
			if !slices.Contains(methods, m) {
				mux.Handle(m+" "+p, h)
			}
		}
	}
	mux.Handle(APIPrefix+"/", a.handler(route{handle: func(*api, *call) (int, any, error) {
		return 0, nil, &apiError{status: http.StatusNotFound, code: codeNotFound, message: "No such API path."}
	}}))
	return mux
}

// shadowed reports whether another of paths matches p through a wildcard
// where p has a literal segment.
func shadowed(p string, paths []string) bool {
	ps := strings.Split(p, "/")
	for _, q := range paths {
		qs := strings.Split(q, "/")
		if q == p || len(qs) != len(ps) {
			continue
		}
		match := true
		for i := range qs {
			if qs[i] != ps[i] && !strings.HasPrefix(qs[i], "{") {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

// call is one request on its way through a handler.
type call struct {
	w   http.ResponseWriter
	r   *http.Request
	ctx context.Context
	// log is the request's logger: request_id, then account once known.
	log *slog.Logger
	// remote is the client's IP address, for the audit log and throttling.
	remote string
	// actor, account and token are set for authenticated routes.
	actor   admin.Actor
	account *store.Account
	token   store.Token
	// via is how the caller authenticated: "bearer" or "session".
	via string
}

// handler runs one route: authentication, the operation, the answer, and
// the request's one log line.
func (a *api) handler(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now() // for the duration only: the real clock, not Options.Now
		id := newRequestID()
		w.Header().Set("X-Request-ID", id)
		c := &call{
			w: w, r: r, ctx: r.Context(),
			remote: remoteIP(r),
			log:    a.log.With("request_id", id),
		}
		status, body, err := a.run(rt, c)
		var ae *apiError
		if err != nil {
			ae = classify(err)
			status, body = ae.status, ae.body(id)
			ae.header(w)
		}
		writeJSON(c, status, body)

		attrs := []any{"method", r.Method, "path", r.URL.Path, "remote", c.remote, "status", status,
			"duration_ms", time.Since(start).Milliseconds()}
		switch {
		case ae != nil && status >= 500:
			c.log.Error("api_request", append(attrs, "err", err)...)
		case ae != nil:
			c.log.Info("api_request", append(attrs, "error_code", ae.code, "err", err)...)
		default:
			c.log.Info("api_request", attrs...)
		}
	})
}

func (a *api) run(rt route, c *call) (int, any, error) {
	if rt.access == authed && a.local {
		c.actor = admin.CLI()
		c.log = c.log.With("account", c.actor.Name)
		return rt.handle(a, c)
	}
	if rt.access == authed {
		if err := a.authenticate(c); err != nil {
			return 0, nil, err
		}
	}
	return rt.handle(a, c)
}

// newRequestID gives 64 random bits in hex: enough to find one request in
// the log, and echoed to the client in X-Request-ID and 500 answers.
func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// remoteIP gives the client's address without the port. dkimd does not
// trust X-Forwarded-For: behind a proxy, every client has its address.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
