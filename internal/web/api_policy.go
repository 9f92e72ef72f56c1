package web

import (
	"net/http"

	"github.com/dkimd/dkimd/internal/policy"
)

type explainRequest struct {
	// User is the outgoing user's name.
	User string `json:"user"`
	// From is the From header field value, as after "From:".
	From string `json:"from"`
}

// explain says what dkimd would sign a message from user with this From
// with, and why, without sending mail.
func (a *api) explain(c *call) (int, any, error) {
	var req explainRequest
	if err := decode(c, &req); err != nil {
		return 0, nil, err
	}
	d, err := a.admin.Explain(c.ctx, c.actor, req.User, req.From)
	if err != nil {
		return 0, nil, err
	}
	if d.Sign == nil {
		d.Sign = []policy.Signature{} // a list, even when empty
	}
	return http.StatusOK, d, nil
}
