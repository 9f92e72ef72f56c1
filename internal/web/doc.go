// Package web serves dkimd's JSON API under /api/v1 (NewAPI, its routes
// kept as data and described by openapi.json) and the control socket's
// queue routes (NewControl). It holds what the API shares with the
// control panel (package panel): authentication (the session cookie,
// bearer tokens, CSRF tokens), the login throttle (Logins, LoginThrottle:
// one counter for both, set as Options.Logins), and the one mapper from
// errors to HTTP answers (Classify), a JSON error body for the API and an
// error page for the panel. The API sits on the admin service, which
// checks every right itself; this package authenticates the caller, turns
// requests into admin calls, and maps their errors.
//
// Key status and DNS checks come from the admin service (KeyStatus,
// CheckHistory, CheckKeyNow), which keeps every check in the store, so
// that what the API shows survives restarts and agrees across nodes; the
// package keeps no state of its own beyond login throttling.
//
// It may import admin, store, auth, keys, dkim, policy, lifecycle (key
// status and its warning codes), dnscheck (status names) and queue (the
// queue's types, for the admin-only queue routes); it must not import the
// panel (internal/web/panel, which imports it), a store backend, relay,
// milter or cli.
package web
