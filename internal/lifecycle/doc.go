// Package lifecycle moves DKIM keys through their life without a moment in
// which mail is signed with a key receivers cannot find: a pending key
// becomes active only once every authoritative server serves its record,
// a rotation retires the key it replaces in the same transaction, a
// retired key is said safe to revoke only once its last signature has
// expired and left every queue, and a revoked key is archived once DNS
// shows its empty p=.
//
// Policy holds the rules and their settings (signature and queue lifetime,
// the age at which a key is old) and computes each key's Status. Monitor
// re-checks keys in DNS on a schedule, keeps the history in the store,
// raises an alert when an active key's record disappears or changes, and
// can fail over to a published standby key. DNS adapts dnscheck to the
// Checker the Monitor uses. Scheduler rotates the keys of domains that
// dkimd publishes itself (delegated, or by DNS UPDATE) on their schedule,
// through a RotationKeeper and a Publisher.
//
// State changes go through a Keeper (the admin service), which checks them
// and writes the audit log; this package never changes a key itself.
//
// It may import store, keys, dnscheck and the standard library; it must not
// import admin, policy, web, relay, milter, queue or cli.
package lifecycle
