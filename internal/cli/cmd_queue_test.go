package cli

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dkimd/dkimd/internal/admin/admintest"
	"github.com/dkimd/dkimd/internal/datadir"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/queue"
	"github.com/dkimd/dkimd/internal/server"
	"github.com/dkimd/dkimd/internal/store/sqlite"
)

// TestQueueControlSocketErrors is issue 11 point 6: "dkimd queue" asks a
// running serve over the control socket, which the JSON API's handlers
// serve; an error comes back as the API's JSON error, and the command
// prints its sentence and exits 1, as it does when it opens the spool
// itself.
func TestQueueControlSocketErrors(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "test.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	mk, err := keys.NewMasterKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	spool, err := queue.OpenSpool(filepath.Join(dir, "spool"), queue.SpoolOptions{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { spool.Close() })
	svc := admintest.New(t, admintest.Options{Store: db, Master: mk, Queue: spool})
	if err := server.ServeControl(ctx, datadir.Layout{Root: dir}, svc.Admin, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(datadir.Layout{Root: dir}.ControlSocket()); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("control socket: %v %v, want mode 0600", fi, err)
	}
	c := &controlClient{sock: datadir.Layout{Root: dir}.ControlSocket()}
	for deadline := 0; !c.up(); deadline++ {
		if deadline > 100 {
			t.Fatal("control socket does not answer")
		}
	}

	for _, verb := range []string{"show", "retry", "remove"} {
		code, out, errs := runData(t, dir, "", "queue", verb, "20260101T000000-nothing")
		want := "dkimd queue: The message was not found in the queue (it may have been delivered).\n"
		if code != exitFailure || out != "" || errs != want {
			t.Errorf("queue %s of a missing message: exit %d, stdout %q, stderr %q; want exit 1 and %q", verb, code, out, errs, want)
		}
	}
	// The client reads the error class from the API's JSON body.
	_, err = c.do(ctx, "show", "20260101T000000-nothing")
	ce, ok := err.(*controlError)
	if !ok || ce.Status != http.StatusNotFound || ce.Code != "not_found" {
		t.Fatalf("control error %#v", err)
	}
	code, out, errs := runData(t, dir, "", "queue", "list")
	if code != 0 || !strings.HasPrefix(out, "ID") {
		t.Errorf("queue list over the socket: exit %d %q %q", code, out, errs)
	}
}

// TestControlErrorOf: an answer that is not the API's JSON error still
// gives a sentence, never the body.
func TestControlErrorOf(t *testing.T) {
	for _, body := range []string{"", "<html>bad gateway</html>", `{"error":"old style"}`, `{"error":{"code":"","message":""}}`} {
		err := controlErrorOf(http.StatusBadGateway, []byte(body))
		if m := message(err); !strings.HasPrefix(m, "dkimd serve answered 502 Bad Gateway") || strings.Contains(m, "bad gateway</html>") {
			t.Errorf("body %q: %q", body, m)
		}
	}
}
