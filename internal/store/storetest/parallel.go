package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/dkimd/dkimd/internal/store"
)

// testParallelWriters runs writers side by side, as dkimd serve and the CLI
// do: none may fail for being concurrent, and nothing may be lost.
func testParallelWriters(t *testing.T, e *env) {
	const writers, each = 6, 5
	// Make the keys first: generating is slow and not what is tested.
	nks := make([][]store.NewKey, writers)
	for w := range writers {
		e.domain(fmt.Sprintf("w%d.example", w))
		for i := range each {
			nks[w] = append(nks[w], e.newKey(fmt.Sprintf("w%d.example", w), fmt.Sprintf("s%d", i)))
		}
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			dom := fmt.Sprintf("w%d.example", w)
			for i := range each {
				k, err := e.s.CreateKey(e.ctx, nks[w][i])
				if err != nil {
					t.Errorf("CreateKey: %v", err)
					return
				}
				if _, err := e.s.SetKeyState(e.ctx, k.ID, store.KeyActive); err != nil {
					t.Errorf("SetKeyState: %v", err)
				}
				if _, err := e.s.AddUser(e.ctx, store.OutgoingUser{Name: fmt.Sprintf("u%d-%d", w, i), Domain: dom,
					Auth: store.AuthIP, Networks: mustPrefixes(t, fmt.Sprintf("10.%d.%d.0/24", w, i))}); err != nil {
					t.Errorf("AddUser: %v", err)
				}
				if _, err := e.s.AppendAudit(e.ctx, store.AuditEntry{Actor: "w", Action: "key.create", Domain: dom}); err != nil {
					t.Errorf("AppendAudit: %v", err)
				}
				if _, err := e.s.ActiveKeys(e.ctx, dom); err != nil {
					t.Errorf("ActiveKeys: %v", err)
				}
			}
		})
	}
	// Racing for one name: exactly one wins, the others get ErrExists.
	var mu sync.Mutex
	var won, lost int
	for range writers {
		wg.Go(func() {
			_, err := e.s.AddDomain(e.ctx, store.Domain{Name: "contested.example"})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case errors.Is(err, store.ErrExists):
				lost++
			default:
				t.Errorf("AddDomain: %v", err)
			}
		})
	}
	wg.Wait()
	if won != 1 || lost != writers-1 {
		t.Fatalf("contested domain: %d added, %d refused; want 1 and %d", won, lost, writers-1)
	}
	for w := range writers {
		dom := fmt.Sprintf("w%d.example", w)
		ks, err := e.s.ActiveKeys(e.ctx, dom)
		if err != nil || len(ks) != each {
			t.Errorf("%s: %d active keys (%v), want %d", dom, len(ks), err, each)
		}
		us, err := e.s.ListUsers(e.ctx, dom)
		if err != nil || len(us) != each {
			t.Errorf("%s: %d users (%v), want %d", dom, len(us), err, each)
		}
	}
	es, err := e.s.ListAudit(e.ctx, store.AuditFilter{Actor: "w", Limit: store.MaxAuditLimit})
	if err != nil || len(es) != writers*each {
		t.Fatalf("%d audit entries (%v), want %d", len(es), err, writers*each)
	}
}
