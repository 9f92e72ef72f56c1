// Package lifecycle moves DKIM keys through their life without a moment in
// which mail is signed with a key receivers cannot find: a pending key
// becomes active only once every authoritative server serves its record,
// a rotation retires the key it replaces in the same transaction, a
// retired key is said safe to revoke only once its last signature has
// expired and left every queue, and a revoked key is archived once DNS
// shows its empty p=.
//
// Service owns every step of a key's life: Generate, Rotate, Activate,
// SetState (retire, archive), Revoke, Status, History and CheckNow. Each
// change is checked against the key's state, made in one store transaction,
// written to the audit log with who asked (By), and an opened private key
// is dropped from the key source once it stops signing. Who may ask is the
// admin package's concern, in front of the Service.
//
// Settings holds the rules and their values (signature and queue lifetime,
// the age at which a key is old) and computes each key's Status. Monitor
// re-checks keys in DNS on a schedule through the Service, keeps the
// history in the store, raises an alert when an active key's record
// disappears or changes, activates published keys of domains that want it,
// and can fail over to a published standby key. DNS adapts dnscheck to the
// Checker the Service uses.
//
// It may import store, keys, dkim, dnscheck, mailaddr and the standard library; it
// must not import admin, policy, web, relay, milter, queue or cli.
package lifecycle
