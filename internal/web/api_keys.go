package web

import (
	"net/http"
	"net/url"

	"github.com/dkimd/dkimd/internal/dkim"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/store"
)

type newKeyRequest struct {
	Selector string `json:"selector"`
	// Algorithm is "rsa" (the default) or "ed25519".
	Algorithm string `json:"algorithm"`
	// Bits is 1024, 2048 (the default), 3072 or 4096 for RSA.
	Bits int `json:"bits"`
	// Backend is "sealed" (the default) or "pkcs11".
	Backend store.KeyBackend `json:"backend"`
}

type keyStateRequest struct {
	State store.KeyState `json:"state"`
	// Force activates a key whose record was not seen in DNS.
	Force bool `json:"force"`
}

// keyRecordResponse is a key with the record to publish for it in its
// current state; Record is null for an archived key (remove the record).
type keyRecordResponse struct {
	Key    store.Key         `json:"key"`
	Record *dkim.Publication `json:"record"`
}

func (a *api) listKeys(c *call) (int, any, error) {
	ks, err := a.admin.ListKeys(c.ctx, c.actor, c.r.PathValue("domain"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, ks, nil
}

// generateKey makes a key pair; the answer carries the key, its record in
// every form people publish it, and warnings about the kind of key. The
// private half is sealed in the store, or made in the PKCS#11 token, and
// never leaves it.
func (a *api) generateKey(c *call) (int, any, error) {
	var req newKeyRequest
	if err := decode(c, &req); err != nil {
		return 0, nil, err
	}
	alg, err := keys.ParseAlgorithm(req.Algorithm)
	if err != nil {
		return 0, nil, &store.FieldError{Field: "algorithm", Err: err}
	}
	g, err := a.admin.GenerateKey(c.ctx, c.actor, lifecycle.NewKeyRequest{
		Domain:   c.r.PathValue("domain"),
		Selector: req.Selector,
		Spec:     keys.Spec{Algorithm: alg, Bits: req.Bits},
		Backend:  req.Backend,
	})
	if err != nil {
		return 0, nil, err
	}
	c.w.Header().Set("Location", keyPath(g.Key))
	return http.StatusCreated, g, nil
}

func keyPath(k store.Key) string {
	return APIPrefix + "/domains/" + url.PathEscape(k.Domain) + "/keys/" + url.PathEscape(k.Selector)
}

func (a *api) getKey(c *call) (int, any, error) {
	k, err := a.admin.GetKey(c.ctx, c.actor, c.r.PathValue("domain"), c.r.PathValue("selector"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, k, nil
}

func (a *api) deleteKey(c *call) (int, any, error) {
	if err := a.admin.DeleteKey(c.ctx, c.actor, c.r.PathValue("domain"), c.r.PathValue("selector")); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

func (a *api) keyRecord(c *call) (int, any, error) {
	k, p, err := a.admin.KeyRecord(c.ctx, c.actor, c.r.PathValue("domain"), c.r.PathValue("selector"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, keyRecordResponse{Key: k, Record: p}, nil
}

func (a *api) setKeyState(c *call) (int, any, error) {
	var req keyStateRequest
	if err := decode(c, &req); err != nil {
		return 0, nil, err
	}
	k, err := a.admin.SetKeyState(c.ctx, c.actor, c.r.PathValue("domain"), c.r.PathValue("selector"), req.State, req.Force)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, k, nil
}
