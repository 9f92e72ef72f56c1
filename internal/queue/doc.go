// Package queue keeps signed messages on stable storage until they are
// delivered: the durable queue, and the interface between it and delivery.
//
// Queue is what the SMTP receiving side and the admin API use (Enqueue,
// List, Get, Retry, Remove, Stats). DeliveryQueue is what a deliverer uses
// on top of it: Claim leases due messages to an owner for a time, and the
// outcome of each attempt comes back through the claim (Record, Defer,
// Bounce, Complete, Release, Quarantine), fenced by the claim's token so
// that a deliverer whose lease ran out can change nothing. Those are the
// semantics a queue in a shared database can also meet; queuetest is the
// conformance suite every implementation passes.
//
// Spool is the file-based implementation: Enqueue returns only once the
// message is on stable storage, and per-recipient state survives a kill -9
// at any moment (see spool.go for the protocol, format.go for the on-disk
// format, spare.go, dirsync.go, index.go and due.go for how it stays fast
// with a large backlog, lease.go for leases). Message bodies are never
// held in memory: Body streams them from the spool file. The index kept per
// queued message is about 170 bytes, plus the sender address when no other
// queued message has the same one.
//
// The spool's directory is its own: its tmp/ holds the spool's unfinished
// files and is emptied whenever the spool opens, so nothing else may keep
// files there (the relay has the data directory's tmp/, datadir.Layout.Tmp).
// Recovery and quarantine are logged to SpoolOptions.Log (nil discards).
//
// Delivery is at least once: a deliverer records a recipient as delivered
// only after the remote server answered 250 to the final dot, so a crash
// (or a lost connection, or a lost lease) between that answer and the
// state write (or, once every recipient is delivered, the removal of the
// message) makes the message go out again to the recipients of that
// transaction.
//
// It must not import delivery, relay, milter, web, cli, admin, store,
// policy or keys: it stores bytes it was given and knows nothing about how
// they leave, who signed them or why. Of dkimd it imports only mailaddr, to
// refuse a recipient delivery could not route.
package queue
