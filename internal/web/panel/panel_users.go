package panel

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"unicode/utf8"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/mailaddr"
	"github.com/dkimd/dkimd/internal/policy"
	"github.com/dkimd/dkimd/internal/store"
	"github.com/dkimd/dkimd/internal/web"
)

type usersView struct {
	Users []userRow
	// Overlaps, for an admin only, pairs a user of this domain with a user
	// of another whose networks overlap (admin.Service.NetworkOverlaps).
	Overlaps []admin.NetworkOverlap
	// ReauthReason is why a re-authenticating user's mail is not signed.
	ReauthReason string
	// Explain is the "which key would sign?" box.
	Explain explainView
}

// userRow is a user in the list, with what the list warns about.
type userRow struct {
	store.OutgoingUser
	// AnyNetwork: recognised from every address (admin.AnyNetwork).
	AnyNetwork bool
	// Selector is where the user's selector leads (policy.ResolveSelector);
	// SelectorProblem says why it cannot sign, empty when it can.
	Selector        policy.SelectorResolution
	SelectorProblem string
}

type explainView struct {
	User     string
	From     string
	Asked    bool
	Decision *policy.Decision
	Error    string
}

// usersPage is Outgoing > Users: the domain's outgoing users, and the box
// that says which key would sign a message (GET: it changes nothing).
func (q *preq) usersPage() error {
	d, err := q.domain()
	if err != nil {
		return err
	}
	us, err := q.p.admin.ListUsers(q.ctx, q.actor, d.Name)
	if err != nil {
		return err
	}
	ks, err := q.p.admin.ListKeys(q.ctx, q.actor, d.Name)
	if err != nil {
		return err
	}
	uv := usersView{ReauthReason: store.ReauthSelectorMessage}
	for _, u := range us {
		row := userRow{OutgoingUser: u, AnyNetwork: admin.AnyNetwork(u)}
		if u.Selector != "" && u.Auth != store.AuthReauth {
			row.Selector = policy.ResolveSelector(ks, u.Selector)
			row.SelectorProblem = row.Selector.Problem(u.Domain)
		}
		uv.Users = append(uv.Users, row)
	}
	if q.actor.IsAdmin() {
		// The report names other tenants' users: admins only.
		all, err := q.p.admin.NetworkOverlaps(q.ctx, q.actor)
		if err != nil {
			return err
		}
		for _, o := range all {
			if o.A.Domain == d.Name || o.B.Domain == d.Name {
				uv.Overlaps = append(uv.Overlaps, o)
			}
		}
	}
	qs := q.r.URL.Query()
	if qs.Has("user") {
		ev := explainView{User: qs.Get("user"), From: qs.Get("from"), Asked: true}
		// Only this domain's users are offered; a name from elsewhere is
		// not found, like any user the account does not manage.
		owned := false
		for _, u := range us {
			owned = owned || u.Name == ev.User
		}
		if !owned {
			ev.Error = "Pick one of this domain's users."
		} else {
			dec, err := q.p.admin.Explain(q.ctx, q.actor, ev.User, ev.From)
			if err != nil {
				return err
			}
			ev.Decision = &dec
		}
		uv.Explain = ev
	}
	q.render(http.StatusOK, "users", &view{Title: "Outgoing › Users", Nav: "domains", Domain: &d, Tab: "users",
		Notice: notices[qs.Get("done")], Data: uv})
	return nil
}

// userForm is the add/edit form as typed.
type userForm struct {
	Name             string
	Auth             store.AuthKind
	Password         string
	Networks         string
	IdentityHeader   string
	Selector         string
	GrantedDomains   string
	AllowForeignFrom bool
	// AllowAnyNetwork is the admin's override of the network rules; it
	// is not stored, so it is never checked when the form opens.
	AllowAnyNetwork bool
	Enabled         bool
	HasPassword     bool
	// AnyNetwork: the user as stored is recognised from every address.
	AnyNetwork bool
	// PasswordTyped: a password was typed, and must be typed again (it
	// is never sent back).
	PasswordTyped bool
}

type userPage struct {
	New    bool
	Form   userForm
	Errors formErrors
	// Selectors are the domain's keys a user may name: pending or active.
	Selectors []store.Key
	// ReauthReason is why a re-authenticating user has no selector.
	ReauthReason string
}

// userFormFields maps the store's field names to the form's.
var userFormFields = map[string]string{
	"name": "name", "auth": "auth", "password": "password", "networks": "networks",
	"identity_header": "identity_header", "selector": "selector", "granted_domains": "granted_domains",
	"domain": "granted_domains",
}

