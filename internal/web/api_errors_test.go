package web

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/mailaddr"
	"github.com/dkimd/dkimd/internal/queue"
	"github.com/dkimd/dkimd/internal/store"
)

// internalText matches what error text for the log looks like and a
// person must never read (issue 12 point 6): a package prefix
// ("lifecycle: ", "mail: "), or a raw status code in brackets
// ("(not_found)").
var internalText = regexp.MustCompile(`\b(store|admin|lifecycle|policy|queue|keys|dkim|dnscheck|delivery|mail|json|sqlite|idna|web|cli): |\([a-z]+(_[a-z]+)+\)`)

// sentenceProblem says why msg is not a sentence written for people, or
// gives "".
func sentenceProblem(msg string) string {
	switch {
	case msg == "":
		return "empty"
	case unicode.IsLower([]rune(msg)[0]):
		// "192.0.2.1/32 overlaps …" and "\"x\" is not …" are sentences too.
		return "does not start with a capital letter"
	case !strings.HasSuffix(msg, ".") && !strings.HasSuffix(msg, "?") && !strings.HasSuffix(msg, "!"):
		return "does not end a sentence"
	case internalText.MatchString(msg):
		return fmt.Sprintf("holds internal text %q", internalText.FindString(msg))
	}
	return ""
}

// TestAPIErrorSentences makes one request of every error class the API
// answers, through the real handler stack, and checks the class and that
// the message is a sentence for people, without the package prefixes and
// raw codes the error's own text has for the log.
func TestAPIErrorSentences(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name         string
		role         string
		method, path string
		body         any
		status       int
		code         string
	}{
		{"invalid value", roleAdmin, "POST", "/api/v1/domains", `{"name":"not a domain"}`, http.StatusUnprocessableEntity, codeInvalid},
		{"unknown algorithm", roleAdmin, "POST", "/api/v1/domains/a.example/keys", `{"selector":"s9","algorithm":"dsa"}`, http.StatusUnprocessableEntity, codeInvalid},
		{"no such domain", roleAdmin, "GET", "/api/v1/domains/nowhere.example", nil, http.StatusNotFound, codeNotFound},
		{"not one of yours", roleDomA, "GET", "/api/v1/domains/b.example", nil, http.StatusNotFound, codeNotFound},
		{"no such message", roleAdmin, "GET", "/api/v1/queue/20260101T000000-nothing", nil, http.StatusNotFound, codeNotFound},
		{"no such path", roleAdmin, "GET", "/api/v1/nothing", nil, http.StatusNotFound, codeNotFound},
		{"name taken", roleAdmin, "POST", "/api/v1/domains", `{"name":"a.example"}`, http.StatusConflict, codeExists},
		{"state forbids it", roleAdmin, "POST", "/api/v1/domains/a.example/keys/a1/state", `{"state":"retired"}`, http.StatusConflict, codeConflict},
		// RFC 6376 §3.6.1: a key is activated only once its record is
		// served; the seeded a1 has none in DNS.
		{"record not published", roleAdmin, "POST", "/api/v1/domains/a.example/keys/a1/state", `{"state":"active"}`, http.StatusConflict, codeNotPublished},
		{"only an admin", roleDomA, "POST", "/api/v1/accounts", `{"name":"eve","role":"admin"}`, http.StatusForbidden, codeForbidden},
		{"no credentials", "", "GET", "/api/v1/domains", nil, http.StatusUnauthorized, codeUnauthorized},
		{"malformed JSON", roleAdmin, "POST", "/api/v1/domains", `{"name":`, http.StatusBadRequest, codeBadRequest},
		{"unknown field", roleAdmin, "POST", "/api/v1/domains", `{"name":"c.example","nmae":"x"}`, http.StatusBadRequest, codeBadRequest},
		{"wrong type", roleAdmin, "POST", "/api/v1/domains", `{"name":7}`, http.StatusBadRequest, codeBadRequest},
		{"wrong method", roleAdmin, "PUT", "/api/v1/queue", `{}`, http.StatusMethodNotAllowed, codeMethodNotAllowed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.call(c.role, c.method, c.path, c.body)
			if r.status != c.status || r.apiErr().Code != c.code {
				t.Fatalf("%d %q, want %d %q; body %s", r.status, r.apiErr().Code, c.status, c.code, r.body)
			}
			if p := sentenceProblem(r.apiErr().Message); p != "" {
				t.Errorf("message %q %s", r.apiErr().Message, p)
			}
		})
	}
}

