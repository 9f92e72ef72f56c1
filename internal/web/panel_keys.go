package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/dkim"
	"github.com/dkimd/dkimd/internal/dnscheck"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/store"
)

// checkTimeout bounds "check now": dnscheck tries each server twice with
// its own timeout, so a dead name server costs seconds, not minutes.
const checkTimeout = 30 * time.Second

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

type keyRow struct {
	Key    store.Key
	Status statusWords
	Report *dnscheck.Report
}

type dkimView struct {
	Lengths []lengthOption
	Form    genForm
	Errors  formErrors
	Keys    []keyRow
	// Check says whether DNS status is shown at all.
	Check bool
	// Suggest is a free selector to suggest.
	Suggest string
}

func (q *preq) keyRows(domain string, withArchived bool) ([]keyRow, error) {
	ks, err := q.p.admin.ListKeys(q.ctx, q.actor, domain)
	if err != nil {
		return nil, err
	}
	var rows []keyRow
	for i := len(ks) - 1; i >= 0; i-- { // newest first
		k := ks[i]
		if k.State == store.KeyArchived && !withArchived {
			continue
		}
		r := q.p.lastReport(k)
		rows = append(rows, keyRow{Key: k, Report: r, Status: dnsWords(r)})
	}
	return rows, nil
}

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
	dv := dkimView{Lengths: lengths(), Form: f, Errors: errs, Keys: rows, Check: q.p.checker != nil,
		Suggest: q.suggestSelector(d.Name)}
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
		return q.showDKIM(http.StatusUnprocessableEntity, d, f, formErrors{"selector": sentence(err.Error())})
	}
	edSel := ""
	if f.Ed25519 {
		if f.EdSelector == "" {
			f.EdSelector = sel + "e"
		}
		if edSel, err = store.NormalizeSelector(f.EdSelector); err != nil {
			return q.showDKIM(http.StatusUnprocessableEntity, d, f, formErrors{"ed_selector": sentence(err.Error())})
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
	g, err := q.p.admin.GenerateKey(q.ctx, q.actor, admin.NewKeyRequest{Domain: d.Name, Selector: sel, Spec: spec})
	if errs, ok := formProblem(err, fields); ok {
		return q.showDKIM(statusOf(err), d, f, errs)
	}
	if err != nil {
		return err
	}
	done := "generated"
	if edSel != "" {
		_, err := q.p.admin.GenerateKey(q.ctx, q.actor, admin.NewKeyRequest{Domain: d.Name, Selector: edSel, Spec: keys.Spec{Algorithm: keys.Ed25519}})
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
	Key      store.Key
	Record   *dkim.Publication
	Warnings []string
	// Check says whether the DNS status is shown: a checker is set and
	// the key has a record.
	Check      bool
	Report     *dnscheck.Report
	Status     statusWords
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
	rec, err := admin.Record(k)
	if err != nil {
		return nil, err
	}
	kv := &keyView{Key: k, Record: rec, Warnings: k.Spec().Warnings(),
		Check: q.p.checker != nil && k.State != store.KeyArchived}
	kv.Report = q.p.lastReport(k)
	kv.Status = dnsWords(kv.Report)
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
	if q.p.checker == nil || k.State == store.KeyArchived {
		return &apiError{status: http.StatusNotFound, code: codeNotFound, message: "no DNS check here"}
	}
	kv, err := q.keyView(k)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(q.ctx, checkTimeout)
	defer cancel()
	rep, err := q.p.checker(ctx, k)
	switch {
	case err != nil:
		q.log.Warn("dns_check_failed", "domain", k.Domain, "selector", k.Selector, "err", err)
		kv.CheckError = "The check could not run: " + message(err) + ". Try again in a moment."
	case rep != nil:
		q.p.keepReport(k, rep)
		kv.Report, kv.Status = rep, dnsWords(rep)
		q.log.Info("dns_checked", "domain", k.Domain, "selector", k.Selector, "status", rep.Status)
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
	Keys  []keyRow
	Check bool
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
	q.render(http.StatusOK, "keys", &view{Title: "Keys", Nav: "domains", Domain: &d, Tab: "keys",
		Notice: notices[q.r.URL.Query().Get("done")], Data: keysView{Keys: rows, Check: q.p.checker != nil}})
	return nil
}
