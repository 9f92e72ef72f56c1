// Package panel serves dkimd's control panel at / (New): server-rendered
// pages for people, CSRF-protected forms, its templates and static files
// embedded. NewSite mounts it beside the JSON API (web.NewAPI) as serve
// does, the two sharing the session cookie and one login counter
// (web.Logins), so a guess at either login counts against the same
// limits. Every change goes through the admin service, which checks the
// logged-in account's rights; an error is shown with the status web's one
// mapper (web.Classify) gives the API.
//
// It may import web (authentication, the login throttle, the error
// mapper), admin, store, keys, dkim, policy, lifecycle, dnscheck,
// delegation, mailaddr and queue (the queue's types, for the admin-only
// queue pages); it must not import a store backend, relay, milter,
// delivery or cli, and only the server (internal/server) imports it.
package panel
