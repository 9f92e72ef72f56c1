// Package sqlite keeps dkimd's data in an embedded SQLite database
// (modernc.org/sqlite, pure Go, no cgo). It implements store.Store and passes
// store/storetest.
//
// The database runs in WAL mode with synchronous=FULL, foreign keys on and a
// busy timeout, so that the CLI can work on the data directory while
// "dkimd serve" runs: readers never block, writers queue for up to the busy
// timeout, and a committed transaction survives power loss. Every write is a
// BEGIN IMMEDIATE transaction, so a read-check-write sequence (a key state
// change, a uniqueness check) cannot interleave with another writer, in this
// process or another. The schema is versioned in schema_migrations and
// brought up to date by Open.
//
// It must not import web, relay, milter, policy or cli.
package sqlite
