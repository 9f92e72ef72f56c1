// Package dataopen opens a data directory for every command that uses
// one, serve among them: the database (SQLite in DIR/dkimd.db or a shared
// PostgreSQL database), the master key (DIR/master.key, another file, or
// the environment's text) and the PKCS#11 token, past the master-key gate:
// a missing or foreign master key, or a database lost beside its master
// key, is refused with a *RefusedError that changes nothing (its sentinels
// ErrMasterKeyMissing, ErrMasterKeyForeign, ErrDatabaseNew). Its messages
// name the command-line flags (--master-key, --init) the administrator
// uses; it reads no flags or environment itself: Options carry them.
//
// It may import datadir, keys (and keys/pkcs11), store and its backends;
// only cli and server (its Data type) import it, and it must not import cli, server, admin,
// lifecycle, web, relay or milter.
package dataopen
