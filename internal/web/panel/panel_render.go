package panel

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// view is what every page template gets.
type view struct {
	// Title is the page's heading and <title>.
	Title string
	// Account is the logged-in account, nil on the login page.
	Account *store.Account
	// CSRF is the token each form carries.
	CSRF string
	// Nav names the active top menu entry: "domains", "queue", "audit",
	// or "account" (the account's own page, behind its name).
	Nav string
	// Domain and Tab, on a domain's pages, give the tabs.
	Domain *store.Domain
	Tab    string
	// DomainStatus, on a domain's pages, is the domain's one status
	// (lifecycle.SumUp), shown under the tabs; renderTemplate fills it in.
	DomainStatus *lifecycle.DomainStatus
	// Crumbs, when set, lead to the page from above it, shown over the
	// heading (a domain's pages have their own).
	Crumbs []crumb
	// Notice is a fixed message about what was just done.
	Notice string
	// Data is the page's own.
	Data any
	// Now is the panel's clock, for ages.
	Now time.Time
	// assets gives the versioned URLs of /static files.
	assets *assets
}

// crumb is a step of a breadcrumb; the last has no Href.
type crumb struct{ Label, Href string }

// Asset gives the URL of a static file, with its content hash so that a
// browser never keeps an old copy after an upgrade.
func (v *view) Asset(name string) string { return v.assets.url(name) }

// IsAdmin reports whether the logged-in account manages everything.
func (v *view) IsAdmin() bool { return v.Account != nil && v.Account.Role == store.RoleAdmin }

// templates are the parsed pages: each page file with the layout.
type templates struct {
	pages map[string]*template.Template
}

func loadTemplates() *templates {
	funcs := template.FuncMap{
		"seg":       url.PathEscape,
		"dpath":     domainPath,
		"ago":       ago,
		"due":       due,
		"when":      func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
		"iso":       func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"join":      strings.Join,
		"fielderr":  fieldErrorFor,
		"fielderrs": fieldErrors,
		"hasPrefix": strings.HasPrefix,
		"sentence":  sentence,
		"kind":      keyKind,
		"net":       prefixString,
		"warnlabel": warnLabel,
		"levelword": levelWord,
		"warnclass": warnClass,
		"bytes":     byteSize,
		"words":     func(c store.DNSCheck) statusWords { return dnsWords(&c) },
		"days":      func(d time.Duration) int { return int(d / (24 * time.Hour)) },
	}
	base := template.Must(template.New("layout").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html"))
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err) // a constant pattern
	}
	t := &templates{pages: map[string]*template.Template{}}
	for _, n := range names {
		name := strings.TrimSuffix(path.Base(n), ".html")
		if name == "layout" || name == "parts" {
			continue
		}
		// Templates are part of the binary: a broken one fails every
		// test at once, never a user's request.
		t.pages[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFS, n))
	}
	return t
}

// render writes a whole page. It renders into a buffer first, so that a
// template failure gives an error page rather than half a page.
func (q *preq) render(status int, page string, v *view) {
	q.renderTemplate(status, page, "layout", v)
}

// renderTemplate writes one named template of a page: "layout" for the
// page, or a part the page's script swaps in.
func (q *preq) renderTemplate(status int, page, name string, v *view) {
	v.Account, v.CSRF, v.assets, v.Now = q.account, q.csrf, q.p.assets, q.p.now()
	if v.Domain != nil && v.DomainStatus == nil && q.account != nil {
		// Every page of a domain says its status in the same words, read
		// now: after a change or a check, never a stale one.
		if ds, err := q.p.admin.DomainStatus(q.ctx, q.actor, v.Domain.Name); err == nil {
			v.DomainStatus = &ds
		} else {
			q.log.Warn("domain_status_failed", "domain", v.Domain.Name, "err", err)
		}
	}
	t, ok := q.p.tmpl.pages[page]
	var buf bytes.Buffer
	var err error
	if !ok {
		err = fmt.Errorf("web: no page template %q", page)
	} else {
		err = t.ExecuteTemplate(&buf, name, v)
	}
	if err != nil {
		q.log.Error("panel_render_failed", "page", page, "err", err)
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString("<!doctype html><title>Error</title><p>The page could not be shown. The server log has the details under request " +
			template.HTMLEscapeString(q.id) + ".</p>")
	}
	q.status = status
	q.w.Header().Set("Content-Type", "text/html; charset=utf-8")
	q.w.WriteHeader(status)
	_, _ = q.w.Write(buf.Bytes()) // the client went away; nothing to do
}

// keyKind names a key's kind for people: "RSA 2048", "Ed25519".
func keyKind(k store.Key) string {
	if k.Algorithm == keys.Ed25519 {
		return "Ed25519"
	}
	return fmt.Sprintf("RSA %d", k.Bits)
}