// TestClassifyMessages checks classify on errors as the packages make
// them: the message is the sentence the error carries, or its class's,
// never its text for the log; an internal error says nothing of itself.
func TestClassifyMessages(t *testing.T) {
	_, fromErr := mailaddr.ParseFromHeader("Ann <ann@a.example")
	cases := []struct {
		name   string
		err    error
		status int
		code   string
		want   string // a part of the message
	}{
		{"transition", store.CheckTransition(store.KeyRevoked, store.KeyActive), http.StatusConflict, codeConflict, "A revoked key cannot become active (it can become archived)."},
		{"field", store.Invalid("selector", "use letters, digits and hyphens"), http.StatusUnprocessableEntity, codeInvalid, "Use letters, digits and hyphens."},
		{"bare class", fmt.Errorf("%w: key 7", store.ErrNotFound), http.StatusNotFound, codeNotFound, "was not found"},
		{"wrapped problem", fmt.Errorf("activate: %w", store.Explain(lifecycle.ErrNotPublished, "DNS shows no record.")), http.StatusConflict, codeNotPublished, "DNS shows no record."},
		{"forbidden", fmt.Errorf("%w: x", admin.ErrForbidden), http.StatusForbidden, codeForbidden, "You may not do this."},
		{"queue busy", fmt.Errorf("%w: 20260101T000000-x", queue.ErrBusy), http.StatusConflict, codeConflict, "being delivered right now"},
		{"no queue", fmt.Errorf("%w: no queue here", admin.ErrNoQueue), http.StatusServiceUnavailable, codeUnavailable, "runs no mail queue"},
		// net/mail says "mail: no angle-addr"; people read what is wrong
		// with their From header (RFC 5322 §3.4).
		{"From header", fromErr, http.StatusInternalServerError, codeInternal, "Internal error"},
		{"internal", errors.New("sqlite: disk I/O error"), http.StatusInternalServerError, codeInternal, "Internal error"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ae := classify(c.err)
			if ae.status != c.status || ae.code != c.code || !strings.Contains(ae.message, c.want) {
				t.Fatalf("%d %s %q, want %d %s and %q", ae.status, ae.code, ae.message, c.status, c.code, c.want)
			}
			if p := sentenceProblem(ae.message); p != "" {
				t.Errorf("message %q %s", ae.message, p)
			}
			if c.status < 500 && ae.err == nil {
				t.Error("the cause is lost for the log")
			}
		})
	}
	if m, _, ok := store.Detail(fromErr); !ok || !strings.Contains(m, "From header does not parse") || sentenceProblem(m) != "" {
		t.Errorf("From header detail %q %v", m, ok)
	}
}

// TestControlAnswersAsAPI is issue 11 point 6: the control socket's
// handler is the API's, so a missing message gets the same JSON error, and
// it serves the queue routes only, acting as the local operator.
func TestControlAnswersAsAPI(t *testing.T) {
	e := newEnv(t)
	ctl := httptest.NewServer(NewControl(Options{Admin: e.svc}))
	t.Cleanup(ctl.Close)
	get := func(method, path string) (int, errorDetail, string) {
		t.Helper()
		req, err := http.NewRequest(method, ctl.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := ctl.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		r := &resp{status: res.StatusCode, body: b}
		return r.status, r.apiErr(), string(b)
	}

	const missing = "/api/v1/queue/20260101T000000-nothing"
	api := e.call(roleAdmin, "GET", missing, nil)
	status, got, body := get("GET", missing)
	if status != api.status || got.Code != api.apiErr().Code || got.Message != api.apiErr().Message || got.Code != codeNotFound {
		t.Errorf("control socket %d %s, API %d %s", status, body, api.status, api.body)
	}
	if status, _, body := get("GET", "/api/v1/queue/"+e.msgID); status != http.StatusOK || !strings.Contains(body, e.msgID) {
		t.Errorf("show without credentials: %d %s", status, body)
	}
	if status, _, _ := get("POST", "/api/v1/queue/"+e.msgID+"/retry"); status != http.StatusNoContent {
		t.Errorf("retry: %d", status)
	}
	// Nothing but the queue: the socket is no back door to the rest.
	for _, p := range []string{"/api/v1/domains", "/api/v1/accounts", "/api/v1/whoami", "/api/v1/login"} {
		if status, got, _ := get("GET", p); status != http.StatusNotFound || got.Code != codeNotFound {
			t.Errorf("GET %s on the control socket: %d %s", p, status, got.Code)
		}
	}
}
