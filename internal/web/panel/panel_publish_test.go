package panel

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/dkimd/dkimd/internal/store"
)

// TestPanelPublishing makes a domain delegated from its keys page and
// finds the two CNAME records there, with copy buttons; a bad period is
// refused.
func TestPanelPublishing(t *testing.T) {
	e := newPanelEnv(t, panelEnvOptions{})
	b := e.browser()
	csrf := b.login("alice", alicePassword)
	r := b.get("/domains/a.example/keys")
	r.want(t, http.StatusOK, "Publishing and rotation", "published by hand")
	r = b.post("/domains/a.example/publishing", url.Values{"csrf": {csrf}, "publish": {"delegated"}, "zone": {"dkim.provider.example"}, "rotate_every_days": {"30"}}, nil)
	if r.status != http.StatusSeeOther {
		t.Fatalf("post: %d %.500s", r.status, r.body)
	}
	r = b.get("/domains/a.example/keys?done=publishing")
	r.want(t, http.StatusOK, "rotate every 30 days", "s1._domainkey", "s2._domainkey", `data-copy="cname-target-1"`)
	zone := regexp.MustCompile(`s1\._domainkey\.a\.example\. IN CNAME s1\.[a-z2-7]{16}\.dkim\.provider\.example\.`)
	if !zone.MatchString(r.body) {
		t.Errorf("no zone-file CNAME line on the page")
	}
	// What dkimd does by itself shows on the page.
	if _, err := e.db.AppendAudit(e.ctx, store.AuditEntry{Actor: "system", Action: "key.rotate", ObjectKind: "key", ObjectID: "9",
		Domain: "a.example", Detail: "ed25519 selector s2: scheduled rotation: the next key"}); err != nil {
		t.Fatal(err)
	}
	b.get("/domains/a.example/keys").want(t, http.StatusOK, "Latest rotation steps", "scheduled rotation: the next key")
	// A bad period is refused and changes nothing.
	r = b.post("/domains/a.example/publishing", url.Values{"csrf": {csrf}, "rotate_every_days": {"soon"}}, nil)
	if r.status == http.StatusSeeOther {
		t.Errorf("a bad period was accepted")
	}
	if page := b.get("/domains/a.example/keys"); !strings.Contains(page.body, "rotate every 30 days") {
		t.Errorf("a refused post changed the domain")
	}
}
