package web

import (
	"net/http"
	"strings"
	"testing"
)

// inputCase is one bad request: a valid one with one thing changed.
type inputCase struct {
	name         string
	method, path string
	body         any
	contentType  *string
	status       int
	code, field  string
}

// TestBadInput sends, for every route, requests that are wrong in one way
// each, as an admin (who may do everything, so only the input is at
// fault), and checks the answer and that nothing changed.
func TestBadInput(t *testing.T) {
	const (
		bad      = http.StatusBadRequest
		invalid  = http.StatusUnprocessableEntity
		conflict = http.StatusConflict
		notFound = http.StatusNotFound
	)
	big := `{"name":"` + strings.Repeat("a", maxBodyBytes) + `.example"}`
	cases := []inputCase{
		// POST /domains, valid: {"name":"c.example"}
		{"domain name empty", "POST", "/api/v1/domains", `{"name":""}`, nil, invalid, codeInvalid, "name"},
		{"domain name with a space", "POST", "/api/v1/domains", `{"name":"c example"}`, nil, invalid, codeInvalid, "name"},
		{"domain name one label", "POST", "/api/v1/domains", `{"name":"example"}`, nil, invalid, codeInvalid, "name"},
		{"domain name an IP address", "POST", "/api/v1/domains", `{"name":"192.0.2.1"}`, nil, invalid, codeInvalid, "name"},
		{"domain exists", "POST", "/api/v1/domains", `{"name":"A.Example."}`, nil, conflict, codeExists, ""},
		{"malformed JSON", "POST", "/api/v1/domains", `{"name":`, nil, bad, codeBadRequest, ""},
		{"syntax error", "POST", "/api/v1/domains", `{"name" "c.example"}`, nil, bad, codeBadRequest, ""},
		{"unknown field", "POST", "/api/v1/domains", `{"name":"c.example","nmae":"x"}`, nil, bad, codeBadRequest, ""},
		{"wrong type", "POST", "/api/v1/domains", `{"name":42}`, nil, bad, codeBadRequest, "name"},
		{"not an object", "POST", "/api/v1/domains", `["c.example"]`, nil, bad, codeBadRequest, ""},
		{"two JSON values", "POST", "/api/v1/domains", `{"name":"c.example"}{}`, nil, bad, codeBadRequest, ""},
		{"empty body", "POST", "/api/v1/domains", "", nil, bad, codeBadRequest, ""},
		{"body over 1 MiB", "POST", "/api/v1/domains", big, nil, http.StatusRequestEntityTooLarge, codeTooLarge, ""},
		{"body over 1 MiB after a value", "POST", "/api/v1/domains", `{"name":"c.example"}` + strings.Repeat(" ", maxBodyBytes), nil, http.StatusRequestEntityTooLarge, codeTooLarge, ""},
		{"no content type", "POST", "/api/v1/domains", `{"name":"c.example"}`, ptr(""), http.StatusUnsupportedMediaType, codeUnsupportedMedia, ""},
		{"form content type", "POST", "/api/v1/domains", `{"name":"c.example"}`, ptr("text/plain"), http.StatusUnsupportedMediaType, codeUnsupportedMedia, ""},
		{"wrong method on /domains", "PUT", "/api/v1/domains", `{"name":"c.example"}`, nil, http.StatusMethodNotAllowed, codeMethodNotAllowed, ""},

		// GET, PATCH, DELETE /domains/{domain}
		{"unknown domain", "GET", "/api/v1/domains/c.example", nil, nil, notFound, codeNotFound, ""},
		{"bad domain name", "GET", "/api/v1/domains/a..example", nil, nil, invalid, codeInvalid, "domain"},
		{"patch unknown domain", "PATCH", "/api/v1/domains/c.example", `{"auto_activate":true}`, nil, notFound, codeNotFound, ""},
		{"patch wrong type", "PATCH", "/api/v1/domains/a.example", `{"auto_activate":"yes"}`, nil, bad, codeBadRequest, "auto_activate"},
		{"patch unknown field", "PATCH", "/api/v1/domains/a.example", `{"name":"c.example"}`, nil, bad, codeBadRequest, ""},
		{"patch oversign not a field name", "PATCH", "/api/v1/domains/a.example", `{"oversign":"From,Sub ject"}`, nil, invalid, codeInvalid, "oversign"},
		{"patch oversign with a colon", "PATCH", "/api/v1/domains/a.example", `{"oversign":"X:Y","auto_activate":true}`, nil, invalid, codeInvalid, "oversign"},
		{"patch oversign wrong type", "PATCH", "/api/v1/domains/a.example", `{"oversign":["From"]}`, nil, bad, codeBadRequest, "oversign"},
		{"add with bad oversign", "POST", "/api/v1/domains", `{"name":"c.example","oversign":"a;b"}`, nil, invalid, codeInvalid, "oversign"},
		{"delete domain with keys and users", "DELETE", "/api/v1/domains/a.example", nil, nil, conflict, codeConflict, ""},
		{"delete with bad force", "DELETE", "/api/v1/domains/a.example?force=maybe", nil, nil, bad, codeBadRequest, "force"},
		{"delete unknown domain", "DELETE", "/api/v1/domains/c.example?force=true", nil, nil, notFound, codeNotFound, ""},
		{"wrong method on a domain", "POST", "/api/v1/domains/a.example", `{}`, nil, http.StatusMethodNotAllowed, codeMethodNotAllowed, ""},

		// POST /domains/{domain}/keys, valid: {"selector":"s2","algorithm":"ed25519"}
		{"selector empty", "POST", "/api/v1/domains/a.example/keys", `{"selector":"","algorithm":"ed25519"}`, nil, invalid, codeInvalid, "selector"},
		{"selector with underscore", "POST", "/api/v1/domains/a.example/keys", `{"selector":"s_2","algorithm":"ed25519"}`, nil, invalid, codeInvalid, "selector"},
		{"selector with _domainkey", "POST", "/api/v1/domains/a.example/keys", `{"selector":"s2._domainkey","algorithm":"ed25519"}`, nil, invalid, codeInvalid, "selector"},
		{"selector too long for DNS", "POST", "/api/v1/domains/a.example/keys", `{"selector":"` + strings.Repeat(strings.Repeat("x", 60)+".", 4) + `s","algorithm":"ed25519"}`, nil, invalid, codeInvalid, "selector"},
		{"unknown algorithm", "POST", "/api/v1/domains/a.example/keys", `{"selector":"s2","algorithm":"dsa"}`, nil, invalid, codeInvalid, "algorithm"},
		{"unknown RSA length", "POST", "/api/v1/domains/a.example/keys", `{"selector":"s2","algorithm":"rsa","bits":512}`, nil, invalid, codeInvalid, "bits"},
		{"length for Ed25519", "POST", "/api/v1/domains/a.example/keys", `{"selector":"s2","algorithm":"ed25519","bits":2048}`, nil, invalid, codeInvalid, "bits"},
		{"bits not a number", "POST", "/api/v1/domains/a.example/keys", `{"selector":"s2","algorithm":"rsa","bits":"2048"}`, nil, bad, codeBadRequest, "bits"},
		{"duplicate selector", "POST", "/api/v1/domains/a.example/keys", `{"selector":"A1","algorithm":"ed25519"}`, nil, conflict, codeExists, ""},
		{"key in unknown domain", "POST", "/api/v1/domains/c.example/keys", `{"selector":"s2","algorithm":"ed25519"}`, nil, notFound, codeNotFound, ""},
		{"key unknown field", "POST", "/api/v1/domains/a.example/keys", `{"selector":"s2","algorithm":"ed25519","private_key":"x"}`, nil, bad, codeBadRequest, ""},
		{"key malformed JSON", "POST", "/api/v1/domains/a.example/keys", `{"selector":"s2",}`, nil, bad, codeBadRequest, ""},
		{"keys of unknown domain", "GET", "/api/v1/domains/c.example/keys", nil, nil, notFound, codeNotFound, ""},

		// GET /domains/{domain}/keys/{selector}[/record]
		{"unknown selector", "GET", "/api/v1/domains/a.example/keys/s9", nil, nil, notFound, codeNotFound, ""},
		{"bad selector", "GET", "/api/v1/domains/a.example/keys/s_9", nil, nil, invalid, codeInvalid, "selector"},
		{"record of unknown selector", "GET", "/api/v1/domains/a.example/keys/s9/record", nil, nil, notFound, codeNotFound, ""},
		{"record in unknown domain", "GET", "/api/v1/domains/c.example/keys/a1/record", nil, nil, notFound, codeNotFound, ""},
		{"wrong method on a key", "PUT", "/api/v1/domains/a.example/keys/a1", nil, nil, http.StatusMethodNotAllowed, codeMethodNotAllowed, ""},

		// POST .../state, valid: {"state":"active","force":true}
		{"unknown state", "POST", "/api/v1/domains/a.example/keys/a1/state", `{"state":"paused"}`, nil, invalid, codeInvalid, "state"},
		{"state not allowed from pending", "POST", "/api/v1/domains/a.example/keys/a1/state", `{"state":"retired"}`, nil, conflict, codeConflict, ""},
		{"activate unpublished key", "POST", "/api/v1/domains/a.example/keys/a1/state", `{"state":"active"}`, nil, conflict, codeNotPublished, ""},
		{"state of unknown key", "POST", "/api/v1/domains/a.example/keys/s9/state", `{"state":"active","force":true}`, nil, notFound, codeNotFound, ""},
		{"state force not a bool", "POST", "/api/v1/domains/a.example/keys/a1/state", `{"state":"active","force":"yes"}`, nil, bad, codeBadRequest, "force"},
		{"state without body", "POST", "/api/v1/domains/a.example/keys/a1/state", "", nil, bad, codeBadRequest, ""},

		// GET .../keys/status, GET .../checks, POST .../check
		{"status of unknown domain", "GET", "/api/v1/domains/c.example/keys/status", nil, nil, notFound, codeNotFound, ""},
		{"status of bad domain", "GET", "/api/v1/domains/a..example/keys/status", nil, nil, invalid, codeInvalid, "domain"},
		{"status wrong method", "POST", "/api/v1/domains/a.example/keys/status", `{}`, nil, http.StatusMethodNotAllowed, codeMethodNotAllowed, ""},
		{"rotate wrong method (not a key named rotate)", "GET", "/api/v1/domains/a.example/keys/rotate", nil, nil, http.StatusMethodNotAllowed, codeMethodNotAllowed, ""},
		{"checks limit zero", "GET", "/api/v1/domains/a.example/keys/a1/checks?limit=0", nil, nil, bad, codeBadRequest, "limit"},
		{"checks limit not a number", "GET", "/api/v1/domains/a.example/keys/a1/checks?limit=five", nil, nil, bad, codeBadRequest, "limit"},
		{"checks limit over the store's cap", "GET", "/api/v1/domains/a.example/keys/a1/checks?limit=1001", nil, nil, bad, codeBadRequest, "limit"},
		{"checks of unknown selector", "GET", "/api/v1/domains/a.example/keys/s9/checks", nil, nil, notFound, codeNotFound, ""},
		{"checks of bad selector", "GET", "/api/v1/domains/a.example/keys/s_9/checks", nil, nil, invalid, codeInvalid, "selector"},
		{"check unknown selector", "POST", "/api/v1/domains/a.example/keys/s9/check", nil, nil, notFound, codeNotFound, ""},
		{"check in unknown domain", "POST", "/api/v1/domains/c.example/keys/a1/check", nil, nil, notFound, codeNotFound, ""},
		{"check wrong method", "GET", "/api/v1/domains/a.example/keys/a1/check", nil, nil, http.StatusMethodNotAllowed, codeMethodNotAllowed, ""},

		// POST .../keys/rotate, valid: {"selector":"s3","algorithm":"ed25519"}
		// (a1 is pending: there is no active key to replace)
		{"rotate unknown algorithm", "POST", "/api/v1/domains/a.example/keys/rotate", `{"selector":"s3","algorithm":"dsa"}`, nil, invalid, codeInvalid, "algorithm"},
		{"rotate unknown RSA length", "POST", "/api/v1/domains/a.example/keys/rotate", `{"selector":"s3","algorithm":"rsa","bits":512}`, nil, invalid, codeInvalid, "bits"},
		{"rotate length for Ed25519", "POST", "/api/v1/domains/a.example/keys/rotate", `{"selector":"s3","algorithm":"ed25519","bits":2048}`, nil, invalid, codeInvalid, "bits"},
		{"rotate bad selector", "POST", "/api/v1/domains/a.example/keys/rotate", `{"selector":"s_3","algorithm":"ed25519"}`, nil, invalid, codeInvalid, "selector"},
		{"rotate onto a used selector", "POST", "/api/v1/domains/a.example/keys/rotate", `{"selector":"A1","algorithm":"ed25519"}`, nil, conflict, codeExists, ""},
		{"rotate bad replaces", "POST", "/api/v1/domains/a.example/keys/rotate", `{"selector":"s3","algorithm":"ed25519","replaces":"a_1"}`, nil, invalid, codeInvalid, "replaces"},
		{"rotate replaces unknown key", "POST", "/api/v1/domains/a.example/keys/rotate", `{"selector":"s3","algorithm":"ed25519","replaces":"s9"}`, nil, notFound, codeNotFound, ""},
		{"rotate replaces a pending key", "POST", "/api/v1/domains/a.example/keys/rotate", `{"selector":"s3","algorithm":"ed25519","replaces":"a1"}`, nil, conflict, codeConflict, ""},
		{"rotate bits not a number", "POST", "/api/v1/domains/a.example/keys/rotate", `{"selector":"s3","bits":"2048"}`, nil, bad, codeBadRequest, "bits"},
		{"rotate unknown field", "POST", "/api/v1/domains/a.example/keys/rotate", `{"selector":"s3","force":true}`, nil, bad, codeBadRequest, ""},
		{"rotate as a form", "POST", "/api/v1/domains/a.example/keys/rotate", `selector=s3`, ptr("application/x-www-form-urlencoded"), http.StatusUnsupportedMediaType, codeUnsupportedMedia, ""},
		{"rotate in unknown domain", "POST", "/api/v1/domains/c.example/keys/rotate", `{"selector":"s3","algorithm":"ed25519"}`, nil, notFound, codeNotFound, ""},

		// /queue/{id}
		{"unknown message", "GET", "/api/v1/queue/20260101T000000-nothing", nil, nil, notFound, codeNotFound, ""},
		{"malformed message id", "GET", "/api/v1/queue/not_an_id!", nil, nil, notFound, codeNotFound, ""},
		{"retry unknown message", "POST", "/api/v1/queue/20260101T000000-nothing/retry", nil, nil, notFound, codeNotFound, ""},
		{"remove unknown message", "DELETE", "/api/v1/queue/20260101T000000-nothing", nil, nil, notFound, codeNotFound, ""},
		{"wrong method on the queue", "POST", "/api/v1/queue", `{}`, nil, http.StatusMethodNotAllowed, codeMethodNotAllowed, ""},
		{"wrong method on a message", "PUT", "/api/v1/queue/20260101T000000-nothing", `{}`, nil, http.StatusMethodNotAllowed, codeMethodNotAllowed, ""},

		// POST /domains/{domain}/users, valid: {"name":"uc@a.example","auth":"ip","networks":["192.0.2.9"]}
		{"user name empty", "POST", "/api/v1/domains/a.example/users", `{"name":"","auth":"ip","networks":["192.0.2.9"]}`, nil, invalid, codeInvalid, "name"},
		{"user name with space", "POST", "/api/v1/domains/a.example/users", `{"name":"u c","auth":"ip","networks":["192.0.2.9"]}`, nil, invalid, codeInvalid, "name"},
		{"user exists", "POST", "/api/v1/domains/a.example/users", `{"name":"UA@a.example","auth":"ip","networks":["192.0.2.9"]}`, nil, conflict, codeExists, ""},
		{"unknown auth", "POST", "/api/v1/domains/a.example/users", `{"name":"uc@a.example","auth":"smtp","networks":["192.0.2.9"]}`, nil, invalid, codeInvalid, "auth"},
		{"ip user without networks", "POST", "/api/v1/domains/a.example/users", `{"name":"uc@a.example","auth":"ip"}`, nil, invalid, codeInvalid, "networks"},
		{"bad network", "POST", "/api/v1/domains/a.example/users", `{"name":"uc@a.example","auth":"ip","networks":["192.0.2.999"]}`, nil, invalid, codeInvalid, "networks"},
		{"short password", "POST", "/api/v1/domains/a.example/users", `{"name":"uc@a.example","auth":"password","password":"short"}`, nil, invalid, codeInvalid, "password"},
		{"selector for a reauth user", "POST", "/api/v1/domains/a.example/users", `{"name":"uc@a.example","auth":"reauth","networks":["192.0.2.9"],"selector":"a1"}`, nil, invalid, codeInvalid, "selector"},
		{"selector naming no key", "POST", "/api/v1/domains/a.example/users", `{"name":"uc@a.example","auth":"ip","networks":["192.0.2.9"],"selector":"s9"}`, nil, invalid, codeInvalid, "selector"},
		{"grant of a bad domain name", "POST", "/api/v1/domains/a.example/users", `{"name":"uc@a.example","auth":"ip","networks":["192.0.2.9"],"granted_domains":["not a domain"]}`, nil, invalid, codeInvalid, "granted_domains"},
		{"user in unknown domain", "POST", "/api/v1/domains/c.example/users", `{"name":"uc@a.example","auth":"ip","networks":["192.0.2.9"]}`, nil, notFound, codeNotFound, ""},
		{"user unknown field", "POST", "/api/v1/domains/a.example/users", `{"name":"uc@a.example","auth":"ip","networks":["192.0.2.9"],"password_hash":"x"}`, nil, bad, codeBadRequest, ""},
		{"users of unknown domain", "GET", "/api/v1/domains/c.example/users", nil, nil, notFound, codeNotFound, ""},

		// GET, PATCH, DELETE /users/{name}, valid PATCH: {"enabled":false}
		{"unknown user", "GET", "/api/v1/users/nobody@a.example", nil, nil, notFound, codeNotFound, ""},
		{"patch unknown user", "PATCH", "/api/v1/users/nobody@a.example", `{"enabled":false}`, nil, notFound, codeNotFound, ""},
		{"patch networks not a list", "PATCH", "/api/v1/users/ua@a.example", `{"networks":"192.0.2.9"}`, nil, bad, codeBadRequest, "networks"},
		{"patch to password auth without password", "PATCH", "/api/v1/users/ua@a.example", `{"auth":"password"}`, nil, invalid, codeInvalid, "password"},
		{"patch bad header name", "PATCH", "/api/v1/users/ua@a.example", `{"auth":"reauth","identity_header":"X Auth"}`, nil, invalid, codeInvalid, "identity_header"},
		{"patch unknown field", "PATCH", "/api/v1/users/ua@a.example", `{"domain":"b.example"}`, nil, bad, codeBadRequest, ""},
		{"delete unknown user", "DELETE", "/api/v1/users/nobody@a.example", nil, nil, notFound, codeNotFound, ""},
		{"wrong method on a user", "PUT", "/api/v1/users/ua@a.example", `{}`, nil, http.StatusMethodNotAllowed, codeMethodNotAllowed, ""},

		// POST /accounts, valid: {"name":"carol","role":"domain","domains":["a.example"]}
		{"account name empty", "POST", "/api/v1/accounts", `{"name":"","role":"domain","domains":["a.example"]}`, nil, invalid, codeInvalid, "name"},
		{"unknown role", "POST", "/api/v1/accounts", `{"name":"carol","role":"root","domains":["a.example"]}`, nil, invalid, codeInvalid, "role"},
		{"admin with domains", "POST", "/api/v1/accounts", `{"name":"carol","role":"admin","domains":["a.example"]}`, nil, invalid, codeInvalid, "domains"},
		{"account for unknown domain", "POST", "/api/v1/accounts", `{"name":"carol","role":"domain","domains":["c.example"]}`, nil, invalid, codeInvalid, "domains[0]"},
		{"account short password", "POST", "/api/v1/accounts", `{"name":"carol","role":"domain","domains":["a.example"],"password":"short"}`, nil, invalid, codeInvalid, "password"},
		{"account exists", "POST", "/api/v1/accounts", `{"name":"Alice","role":"domain","domains":["a.example"]}`, nil, conflict, codeExists, ""},
		{"account unknown field", "POST", "/api/v1/accounts", `{"name":"carol","role":"domain","enabled":false}`, nil, bad, codeBadRequest, ""},
		{"remove unknown account", "DELETE", "/api/v1/accounts/nobody", nil, nil, notFound, codeNotFound, ""},
		{"remove the last admin", "DELETE", "/api/v1/accounts/root", nil, nil, conflict, codeConflict, ""},
		{"wrong method on an account", "GET", "/api/v1/accounts/alice", nil, nil, http.StatusMethodNotAllowed, codeMethodNotAllowed, ""},

		// POST /accounts/{name}/tokens, valid: {"label":"ci","ttl":"24h"}
		{"token ttl not a duration", "POST", "/api/v1/accounts/alice/tokens", `{"label":"ci","ttl":"a day"}`, nil, invalid, codeInvalid, "ttl"},
		{"token ttl negative", "POST", "/api/v1/accounts/alice/tokens", `{"label":"ci","ttl":"-24h"}`, nil, invalid, codeInvalid, "ttl"},
		{"token label too long", "POST", "/api/v1/accounts/alice/tokens", `{"label":"` + strings.Repeat("x", 256) + `","ttl":"24h"}`, nil, invalid, codeInvalid, "label"},
		{"token for unknown account", "POST", "/api/v1/accounts/nobody/tokens", `{"label":"ci","ttl":"24h"}`, nil, notFound, codeNotFound, ""},
		{"token unknown field", "POST", "/api/v1/accounts/alice/tokens", `{"label":"ci","kind":"session"}`, nil, bad, codeBadRequest, ""},

		// GET /audit, valid: ?domain=a.example&limit=10
		{"audit since not a time", "GET", "/api/v1/audit?since=yesterday", nil, nil, bad, codeBadRequest, "since"},
		{"audit limit zero", "GET", "/api/v1/audit?limit=0", nil, nil, bad, codeBadRequest, "limit"},
		{"audit limit not a number", "GET", "/api/v1/audit?limit=ten", nil, nil, bad, codeBadRequest, "limit"},
		{"audit before negative", "GET", "/api/v1/audit?before=-1", nil, nil, bad, codeBadRequest, "before"},
		{"wrong method on audit", "DELETE", "/api/v1/audit", nil, nil, http.StatusMethodNotAllowed, codeMethodNotAllowed, ""},

		// POST /policy/explain, valid: {"user":"ua@a.example","from":"a@a.example"}
		{"explain unknown user", "POST", "/api/v1/policy/explain", `{"user":"nobody@a.example","from":"a@a.example"}`, nil, notFound, codeNotFound, ""},
		{"explain unknown field", "POST", "/api/v1/policy/explain", `{"user":"ua@a.example","from":"a@a.example","to":"x"}`, nil, bad, codeBadRequest, ""},
		{"explain wrong method", "GET", "/api/v1/policy/explain", nil, nil, http.StatusMethodNotAllowed, codeMethodNotAllowed, ""},

		// login, logout, whoami
		{"login unknown field", "POST", "/api/v1/login", `{"name":"root","password":"x","remember":true}`, nil, bad, codeBadRequest, ""},
		{"login as a form", "POST", "/api/v1/login", `name=root&password=x`, ptr("application/x-www-form-urlencoded"), http.StatusUnsupportedMediaType, codeUnsupportedMedia, ""},
		{"whoami wrong method", "POST", "/api/v1/whoami", `{}`, nil, http.StatusMethodNotAllowed, codeMethodNotAllowed, ""},

		// Paths that are not routes.
		{"unknown path", "GET", "/api/v1/nothing", nil, nil, notFound, codeNotFound, ""},
		{"trailing slash", "GET", "/api/v1/domains/", nil, nil, notFound, codeNotFound, ""},
		{"too deep", "GET", "/api/v1/domains/a.example/keys/a1/record/x", nil, nil, notFound, codeNotFound, ""},
	}
	e := newEnv(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.snapshot()
			var body any
			if s, ok := c.body.(string); ok && (s != "" || c.method != "GET") {
				body = s
			}
			r := e.do(req{method: c.method, path: c.path, body: body, contentType: c.contentType, role: roleAdmin})
			r.want(t, c.status, c.code, c.field)
			if after := e.snapshot(); after != before {
				t.Errorf("a refused request changed the store")
			}
			if c.status == http.StatusMethodNotAllowed && r.header.Get("Allow") == "" {
				t.Errorf("405 without Allow")
			}
		})
	}
	t.Run("valid requests of the table pass", func(t *testing.T) {
		// The base cases of the rows above, to show the rows change one
		// thing each from a request that works.
		for _, c := range []struct {
			method, path, body string
			status             int
		}{
			{"POST", "/api/v1/domains", `{"name":"c.example"}`, http.StatusCreated},
			{"PATCH", "/api/v1/domains/a.example", `{"auto_activate":true}`, http.StatusOK},
			{"POST", "/api/v1/domains/a.example/keys", `{"selector":"s2","algorithm":"ed25519"}`, http.StatusCreated},
			{"POST", "/api/v1/domains/a.example/keys/a1/state", `{"state":"active","force":true}`, http.StatusOK},
			{"POST", "/api/v1/domains/a.example/users", `{"name":"uc@a.example","auth":"ip","networks":["192.0.2.9"]}`, http.StatusCreated},
			{"PATCH", "/api/v1/users/ua@a.example", `{"enabled":false}`, http.StatusOK},
			{"POST", "/api/v1/accounts", `{"name":"carol","role":"domain","domains":["a.example"]}`, http.StatusCreated},
			{"POST", "/api/v1/accounts/alice/tokens", `{"label":"ci","ttl":"24h"}`, http.StatusCreated},
			{"GET", "/api/v1/domains/a.example/keys/status", "", http.StatusOK},
			{"GET", "/api/v1/domains/a.example/keys/a1/checks?limit=5", "", http.StatusOK},
			{"POST", "/api/v1/domains/a.example/keys/a1/check", "", http.StatusOK},
			{"POST", "/api/v1/domains/a.example/keys/rotate", `{"selector":"s3","algorithm":"ed25519"}`, http.StatusCreated},
			{"GET", "/api/v1/queue", "", http.StatusOK},
			{"GET", "/api/v1/queue/" + e.msgID, "", http.StatusOK},
			{"POST", "/api/v1/queue/" + e.msgID + "/retry", "", http.StatusNoContent},
			{"GET", "/api/v1/audit?domain=a.example&limit=10", "", http.StatusOK},
			{"POST", "/api/v1/policy/explain", `{"user":"ua@a.example","from":"a@a.example"}`, http.StatusOK},
		} {
			var body any
			if c.body != "" {
				body = c.body
			}
			if r := e.call(roleAdmin, c.method, c.path, body); r.status != c.status {
				t.Errorf("%s %s: status %d, want %d; body %s", c.method, c.path, r.status, c.status, r.body)
			}
		}
	})
}
