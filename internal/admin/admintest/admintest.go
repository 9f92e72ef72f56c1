// Package admintest builds the admin service the way serve does, for tests
// of the packages in front of it (web, relay, cli, lifecycle): one call
// instead of the key source, lifecycle and admin wiring copied into each.
//
// It may import admin, lifecycle, keys, keys/pkcs11, queue and store; nothing imports it
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
	// Token is the PKCS#11 token keys may live in; nil means none.
	Token Token
	Now   func() time.Time
	Rand  io.Reader
	Log   *slog.Logger
}

// Token is a PKCS#11 token as the key source and the lifecycle use it
// (*pkcs11.Token is one).
type Token interface {
	keys.Token
	lifecycle.Token
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
	ko := keys.SourceOptions{Sealed: o.Store, Master: o.Master, OpenSSL: o.OpenSSL, Log: o.Log}
	lo := lifecycle.ServiceOptions{
		Store: o.Store, Master: o.Master, DNS: o.DNS, Settings: o.Settings, Now: o.Now, Rand: o.Rand, Log: o.Log,
	}
	if o.Token != nil {
		ko.Token, lo.Token = o.Token, o.Token
	}
	src, err := keys.NewSource(ko)
	if err != nil {
		t.Fatal(err)
	}
	lo.Signers = src
	lc, err := lifecycle.NewService(lo)
	if err != nil {
		t.Fatal(err)
	}
	a, err := admin.New(admin.Options{Store: o.Store, Lifecycle: lc, Queue: o.Queue, Now: o.Now, Log: o.Log})
	if err != nil {
		t.Fatal(err)
	}
	return Services{Admin: a, Lifecycle: lc, Keys: src}
}
