// Package web serves dkimd over HTTP: the JSON API under /api/v1 (NewAPI)
// and, later, the control panel pages. Both sit on the admin service, which
// checks every right itself; this package authenticates the caller, turns
// requests into admin calls and maps their errors to HTTP statuses with a
// JSON error body.
//
// It may import admin, store, auth, keys, dkim and policy; it must not
// import a store backend, relay, milter or cli.
package web
