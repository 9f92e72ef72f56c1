package panel

import (
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/mailaddr"
	"github.com/dkimd/dkimd/internal/store"
	"github.com/dkimd/dkimd/internal/web"
)

// accountForm is the role and domains of an account as typed (and, when
// adding, its name).
type accountForm struct {
	Name    string
	Role    store.Role
	Domains string
	Enabled bool
}

// accountManageView is the admin's form on an account's page, and the add
// form of the accounts page: the form, its errors, and the domains there
// are to name.
type accountManageView struct {
	Form   accountForm
	Errors formErrors
	Known  []string
}

type accountsView struct {
	Accounts []store.Account
	accountManageView
	// PasswordTyped says a password was typed and, as none is ever sent
	// back, must be typed again.
	PasswordTyped bool
}

// accountFormFields maps the store's fields to the form's.
var accountFormFields = map[string]string{"name": "name", "role": "role", "domains": "domains", "password": "password"}

// accountsPage lists every account, with the form to add one. Admins only
// (admin.ListAccounts).
func (q *preq) accountsPage() error {
	return q.showAccounts(http.StatusOK, accountsView{accountManageView: accountManageView{Form: accountForm{Role: store.RoleDomain}}})
}

func (q *preq) showAccounts(status int, av accountsView) error {
	as, err := q.p.admin.ListAccounts(q.ctx, q.actor)
	if err != nil {
		return err
	}
	if av.Known, err = q.knownDomains(); err != nil {
		return err
	}
	av.Accounts = as
	q.render(status, "accounts", &view{Title: "Accounts", Nav: "accounts", Notice: notices[q.r.URL.Query().Get("done")], Data: av})
	return nil
}

func (q *preq) knownDomains() ([]string, error) {
	ds, err := q.p.admin.ListDomains(q.ctx, q.actor)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ds))
	for i, d := range ds {
		names[i] = d.Name
	}
	return names, nil
}

// readAccountForm reads the role and domains, and what the panel can tell
// is wrong with them before asking admin: every field at once.
func (q *preq) readAccountForm() (accountForm, []string, formErrors) {
	f := accountForm{
		Name:    strings.TrimSpace(q.r.PostFormValue("name")),
		Role:    store.Role(q.r.PostFormValue("role")),
		Domains: q.r.PostFormValue("domains"),
		Enabled: q.r.PostFormValue("enabled") == "on",
	}
	errs := formErrors{}
	var domains []string
	switch f.Role {
	case store.RoleAdmin:
	case store.RoleDomain:
		domains = strings.Fields(strings.ReplaceAll(f.Domains, ",", " "))
		for _, d := range domains {
			if _, err := mailaddr.ParseDomain(d); err != nil {
				errs["domains"] = "“" + d + "” is not a domain name."
				break
			}
		}
	default:
		errs["role"] = "Choose admin or domain admin."
	}
	return f, domains, errs
}

// addAccount makes an account from the accounts page's form. Every field
// is checked at once; what was typed comes back, but the password never
// does: the page says to type it again.
func (q *preq) addAccount() error {
	f, domains, errs := q.readAccountForm()
	f.Enabled = true
	pw := q.r.PostFormValue("password")
	if f.Name == "" {
		errs["name"] = "Give the account a name."
	} else if _, err := store.NormalizeName(f.Name); err != nil {
		errs["name"] = sentence(err.Error()) + "."
	}
	if pw != "" && utf8.RuneCountInString(pw) < admin.MinPasswordLen {
		errs["password"] = "Use at least " + strconv.Itoa(admin.MinPasswordLen) + " characters."
	}
	again := accountsView{accountManageView: accountManageView{Form: f}, PasswordTyped: pw != ""}
	if len(errs) > 0 {
		again.Errors = errs
		return q.showAccounts(http.StatusUnprocessableEntity, again)
	}
	_, err := q.p.admin.AddAccount(q.ctx, q.actor, admin.NewAccountRequest{Name: f.Name, Role: f.Role, Domains: domains, Password: pw})
	if fe, ok := formProblem(err, accountFormFields); ok && statusOf(err) != http.StatusForbidden {
		if statusOf(err) == http.StatusConflict && web.Classify(err).Code == web.CodeExists {
			fe = formErrors{"name": "That account name is taken; choose another."}
		}
		again.Errors = fe
		return q.showAccounts(statusOf(err), again)
	} else if err != nil {
		return err
	}
	q.redirect(accountPath(f.Name) + "?done=account_added")
	return nil
}

// accountSettings changes an account's role, domains and whether it is
// enabled (admin.UpdateAccount, which ends its sessions).
func (q *preq) accountSettings() error {
	f, domains, errs := q.readAccountForm()
	if len(errs) > 0 {
		return q.showAccountManage(http.StatusUnprocessableEntity, f, errs)
	}
	u := admin.AccountUpdate{Role: &f.Role, Enabled: &f.Enabled}
	if f.Role == store.RoleDomain {
		u.Domains = &domains
	}
	_, err := q.p.admin.UpdateAccount(q.ctx, q.actor, q.r.PathValue("name"), u)
	if fe, ok := formProblem(err, accountFormFields); ok && statusOf(err) != http.StatusForbidden {
		return q.showAccountManage(statusOf(err), f, fe)
	} else if err != nil {
		return err
	}
	q.redirect(accountPath(q.r.PathValue("name")) + "?done=account_saved")
	return nil
}

func (q *preq) showAccountManage(status int, f accountForm, errs formErrors) error {
	return q.showAccountWith(status, nil, &accountManageView{Form: f, Errors: errs})
}

