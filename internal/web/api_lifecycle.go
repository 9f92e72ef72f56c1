package web

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/store"
)

// checkTimeout bounds a check run on request: dnscheck tries each server
// twice with its own timeout, so a dead name server costs seconds, not
// minutes.
const checkTimeout = 30 * time.Second

type rotateRequest struct {
	// Selector of the new key; empty means a date-based one.
	Selector string `json:"selector"`
	// Algorithm is "rsa" or "ed25519"; empty means that of the key
	// replaced.
	Algorithm string `json:"algorithm"`
	// Bits of an RSA key; zero means those of the key replaced, at least
	// 2048.
	Bits int `json:"bits"`
	// Backend is "sealed", "pkcs11", or empty for where the key replaced
	// lives.
	Backend store.KeyBackend `json:"backend"`
	// Replaces is the selector of the active key to replace; empty means
	// the domain's only active key (of Algorithm, when given).
	Replaces string `json:"replaces"`
}

// keyStatus gives every key of the domain with its age, last DNS check,
// alert, warnings and safe-to-revoke time, under the service's lifecycle
// policy.
func (a *api) keyStatus(c *call) (int, any, error) {
	sts, err := a.admin.KeyStatus(c.ctx, c.actor, c.r.PathValue("domain"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, sts, nil
}

// keyChecks gives a key's stored DNS checks, newest first; ?limit= caps
// them (store.DefaultDNSCheckLimit when absent).
func (a *api) keyChecks(c *call) (int, any, error) {
	limit := 0
	if v := c.r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.MaxDNSCheckLimit {
			return 0, nil, badRequest("limit", "The limit parameter must be a whole number from 1 to %d.", store.MaxDNSCheckLimit)
		}
		limit = n
	}
	cs, err := a.admin.CheckHistory(c.ctx, c.actor, c.r.PathValue("domain"), c.r.PathValue("selector"), limit)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, cs, nil
}

// checkKey checks the key's record in DNS now and answers the outcome,
// which is kept in its history. A record that is wrong is still a 200:
// the check ran; ok and status say what it found.
func (a *api) checkKey(c *call) (int, any, error) {
	ctx, cancel := context.WithTimeout(c.ctx, checkTimeout)
	defer cancel()
	res, err := a.admin.CheckKeyNow(ctx, c.actor, c.r.PathValue("domain"), c.r.PathValue("selector"))
	if err != nil {
		return 0, nil, err
	}
	c.log.Info("dns_checked", "domain", c.r.PathValue("domain"), "selector", c.r.PathValue("selector"), "status", res.Status)
	return http.StatusOK, res, nil
}

// rotateKey makes a pending key to replace an active one; the answer is
// the new key with its record, and the key it replaces.
func (a *api) rotateKey(c *call) (int, any, error) {
	var req rotateRequest
	if err := decode(c, &req); err != nil {
		return 0, nil, err
	}
	var alg keys.Algorithm
	if req.Algorithm != "" {
		var err error
		if alg, err = keys.ParseAlgorithm(req.Algorithm); err != nil {
			return 0, nil, &store.FieldError{Field: "algorithm", Err: err}
		}
	}
	rot, err := a.admin.RotateKey(c.ctx, c.actor, lifecycle.RotateRequest{
		Domain:   c.r.PathValue("domain"),
		Selector: req.Selector,
		Spec:     keys.Spec{Algorithm: alg, Bits: req.Bits},
		Replaces: req.Replaces,
		Backend:  req.Backend,
	})
	if err != nil {
		return 0, nil, err
	}
	c.w.Header().Set("Location", keyPath(rot.Key))
	return http.StatusCreated, rot, nil
}
