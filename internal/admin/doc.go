// Package admin is the one place that changes what dkimd keeps: domains,
// DKIM keys, outgoing users and panel accounts. Every operation checks what
// its Actor may do, validates its input, and writes the audit log, so the
// JSON API, the control panel and the CLI behave alike.
//
// It may import store, keys, policy, lifecycle, queue, dkim and auth; it must not import web,
// relay, milter or cli.
package admin
