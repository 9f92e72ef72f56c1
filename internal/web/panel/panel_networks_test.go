package panel

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/store"
)

// TestPanelUserNetworks: an admin's users page reports users of different
// domains whose networks overlap, and a domain admin's does not (it would
// name the other tenant); a user on every address carries a warning; the
// override is a checkbox offered to admins only, refused from others.
func TestPanelUserNetworks(t *testing.T) {
	e := newPanelEnv(t, panelEnvOptions{})
	ip := store.AuthIP
	for _, u := range []struct{ name, domain, network string }{
		{"shared@b.example", "b.example", "192.0.2.0/24"}, // around ua@a.example's 192.0.2.1
		{"any@a.example", "a.example", "0.0.0.0/0"},
	} {
		nets := []string{u.network}
		if _, err := e.svc.AddUser(e.ctx, admin.CLI(), u.name, u.domain, admin.UserChange{Auth: &ip, Networks: &nets, AllowAnyNetwork: true}); err != nil {
			t.Fatal(err)
		}
	}
	const usersPath = "/domains/a.example/outgoing/users"

	t.Run("admin", func(t *testing.T) {
		b := e.browser()
		csrf := b.login("root", rootPassword)
		b.get(usersPath).want(t, http.StatusOK, `id="network-overlaps"`, "shared@b.example", "ua@a.example", "any address")
		b.get(usersPath+"/new").want(t, http.StatusOK, `name="allow_any_network"`)
		b.get(usersPath+"/any@a.example").want(t, http.StatusOK, `id="any-network-warning"`)
		form := url.Values{"csrf": {csrf}, "name": {"open@a.example"}, "auth": {"ip"}, "networks": {"::/0"}, "enabled": {"on"}}
		b.post(usersPath+"/new", form, nil).want(t, http.StatusUnprocessableEntity, `id="networks-error"`, "every address")
		form.Set("allow_any_network", "on")
		if r := b.post(usersPath+"/new", form, nil); r.status != http.StatusSeeOther {
			t.Fatalf("with the override: %d %.500s", r.status, r.body)
		}
	})

	t.Run("domain admin", func(t *testing.T) {
		b := e.browser()
		csrf := b.login("alice", alicePassword)
		p := b.get(usersPath)
		p.want(t, http.StatusOK, "any address")
		for _, leak := range []string{"network-overlaps", "b.example"} {
			if strings.Contains(p.body, leak) {
				t.Errorf("her users page shows %q", leak)
			}
		}
		if p := b.get(usersPath + "/new"); strings.Contains(p.body, "allow_any_network") {
			t.Error("the override is offered to a domain admin")
		}
		before := e.snapshot()
		form := url.Values{"csrf": {csrf}, "name": {"w@a.example"}, "auth": {"ip"}, "networks": {"0.0.0.0/0"}, "enabled": {"on"}, "allow_any_network": {"on"}}
		b.post(usersPath+"/new", form, nil).want(t, http.StatusForbidden)
		form.Del("allow_any_network")
		b.post(usersPath+"/new", form, nil).want(t, http.StatusUnprocessableEntity, `id="networks-error"`)
		form.Set("networks", "192.0.2.9")
		p = b.post(usersPath+"/new", form, nil)
		p.want(t, http.StatusUnprocessableEntity, `id="networks-error"`, "another domain")
		if strings.Contains(p.body, "shared@") || strings.Contains(p.body, "b.example") {
			t.Errorf("the refusal names the other tenant: %.2000s", p.body)
		}
		if e.snapshot() != before {
			t.Error("a refused post changed the store")
		}
	})
}
