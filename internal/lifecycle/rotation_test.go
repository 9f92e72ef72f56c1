package lifecycle_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/dkim"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/store"
)

// TestRotationEndToEnd rotates a domain's key with DNS changing as an
// administrator publishes, the monitor promoting and archiving, and at
// every step signs a message the way the relay would at that moment and
// verifies it against what DNS serves at that moment.
func TestRotationEndToEnd(t *testing.T) {
	w := newWorld(t, worldOptions{autoActivate: true})
	ed := keys.Spec{Algorithm: keys.Ed25519}

	// The first key: pending until published, active once seen everywhere.
	first := w.generate("first", ed)
	w.checkOnce()
	w.wantStates("unpublished", map[string]store.KeyState{"first": store.KeyPending})
	w.publishKey(first)
	w.checkOnce()
	w.wantStates("published", map[string]store.KeyState{"first": store.KeyActive})
	w.signAndVerify("step 1: old key active", "first")

	// Rotation: a pending key on a date-based selector, linked to the key
	// it replaces.
	w.clk.Advance(24 * time.Hour)
	rot, err := w.lc.Rotate(w.ctx, cli, lifecycle.RotateRequest{Domain: domain})
	if err != nil {
		t.Fatal(err)
	}
	sel := rot.Key.Selector
	if sel != "s202601" || rot.Replaces == nil || rot.Replaces.Selector != "first" || rot.Key.Replaces != first.ID || rot.Key.Algorithm != keys.Ed25519 {
		t.Fatalf("RotateKey = %s replacing %v (link %d), want s202601 replacing first", sel, rot.Replaces, rot.Key.Replaces)
	}
	if _, err := w.lc.Rotate(w.ctx, cli, lifecycle.RotateRequest{Domain: domain}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second rotation while one is pending: %v, want ErrConflict", err)
	}
	w.checkOnce()
	w.wantStates("rotation, unpublished", map[string]store.KeyState{"first": store.KeyActive, sel: store.KeyPending})
	w.signAndVerify("step 2a: new key pending, not published", "first")

	// Published on one name server only: propagating, not yet everywhere.
	p, err := lifecycle.Record(rot.Key)
	if err != nil {
		t.Fatal(err)
	}
	w.publishOn([]string{"ns1.example.com."}, map[string]string{sel: p.Value})
	w.checkOnce()
	w.wantStates("propagating", map[string]store.KeyState{"first": store.KeyActive, sel: store.KeyPending})
	if c := lastCheck(t, w, sel); c.Status != "propagating" || c.OK {
		t.Fatalf("check while propagating: %+v", c)
	}
	w.signAndVerify("step 2b: new key on some servers", "first")

	// Everywhere, not yet checked: still the old key signs.
	w.publish(map[string]string{sel: p.Value})
	oldMsg := w.signAndVerify("step 2c: new key published, pending", "first")

	// The monitor sees it everywhere: new active, old retired, in one
	// transaction.
	w.clk.Advance(time.Hour)
	promoted := w.clk.Now()
	w.checkOnce()
	w.wantStates("promoted", map[string]store.KeyState{"first": store.KeyRetired, sel: store.KeyActive})
	if old, nu := w.key("first"), w.key(sel); !old.Retired.Equal(promoted) || !nu.Activated.Equal(promoted) {
		t.Fatalf("retired at %v and activated at %v, want both at %v", old.Retired, nu.Activated, promoted)
	}
	w.signAndVerify("step 3: new key active, old retired", sel)
	// A message signed with the old key just before still verifies: the
	// retired record stays published.
	for _, r := range w.verify(oldMsg) {
		if r.Status != dkim.StatusPass {
			t.Fatalf("old signature after retirement: %s %v", r.Status, r.Err)
		}
	}

	// Safe to revoke once x= and the queue lifetime have passed.
	safe := promoted.Add(lifecycle.DefaultSignatureLifetime + lifecycle.DefaultQueueLifetime)
	st := status(t, w, "first")
	if !st.SafeToRevoke.Equal(safe) || hasWarning(st, lifecycle.WarnSafeToRevoke) {
		t.Fatalf("status of the retired key: safe %v (want %v), warnings %+v", st.SafeToRevoke, safe, st.Warnings)
	}
	w.clk.Advance(safe.Sub(w.clk.Now()) - time.Minute)
	if _, _, err := w.lc.Revoke(w.ctx, cli, w.key("first"), false); !errors.Is(err, lifecycle.ErrTooEarly) {
		t.Fatalf("revoke a minute early: %v, want ErrTooEarly", err)
	}
	w.clk.Advance(time.Minute)
	if st := status(t, w, "first"); !hasWarning(st, lifecycle.WarnSafeToRevoke) {
		t.Fatalf("no safe-to-revoke warning at %v: %+v", w.clk.Now(), st.Warnings)
	}
	k, rec, err := w.lc.Revoke(w.ctx, cli, w.key("first"), false)
	if err != nil {
		t.Fatal(err)
	}
	if k.State != store.KeyRevoked || !strings.HasSuffix(rec.Value, "p=") {
		t.Fatalf("RevokeKey = %s, record %q, want revoked with an empty p=", k.State, rec.Value)
	}
	w.signAndVerify("step 4a: old revoked, record not yet changed", sel)
	w.checkOnce()
	w.wantStates("revoked, key still in DNS", map[string]store.KeyState{"first": store.KeyRevoked})
	w.publishKey(k)
	w.signAndVerify("step 4b: old revoked, empty p= published", sel)

	// The monitor sees the empty p= and archives the key.
	w.checkOnce()
	w.wantStates("archived", map[string]store.KeyState{"first": store.KeyArchived, sel: store.KeyActive})
	w.publishKey(w.key("first")) // removes the record
	w.signAndVerify("step 5: old archived, record removed", sel)

	// The audit log tells the story, the automatic steps as dkimd's own.
	es, err := w.db.ListAudit(w.ctx, store.AuditFilter{Domain: domain, Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	var story []string
	for i := len(es) - 1; i >= 0; i-- {
		if strings.HasPrefix(es[i].Action, "key.") {
			story = append(story, es[i].Actor+" "+es[i].Action+" "+strings.SplitN(es[i].ObjectID, ".", 2)[0]+" "+strings.SplitN(es[i].Detail, " (", 2)[0])
		}
	}
	want := []string{
		"cli key.create first ed25519 selector first",
		"system key.state first pending → active",
		"cli key.rotate " + sel + " ed25519 selector " + sel + " replacing first",
		"system key.state " + sel + " pending → active",
		"system key.state first active → retired",
		"cli key.state first retired → revoked",
		"system key.state first revoked → archived",
	}
	if strings.Join(story, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit:\n%s\nwant:\n%s", strings.Join(story, "\n"), strings.Join(want, "\n"))
	}
}

func lastCheck(t *testing.T, w *world, selector string) store.DNSCheck {
	t.Helper()
	cs, err := w.lc.History(w.ctx, w.key(selector), 1)
	if err != nil || len(cs) != 1 {
		t.Fatalf("CheckHistory(%s): %v %v", selector, cs, err)
	}
	return cs[0]
}

func status(t *testing.T, w *world, selector string) lifecycle.Status {
	t.Helper()
	sts, err := w.lc.Status(w.ctx, domain)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range sts {
		if st.Key.Selector == selector {
			return st
		}
	}
	t.Fatalf("KeyStatus has no key %s", selector)
	return lifecycle.Status{}
}

func hasWarning(st lifecycle.Status, code string) bool {
	for _, w := range st.Warnings {
		if w.Code == code {
			return true
		}
	}
	return false
}
