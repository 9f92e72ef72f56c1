// Package postgres is the store.Store on PostgreSQL, for several dkimd
// nodes sharing one database (see docs/cluster.md). It passes the same
// conformance suite as store/sqlite (store/storetest) and keeps the same
// rules: the same tables and columns, times as bigint Unix nanoseconds
// (UTC) so that they read back exactly as written and copy from SQLite
// unchanged (dkimd migrate), and the audit log append-only by trigger.
//
// Every write transaction first takes one transaction-level advisory lock
// (pg_advisory_xact_lock), so writers are serialised across every node as
// SQLite serialises them within one file: what a write reads (a selector is
// free, a key is pending) stays true until it commits, and audit IDs are
// committed in order. Writes to the store are administrative and rare; the
// mail path only reads, and reads never wait for the lock. Migrations run
// under a session advisory lock of their own, so nodes starting together
// apply each one once.
//
// Queue is the mail queue in the same database (queue.DeliveryQueue),
// shared by every node; it lives here so that pgx stays in this package
// and its wiring in cli.
//
// It must not import web, relay, milter, policy, cli, admin, delivery or the
// other backend.
package postgres
