package web

import (
	"net/http"
	"time"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/store"
)

// publishingRequest changes how a domain's records reach DNS; absent
// fields stay as they are.
type publishingRequest struct {
	Publish store.PublishMode `json:"publish"`
	// Zone is dkimd's delegated zone, to make a domain delegated.
	Zone string `json:"zone"`
	// RotateEveryDays sets the rotation period in days.
	RotateEveryDays int    `json:"rotate_every_days"`
	UpdateServer    string `json:"update_server"`
	TSIGName        string `json:"tsig_name"`
	// TSIGSecret is the base64 secret; it is sealed and never returned.
	TSIGSecret string `json:"tsig_secret"`
}

// setPublishing is PUT .../publishing.
func (a *api) setPublishing(c *call) (int, any, error) {
	var req publishingRequest
	if err := decode(c, &req); err != nil {
		return 0, nil, err
	}
	if req.RotateEveryDays < 0 {
		return 0, nil, store.Invalid("rotate_every_days", "negative")
	}
	d, err := a.admin.SetPublishing(c.ctx, c.actor, c.r.PathValue("domain"), admin.PublishRequest{
		Mode: req.Publish, Zone: req.Zone, RotateEvery: time.Duration(req.RotateEveryDays) * 24 * time.Hour,
		UpdateServer: req.UpdateServer, TSIGName: req.TSIGName, TSIGSecret: []byte(req.TSIGSecret),
	})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, d, nil
}

// delegation is GET .../delegation: the two CNAME records a delegated
// domain's customer creates.
func (a *api) delegation(c *call) (int, any, error) {
	_, recs, err := a.admin.DelegationRecords(c.ctx, c.actor, c.r.PathValue("domain"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, recs, nil
}
