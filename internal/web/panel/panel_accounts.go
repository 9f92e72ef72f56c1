package panel

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/dkimd/dkimd/internal/store"
	"github.com/dkimd/dkimd/internal/web"
)

// accountPageView is the data of an account's page: its API tokens and
// sessions, each revocable, and the password form.
type accountPageView struct {
	Name   string
	Tokens []store.Token
	// Current is the ID of the session viewing the page.
	Current int64
	Errors  formErrors
	// Manage is the admin's role and domains form; nil for others.
	Manage *accountManageView
}

// accountPage shows an account's API tokens and panel sessions, with a
// button to revoke each, and a form to set its password. An account sees
// its own page, an admin every account's (admin.ListTokens).
func (q *preq) accountPage() error {
	return q.showAccount(http.StatusOK, nil)
}

func (q *preq) showAccount(status int, errs formErrors) error {
	return q.showAccountWith(status, errs, nil)
}

// showAccountWith shows the account's page; manage, when given, is the
// admin's role form as typed, else it is read from the store.
func (q *preq) showAccountWith(status int, errs formErrors, manage *accountManageView) error {
	name := q.r.PathValue("name")
	ts, err := q.p.admin.ListTokens(q.ctx, q.actor, name)
	if err != nil {
		return err
	}
	if manage == nil {
		if manage, err = q.manageView(name); err != nil {
			return err
		}
	}
	if manage != nil {
		if manage.Known, err = q.knownDomains(); err != nil {
			return err
		}
	}
	n, _ := store.NormalizeName(name) // ListTokens has checked it
	nav, crumbs := "account", []crumb(nil)
	if q.account == nil || !strings.EqualFold(q.account.Name, n) {
		// An admin on another account's page came from the accounts.
		nav, crumbs = "accounts", []crumb{{Label: "Accounts", Href: "/accounts"}, {Label: n}}
	}
	q.render(status, "account", &view{Title: "Account " + n, Nav: nav, Crumbs: crumbs,
		Notice: notices[q.r.URL.Query().Get("done")],
		Data:   accountPageView{Name: n, Tokens: ts, Current: q.token.ID, Errors: errs, Manage: manage}})
	return nil
}

// changePassword sets the account's password from the form. Every other
// session of the account ends (admin.SetAccountPassword); the one that
// sent the form goes on.
func (q *preq) changePassword() error {
	pw, confirm := q.r.PostFormValue("password"), q.r.PostFormValue("confirm")
	if pw != confirm {
		return q.showAccount(http.StatusUnprocessableEntity, formErrors{"confirm": "The two passwords differ."})
	}
	err := q.p.admin.SetAccountPassword(q.ctx, q.actor, q.r.PathValue("name"), pw)
	if errs, ok := formProblem(err, map[string]string{"password": "password"}); ok && statusOf(err) != http.StatusForbidden {
		return q.showAccount(statusOf(err), errs)
	} else if err != nil {
		return err
	}
	q.redirect(accountPath(q.r.PathValue("name")) + "?done=password_changed")
	return nil
}

// revokeToken revokes an API token, or ends a session, of the account.
func (q *preq) revokeToken() error {
	id, err := strconv.ParseInt(q.r.PathValue("token"), 10, 64)
	if err != nil || id < 1 {
		return web.BadRequest("token", "The token parameter must be a token ID.")
	}
	if err := q.p.admin.RemoveToken(q.ctx, q.actor, q.r.PathValue("name"), id); err != nil {
		return err
	}
	q.redirect(accountPath(q.r.PathValue("name")) + "?done=token_revoked")
	return nil
}

// accountPath gives the panel path of an account's page.
func accountPath(name string) string {
	n, err := store.NormalizeName(name)
	if err != nil {
		return "/"
	}
	return "/accounts/" + url.PathEscape(n)
}
