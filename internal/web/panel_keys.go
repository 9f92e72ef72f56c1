package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/dkimd/dkimd/internal/dkim"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/store"
)

// historyShown is how many DNS checks a key's page lists.
const historyShown = 5

// lengthOption is one choice of key length on Outgoing > DKIM.
type lengthOption struct {
	Value string
	Label string
	Note  string
	// Class is "advised", "weak" or "long", for the note's colour.
	Class string
	spec  keys.Spec
}

// lengths are the RSA key lengths offered, 2048 first among equals: it
// is preselected and advised.
func lengths() []lengthOption {
	return []lengthOption{
		{"rsa1024", "RSA 1024", "Weak: use it only if your DNS host cannot take a longer record.", "weak", keys.Spec{Algorithm: keys.RSA, Bits: 1024}},
		{"rsa2048", "RSA 2048", "Advised: verified everywhere, and its record fits every DNS host.", "advised", keys.Spec{Algorithm: keys.RSA, Bits: 2048}},
		{"rsa3072", "RSA 3072", "Your DNS must accept long records (the value is split into several strings).", "long", keys.Spec{Algorithm: keys.RSA, Bits: 3072}},
		{"rsa4096", "RSA 4096", "Your DNS must accept long records (the value is split into several strings).", "long", keys.Spec{Algorithm: keys.RSA, Bits: 4096}},
	}
}

// defaultLength is preselected.
const defaultLength = "rsa2048"

type genForm struct {
	Length     string
	Selector   string
	Ed25519    bool
	EdSelector string
}

// keyRow is a key in a list: its status under the lifecycle policy, from
// the DNS checks kept in the store (by "check now" and the lifecycle
// monitor, on any node).
type keyRow struct {
	Key    store.Key
	Status statusWords
	St     lifecycle.Status
}

type dkimView struct {
	Lengths []lengthOption
	Form    genForm
	Errors  formErrors
	Keys    []keyRow
	// Suggest is a free selector to suggest.
	Suggest string
}

func (q *preq) keyRows(domain string, withArchived bool) ([]keyRow, error) {
	sts, err := q.p.admin.KeyStatus(q.ctx, q.actor, domain)
	if err != nil {
		return nil, err
	}
	var rows []keyRow
	for i := len(sts) - 1; i >= 0; i-- { // newest first
		st := sts[i]
		if st.Key.State == store.KeyArchived && !withArchived {
			continue
		}
		rows = append(rows, keyRow{Key: st.Key, St: st, Status: dnsWords(st.LastCheck)})
	}
	return rows, nil
}

// canCheck reports whether "check now" can run here.
func (p *panel) canCheck() bool { return p.admin.CanCheckDNS() }

// dkimPage is Outgoing > DKIM: the domain's keys in use, and the form that
// generates a new pair.
func (q *preq) dkimPage() error {
	d, err := q.domain()
	if err != nil {
		return err
	}
	return q.showDKIM(http.StatusOK, d, genForm{Length: defaultLength}, nil)
}

func (q *preq) showDKIM(status int, d store.Domain, f genForm, errs formErrors) error {
	rows, err := q.keyRows(d.Name, false)
	if err != nil {
		return err
	}
	dv := dkimView{Lengths: lengths(), Form: f, Errors: errs, Keys: rows, Suggest: q.suggestSelector(d.Name)}
	q.render(status, "dkim", &view{Title: "Outgoing › DKIM", Nav: "domains", Domain: &d, Tab: "dkim",
		Notice: notices[q.r.URL.Query().Get("done")], Data: dv})
	return nil
}

// suggestSelector gives a selector not yet used in domain, after the
// month: 202605, then 202605b, 202605c…
func (q *preq) suggestSelector(domain string) string {
	base := q.p.now().UTC().Format("200601")
	for _, suffix := range []string{"", "b", "c", "d", "e", "f", "g", "h"} {
		s := base + suffix
		if _, err := q.p.admin.GetKey(q.ctx, q.actor, domain, s); errors.Is(err, store.ErrNotFound) {
			return s
		}
	}
	return ""
}