// warnLabel names a lifecycle warning code in a word or two.
func warnLabel(code string) string {
	if l, ok := map[string]string{
		lifecycle.WarnWeak:           "weak key",
		lifecycle.WarnOld:            "old key",
		lifecycle.WarnRecord:         "record problem",
		lifecycle.WarnReady:          "ready to activate",
		lifecycle.WarnSafeToRevoke:   "safe to revoke",
		lifecycle.WarnReadyToArchive: "ready to archive",
	}[code]; ok {
		return l
	}
	return code
}

// warnClass colours a warning: what breaks or weakens mail is "bad" or
// "warn", a step that can be taken now "ok".
// levelWord names a status level in a word, beside its colour.
func levelWord(l lifecycle.Level) string {
	switch l {
	case lifecycle.LevelBad:
		return "fails DKIM"
	case lifecycle.LevelWarn:
		return "warning"
	case lifecycle.LevelInfo:
		return "to do"
	}
	return "ok"
}

func warnClass(code string) string {
	switch code {
	case lifecycle.WarnRecord:
		return "bad"
	case lifecycle.WarnWeak, lifecycle.WarnOld:
		return "warn"
	}
	return "ok"
}

// byteSize says a size for people: 812 B, 14.2 kB, 3.1 MB.
func byteSize(n int64) string {
	switch {
	case n < 1000:
		return fmt.Sprintf("%d B", n)
	case n < 1000*1000:
		return fmt.Sprintf("%.1f kB", float64(n)/1000)
	}
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}

// due says when something next happens: "now" for zero or past times,
// else "in 5 minutes".
func due(now, t time.Time) string {
	d := t.Sub(now)
	switch {
	case t.IsZero() || d < time.Minute:
		return "now"
	case d < time.Hour:
		return "in " + plural(int(d/time.Minute), "minute")
	case d < 48*time.Hour:
		return "in " + plural(int(d/time.Hour), "hour")
	}
	return "in " + plural(int(d/(24*time.Hour)), "day")
}

// ago says how long ago t was, in the largest whole unit.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute") + " ago"
	case d < 48*time.Hour:
		return plural(int(d/time.Hour), "hour") + " ago"
	}
	return plural(int(d/(24*time.Hour)), "day") + " ago"
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// formErrors maps form fields to what is wrong with them; "" holds an
// error about the whole form.
type formErrors map[string]string

// fieldErrorFor gives the error of a field for a template.
func fieldErrorFor(errs formErrors, field string) string { return errs[field] }

// fieldOrder is the order fields come in on every form, so that the
// summary above a form lists its errors from top to bottom.
var fieldOrder = []string{"name", "auth", "role", "length", "domains", "password", "confirm",
	"networks", "identity_header", "selector", "ed_selector", "granted_domains"}

// fieldErrors gives the messages of every field's error (not the form's
// own, under ""), in the order of the fields on the page, for the summary
// above a form.
func fieldErrors(errs formErrors) []string {
	var fields []string
	for f, m := range errs {
		if f != "" && m != "" {
			fields = append(fields, f)
		}
	}
	rank := func(f string) int {
		if i := slices.Index(fieldOrder, f); i >= 0 {
			return i
		}
		return len(fieldOrder)
	}
	sort.Slice(fields, func(i, j int) bool {
		if ri, rj := rank(fields[i]), rank(fields[j]); ri != rj {
			return ri < rj
		}
		return fields[i] < fields[j]
	})
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = errs[f]
	}
	return out
}

// assets are the embedded static files, each with a hash of its content.
type assets struct {
	files map[string]asset
}

type asset struct {
	body []byte
	etag string
	ct   string
}

func loadAssets() *assets {
	a := &assets{files: map[string]asset{}}
	types := map[string]string{".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}
	entries, err := staticFS.ReadDir("static")
	if err != nil {
		panic(err) // the embedded folder exists
	}
	for _, e := range entries {
		b, err := staticFS.ReadFile("static/" + e.Name())
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(b)
		a.files[e.Name()] = asset{body: b, etag: hex.EncodeToString(sum[:8]), ct: types[path.Ext(e.Name())]}
	}
	return a
}

func (a *assets) url(name string) string {
	f, ok := a.files[name]
	if !ok {
		return "/static/" + url.PathEscape(name)
	}
	return "/static/" + url.PathEscape(name) + "?v=" + f.etag
}

// serve answers GET /static/{file}. A request naming the current version
// may be cached for good; any other must be revalidated.
func (a *assets) serve(w http.ResponseWriter, r *http.Request) {
	f, ok := a.files[r.PathValue("file")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Type", f.ct)
	h.Set("ETag", `"`+f.etag+`"`)
	if r.URL.Query().Get("v") == f.etag {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}
