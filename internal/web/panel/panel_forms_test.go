package panel

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestPanelFormsAllErrorsAtOnce: a form with several mistakes gets every
// one beside its field in one answer, a summary above it as an alert, what
// was typed back (but never a password, which it asks for again), and
// nothing saved.
func TestPanelFormsAllErrorsAtOnce(t *testing.T) {
	e := newPanelEnv(t, panelEnvOptions{})
	b := e.browser()
	csrf := b.login("root", rootPassword)
	cases := []struct {
		name, path string
		form       url.Values
		errIDs     []string
		kept       []string
	}{
		{"generate", "/domains/a.example/outgoing/dkim",
			url.Values{"csrf": {csrf}, "length": {"rsa999"}, "selector": {"-bad"}, "ed25519": {"on"}, "ed_selector": {"a b"}},
			[]string{"length-error", "selector-error", "ed-selector-error"}, []string{`value="-bad"`, `value="a b"`}},
		{"new user", "/domains/a.example/outgoing/users/new",
			url.Values{"csrf": {csrf}, "name": {""}, "auth": {"password"}, "password": {"tiny pw"}, "networks": {"300.1.1.1"}, "selector": {"a b"}, "granted_domains": {"-x-"}},
			[]string{"name-error", "password-error", "networks-error", "selector-error", "granted-error"}, []string{"300.1.1.1", `value="a b"`, `value="-x-"`}},
		{"new account", "/accounts",
			url.Values{"csrf": {csrf}, "name": {""}, "role": {"domain"}, "domains": {"not_a domain"}, "password": {"tiny pw"}},
			[]string{"name-error", "domains-error", "password-error"}, []string{`value="not_a domain"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.snapshot()
			r := b.post(c.path, c.form, nil)
			r.want(t, http.StatusUnprocessableEntity)
			for _, id := range c.errIDs {
				if !strings.Contains(r.body, `id="`+id+`"`) {
					t.Errorf("no %s in the one answer", id)
				}
			}
			if !strings.Contains(r.body, `class="alert alert-bad form-errors" role="alert"`) {
				t.Errorf("no error summary as an alert")
			}
			for _, k := range c.kept {
				if !strings.Contains(r.body, k) {
					t.Errorf("what was typed is not kept: %s", k)
				}
			}
			if strings.Contains(r.body, "tiny pw") {
				t.Errorf("the password was sent back")
			}
			if c.form.Get("password") != "" && !strings.Contains(r.body, "type it again") {
				t.Errorf("the page does not ask to type the password again")
			}
			if e.snapshot() != before {
				t.Errorf("a refused form saved something")
			}
		})
	}
}

// TestFieldErrorsInFormOrder: the summary lists errors from the top of
// the form down, as a reader meets the fields.
func TestFieldErrorsInFormOrder(t *testing.T) {
	got := fieldErrors(formErrors{"": "form", "granted_domains": "g", "name": "n", "networks": "w", "password": "p", "selector": "s"})
	want := []string{"n", "p", "w", "s", "g"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("fieldErrors = %v, want %v", got, want)
	}
}
