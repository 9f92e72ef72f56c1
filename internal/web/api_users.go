package web

import (
	"net/http"
	"net/url"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/store"
)

// userFields are the settable fields of an outgoing user. An absent (or
// null) field is left as it is; on a new user, at its default.
type userFields struct {
	Auth *store.AuthKind `json:"auth"`
	// Password is write-only: no answer ever carries it or its hash.
	Password         *string   `json:"password"`
	Networks         *[]string `json:"networks"`
	IdentityHeader   *string   `json:"identity_header"`
	Selector         *string   `json:"selector"`
	GrantedDomains   *[]string `json:"granted_domains"`
	AllowForeignFrom *bool     `json:"allow_foreign_from"`
	Enabled          *bool     `json:"enabled"`
	// AllowAnyNetwork is the admin's override of the network rules for
	// this request (admin.UserChange.AllowAnyNetwork); not stored.
	AllowAnyNetwork bool `json:"allow_any_network"`
}

func (f userFields) change() admin.UserChange {
	return admin.UserChange{
		Auth: f.Auth, Password: f.Password, Networks: f.Networks, IdentityHeader: f.IdentityHeader,
		Selector: f.Selector, GrantedDomains: f.GrantedDomains, AllowForeignFrom: f.AllowForeignFrom, Enabled: f.Enabled,
		AllowAnyNetwork: f.AllowAnyNetwork,
	}
}

type newUserRequest struct {
	Name string `json:"name"`
	userFields
}

// userView is an outgoing user as the API shows it: whether it has a
// password, never the hash.
type userView struct {
	store.OutgoingUser
	HasPassword bool `json:"has_password"`
}

func viewUser(u store.OutgoingUser) userView {
	return userView{OutgoingUser: u, HasPassword: u.PasswordHash != ""}
}

func viewUsers(us []store.OutgoingUser) []userView {
	out := make([]userView, len(us))
	for i, u := range us {
		out[i] = viewUser(u)
	}
	return out
}

func (a *api) listUsers(c *call) (int, any, error) {
	us, err := a.admin.ListUsers(c.ctx, c.actor, c.r.PathValue("domain"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, viewUsers(us), nil
}

func (a *api) addUser(c *call) (int, any, error) {
	var req newUserRequest
	if err := decode(c, &req); err != nil {
		return 0, nil, err
	}
	u, err := a.admin.AddUser(c.ctx, c.actor, req.Name, c.r.PathValue("domain"), req.change())
	if err != nil {
		return 0, nil, err
	}
	c.w.Header().Set("Location", APIPrefix+"/users/"+url.PathEscape(u.Name))
	return http.StatusCreated, viewUser(u), nil
}

func (a *api) getUser(c *call) (int, any, error) {
	u, err := a.admin.GetUser(c.ctx, c.actor, c.r.PathValue("name"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, viewUser(u), nil
}

func (a *api) updateUser(c *call) (int, any, error) {
	var req userFields
	if err := decode(c, &req); err != nil {
		return 0, nil, err
	}
	u, err := a.admin.UpdateUser(c.ctx, c.actor, c.r.PathValue("name"), req.change())
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, viewUser(u), nil
}

func (a *api) removeUser(c *call) (int, any, error) {
	if err := a.admin.RemoveUser(c.ctx, c.actor, c.r.PathValue("name")); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}
