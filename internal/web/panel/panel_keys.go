package panel

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/delegation"
	"github.com/dkimd/dkimd/internal/dkim"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/store"
	"github.com/dkimd/dkimd/internal/web"
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
		{"rsa1024", "RSA 1024", "Weak: some receivers ignore its signatures. " + recordNote(1024), "weak", keys.Spec{Algorithm: keys.RSA, Bits: 1024}},
		{"rsa2048", "RSA 2048", "Advised: verified everywhere. " + recordNote(2048), "advised", keys.Spec{Algorithm: keys.RSA, Bits: 2048}},
		{"rsa3072", "RSA 3072", "Your DNS host must take long records. " + recordNote(3072), "long", keys.Spec{Algorithm: keys.RSA, Bits: 3072}},
		{"rsa4096", "RSA 4096", "Your DNS host must take long records. " + recordNote(4096), "long", keys.Spec{Algorithm: keys.RSA, Bits: 4096}},
	}
}

// rsaRecordChars is the length of an RSA key's record value,
// "v=DKIM1; k=rsa; p=" and the base64 of its SubjectPublicKeyInfo, by key
// length; TestRecordLengthsTrue checks it against generated keys.
var rsaRecordChars = map[int]int{1024: 234, 2048: 410, 3072: 582, 4096: 754}

// txtStringMax is the most a TXT record's character-string holds (RFC 1035
// §3.3.14); a longer value is split into several. Some DNS hosts' web forms
// cut a value there instead of splitting it.
const txtStringMax = 255

// recordNote says, for the key length chooser, how long the record is and
// what that asks of the DNS host: the same facts the record page shows.
func recordNote(bits int) string {
	n := rsaRecordChars[bits]
	if n <= txtStringMax {
		return fmt.Sprintf("Its record, %d characters, fits in one string: every DNS host takes it.", n)
	}
	parts := (n + txtStringMax - 1) / txtStringMax
	return fmt.Sprintf("Its record is %d characters, %d strings of at most %d: a host that cuts values at %d cannot hold it.", n, parts, txtStringMax, txtStringMax)
}

// defaultLength is preselected.
const defaultLength = "rsa2048"

type genForm struct {
	Length     string
	Selector   string
	Ed25519    bool
	EdSelector string
	// HSM asks for the keys to be made in the PKCS#11 token.
	HSM bool
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
	// Token is the label of the PKCS#11 token keys may be made in; empty
	// when none is configured (the choice is not offered).
	Token string
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
		rows = append(rows, keyRow{Key: st.Key, St: st, Status: keyDNSWords(st)})
	}
	return rows, nil
}

