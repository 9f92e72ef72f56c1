// Package server is the running dkimd service: Run wires an open data
// directory (Data) into the key source, the mail side (the disk spool in
// DIR/spool or the shared queue in PostgreSQL, delivery, the SMTP
// listeners with the relay's temporary files in DIR/tmp, emptied at
// start, and the milter), the lifecycle and admin services, the control
// socket on DIR/control.sock, the delegated DNS zone, the DNS monitor and
// the rotation scheduler (on the leader node of a PostgreSQL cluster), and
// the HTTP side (panel, JSON API, /metrics, /healthz, /readyz), and stops
// them in order when its context ends.
//
// It takes its settings as Options, never from flags, the environment or
// a config file, and prints nothing for people but the first admin's
// one-time password; errors caused by Options wrap ErrOption. Opening the
// data directory past the master-key gate is package dataopen's; cli
// does it and hands the result over as Data.
//
// Only cli imports it; it must not import cli or a store backend's
// opening (internal/store/sqlite); it may import every other dkimd package.
package server
