package web

import (
	"net/http"
	"strings"
	"testing"
)

// TestAPIPublishing puts a domain in delegated mode through the API, reads
// its two CNAMEs, and sets up DNS UPDATE without the secret ever coming
// back; a domain admin reaches only their own domain.
func TestAPIPublishing(t *testing.T) {
	e := newEnv(t)
	e.call(roleDomA, "GET", "/api/v1/domains/a.example/delegation", nil).want(t, http.StatusConflict, codeConflict, "")
	e.call(roleDomA, "PUT", "/api/v1/domains/a.example/publishing", map[string]any{"publish": "delegated"}).
		want(t, http.StatusUnprocessableEntity, codeInvalid, "zone")
	r := e.call(roleDomA, "PUT", "/api/v1/domains/a.example/publishing", map[string]any{"publish": "delegated", "zone": "dkim.provider.example", "rotate_every_days": 30})
	r.want(t, http.StatusOK, "", "")
	var d struct {
		Publish       string `json:"publish"`
		DelegatedName string `json:"delegated_name"`
		RotateEvery   int64  `json:"rotate_every_ns"`
	}
	r.into(t, &d)
	if d.Publish != "delegated" || !strings.HasSuffix(d.DelegatedName, ".dkim.provider.example") || d.RotateEvery != 30*24*3600*1e9 {
		t.Fatalf("domain %+v", d)
	}
	r = e.call(roleDomA, "GET", "/api/v1/domains/a.example/delegation", nil)
	r.want(t, http.StatusOK, "", "")
	var recs []struct{ Selector, Name, Host, Target, Zone string }
	r.into(t, &recs)
	if len(recs) != 2 || recs[1].Name != "s2._domainkey.a.example" || recs[1].Target != "s2."+d.DelegatedName ||
		recs[1].Zone != "s2._domainkey.a.example. IN CNAME s2."+d.DelegatedName+"." {
		t.Fatalf("records %+v", recs)
	}
	e.call(roleDomB, "GET", "/api/v1/domains/a.example/delegation", nil).want(t, http.StatusNotFound, codeNotFound, "")
	e.call(roleDomB, "PUT", "/api/v1/domains/a.example/publishing", map[string]any{"publish": "manual"}).want(t, http.StatusNotFound, codeNotFound, "")

	const secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTMyYg=="
	r = e.call(roleDomB, "PUT", "/api/v1/domains/b.example/publishing", map[string]any{"publish": "update", "update_server": "192.0.2.10:53", "tsig_name": "dkimd", "tsig_secret": secret})
	r.want(t, http.StatusOK, "", "")
	if strings.Contains(string(r.body), secret) {
		t.Errorf("the TSIG secret came back: %s", r.body)
	}
	e.call(roleDomB, "PUT", "/api/v1/domains/b.example/publishing", map[string]any{"publish": "update", "tsig_secret": "not base64!"}).
		want(t, http.StatusUnprocessableEntity, codeInvalid, "tsig_secret")
	r = e.call(roleAdmin, "GET", "/api/v1/audit?domain=b.example", nil)
	if strings.Contains(string(r.body), secret) || !strings.Contains(string(r.body), "domain.publish") {
		t.Errorf("audit: %s", r.body)
	}
}
