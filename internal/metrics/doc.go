// Package metrics exports dkimd's counters to Prometheus: what the relay
// accepted and signed (or not, and why) and what the queue delivered,
// deferred and bounced, with the queue's size and age.
//
// It reads counters the relay, milter and queue keep themselves; it must
// not import web, cli or store.
package metrics
