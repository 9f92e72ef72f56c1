package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/store"
)

// SessionCookie names the cookie that carries a login session.
const SessionCookie = "dkimd_session"

// CSRFHeader must carry the session's CSRF token on every unsafe request
// authenticated by the session cookie.
const CSRFHeader = "X-CSRF-Token"

// csrfLabel separates CSRF tokens from any other use of a session token.
const csrfLabel = "dkimd csrf v1"

// csrfToken derives a session's CSRF token from the session token. The
// session token holds 256 random bits and sits in an HttpOnly cookie, so a
// page on another site can neither read it nor compute this; and this
// cannot be turned back into the session token. Being derived rather than
// stored, it needs no server secret, survives a restart and works on every
// node that shares the store.
func csrfToken(session string) string {
	m := hmac.New(sha256.New, []byte(csrfLabel))
	m.Write([]byte(session))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func validCSRF(session, got string) bool {
	return got != "" && hmac.Equal([]byte(csrfToken(session)), []byte(got))
}

// unsafeMethod reports whether a method may change something (RFC 9110
// §9.2.1), and so needs the CSRF token under a cookie.
func unsafeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// authenticate finds the caller: a bearer token in Authorization, else the
// session cookie (with the CSRF token on unsafe methods). A bearer header
// is never mixed with the cookie: if one is sent, it alone counts.
func (a *api) authenticate(c *call) error {
	var secret, via string
	if h := c.r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		tok = strings.TrimSpace(tok)
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
			return unauthorized("Use Authorization: Bearer <token>.")
		}
		secret, via = tok, "bearer"
	} else if ck, err := c.r.Cookie(SessionCookie); err == nil && ck.Value != "" {
		secret, via = ck.Value, "session"
	} else {
		return unauthorized("Log in or send Authorization: Bearer <token>.")
	}
	acc, tok, err := a.admin.Authenticate(c.ctx, secret)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// The store does not say whether the token is unknown, expired or
		// its account disabled, and neither do we.
		return &apiError{status: http.StatusUnauthorized, code: codeUnauthorized, err: err,
			message: "Unknown or expired credentials."}
	case err != nil:
		return err
	case !acc.Enabled:
		return unauthorized("Unknown or expired credentials.")
	}
	if via == "session" {
		if tok.Kind != store.TokenSession {
			// An API token belongs in the Authorization header, where a
			// browser never sends it by itself.
			return unauthorized("Unknown or expired credentials.")
		}
		if unsafeMethod(c.r.Method) && !validCSRF(secret, c.r.Header.Get(CSRFHeader)) {
			return forbidden("A request authenticated by the session cookie needs the " + CSRFHeader + " header given at login.")
		}
	}
	c.account, c.token, c.via = &acc, tok, via
	c.actor = admin.Actor{Name: acc.Name, Account: c.account, Remote: c.remote}
	if tok.Kind == store.TokenSession {
		c.actor.Session = tok.ID
	}
	c.log = c.log.With("account", acc.Name)
	return nil
}

type loginRequest struct {
	Name     string `json:"name"`
	Password string `json:"password"`
}

type loginResponse struct {
	Account   accountView `json:"account"`
	CSRFToken string      `json:"csrf_token"`
	Expires   time.Time   `json:"expires"`
}

// login checks a name and password and starts a session: the cookie, and
// the CSRF token the client sends back in X-CSRF-Token.
func (a *api) login(c *call) (int, any, error) {
	var req loginRequest
	if err := decode(c, &req); err != nil {
		return 0, nil, err
	}
	s, err := a.logins.Login(c.ctx, c.log, c.remote, req.Name, req.Password)
	var te *throttledError
	switch {
	case errors.As(err, &te):
		return 0, nil, &apiError{status: http.StatusTooManyRequests, code: codeTooManyRequests, retryAfter: te.wait,
			message: "Too many failed logins; try again later."}
	case errors.Is(err, admin.ErrBadLogin):
		return 0, nil, &apiError{status: http.StatusUnauthorized, code: codeUnauthorized, err: err,
			message: "Wrong name or password."}
	case err != nil:
		return 0, nil, err
	}
	c.log = c.log.With("account", s.account.Name)
	http.SetCookie(c.w, s.Cookie(c.r))
	return http.StatusOK, loginResponse{Account: viewAccount(s.account), CSRFToken: csrfToken(s.token), Expires: s.expires}, nil
}

// logout ends the session behind the cookie (or a session token given as
// bearer) and clears the cookie. It needs no valid session: logging out
// twice, or with an expired cookie, is not an error. An API token given as
// bearer is left alone: it is revoked by removing it, not by logging out.
func (a *api) logout(c *call) (int, any, error) {
	_, cookieErr := c.r.Cookie(SessionCookie)
	if c.r.Header.Get("Authorization") != "" || cookieErr == nil {
		err := a.authenticate(c)
		var ae *apiError
		switch {
		case err == nil:
			if c.token.Kind == store.TokenSession {
				if err := a.admin.Logout(c.ctx, c.actor, c.token.ID); err != nil {
					return 0, nil, err
				}
			}
		case !errors.As(err, &ae), ae.status == http.StatusForbidden:
			// A store failure, or a live session cookie without its CSRF
			// token: a page on another site must not end the session.
			return 0, nil, err
		}
		// Otherwise the credentials were unknown or expired: there is
		// nothing to end.
	}
	http.SetCookie(c.w, clearSessionCookie(c.r))
	return http.StatusNoContent, nil, nil
}

// sessionCookie carries a new session for the API and the panel alike:
// HttpOnly so no script reads it, SameSite=Strict so no other site's page
// sends it, and Secure when the request came over TLS (a Secure cookie
// set over plain HTTP would never come back).
func sessionCookie(r *http.Request, tok string, expires time.Time, ttl time.Duration) *http.Cookie {
	return &http.Cookie{
		Name:     SessionCookie,
		Value:    tok,
		Path:     "/",
		Expires:  expires,
		MaxAge:   int(ttl / time.Second),
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	}
}

// clearSessionCookie removes the session cookie from the browser.
func clearSessionCookie(r *http.Request) *http.Cookie {
	return &http.Cookie{
		Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	}
}

type whoamiResponse struct {
	Account accountView `json:"account"`
	// Via is "bearer" or "session".
	Via   string      `json:"via"`
	Token store.Token `json:"token"`
}

func (a *api) whoami(c *call) (int, any, error) {
	return http.StatusOK, whoamiResponse{Account: viewAccount(*c.account), Via: c.via, Token: c.token}, nil
}
