package relay_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/dkimd/dkimd/internal/dkim"
	"github.com/dkimd/dkimd/internal/store"
)

// TestRelayOversignsAsTheDomainChooses sends one message per oversigning
// choice of the signing domain and checks what a field added after the
// relay signed does to every signature (RFC 6376 §8.15): by default a
// Subject, Reply-To or To added on the way breaks them; with from-only
// only a From does, as before.
func TestRelayOversignsAsTheDomainChooses(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	tests := []struct {
		oversign string
		added    map[string]dkim.Status
	}{
		{store.OversignDefault, map[string]dkim.Status{
			"From: m@evil.example": dkim.StatusFail, "Subject: Urgent": dkim.StatusFail,
			"Reply-To: m@evil.example": dkim.StatusFail, "To: victim@example.org": dkim.StatusFail,
			"Content-Type: text/html": dkim.StatusFail,
		}},
		{"from-only", map[string]dkim.Status{
			"From: m@evil.example": dkim.StatusFail, "Subject: Urgent": dkim.StatusPass,
			"Reply-To: m@evil.example": dkim.StatusPass,
		}},
		{"Subject", map[string]dkim.Status{
			"From: m@evil.example": dkim.StatusPass, "Subject: Urgent": dkim.StatusFail,
		}},
	}
	for i, tt := range tests {
		d, err := f.db.GetDomain(ctx, "tenant-a.example")
		if err != nil {
			t.Fatal(err)
		}
		d.Oversign = tt.oversign
		if _, err := f.db.UpdateDomain(ctx, d); err != nil {
			t.Fatal(err)
		}
		c := f.login("alice", pwAlice)
		if code, m := c.send("alice@tenant-a.example", []string{"bob@elsewhere.example"}, message("From: alice@tenant-a.example")); code != 250 {
			t.Fatalf("oversign %q: DATA %d %s", tt.oversign, code, m)
		}
		ms := f.q.Messages()
		body := ms[i].Body
		if ds := f.verify(body); len(ds) != 2 {
			t.Fatalf("oversign %q: %d passing signatures, want 2", tt.oversign, len(ds))
		}
		at := bytes.Index(body, []byte("From: alice"))
		for line, want := range tt.added {
			forged := string(body[:at]) + line + "\r\n" + string(body[at:])
			res, err := dkim.Verify(ctx, strings.NewReader(forged), &dkim.VerifyOptions{Resolver: f.resolver(), Now: f.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				if r.Status != want {
					t.Errorf("oversign %q, %q added after signing: s=%s %s, want %s", tt.oversign, line, r.Signature.Selector, r.Status, want)
				}
			}
		}
	}
}
