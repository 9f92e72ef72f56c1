package queue

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSpareFiles: Enqueue writes into spare files, so msg/ is fsynced once
// per batch of spares, not once per message; every message file ends at
// mode 0600; a restart deletes the unused spares and keeps the messages.
func TestSpareFiles(t *testing.T) {
	e := newEnv(t)
	const n = 3*spareBatch + 5
	before := e.sp.msgSync.count()
	var ids []string
	for i := range n {
		ids = append(ids, e.enqueue("alice@sender.test", []string{"bob@rcpt.test"}, testBody(strings.Repeat("x", i))))
	}
	e.sp.spares.bg.Wait()
	syncs := e.sp.msgSync.count() - before
	if want := uint64(n/spareBatch + 2); syncs > want {
		t.Errorf("%d messages made %d fsyncs of msg/, want at most %d (one a batch of %d spares)", n, syncs, want, spareBatch)
	}
	for _, id := range ids {
		fi, err := os.Stat(filepath.Join(e.dir, "msg", id))
		if err != nil || fi.Mode().Perm() != modeComplete {
			t.Fatalf("msg/%s: %v %v, want mode %v", id, fi.Mode(), err, modeComplete)
		}
	}
	e.open()
	if l := e.list(); len(l) != n {
		t.Fatalf("after a restart %d messages queued, want %d", len(l), n)
	}
	msgs, _ := os.ReadDir(filepath.Join(e.dir, "msg"))
	if len(msgs) != n {
		t.Errorf("after a restart msg/ holds %d files, want the %d messages (no spares)", len(msgs), n)
	}
	if got := len(e.deliverAll()); got != n {
		t.Errorf("delivered %d, want %d", got, n)
	}
}

// TestRestartDeletesCutOffSpares: a spare that a crash left empty, or cut
// off while a message was written into it (still at mode 0200), was never
// acknowledged: Open deletes it without quarantining anything, and keeps a
// complete message beside it.
func TestRestartDeletesCutOffSpares(t *testing.T) {
	e := newEnv(t)
	kept := e.enqueue("alice@sender.test", []string{"bob@rcpt.test"}, testBody("kept"))
	whole, err := os.ReadFile(filepath.Join(e.dir, "msg", kept))
	if err != nil {
		t.Fatal(err)
	}
	cut := map[string][]byte{
		newID(e.clk.Now()): nil,                  // never used
		newID(e.clk.Now()): whole[:len(whole)/2], // cut off mid-body
		newID(e.clk.Now()): whole,                // whole, but the mode not yet changed
	}
	for id, b := range cut {
		p := filepath.Join(e.dir, "msg", id)
		must(t, os.WriteFile(p, b, modeSpare))
		must(t, os.Chmod(p, modeSpare))
	}
	e.open()
	if l := e.list(); len(l) != 1 || l[0].ID != kept {
		t.Fatalf("after a restart: %+v, want only %s", l, kept)
	}
	for id := range cut {
		if _, err := os.Stat(filepath.Join(e.dir, "msg", id)); !os.IsNotExist(err) {
			t.Errorf("spare %s not deleted: %v", id, err)
		}
	}
	if q, _ := os.ReadDir(filepath.Join(e.dir, "quarantine")); len(q) != 0 || e.m.Quarantined.Load() != 0 {
		t.Errorf("quarantine holds %d files (counter %d), want none", len(q), e.m.Quarantined.Load())
	}
}