func (q *preq) newUserPage() error {
	d, err := q.domain()
	if err != nil {
		return err
	}
	return q.showUser(http.StatusOK, d, userPage{New: true, Form: userForm{Auth: store.AuthPassword, Enabled: true}})
}

func (q *preq) editUserPage() error {
	d, u, err := q.user()
	if err != nil {
		return err
	}
	return q.showUser(http.StatusOK, d, userPage{Form: formOf(u)})
}

// user finds the user of the path, in the domain of the path.
func (q *preq) user() (store.Domain, store.OutgoingUser, error) {
	d, err := q.domain()
	if err != nil {
		return d, store.OutgoingUser{}, err
	}
	u, err := q.p.admin.GetUser(q.ctx, q.actor, q.r.PathValue("name"))
	if err == nil && u.Domain != d.Name {
		err = web.NewError(http.StatusNotFound, web.CodeNotFound, "No such user in this domain.", nil)
	}
	return d, u, err
}

func formOf(u store.OutgoingUser) userForm {
	nets := make([]string, len(u.Networks))
	for i, n := range u.Networks {
		nets[i] = prefixString(n)
	}
	return userForm{
		Name: u.Name, Auth: u.Auth, Networks: strings.Join(nets, "\n"), IdentityHeader: u.IdentityHeader,
		Selector: u.Selector, GrantedDomains: strings.Join(u.GrantedDomains, " "),
		AllowForeignFrom: u.AllowForeignFrom, Enabled: u.Enabled, HasPassword: u.PasswordHash != "",
		AnyNetwork: admin.AnyNetwork(u),
	}
}

