package web

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/dkimd/dkimd/internal/store"
)

type newDomainRequest struct {
	Name         string `json:"name"`
	AutoActivate bool   `json:"auto_activate"`
	// Oversign is "", "default", "none", "from-only" or field names
	// separated by commas (store.NormalizeOversign).
	Oversign string `json:"oversign"`
}

// domainChange is a PATCH of a domain: absent fields stay as they are.
type domainChange struct {
	AutoActivate *bool   `json:"auto_activate"`
	Oversign     *string `json:"oversign"`
}

func (a *api) listDomains(c *call) (int, any, error) {
	ds, err := a.admin.ListDomains(c.ctx, c.actor)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, ds, nil
}

func (a *api) addDomain(c *call) (int, any, error) {
	var req newDomainRequest
	if err := decode(c, &req); err != nil {
		return 0, nil, err
	}
	d, err := a.admin.AddDomain(c.ctx, c.actor, store.Domain{Name: req.Name, AutoActivate: req.AutoActivate, Oversign: req.Oversign})
	if err != nil {
		return 0, nil, err
	}
	c.w.Header().Set("Location", APIPrefix+"/domains/"+url.PathEscape(d.Name))
	return http.StatusCreated, d, nil
}

func (a *api) getDomain(c *call) (int, any, error) {
	d, err := a.admin.GetDomain(c.ctx, c.actor, c.r.PathValue("domain"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, d, nil
}

func (a *api) updateDomain(c *call) (int, any, error) {
	var req domainChange
	if err := decode(c, &req); err != nil {
		return 0, nil, err
	}
	if req.AutoActivate == nil && req.Oversign == nil {
		return a.getDomain(c)
	}
	// Oversign first: it is the change that can be refused, and then
	// nothing has changed.
	var d store.Domain
	var err error
	if req.Oversign != nil {
		if d, err = a.admin.SetOversign(c.ctx, c.actor, c.r.PathValue("domain"), *req.Oversign); err != nil {
			return 0, nil, err
		}
	}
	if req.AutoActivate != nil {
		if d, err = a.admin.SetAutoActivate(c.ctx, c.actor, c.r.PathValue("domain"), *req.AutoActivate); err != nil {
			return 0, nil, err
		}
	}
	return http.StatusOK, d, nil
}

// removeDomain removes a domain; ?force=true removes its keys, users and
// grants with it.
func (a *api) removeDomain(c *call) (int, any, error) {
	force, err := boolQuery(c, "force")
	if err != nil {
		return 0, nil, err
	}
	if err := a.admin.RemoveDomain(c.ctx, c.actor, c.r.PathValue("domain"), force); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

// boolQuery reads an optional true/false query parameter.
func boolQuery(c *call, name string) (bool, error) {
	v := c.r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badRequest(name, "The %s parameter must be true or false.", name)
	}
	return b, nil
}
