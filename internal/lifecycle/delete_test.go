package lifecycle_test

import (
	"errors"
	"testing"

	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/store"
)

// TestDeletePendingKey: a pending key made by mistake, never published, is
// deleted outright (audited, selector free again); one whose record was
// seen in DNS, in its history or by the check made at the time, is to be
// revoked instead, and so is any key that ever signed.
func TestDeletePendingKey(t *testing.T) {
	w := newWorld(t, worldOptions{})
	ed := keys.Spec{Algorithm: keys.Ed25519}

	oops := w.generate("oops", ed)
	w.checkOnce() // not found: not seen
	if ok, err := w.lc.Deletable(w.ctx, w.key("oops")); err != nil || !ok {
		t.Fatalf("Deletable(never published) = %v, %v; want true", ok, err)
	}
	if err := w.lc.Delete(w.ctx, cli, w.key("oops")); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := w.db.KeyBySelector(w.ctx, domain, "oops"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the deleted key is still there: %v", err)
	}
	if _, err := w.db.SealedKey(w.ctx, oops.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the deleted key's private key is still there: %v", err)
	}
	audit, err := w.db.ListAudit(w.ctx, store.AuditFilter{Domain: domain})
	if err != nil || len(audit) == 0 || audit[0].Action != "key.delete" || audit[0].Actor != "cli" || audit[0].ObjectID != "oops._domainkey."+domain {
		t.Fatalf("audit after Delete: %+v, %v; want key.delete by cli first", audit, err)
	}
	w.generate("oops", ed) // the selector is free again

	// Published after its last check: the check made on delete sees it.
	late := w.generate("late", ed)
	w.publishKey(late)
	if err := w.lc.Delete(w.ctx, cli, w.key("late")); !errors.Is(err, lifecycle.ErrSeenInDNS) || !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Delete of a key published since its last check: %v, want ErrSeenInDNS", err)
	}
	// Seen once, in its history, then taken down: still not deletable.
	w.publish(map[string]string{"late": ""})
	if ok, _ := w.lc.Deletable(w.ctx, w.key("late")); ok {
		t.Fatal("Deletable(seen in DNS once) = true")
	}
	if err := w.lc.Delete(w.ctx, cli, w.key("late")); !errors.Is(err, lifecycle.ErrSeenInDNS) {
		t.Fatalf("Delete of a key seen once: %v, want ErrSeenInDNS", err)
	}

	// A key that signed is never deleted.
	signed := w.generate("signed", ed)
	if _, err := w.lc.Activate(w.ctx, cli, signed, true); err != nil {
		t.Fatal(err)
	}
	if err := w.lc.Delete(w.ctx, cli, w.key("signed")); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Delete of an active key: %v, want ErrConflict", err)
	}
	if ok, _ := w.lc.Deletable(w.ctx, w.key("signed")); ok {
		t.Fatal("Deletable(active) = true")
	}
}