// prefixString writes a single address without its /32 or /128.
func prefixString(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

func (q *preq) showUser(status int, d store.Domain, uv userPage) error {
	ks, err := q.p.admin.ListKeys(q.ctx, q.actor, d.Name)
	if err != nil {
		return err
	}
	for _, k := range ks {
		if k.State == store.KeyPending || k.State == store.KeyActive {
			uv.Selectors = append(uv.Selectors, k)
		}
	}
	uv.ReauthReason = store.ReauthSelectorMessage
	title := "Add outgoing user"
	if !uv.New {
		title = "Outgoing user " + uv.Form.Name
	}
	q.render(status, "user", &view{Title: title, Nav: "domains", Domain: &d, Tab: "users", Data: uv})
	return nil
}

// readUserForm reads the posted form, and the change it asks for. The
// selector field is disabled (so not sent) for a re-authenticating user:
// then the user has no selector. A selector that is sent is checked, so
// one typed for such a user is refused beside the field.
func (q *preq) readUserForm(isNew bool) (userForm, admin.UserChange) {
	pf := q.r.PostForm
	f := userForm{
		Name:             strings.TrimSpace(pf.Get("name")),
		Auth:             store.AuthKind(pf.Get("auth")),
		Password:         pf.Get("password"),
		Networks:         pf.Get("networks"),
		IdentityHeader:   strings.TrimSpace(pf.Get("identity_header")),
		Selector:         strings.TrimSpace(pf.Get("selector")),
		GrantedDomains:   pf.Get("granted_domains"),
		AllowForeignFrom: pf.Get("allow_foreign_from") == "on",
		AllowAnyNetwork:  pf.Get("allow_any_network") == "on",
		Enabled:          pf.Get("enabled") == "on",
	}
	nets := strings.FieldsFunc(f.Networks, func(r rune) bool { return r == '\n' || r == '\r' || r == ',' || r == ' ' || r == '\t' })
	granted := strings.FieldsFunc(f.GrantedDomains, func(r rune) bool { return r == '\n' || r == '\r' || r == ',' || r == ' ' || r == '\t' })
	c := admin.UserChange{
		Auth: &f.Auth, Networks: &nets, GrantedDomains: &granted, Enabled: &f.Enabled,
		// Offered to admins only; admin.Service refuses it from others.
		AllowAnyNetwork: f.AllowAnyNetwork,
	}
	header := ""
	if f.Auth == store.AuthReauth {
		header = f.IdentityHeader
	}
	c.IdentityHeader = &header
	if f.Password != "" {
		c.Password = &f.Password
	}
	sel := f.Selector
	if !pf.Has("selector") && f.Auth == store.AuthReauth {
		sel = ""
	}
	c.Selector = &sel
	// Only admins may change this (admin.UserChange refuses others): send
	// it only when it is offered.
	if q.actor.IsAdmin() {
		c.AllowForeignFrom = &f.AllowForeignFrom
	}
	return f, c
}

func (q *preq) addUser() error {
	d, err := q.domain()
	if err != nil {
		return err
	}
	f, c := q.readUserForm(true)
	if errs := checkUserForm(f, true); len(errs) > 0 {
		return q.showUser(http.StatusUnprocessableEntity, d, userPage{New: true, Form: f.typedAgain(), Errors: errs})
	}
	_, err = q.p.admin.AddUser(q.ctx, q.actor, f.Name, d.Name, c)
	if errs, ok := formProblem(err, userFormFields); ok {
		return q.showUser(statusOf(err), d, userPage{New: true, Form: f.typedAgain(), Errors: nameTaken(err, errs)})
	}
	if err != nil {
		return err
	}
	q.redirect(domainPath(d.Name, "outgoing", "users") + "?done=user_added")
	return nil
}

// typedAgain gives the form to show again: everything as typed but the
// password, which is never sent back to the browser; PasswordTyped makes
// the page say to type it again.
func (f userForm) typedAgain() userForm {
	f.PasswordTyped = f.Password != ""
	f.Password = ""
	return f
}

// checkUserForm finds, all at once, what is wrong with each field that can
// be told without the store; admin.Service checks the rest (names taken,
// keys, network rules) one at a time.
func checkUserForm(f userForm, isNew bool) formErrors {
	errs := formErrors{}
	if isNew {
		if f.Name == "" {
			errs["name"] = "Give the user a name: the user name it logs in with."
		} else if _, err := store.NormalizeName(f.Name); err != nil {
			errs["name"] = "The user name is not valid: " + err.Error() + "."
		}
	}
	switch f.Auth {
	case store.AuthPassword:
		if isNew && f.Password == "" {
			errs["password"] = "A password user needs a password."
		}
	case store.AuthIP, store.AuthReauth:
	default:
		errs["auth"] = "Choose how the user authenticates."
	}
	if f.Password != "" && utf8.RuneCountInString(f.Password) < admin.MinPasswordLen {
		errs["password"] = fmt.Sprintf("The password is too short: use at least %d characters.", admin.MinPasswordLen)
	}
	nets := splitList(f.Networks)
	for _, n := range nets {
		if _, err := store.ParseNetwork(n); err != nil {
			errs["networks"] = fmt.Sprintf("“%s” is not an address or network, such as 192.0.2.10 or 2001:db8::/48.", n)
			break
		}
	}
	if f.Auth == store.AuthIP && len(nets) == 0 && errs["networks"] == "" {
		errs["networks"] = "A source-IP user needs at least one address or network."
	}
	if f.Selector != "" && f.Auth != store.AuthReauth {
		if _, err := store.NormalizeSelector(f.Selector); err != nil {
			errs["selector"] = "The selector is not valid: " + err.Error() + "."
		}
	}
	if f.Auth != store.AuthReauth {
		for _, g := range splitList(f.GrantedDomains) {
			if _, err := mailaddr.ParseDomain(g); err != nil {
				errs["granted_domains"] = fmt.Sprintf("“%s” is not a domain name.", g)
				break
			}
		}
	}
	return errs
}

// splitList splits a field of several values, one a line or separated by
// commas or spaces.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' || r == ',' || r == ' ' || r == '\t' })
}

// nameTaken puts "that name is not available" beside the name field,
// without saying where the name is used (it may be another tenant's).
func nameTaken(err error, errs formErrors) formErrors {
	if statusOf(err) == http.StatusConflict && web.Classify(err).Code == web.CodeExists {
		return formErrors{"name": "That user name is not available; choose another."}
	}
	return errs
}

func (q *preq) updateUser() error {
	d, u, err := q.user()
	if err != nil {
		return err
	}
	f, c := q.readUserForm(false)
	f.Name, f.HasPassword, f.AnyNetwork = u.Name, u.PasswordHash != "", admin.AnyNetwork(u)
	if errs := checkUserForm(f, false); len(errs) > 0 {
		return q.showUser(http.StatusUnprocessableEntity, d, userPage{Form: f.typedAgain(), Errors: errs})
	}
	saved, err := q.p.admin.UpdateUser(q.ctx, q.actor, u.Name, c)
	if errs, ok := formProblem(err, userFormFields); ok {
		return q.showUser(statusOf(err), d, userPage{Form: f.typedAgain(), Errors: errs})
	}
	if err != nil {
		return err
	}
	done := "user_saved"
	if u.Selector != "" && saved.Selector == "" && saved.Auth == store.AuthReauth {
		// Switched to re-authenticating: say the selector went, rather
		// than a plain "saved".
		done = "user_saved_reauth"
	}
	q.redirect(domainPath(d.Name, "outgoing", "users") + "?done=" + done)
	return nil
}
