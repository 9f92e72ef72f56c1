package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/datadir"
	"github.com/dkimd/dkimd/internal/web"
)

// ServeControl answers the queue commands of cli on dir.ControlSocket()
// (mode 0600), with the JSON API's handlers, until ctx ends.
func ServeControl(ctx context.Context, dir datadir.Layout, a *admin.Service, log *slog.Logger) error {
	path := dir.ControlSocket()
	os.Remove(path) // left by a process that was killed
	ln, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{Handler: web.NewControl(web.Options{Admin: a, Log: log}), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
		os.Remove(path)
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("control_socket_stopped", "err", err)
		}
	}()
	return nil
}
