package web

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/store"
)

type newAccountRequest struct {
	Name    string     `json:"name"`
	Role    store.Role `json:"role"`
	Domains []string   `json:"domains"`
	// Password is write-only; empty makes a token-only account.
	Password string `json:"password"`
}

// accountView is a panel account as the API shows it: whether it has a
// password, never the hash.
type accountView struct {
	store.Account
	HasPassword bool `json:"has_password"`
}

func viewAccount(a store.Account) accountView {
	return accountView{Account: a, HasPassword: a.PasswordHash != ""}
}

type newTokenRequest struct {
	Label string `json:"label"`
	// TTL is a Go duration ("720h"); empty or "0" means the token does not
	// expire.
	TTL string `json:"ttl"`
}

// newTokenResponse carries a new API token: the only time it is shown.
type newTokenResponse struct {
	Token string      `json:"token"`
	Info  store.Token `json:"info"`
}

func (a *api) listAccounts(c *call) (int, any, error) {
	as, err := a.admin.ListAccounts(c.ctx, c.actor)
	if err != nil {
		return 0, nil, err
	}
	out := make([]accountView, len(as))
	for i, x := range as {
		out[i] = viewAccount(x)
	}
	return http.StatusOK, out, nil
}

func (a *api) addAccount(c *call) (int, any, error) {
	var req newAccountRequest
	if err := decode(c, &req); err != nil {
		return 0, nil, err
	}
	acc, err := a.admin.AddAccount(c.ctx, c.actor, admin.NewAccountRequest{
		Name: req.Name, Role: req.Role, Domains: req.Domains, Password: req.Password,
	})
	if err != nil {
		return 0, nil, err
	}
	c.w.Header().Set("Location", APIPrefix+"/accounts/"+url.PathEscape(acc.Name))
	return http.StatusCreated, viewAccount(acc), nil
}

func (a *api) removeAccount(c *call) (int, any, error) {
	if err := a.admin.RemoveAccount(c.ctx, c.actor, c.r.PathValue("name")); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

func (a *api) newToken(c *call) (int, any, error) {
	var req newTokenRequest
	if err := decode(c, &req); err != nil {
		return 0, nil, err
	}
	var ttl time.Duration
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d < 0 {
			return 0, nil, store.Invalid("ttl", "want a duration such as 720h, or 0 for no expiry")
		}
		ttl = d
	}
	tok, info, err := a.admin.NewToken(c.ctx, c.actor, c.r.PathValue("name"), req.Label, ttl)
	if err != nil && tok == "" {
		return 0, nil, err
	}
	if err != nil {
		// The token exists and works; only its audit entry failed. Show
		// it, or it is lost, and log the failure.
		c.log.Error("token_audit_failed", "err", err)
	}
	return http.StatusCreated, newTokenResponse{Token: tok, Info: info}, nil
}

// accountChange is the body of PATCH /api/v1/accounts/{name}: absent
// fields stay as they are.
type accountChange struct {
	Role    *store.Role `json:"role"`
	Domains *[]string   `json:"domains"`
	Enabled *bool       `json:"enabled"`
}

// updateAccount changes an account's role, domains or enabled flag; its
// sessions end (admin.UpdateAccount).
func (a *api) updateAccount(c *call) (int, any, error) {
	var req accountChange
	if err := decode(c, &req); err != nil {
		return 0, nil, err
	}
	acc, err := a.admin.UpdateAccount(c.ctx, c.actor, c.r.PathValue("name"),
		admin.AccountUpdate{Role: req.Role, Domains: req.Domains, Enabled: req.Enabled})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, viewAccount(acc), nil
}

type passwordRequest struct {
	// Password is write-only.
	Password string `json:"password"`
}

// setPassword sets an account's password and ends its other sessions
// (admin.SetAccountPassword): all of them when asked with an API token.
func (a *api) setPassword(c *call) (int, any, error) {
	var req passwordRequest
	if err := decode(c, &req); err != nil {
		return 0, nil, err
	}
	if err := a.admin.SetAccountPassword(c.ctx, c.actor, c.r.PathValue("name"), req.Password); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

// listTokens gives an account's API tokens and sessions, never their
// secrets.
func (a *api) listTokens(c *call) (int, any, error) {
	ts, err := a.admin.ListTokens(c.ctx, c.actor, c.r.PathValue("name"))
	if err != nil {
		return 0, nil, err
	}
	if ts == nil {
		ts = []store.Token{}
	}
	return http.StatusOK, ts, nil
}

// removeToken revokes an API token or ends a session.
func (a *api) removeToken(c *call) (int, any, error) {
	id, err := strconv.ParseInt(c.r.PathValue("token"), 10, 64)
	if err != nil || id < 1 {
		return 0, nil, badRequest("token", "The token parameter must be a token ID.")
	}
	if err := a.admin.RemoveToken(c.ctx, c.actor, c.r.PathValue("name"), id); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

// listAudit gives audit entries, newest first, filtered by the query:
// domain, actor, action (exact), since (RFC 3339), before (an entry ID, to
// page back), limit.
func (a *api) listAudit(c *call) (int, any, error) {
	q := c.r.URL.Query()
	f := store.AuditFilter{Domain: q.Get("domain"), Actor: q.Get("actor"), Action: q.Get("action")}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return 0, nil, badRequest("since", "The since parameter must be an RFC 3339 time such as 2026-01-02T15:04:05Z.")
		}
		f.Since = t
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, nil, badRequest("limit", "The limit parameter must be a positive whole number (at most %d).", store.MaxAuditLimit)
		}
		f.Limit = n
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return 0, nil, badRequest("before", "The before parameter must be an audit entry ID.")
		}
		f.Before = n
	}
	es, err := a.admin.ListAudit(c.ctx, c.actor, f)
	if err != nil {
		return 0, nil, err
	}
	if es == nil {
		es = []store.AuditEntry{}
	}
	return http.StatusOK, es, nil
}
