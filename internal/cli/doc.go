// Package cli implements the dkimd command line: one function per
// subcommand, each parsing its own flags and calling the packages that do the
// work. It is the only package that reads os.Args-style input, prints for
// people, and maps errors to exit codes (0 success, 1 failure or a negative
// result, 2 usage).
//
// It turns the data flags (--data, --database, --master-key, --init, the
// token's) into dataopen.Options for every command on the data directory,
// and builds the admin commands' services on what dataopen.Open gives.
// The files of the data directory are named by datadir.Layout, never
// spelled here. "dkimd serve" parses its flags and config file into
// server.Options and hands the running service to server.Run (an error
// wrapping server.ErrOption is a usage error); the queue commands ask that
// service over DIR/control.sock.
//
// It may import every other dkimd package; none may import it.
package cli
