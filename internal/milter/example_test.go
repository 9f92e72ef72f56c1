package milter_test

import (
	"context"
	"log"
	"os"
	"os/signal"

	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/milter"
	"github.com/dkimd/dkimd/internal/store"
)

// A milter on a UNIX socket for Postfix (smtpd_milters =
// unix:/run/dkimd/milter.sock), signing with the keys of a store through
// the admin service's key cache, as "dkimd serve --listen-milter" wires it.
func ExampleServer() {
	var db store.Store   // an open store, e.g. sqlite.Open
	var src *keys.Source // opens stored private keys and keeps them ready (keys.NewSource)
	srv, err := milter.New(milter.Options{
		Directory:     db,
		Keys:          src,
		TrustedDaemon: "ORIGINATING", // Postfix: -o milter_macro_daemon_name=ORIGINATING
		Metrics:       &milter.Metrics{},
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ln, err := milter.Listen(ctx, "unix:/run/dkimd/milter.sock", 0o660)
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		<-ctx.Done()
		// Messages in flight fail at the MTA, which retries them.
		srv.Shutdown(context.Background())
	}()
	if err := srv.Serve(ln); err != milter.ErrClosed {
		log.Fatal(err)
	}
}