// generateKeys makes the key pair asked for, and the optional Ed25519
// second one. Everything is checked before the first key is made, so a
// mistake in the second selector saves nothing.
func (q *preq) generateKeys() error {
	d, err := q.domain()
	if err != nil {
		return err
	}
	f := genForm{
		Length:     q.r.PostFormValue("length"),
		Selector:   q.r.PostFormValue("selector"),
		Ed25519:    q.r.PostFormValue("ed25519") == "on",
		EdSelector: q.r.PostFormValue("ed_selector"),
	}
	var spec keys.Spec
	found := false
	for _, l := range lengths() {
		if l.Value == f.Length {
			spec, found = l.spec, true
		}
	}
	if !found {
		return q.showDKIM(http.StatusUnprocessableEntity, d, f, formErrors{"length": "Choose one of the key lengths."})
	}
	sel, err := store.NormalizeSelector(f.Selector)
	if err != nil {
		return q.showDKIM(http.StatusUnprocessableEntity, d, f, formErrors{"selector": (&store.FieldError{Field: "selector", Err: err}).UserMessage()})
	}
	edSel := ""
	if f.Ed25519 {
		if f.EdSelector == "" {
			f.EdSelector = sel + "e"
		}
		if edSel, err = store.NormalizeSelector(f.EdSelector); err != nil {
			return q.showDKIM(http.StatusUnprocessableEntity, d, f, formErrors{"ed_selector": (&store.FieldError{Field: "ed_selector", Err: err}).UserMessage()})
		}
		if edSel == sel {
			return q.showDKIM(http.StatusUnprocessableEntity, d, f, formErrors{"ed_selector": "The Ed25519 key needs a selector of its own."})
		}
	}
	for field, s := range map[string]string{"selector": sel, "ed_selector": edSel} {
		if s == "" {
			continue
		}
		_, err := q.p.admin.GetKey(q.ctx, q.actor, d.Name, s)
		if err == nil {
			return q.showDKIM(http.StatusConflict, d, f, formErrors{field: fmt.Sprintf("Selector %s is already used in %s; selectors are never reused. Choose another.", s, d.Name)})
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}

	fields := map[string]string{"selector": "selector", "bits": "length", "algorithm": "length"}
	g, err := q.p.admin.GenerateKey(q.ctx, q.actor, lifecycle.NewKeyRequest{Domain: d.Name, Selector: sel, Spec: spec})
	if errs, ok := formProblem(err, fields); ok {
		return q.showDKIM(statusOf(err), d, f, errs)
	}
	if err != nil {
		return err
	}
	done := "generated"
	if edSel != "" {
		_, err := q.p.admin.GenerateKey(q.ctx, q.actor, lifecycle.NewKeyRequest{Domain: d.Name, Selector: edSel, Spec: keys.Spec{Algorithm: keys.Ed25519}})
		switch {
		case err == nil:
			done = "generated2"
		default:
			// Only a race (the selector taken since the check above) or a
			// store failure gets here; the RSA key stands on its own.
			q.log.Error("second_key_failed", "selector", edSel, "err", err)
			done = "ed_failed"
		}
	}
	target := domainPath(d.Name, "keys", g.Key.Selector) + "?done=" + done
	if done == "generated2" {
		target += "&also=" + url.QueryEscape(edSel)
	}
	q.redirect(target)
	return nil
}

type keyView struct {
	Key    store.Key
	Record *dkim.Publication
	// Warnings are the lifecycle's (weak, old, record problem, ready, safe
	// to revoke…) and those about the kind of key.
	Warnings []string
	// St is the key's status under the lifecycle policy: last check,
	// alert, safe-to-revoke time.
	St lifecycle.Status
	// Check says whether the DNS status is shown: the key has a record.
	Check bool
	// CanCheck says whether "check now" can run here.
	CanCheck bool
	// Last is the newest stored check, History the few newest.
	Last       *store.DNSCheck
	History    []store.DNSCheck
	Status     statusWords
	Hint       string
	CheckError string
	Actions    []keyActionInfo
	Also       *store.Key
}

// keyPage shows a key: its record in every form, its DNS status, and
// what can be done with it.
func (q *preq) keyPage() error {
	d, k, err := q.key()
	if err != nil {
		return err
	}
	kv, err := q.keyView(k)
	if err != nil {
		return err
	}
	if also := q.r.URL.Query().Get("also"); also != "" {
		if a, err := q.p.admin.GetKey(q.ctx, q.actor, d.Name, also); err == nil {
			kv.Also = &a
		}
	}
	done := q.r.URL.Query().Get("done")
	notice := notices[done]
	if done == "ed_failed" {
		notice = "The RSA key pair was generated and saved, but the Ed25519 one was not (its selector was taken meanwhile, or the store failed). Add it again from Outgoing › DKIM."
	}
	q.render(http.StatusOK, "key", &view{Title: "Key " + k.Selector, Nav: "domains", Domain: &d, Tab: "keys", Notice: notice, Data: kv})
	return nil
}

func (q *preq) key() (store.Domain, store.Key, error) {
	d, err := q.domain()
	if err != nil {
		return d, store.Key{}, err
	}
	k, err := q.p.admin.GetKey(q.ctx, q.actor, d.Name, q.r.PathValue("selector"))
	return d, k, err
}

func (q *preq) keyView(k store.Key) (*keyView, error) {
	rec, err := lifecycle.Record(k)
	if err != nil {
		return nil, err
	}
	sts, err := q.p.admin.KeyStatus(q.ctx, q.actor, k.Domain)
	if err != nil {
		return nil, err
	}
	kv := &keyView{Key: k, Record: rec, Check: k.State != store.KeyArchived, CanCheck: q.p.canCheck()}
	for _, st := range sts {
		if st.Key.ID == k.ID {
			kv.St, kv.Key = st, st.Key
		}
	}
	weak := false
	for _, w := range kv.St.Warnings {
		kv.Warnings = append(kv.Warnings, w.Message)
		weak = weak || w.Code == lifecycle.WarnWeak
	}
	if !weak {
		// The lifecycle's weak_key says what the kind's RSA 1024 warning
		// would.
		kv.Warnings = append(kv.Warnings, k.Spec().Warnings()...)
	}
	if kv.Check {
		if kv.History, err = q.p.admin.CheckHistory(q.ctx, q.actor, k.Domain, k.Selector, historyShown); err != nil {
			return nil, err
		}
		// The newest check that looked for what the record should hold
		// now: current drops one older than the revocation.
		kv.Last = kv.St.LastCheck
	}
	kv.Status, kv.Hint = dnsWords(kv.Last), dnsHint(kv.Last)
	for _, a := range keyActions() {
		if a.applies(k.State) {
			kv.Actions = append(kv.Actions, a)
		}
	}
	return kv, nil
}

// checkKey runs the DNS check now. The page's script asks for the status
// part alone (X-Panel-Part), to swap it in; without script, the whole page
// comes back.
func (q *preq) checkKey() error {
	d, k, err := q.key()
	if err != nil {
		return err
	}
	if !q.p.canCheck() || k.State == store.KeyArchived {
		return &apiError{status: http.StatusNotFound, code: codeNotFound, message: "No DNS check here."}
	}
	ctx, cancel := context.WithTimeout(q.ctx, checkTimeout)
	defer cancel()
	// The check is kept in the store: the page below reads it back with
	// the history, as any node would.
	c, cerr := q.p.admin.CheckKeyNow(ctx, q.actor, d.Name, k.Selector)
	if cerr == nil {
		q.log.Info("dns_checked", "domain", k.Domain, "selector", k.Selector, "status", c.Status)
	}
	kv, err := q.keyView(k)
	if err != nil {
		return err
	}
	if cerr != nil {
		q.log.Warn("dns_check_failed", "domain", k.Domain, "selector", k.Selector, "err", cerr)
		kv.CheckError = "The check could not run (the server log says why). Try again in a moment."
		if m, _, ok := store.Detail(cerr); ok {
			kv.CheckError = "The check could not run: " + m + " Try again in a moment."
		}
	}
	v := &view{Title: "Key " + k.Selector, Nav: "domains", Domain: &d, Tab: "keys", Data: kv}
	if q.r.Header.Get("X-Panel-Part") == "dns-status" {
		q.renderTemplate(http.StatusOK, "key", "dnsstatus", v)
		return nil
	}
	q.render(http.StatusOK, "key", v)
	return nil
}

type keysView struct {
	Keys []keyRow
	// Alerts are the active keys whose record DNS no longer serves as it
	// should: mail they sign fails verification.
	Alerts []keyRow
}

// keysPage lists every key of the domain with its state, age, kind and
// last DNS status.
func (q *preq) keysPage() error {
	d, err := q.domain()
	if err != nil {
		return err
	}
	rows, err := q.keyRows(d.Name, true)
	if err != nil {
		return err
	}
	kv := keysView{Keys: rows}
	for _, r := range rows {
		if r.St.Alert {
			kv.Alerts = append(kv.Alerts, r)
		}
	}
	q.render(http.StatusOK, "keys", &view{Title: "Keys", Nav: "domains", Domain: &d, Tab: "keys",
		Notice: notices[q.r.URL.Query().Get("done")], Data: kv})
	return nil
}
