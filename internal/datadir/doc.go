// Package datadir names the files of dkimd's data directory and writes
// files there safely. Layout is the one place the names are spelled:
//
//	DIR/dkimd.db        the SQLite database (and its -wal, -shm files)
//	DIR/master.key      the master key, mode 0600, unless given elsewhere
//	DIR/spool/          the durable queue (package queue owns what is inside)
//	DIR/tmp/            the relay's temporary files: messages too large to
//	                    hold in memory while they are received and signed
//	DIR/control.sock    the control socket of a running serve
//	DIR/relay-cert.pem  the self-signed submission certificate and its key,
//	DIR/relay-key.pem   made when no certificate is configured
//
// WriteFileAtomic and CreateFileAtomic write a file so that a crash leaves
// the old content or the whole new one, never a part: keys, the master key
// and the self-signed certificate are written with them.
//
// It imports only the standard library: every package that keeps files in
// the data directory may use it.
package datadir