// keyDNSWords says a key's last check in words, red when the key signs
// and its record is wrong (lifecycle.Status.Alert): a missing record is
// only amber while nothing signs with it.
func keyDNSWords(st lifecycle.Status) statusWords {
	w := dnsWords(st.LastCheck)
	if st.Alert {
		w.Class = "bad"
	}
	return w
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
	dv := dkimView{Lengths: lengths(), Form: f, Errors: errs, Keys: rows, Suggest: q.suggestSelector(d.Name), Token: q.p.admin.TokenLabel()}
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
		HSM:        q.r.PostFormValue("hsm") == "on",
	}
	backend := store.BackendSealed
	if f.HSM {
		backend = store.BackendPKCS11
	}
	// Every field is checked at once, each error beside its field.
	errs := formErrors{}
	var spec keys.Spec
	found := false
	for _, l := range lengths() {
		if l.Value == f.Length {
			spec, found = l.spec, true
		}
	}
	if !found {
		errs["length"] = "Choose one of the key lengths."
	}
	sel, err := store.NormalizeSelector(f.Selector)
	if err != nil {
		errs["selector"] = (&store.FieldError{Field: "selector", Err: err}).UserMessage()
	}
	edSel := ""
	if f.Ed25519 {
		if f.EdSelector == "" && sel != "" {
			f.EdSelector = sel + "e"
		}
		if edSel, err = store.NormalizeSelector(f.EdSelector); err != nil {
			errs["ed_selector"] = (&store.FieldError{Field: "ed_selector", Err: err}).UserMessage()
		} else if edSel == sel {
			errs["ed_selector"] = "The Ed25519 key needs a selector of its own."
		}
	}
	status := http.StatusUnprocessableEntity
	for field, s := range map[string]string{"selector": sel, "ed_selector": edSel} {
		if s == "" || errs[field] != "" {
			continue
		}
		_, err := q.p.admin.GetKey(q.ctx, q.actor, d.Name, s)
		if err == nil {
			errs[field] = fmt.Sprintf("Selector %s is already used in %s; selectors are never reused. Choose another.", s, d.Name)
			if len(errs) == 1 {
				status = http.StatusConflict
			}
			continue
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	if len(errs) > 0 {
		if len(errs) > 1 {
			status = http.StatusUnprocessableEntity
		}
		return q.showDKIM(status, d, f, errs)
	}

	fields := map[string]string{"selector": "selector", "bits": "length", "algorithm": "length", "backend": "hsm"}
	g, err := q.p.admin.GenerateKey(q.ctx, q.actor, lifecycle.NewKeyRequest{Domain: d.Name, Selector: sel, Spec: spec, Backend: backend})
	if errs, ok := formProblem(err, fields); ok {
		return q.showDKIM(statusOf(err), d, f, errs)
	}
	if err != nil {
		return err
	}
	done := "generated"
	if edSel != "" {
		_, err := q.p.admin.GenerateKey(q.ctx, q.actor, lifecycle.NewKeyRequest{Domain: d.Name, Selector: edSel, Spec: keys.Spec{Algorithm: keys.Ed25519}, Backend: backend})
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
	// alert, safe-to-revoke time, level and headline.
	St lifecycle.Status
	// Domain is the domain's status, from the same statuses.
	Domain lifecycle.DomainStatus
	// ShowHeadline says whether the key's headline is shown: it has one,
	// and the domain's status (shown above) does not say it already.
	ShowHeadline bool
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
	switch done {
	case "ed_failed":
		notice = "The RSA key pair was generated and saved, but the Ed25519 one was not (its selector was taken meanwhile, or the store failed). Add it again from Outgoing › DKIM."
	case "rotated", "activated":
		notice, err = q.lifecycleNotice(d, kv.Key, done)
		if err != nil {
			return err
		}
	}
	// Straight after Outgoing › DKIM made it, the page stays under that
	// tab: the generate step ends on its record.
	tab := "keys"
	switch done {
	case "generated", "generated2", "ed_failed":
		tab = "dkim"
	}
	q.render(http.StatusOK, "key", &view{Title: "Key " + k.Selector, Nav: "domains", Domain: &d, Tab: tab, Notice: notice,
		DomainStatus: &kv.Domain, Data: kv})
	return nil
}

// lifecycleNotice says what was done and exactly what happens next, after
// a rotation made key or an activation made it active, given the
// domain's settings: the same words as the confirmation page.
func (q *preq) lifecycleNotice(d store.Domain, k store.Key, done string) (string, error) {
	var old *store.Key
	if k.Replaces != 0 {
		all, err := q.p.admin.ListKeys(q.ctx, q.actor, d.Name)
		if err != nil {
			return "", err
		}
		if i := slices.IndexFunc(all, func(x store.Key) bool { return x.ID == k.Replaces }); i >= 0 {
			old = &all[i]
		}
	}
	if done == "rotated" {
		return "The new key was generated. " + lifecycle.AfterRotate(k, old, d.AutoActivate, 0), nil
	}
	n := "The key is active: it signs mail from now on."
	if old != nil && old.State == store.KeyRetired {
		st := q.p.admin.LifecycleSettings()
		n += fmt.Sprintf(" %s, which it replaces, is retired: it no longer signs; keep its record published until it is safe to revoke (%s).",
			old.Selector, st.SafeToRevoke(*old).UTC().Format("2006-01-02 15:04 MST"))
	}
	return n, nil
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
	kv.Domain = lifecycle.SumUp(k.Domain, sts)
	kv.ShowHeadline = kv.St.Level != lifecycle.LevelOK &&
		!(kv.Domain.Level == kv.St.Level && strings.Contains(kv.Domain.Message, k.Selector))
	weak := false
	for _, w := range kv.St.Warnings {
		weak = weak || w.Code == lifecycle.WarnWeak
		// The headline says the record problem, or this warning, already.
		if w.Code == lifecycle.WarnRecord || strings.HasSuffix(kv.St.Headline, w.Message) {
			continue
		}
		kv.Warnings = append(kv.Warnings, w.Message)
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
	kv.Status, kv.Hint = keyDNSWords(kv.St), dnsHint(kv.Last)
	// A pending key nothing refers to yet is deleted, not revoked: no
	// empty p= to publish for a record that never was.
	deletable := false
	if k.State == store.KeyPending {
		if deletable, err = q.p.admin.KeyDeletable(q.ctx, q.actor, k.Domain, k.Selector); err != nil {
			return nil, err
		}
	}
	for _, a := range keyActions() {
		switch {
		case a.deletes && !deletable, a.to == store.KeyRevoked && deletable:
		case a.applies(k.State):
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
		return web.NewError(http.StatusNotFound, web.CodeNotFound, "No DNS check here.", nil)
	}
	ctx, cancel := context.WithTimeout(q.ctx, web.CheckTimeout)
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
	v := &view{Title: "Key " + k.Selector, Nav: "domains", Domain: &d, Tab: "keys", DomainStatus: &kv.Domain, Data: kv}
	switch q.r.Header.Get("X-Panel-Part") {
	case "status":
		// Every status the check may change: the domain's, the key's and
		// the DNS card, so that no part of the page stays stale.
		q.renderTemplate(http.StatusOK, "key", "statusparts", v)
		return nil
	case "dns-status":
		q.renderTemplate(http.StatusOK, "key", "dnsstatus", v)
		return nil
	}
	q.render(http.StatusOK, "key", v)
	return nil
}

type keysView struct {
	Keys []keyRow
	// CNAMEs are a delegated domain's two records; Zone its delegated
	// zone.
	CNAMEs []delegation.CNAME
	Zone   string
	// Steps are the latest steps dkimd took by itself (scheduled
	// rotation), newest first, for a rotated domain.
	Steps []store.AuditEntry
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
	if recs, err := delegation.Records(d); err == nil {
		kv.CNAMEs = recs
		_, kv.Zone, _ = strings.Cut(d.DelegatedName, ".")
	}
	if d.Rotated() {
		steps, err := q.p.admin.ListAudit(q.ctx, q.actor, store.AuditFilter{Domain: d.Name, Actor: admin.System().Name, Limit: 10})
		if err != nil {
			return err
		}
		kv.Steps = steps
	}
	q.render(http.StatusOK, "keys", &view{Title: "Keys", Nav: "domains", Domain: &d, Tab: "keys",
		Notice: notices[q.r.URL.Query().Get("done")], Data: kv})
	return nil
}
