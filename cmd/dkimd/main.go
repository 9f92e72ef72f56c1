// Command dkimd is a DKIM service for outgoing email. See the README.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/dkimd/dkimd/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args, &cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	os.Exit(code)
}
