package panel

import (
	"bytes"
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/store"
)

// Test helpers the API tests (package web) have too.

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// seedTenants gives the API and panel tests their two tenants: domains
// a.example and b.example, an Ed25519 key a1 and b1 in each, and an
// IP-authenticated user in each.
func seedTenants(t *testing.T, ctx context.Context, svc *admin.Service) {
	t.Helper()
	cli := admin.CLI()
	for _, d := range []string{"a.example", "b.example"} {
		if _, err := svc.AddDomain(ctx, cli, store.Domain{Name: d}); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range [][2]string{{"a.example", "a1"}, {"b.example", "b1"}} {
		if _, err := svc.GenerateKey(ctx, cli, lifecycle.NewKeyRequest{Domain: k[0], Selector: k[1], Spec: keys.Spec{Algorithm: keys.Ed25519}}); err != nil {
			t.Fatal(err)
		}
	}
	ip := store.AuthIP
	for _, u := range [][3]string{{"ua@a.example", "a.example", "192.0.2.1"}, {"ub@b.example", "b.example", "192.0.2.2"}} {
		nets := []string{u[2]}
		if _, err := svc.AddUser(ctx, cli, u[0], u[1], admin.UserChange{Auth: &ip, Networks: &nets}); err != nil {
			t.Fatal(err)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
