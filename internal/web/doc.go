// Package web serves dkimd over HTTP (New): the JSON API under /api/v1
// (NewAPI, its routes kept as data and described by openapi.json) and the
// control panel at / (NewPanel: server-rendered pages, CSRF-protected
// forms, the same session cookie and the same login throttle). Both sit on
// the admin service, which checks every right itself; this package
// authenticates the caller, turns requests and forms into admin calls, and
// maps their errors to HTTP answers through one mapper (classify), a JSON
// error body for the API and an error page for the panel.
//
// Key status and DNS checks come from the admin service (KeyStatus,
// CheckHistory, CheckKeyNow), which keeps every check in the store, so
// that what a page shows survives restarts and agrees across nodes; the
// package keeps no state of its own beyond login throttling.
//
// It may import admin, store, auth, keys, dkim, policy, lifecycle (key
// status and its warning codes), dnscheck (status names) and queue (the
// queue's types, for the admin-only queue routes and pages); it must not
// import a store backend, relay, milter or cli.
package web