// manageView gives the admin's role form for the account on the page, as
// stored; nil for anyone else, who may not change it.
func (q *preq) manageView(name string) (*accountManageView, error) {
	if !q.actor.IsAdmin() {
		return nil, nil
	}
	as, err := q.p.admin.ListAccounts(q.ctx, q.actor)
	if err != nil {
		return nil, err
	}
	for _, a := range as {
		if strings.EqualFold(a.Name, name) {
			return &accountManageView{Form: accountForm{Name: a.Name, Role: a.Role, Domains: strings.Join(a.Domains, " "), Enabled: a.Enabled}}, nil
		}
	}
	return nil, nil
}

// removeAccountPage asks before an account is removed.
func (q *preq) removeAccountPage() error {
	return q.askRemoveAccount(http.StatusOK, nil)
}

func (q *preq) askRemoveAccount(status int, errs formErrors) error {
	if !q.actor.IsAdmin() {
		return web.NewError(http.StatusForbidden, web.CodeForbidden, "only an admin may remove accounts", nil)
	}
	name := q.r.PathValue("name")
	mv, err := q.manageView(name)
	if err != nil {
		return err
	}
	if mv == nil {
		return web.NewError(http.StatusNotFound, web.CodeNotFound, "no such account", nil)
	}
	q.render(status, "ask", &view{Title: "Remove account " + mv.Form.Name, Nav: "accounts", Data: askView{
		Lead:    "Account " + mv.Form.Name,
		Explain: "The account can no longer log in; its panel sessions end and its API tokens stop working at once. Keys, domains and outgoing users stay as they are. The audit log keeps what it did.",
		Action:  accountPath(mv.Form.Name) + "/remove", Button: "Remove account", Cancel: accountPath(mv.Form.Name), Danger: true, Errors: errs,
	}})
	return nil
}

func (q *preq) removeAccount() error {
	err := q.p.admin.RemoveAccount(q.ctx, q.actor, q.r.PathValue("name"))
	if fe, ok := formProblem(err, nil); ok && statusOf(err) == http.StatusConflict {
		return q.askRemoveAccount(statusOf(err), fe)
	} else if err != nil {
		return err
	}
	q.redirect("/accounts?done=account_removed")
	return nil
}

// askView is a confirmation page for a removal.
type askView struct {
	Lead, Explain          string
	Action, Button, Cancel string
	Danger                 bool
	Errors                 formErrors
}

// removeUserPage asks before an outgoing user is removed.
func (q *preq) removeUserPage() error { return q.askRemoveUser(http.StatusOK, nil) }

func (q *preq) askRemoveUser(status int, errs formErrors) error {
	d, u, err := q.user()
	if err != nil {
		return err
	}
	q.render(status, "ask", &view{Title: "Remove outgoing user " + u.Name, Nav: "domains", Domain: &d, Tab: "users", Data: askView{
		Lead:    "Outgoing user " + u.Name,
		Explain: "Its mail is refused from now on: SMTP AUTH with its name fails, and its addresses are no longer recognised. Messages it sent that are queued are still delivered. The audit log keeps the removal.",
		Action:  domainPath(d.Name, "outgoing", "users", u.Name, "remove"), Button: "Remove user",
		Cancel: domainPath(d.Name, "outgoing", "users", u.Name), Danger: true, Errors: errs,
	}})
	return nil
}

func (q *preq) removeUser() error {
	d, u, err := q.user()
	if err != nil {
		return err
	}
	err = q.p.admin.RemoveUser(q.ctx, q.actor, u.Name)
	if fe, ok := formProblem(err, nil); ok && statusOf(err) == http.StatusConflict {
		return q.askRemoveUser(statusOf(err), fe)
	} else if err != nil {
		return err
	}
	q.redirect(domainPath(d.Name, "outgoing", "users") + "?done=user_removed")
	return nil
}

// removeDomainPage asks before a domain is removed. Admins only
// (admin.RemoveDomain); a domain that still has keys, users or accounts
// is refused, saying what is left.
func (q *preq) removeDomainPage() error { return q.askRemoveDomain(http.StatusOK, nil) }

func (q *preq) askRemoveDomain(status int, errs formErrors) error {
	d, err := q.domain()
	if err != nil {
		return err
	}
	if !q.actor.IsAdmin() {
		return web.NewError(http.StatusForbidden, web.CodeForbidden, "only an admin may remove a domain", nil)
	}
	q.render(status, "ask", &view{Title: "Remove domain " + d.Unicode(), Nav: "domains", Domain: &d, Tab: "keys", Data: askView{
		Lead:    "Domain " + d.Unicode(),
		Explain: "dkimd stops knowing the domain. Only a domain with nothing left in it is removed: no keys (a key that was never published can be deleted), no outgoing users, no domain admins. If anything is left, this page says what. On the command line, dkimd domain remove --force removes a domain with everything in it.",
		Action:  domainPath(d.Name, "remove"), Button: "Remove domain", Cancel: domainPath(d.Name, "keys"), Danger: true, Errors: errs,
	}})
	return nil
}

func (q *preq) removeDomain() error {
	d, err := q.domain()
	if err != nil {
		return err
	}
	err = q.p.admin.RemoveDomain(q.ctx, q.actor, d.Name, false)
	if fe, ok := formProblem(err, nil); ok && statusOf(err) == http.StatusConflict {
		return q.askRemoveDomain(statusOf(err), fe)
	} else if err != nil {
		return err
	}
	q.redirect("/?done=domain_removed")
	return nil
}
