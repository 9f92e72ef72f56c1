// Package queue keeps signed messages on disk until they are delivered, and
// delivers them: to a configured smart host or straight to each recipient
// domain's MX, with per-recipient retries, exponential backoff, expiry and
// RFC 3464 delivery status notifications (bounces).
//
// Spool is the file-based queue: Enqueue returns only once the message is on
// stable storage, and per-recipient state survives a kill -9 at any moment
// (see spool.go for the protocol and format.go for the on-disk format).
// Queue is the interface the SMTP receiving side and the admin API use, so a
// shared PostgreSQL-backed queue can stand in for the spool later;
// DeliveryQueue is what a Deliverer needs on top of it.
//
// Message bodies are never held in memory: they stream from the spool file
// to the SMTP connection. The index kept per queued message is about 170
// bytes, plus the sender address when no other queued message has the same
// one (index.go).
//
// Delivery is at least once: a recipient is marked delivered only after the
// remote server answered 250 to the final dot, so a crash (or a lost
// connection) between that answer and the state write (or, once every
// recipient is delivered, the removal of the message) makes the message go
// out again to the recipients of that transaction.
//
// It must not import relay, milter, web, cli, store, policy or keys: it moves
// bytes it was given and knows nothing about who signed them or why.
package queue
