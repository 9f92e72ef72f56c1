package panel

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/admin/admintest"
)

// The panel offers the token only when one is configured, and makes both
// keys of the form there when asked (issue 16).
func TestPanelGenerateInToken(t *testing.T) {
	e := newPanelEnv(t, panelEnvOptions{})
	b := e.browser()
	csrf := b.login("alice", alicePassword)
	if page := b.get("/domains/a.example/outgoing/dkim"); strings.Contains(page.body, `name="hsm"`) {
		t.Fatal("the token is offered with none configured")
	}
	tok := &admintest.FakeToken{}
	e = newPanelEnv(t, panelEnvOptions{token: tok})
	b = e.browser()
	csrf = b.login("alice", alicePassword)
	b.get("/domains/a.example/outgoing/dkim").want(t, http.StatusOK, `name="hsm"`, "PKCS#11 token <code>test-hsm</code>")
	r := b.post("/domains/a.example/outgoing/dkim", url.Values{"csrf": {csrf}, "length": {"rsa2048"}, "selector": {"h1"}, "ed25519": {"on"}, "hsm": {"on"}}, nil)
	if r.status != http.StatusSeeOther {
		t.Fatalf("generate: %d %.500s", r.status, r.body)
	}
	for _, sel := range []string{"h1", "h1e"} {
		k, err := e.svc.GetKey(e.ctx, admin.CLI(), "a.example", sel)
		if err != nil || !k.Location.PKCS11() || k.Location.Token != "test-hsm" {
			t.Fatalf("key %s: %+v %v", sel, k.Location, err)
		}
	}
	r = b.post("/domains/a.example/outgoing/dkim", url.Values{"csrf": {csrf}, "length": {"rsa2048"}, "selector": {"s2"}}, nil)
	if k, err := e.svc.GetKey(e.ctx, admin.CLI(), "a.example", "s2"); r.status != http.StatusSeeOther || err != nil || k.Location.PKCS11() {
		t.Fatalf("without the box ticked: %d, %+v %v", r.status, k.Location, err)
	}
	tok.SetDown(true)
	b.post("/domains/a.example/outgoing/dkim", url.Values{"csrf": {csrf}, "length": {"rsa2048"}, "selector": {"h3"}, "hsm": {"on"}}, nil).
		want(t, http.StatusServiceUnavailable, "hardware security module")
}
