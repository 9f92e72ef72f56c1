package panel_test

import (
	"context"
	"log"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/store/sqlite"
	"github.com/dkimd/dkimd/internal/web"
	"github.com/dkimd/dkimd/internal/web/panel"
)

// ExampleNewSite serves the API and the control panel together, as dkimd
// serve does: one handler, so that failed logins at either count against
// the same limits.
func ExampleNewSite() {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, "dkimd.db", sqlite.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	mk, _, err := keys.LoadOrCreateMasterKey("master.key")
	if err != nil {
		log.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	lc, err := lifecycle.NewService(lifecycle.ServiceOptions{Store: db, Master: mk, Log: logger})
	if err != nil {
		log.Fatal(err)
	}
	svc, err := admin.New(admin.Options{Store: db, Lifecycle: lc, Log: logger})
	if err != nil {
		log.Fatal(err)
	}
	h := panel.NewSite(web.Options{
		Admin:       svc,
		Log:         logger,
		LoginLimits: web.LoginLimits{PerPair: 5},
	})
	mux := http.NewServeMux()
	mux.Handle("/", h) // the API under web.APIPrefix, the panel at /
	srv := &http.Server{Addr: "127.0.0.1:8080", Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
