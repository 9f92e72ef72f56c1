package panel

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/web"
)

// loginCookie holds a random value the login form's CSRF token is
// derived from, before there is a session: so that no other site can log
// a visitor in under an account of its choosing (login CSRF).
const loginCookie = "dkimd_login"

// notices are the fixed messages a redirect may ask a page to show
// (?done=…). Only these are shown: a link cannot put words in the panel's
// mouth.
var notices = map[string]string{
	"expired":           "Your session has ended. Log in again to go on.",
	"logged_out":        "You are logged out.",
	"generated":         "The key pair was generated and saved. Publish the record below, then check it.",
	"generated2":        "Both key pairs were generated and saved: publish both records, then check them.",
	"domain_added":      "The domain was added.",
	"user_added":        "The user was added.",
	"user_saved":        "The user was saved.",
	"activated":         "The key is active: it signs mail from now on.",
	"retired":           "The key is retired: it no longer signs. Keep its record published until its signatures have expired.",
	"revoked":           "The key is revoked. Publish the record below (an empty p=) so that its old signatures stop verifying.",
	"archived":          "The key is archived. Remove its record from DNS.",
	"key_deleted":       "The key was deleted, with its private key. Its selector is free again.",
	"rotated":           "The new key was generated. Publish its record; once it is seen in DNS, activate it: the old key retires in the same step.",
	"settings":          "The domain settings were saved.",
	"publishing":        "How this domain's records reach DNS was saved.",
	"queue_retried":     "The message's deferred recipients are due now: delivery is being tried again.",
	"queue_removed":     "The message was removed from the queue. No bounce was sent.",
	"password_changed":  "The password was changed. Every other session of the account has ended; its API tokens still work until revoked.",
	"token_revoked":     "The token was revoked: it no longer works.",
	"account_added":     "The account was added. Tell its password to its owner apart; they can change it here.",
	"account_saved":     "The account's role and domains were saved. Its panel sessions have ended.",
	"account_removed":   "The account was removed: it can no longer log in, and its API tokens no longer work.",
	"user_removed":      "The user was removed: its mail is refused from now on.",
	"domain_removed":    "The domain was removed.",
	"user_saved_reauth": "The user was saved. As a re-authenticating server it has no DKIM selector any more, so the selector it had was removed: its mail is not signed.",
}

type loginView struct {
	Name   string
	Next   string
	Error  string
	Locked bool
}

// loginPage shows the login form; a visitor already logged in goes on.
func (q *preq) loginPage() error {
	next := safeNext(q.r.URL.Query().Get("next"))
	if q.account != nil {
		q.redirect(next)
		return nil
	}
	q.showLogin(http.StatusOK, loginView{Next: next}, notices[q.r.URL.Query().Get("done")])
	return nil
}

// showLogin renders the login form with a fresh pre-session CSRF token.
func (q *preq) showLogin(status int, lv loginView, notice string) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	pre := base64.RawURLEncoding.EncodeToString(b[:])
	http.SetCookie(q.w, &http.Cookie{
		Name: loginCookie, Value: pre, Path: "/login", MaxAge: int(time.Hour / time.Second),
		HttpOnly: true, Secure: q.r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
	q.csrf = web.CSRFToken(pre)
	q.render(status, "login", &view{Title: "Log in", Notice: notice, Data: lv})
	q.csrf = ""
}

// loginSubmit checks the name and password, through the throttle it
// shares with the API's login when served by New, and starts a session.
func (q *preq) loginSubmit() error {
	name, password := strings.TrimSpace(q.r.PostFormValue("name")), q.r.PostFormValue("password")
	lv := loginView{Name: name, Next: safeNext(q.r.PostFormValue("next"))}
	pre, err := q.r.Cookie(loginCookie)
	if err != nil || !web.ValidCSRF(pre.Value, q.r.PostFormValue(csrfField)) {
		// The form came from elsewhere, or the visitor's browser dropped
		// the cookie (it lasts an hour): ask again, changing nothing.
		lv.Error = "This login form has expired or did not come from this site. Please log in again."
		q.showLogin(http.StatusForbidden, lv, "")
		return nil
	}
	s, err := q.p.logins.Login(q.ctx, q.log, q.remote, name, password)
	wait, throttled := web.ThrottledFor(err)
	switch {
	case throttled:
		secs := int((wait + time.Second - 1) / time.Second)
		q.w.Header().Set("Retry-After", fmt.Sprint(max(secs, 1)))
		lv.Error = fmt.Sprintf("Too many failed logins. Try again in %s.", waitWords(wait))
		lv.Locked = true
		q.showLogin(http.StatusTooManyRequests, lv, "")
		return nil
	case errors.Is(err, admin.ErrBadLogin):
		lv.Error = "Wrong name or password."
		q.showLogin(http.StatusUnauthorized, lv, "")
		return nil
	case err != nil:
		return err
	}
	q.log = q.log.With("account", s.Account().Name)
	http.SetCookie(q.w, s.Cookie(q.r))
	http.SetCookie(q.w, &http.Cookie{Name: loginCookie, Value: "", Path: "/login", MaxAge: -1,
		HttpOnly: true, Secure: q.r.TLS != nil, SameSite: http.SameSiteStrictMode})
	q.redirect(lv.Next)
	return nil
}

func waitWords(d time.Duration) string {
	if d < time.Minute {
		return plural(max(int(d/time.Second), 1), "second")
	}
	return plural(int((d+time.Minute-1)/time.Minute), "minute")
}

// logout ends the session. It needs the CSRF token like every form, but
// an already ended session just goes to the login page.
func (q *preq) logout() error {
	if q.account != nil {
		if !q.validCSRF() {
			return errForged
		}
		if err := q.p.admin.Logout(q.ctx, q.actor, q.token.ID); err != nil {
			return err
		}
	}
	http.SetCookie(q.w, web.ClearSessionCookie(q.r))
	q.redirect("/login?done=logged_out")
	return nil
}
