// Package delivery sends queued messages on: to a configured smart host or
// straight to each recipient domain's MX, with per-recipient retries,
// exponential backoff, expiry and RFC 3464 delivery status notifications
// (bounces).
//
// A Deliverer claims due messages from a queue.DeliveryQueue, renews the
// lease before each attempt, and records each attempt's outcome through the
// claim; it never sees how or where the queue stores them, so the disk
// spool and a shared database queue serve it alike. It holds the SMTP
// client side: routes (MX or smart host, route.go), the connection cache
// (conncache.go), STARTTLS and AUTH (smtp.go), the DATA writer that streams
// a body from the queue onto the connection (datawriter.go), and DSNs
// (dsn.go).
//
// Each outcome is logged once, to Options.Log (nil discards), under a
// constant snake_case message: queue_recipient_delivered, _deferred,
// _bounced and _expired, queue_dsn_queued, and the queue_*_failed errors.
//
// It must not import relay, milter, web, cli, admin, store, policy or keys:
// it moves bytes the queue holds and knows nothing about who signed them.
// Of dkimd it imports only queue and mailaddr (a recipient's domain).
package delivery
