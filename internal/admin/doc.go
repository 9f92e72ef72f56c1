// Package admin is the authorization and audit layer in front of every
// operation the JSON API, the control panel and the CLI offer: domains,
// outgoing users, panel accounts and the mail queue are changed here, DKIM
// keys through the lifecycle service (which writes their audit entries with
// the actor given). Every operation checks what its Actor may do and
// validates its input, so the three front ends behave alike. A Service is
// made whole by New and never changed afterwards.
//
// It may import store, keys, policy, lifecycle, queue, dkim, auth and
// mailaddr; it must not import web, relay, milter or cli.
package admin
