package storetest

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/store"
)

func testAudit(t *testing.T, e *env) {
	start := e.clk.Now()
	add := func(actor, action, domain string) store.AuditEntry {
		t.Helper()
		e.clk.Advance(time.Minute)
		got, err := e.s.AppendAudit(e.ctx, store.AuditEntry{Actor: actor, Remote: "192.0.2.1", Action: action,
			ObjectKind: "key", ObjectID: "1", Domain: domain, Detail: "pending → active"})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	first := add("root", "key.create", "a.example")
	if first.ID == 0 || !first.Time.Equal(start.Add(time.Minute)) || first.Detail != "pending → active" {
		t.Fatalf("AppendAudit = %+v", first)
	}
	add("root", "key.state", "A.Example")
	add("tenant", "user.add", "b.example")
	add("tenant", "key.state", "b.example")
	last := add("cli", "domain.add", "")
	// An entry with its own time keeps it.
	at := start.Add(-24 * time.Hour)
	old, err := e.s.AppendAudit(e.ctx, store.AuditEntry{Time: at, Actor: "system", Action: "key.state"})
	if err != nil {
		t.Fatal(err)
	}
	if !old.Time.Equal(at) || old.ID <= last.ID {
		t.Fatalf("AppendAudit with time = %+v", old)
	}

	summary := func(f store.AuditFilter) string {
		t.Helper()
		es, err := e.s.ListAudit(e.ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range es {
			out = append(out, e.Actor+":"+e.Action)
		}
		return strings.Join(out, " ")
	}
	tests := []struct {
		name string
		f    store.AuditFilter
		want string
	}{
		{"all, newest first", store.AuditFilter{}, "system:key.state cli:domain.add tenant:key.state tenant:user.add root:key.state root:key.create"},
		{"domain", store.AuditFilter{Domain: "a.example"}, "root:key.state root:key.create"},
		{"domain, other spelling", store.AuditFilter{Domain: "A.EXAMPLE."}, "root:key.state root:key.create"},
		{"actor", store.AuditFilter{Actor: "tenant"}, "tenant:key.state tenant:user.add"},
		{"action", store.AuditFilter{Action: "key.state"}, "system:key.state tenant:key.state root:key.state"},
		{"object kind", store.AuditFilter{ObjectKind: "user"}, ""},
		{"since", store.AuditFilter{Since: start.Add(4 * time.Minute)}, "cli:domain.add tenant:key.state"},
		{"limit", store.AuditFilter{Limit: 2}, "system:key.state cli:domain.add"},
		{"before (next page)", store.AuditFilter{Before: last.ID, Limit: 2}, "tenant:key.state tenant:user.add"},
		{"combined", store.AuditFilter{Actor: "root", Action: "key.state", Domain: "a.example"}, "root:key.state"},
		{"no match", store.AuditFilter{Actor: "nobody"}, ""},
	}
	for _, tc := range tests {
		if got := summary(tc.f); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}

	// The default limit applies.
	for i := range store.DefaultAuditLimit {
		if _, err := e.s.AppendAudit(e.ctx, store.AuditEntry{Actor: "bulk", Action: fmt.Sprint("n", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if es, _ := e.s.ListAudit(e.ctx, store.AuditFilter{}); len(es) != store.DefaultAuditLimit {
		t.Fatalf("ListAudit gave %d entries, want the default limit %d", len(es), store.DefaultAuditLimit)
	}

	_, err = e.s.AppendAudit(e.ctx, store.AuditEntry{Action: "x"})
	wantField(t, "AppendAudit without actor", err, "actor")
	_, err = e.s.AppendAudit(e.ctx, store.AuditEntry{Actor: "x"})
	wantField(t, "AppendAudit without action", err, "action")
}

// testAuditAppendOnly checks the contract: a backend offers no way to change
// or remove an audit entry. Backends test their database-level guard (a
// trigger, a revoked privilege) in their own tests.
func testAuditAppendOnly(t *testing.T, e *env) {
	for _, typ := range []reflect.Type{reflect.TypeOf(e.s), reflect.TypeFor[store.Store]()} {
		for m := range typ.Methods() {
			n := strings.ToLower(m.Name)
			if strings.Contains(n, "audit") && m.Name != "AppendAudit" && m.Name != "ListAudit" {
				t.Errorf("%v has method %s: the audit log is append-only", typ, m.Name)
			}
		}
	}
	a, err := e.s.AppendAudit(e.ctx, store.AuditEntry{Actor: "root", Action: "x"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.s.AppendAudit(e.ctx, store.AuditEntry{Actor: "root", Action: "y"})
	if err != nil {
		t.Fatal(err)
	}
	if b.ID <= a.ID {
		t.Fatalf("IDs do not increase: %d then %d", a.ID, b.ID)
	}
}
