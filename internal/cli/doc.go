// Package cli implements the dkimd command line: one function per
// subcommand, each parsing its own flags and calling the packages that do the
// work. It is the only package that reads os.Args-style input, prints for
// people, and maps errors to exit codes (0 success, 1 failure or a negative
// result, 2 usage). The files of the data directory are named by
// datadir.Layout, never spelled here; serve opens the spool in DIR/spool,
// gives the relay DIR/tmp for its temporary files (emptied at start) and
// answers the queue commands on DIR/control.sock.
//
// It may import every other dkimd package; none may import it.
package cli
