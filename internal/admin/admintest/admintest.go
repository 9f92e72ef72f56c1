// Package admintest builds the admin service the way serve does, for tests
// of the packages in front of it (web, relay, cli, lifecycle): one call
// instead of the key source, lifecycle and admin wiring copied into each.
//
// It may import admin, lifecycle, keys, queue and store; nothing imports it
// but tests.
package admintest

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/queue"
	"github.com/dkimd/dkimd/internal/store"
)

// Options are the parts a test gives; Store and Master are required, the
// rest may be zero (as in admin.Options and lifecycle.ServiceOptions).
type Options struct {
	Store    store.Store
	Master   *keys.MasterKey
	DNS      lifecycle.Checker
	Settings lifecycle.Settings
	Queue    queue.Queue
	OpenSSL  *keys.OpenSSL
	Now      func() time.Time
	Rand     io.Reader
	Log      *slog.Logger
}

// Services are the wired services.
type Services struct {
	Admin     *admin.Service
	Lifecycle *lifecycle.Service
	// Keys is the key source the relay signs with; the lifecycle drops
	// keys from it as serve's does.
	Keys *keys.Source
}

// New wires the key source, the lifecycle service and the admin service
// over o, failing the test on error.
func New(t testing.TB, o Options) Services {
	t.Helper()
	src, err := keys.NewSource(keys.SourceOptions{Sealed: o.Store, Master: o.Master, OpenSSL: o.OpenSSL, Log: o.Log})
	if err != nil {
		t.Fatal(err)
	}
	lc, err := lifecycle.NewService(lifecycle.ServiceOptions{
		Store: o.Store, Master: o.Master, DNS: o.DNS, Settings: o.Settings, Signers: src, Now: o.Now, Rand: o.Rand, Log: o.Log,
	})
	if err != nil {
		t.Fatal(err)
	}
	a, err := admin.New(admin.Options{Store: o.Store, Lifecycle: lc, Queue: o.Queue, Now: o.Now, Log: o.Log})
	if err != nil {
		t.Fatal(err)
	}
	return Services{Admin: a, Lifecycle: lc, Keys: src}
}
