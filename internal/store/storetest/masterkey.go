package storetest

import (
	"bytes"
	"errors"
	"sync"
	"testing"

	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/store"
)

// testMasterKeyCheck: a fresh store has no check value; the first one
// stored stays, storing it again is harmless, and another is refused, also
// when processes race to store theirs.
func testMasterKeyCheck(t *testing.T, e *env) {
	if v, err := e.s.MasterKeyCheck(e.ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("fresh store: MasterKeyCheck = %x, %v; want ErrNotFound", v, err)
	}
	if err := e.s.SetMasterKeyCheck(e.ctx, nil); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("empty value: %v, want ErrInvalid", err)
	}
	other, err := keys.NewMasterKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	// Racing writers with two values: one value wins; writers of the
	// winning value succeed, the others get ErrConflict.
	values := [][]byte{e.mk.CheckValue(), other.CheckValue()}
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() { errs[i] = e.s.SetMasterKeyCheck(e.ctx, values[i%2]) })
	}
	wg.Wait()
	got, err := e.s.MasterKeyCheck(e.ctx)
	if err != nil {
		t.Fatalf("MasterKeyCheck after storing: %v", err)
	}
	winner := -1
	for i, v := range values {
		if bytes.Equal(got, v) {
			winner = i
		}
	}
	if winner < 0 {
		t.Fatalf("stored %x, which no writer wrote", got)
	}
	for i, err := range errs {
		switch {
		case i%2 == winner && err != nil:
			t.Errorf("writer %d of the stored value: %v", i, err)
		case i%2 != winner && !errors.Is(err, store.ErrConflict):
			t.Errorf("writer %d of the other value: %v, want ErrConflict", i, err)
		}
	}
	if err := e.s.SetMasterKeyCheck(e.ctx, values[1-winner]); !errors.Is(err, store.ErrConflict) {
		t.Errorf("replacing the value: %v, want ErrConflict", err)
	}
	if err := e.s.SetMasterKeyCheck(e.ctx, values[winner]); err != nil {
		t.Errorf("storing the same value again: %v", err)
	}
	if again, err := e.s.MasterKeyCheck(e.ctx); err != nil || !bytes.Equal(again, got) {
		t.Errorf("value changed to %x, %v", again, err)
	}
}
