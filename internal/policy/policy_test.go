package policy

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dkimd/dkimd/internal/auth"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/mailaddr"
	"github.com/dkimd/dkimd/internal/store"
	"github.com/dkimd/dkimd/internal/store/sqlite"
	"github.com/dkimd/dkimd/internal/store/storetest"
)

// fixture is a real SQLite store with two tenants and their neighbours.
type fixture struct {
	db   *sqlite.DB
	keys map[string]store.Key // by "domain/selector"
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "dkimd.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{db: db, keys: map[string]store.Key{}}
	for _, d := range []string{"tenant-a.example", "sub.tenant-a.example", "tenant-b.example", "granted.example",
		"münchen.de", "nokey.example", "revoked.example"} {
		if _, err := db.AddDomain(ctx, store.Domain{Name: d}); err != nil {
			t.Fatal(err)
		}
	}
	mk, err := keys.NewMasterKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	add := func(domain, sel string, spec keys.Spec, states ...store.KeyState) {
		t.Helper()
		nk, err := storetest.NewKey(mk, domain, sel, spec)
		if err != nil {
			t.Fatal(err)
		}
		k, err := db.CreateKey(ctx, nk)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range states {
			if k, err = db.SetKeyState(ctx, k.ID, s); err != nil {
				t.Fatal(err)
			}
		}
		f.keys[k.Domain+"/"+k.Selector] = k
	}
	ed, rsa := keys.Spec{Algorithm: keys.Ed25519}, keys.Spec{Algorithm: keys.RSA, Bits: 1024}
	// tenant-a signs twice, Ed25519 created first to show RSA is put first.
	add("tenant-a.example", "a-ed", ed, store.KeyActive)
	add("tenant-a.example", "a-rsa", rsa, store.KeyActive)
	add("tenant-a.example", "a-pending", ed)
	add("tenant-a.example", "a-retired", ed, store.KeyActive, store.KeyRetired)
	add("sub.tenant-a.example", "sub", ed, store.KeyActive)
	add("tenant-b.example", "b", ed, store.KeyActive)
	add("granted.example", "g", ed, store.KeyActive)
	add("xn--mnchen-3ya.de", "m", ed, store.KeyActive)
	add("revoked.example", "r", ed, store.KeyRevoked)
	return f
}

// alice is the valid starting point: tenant-a's user, granted two domains,
// with a selector.
func alice() store.OutgoingUser {
	return store.OutgoingUser{Name: "alice", Domain: "tenant-a.example", Auth: store.AuthPassword, Enabled: true,
		Selector: "a-ed", GrantedDomains: []string{"granted.example", "xn--mnchen-3ya.de", "nokey.example", "revoked.example"}}
}

func TestDecide(t *testing.T) {
	f := newFixture(t)
	sig := func(domainSel ...string) []Signature {
		var out []Signature
		for _, ds := range domainSel {
			k, ok := f.keys[ds]
			if !ok {
				t.Fatalf("fixture has no key %s", ds)
			}
			out = append(out, Signature{Domain: mustDomain(t, k.Domain), Selector: k.Selector, KeyID: k.ID, Algorithm: k.Algorithm})
		}
		return out
	}
	const from = "Alice Example <alice@tenant-a.example>"
	tests := []struct {
		name    string
		user    func(u *store.OutgoingUser) // nil: no change
		nilUser bool
		from    string
		reason  Reason
		sign    []Signature
		message string // substring, or the whole text for reauth
	}{
		{"valid: own From domain, every active key, RSA first", nil, false, from, ReasonFromDomain,
			sig("tenant-a.example/a-rsa", "tenant-a.example/a-ed"), "signed as From domain tenant-a.example"},

		// The From header, parsed not guessed (RFC 5322 §3.6.2, §3.4).
		{"bare address", nil, false, "alice@tenant-a.example", ReasonFromDomain, sig("tenant-a.example/a-rsa", "tenant-a.example/a-ed"), ""},
		{"domain in upper case", nil, false, "ALICE@TENANT-A.EXAMPLE", ReasonFromDomain, sig("tenant-a.example/a-rsa", "tenant-a.example/a-ed"), ""},
		{"trailing comment", nil, false, "alice@tenant-a.example (Alice)", ReasonFromDomain, sig("tenant-a.example/a-rsa", "tenant-a.example/a-ed"), ""},
		{"quoted display name with comma", nil, false, `"Doe, Alice" <alice@tenant-a.example>`, ReasonFromDomain, sig("tenant-a.example/a-rsa", "tenant-a.example/a-ed"), ""},
		{"encoded display name", nil, false, "=?utf-8?q?Al=C3=AFce?= <alice@tenant-a.example>", ReasonFromDomain, sig("tenant-a.example/a-rsa", "tenant-a.example/a-ed"), ""},
		{"folded", nil, false, "Alice\r\n <alice@tenant-a.example>", ReasonFromDomain, sig("tenant-a.example/a-rsa", "tenant-a.example/a-ed"), ""},
		{"group of one", nil, false, "Team: alice@tenant-a.example;", ReasonFromDomain, sig("tenant-a.example/a-rsa", "tenant-a.example/a-ed"), ""},
		{"empty", nil, false, "", ReasonFromMissing, nil, "no address"},
		{"white space only", nil, false, " \r\n ", ReasonFromMissing, nil, "no address"},
		{"empty group", nil, false, "undisclosed-recipients:;", ReasonFromMissing, nil, "no address"},
		{"two addresses, same domain", nil, false, "alice@tenant-a.example, bob@tenant-a.example", ReasonFromMultiple, nil, "several addresses"},
		{"two addresses in a group", nil, false, "Team: alice@tenant-a.example, bob@tenant-a.example;", ReasonFromMultiple, nil, "several addresses"},
		{"two addresses, second foreign", nil, false, "alice@tenant-a.example, x@tenant-b.example", ReasonFromMultiple, nil, "several addresses"},
		{"unparseable", nil, false, "<<<alice@tenant-a.example", ReasonFromInvalid, nil, "does not parse"},
		{"no domain", nil, false, "alice", ReasonFromInvalid, nil, "does not parse"},
		{"domain literal", nil, false, "alice@[192.0.2.1]", ReasonFromInvalid, nil, "does not parse"},
		{"invalid domain", nil, false, "alice@under_score.example", ReasonFromInvalid, nil, "does not parse"},

		// Granted domains, in any spelling.
		{"granted From domain", nil, false, "a@granted.example", ReasonFromDomain, sig("granted.example/g"), "granted.example"},
		{"granted IDN From domain, Unicode and upper case", nil, false, "a@MÜNCHEN.de", ReasonFromDomain, sig("xn--mnchen-3ya.de/m"), "xn--mnchen-3ya.de"},
		{"granted IDN From domain, A-label", nil, false, "a@xn--mnchen-3ya.de", ReasonFromDomain, sig("xn--mnchen-3ya.de/m"), ""},
		{"granted domain without key: user selector", nil, false, "a@nokey.example", ReasonUserSelector, sig("tenant-a.example/a-ed"), "has no active key"},
		{"granted domain with only a revoked key: user selector", nil, false, "a@revoked.example", ReasonUserSelector, sig("tenant-a.example/a-ed"), "has no active key"},
		{"granted domain without key, no selector", func(u *store.OutgoingUser) { u.Selector = "" }, false, "a@nokey.example", ReasonNoKey, nil, "no DKIM selector"},

		// Cross-tenant attempts: never d= a domain not owned nor granted.
		{"other tenant's From: user selector, own domain", nil, false, "ceo@tenant-b.example", ReasonUserSelector, sig("tenant-a.example/a-ed"), "may not sign as From domain tenant-b.example"},
		{"other tenant's From, no selector", func(u *store.OutgoingUser) { u.Selector = "" }, false, "ceo@tenant-b.example", ReasonNoKey, nil, "may not sign as From domain tenant-b.example"},
		{"other tenant's From with display name of own", nil, false, `"alice@tenant-a.example" <ceo@tenant-b.example>`, ReasonUserSelector, sig("tenant-a.example/a-ed"), "tenant-b.example"},
		{"sub-domain of own domain is not owned", nil, false, "a@sub.tenant-a.example", ReasonUserSelector, sig("tenant-a.example/a-ed"), "may not sign as From domain sub.tenant-a.example"},
		{"sub-domain user may not sign as parent", func(u *store.OutgoingUser) {
			u.Domain, u.Selector, u.GrantedDomains = "sub.tenant-a.example", "", nil
		}, false, from, ReasonNoKey, nil, "may not sign as From domain tenant-a.example"},
		{"sub-domain user signs as itself", func(u *store.OutgoingUser) { u.Domain, u.Selector = "sub.tenant-a.example", "" }, false,
			"x@sub.tenant-a.example", ReasonFromDomain, sig("sub.tenant-a.example/sub"), ""},
		{"look-alike suffix", nil, false, "a@tenant-a.example.evil", ReasonUserSelector, sig("tenant-a.example/a-ed"), "may not sign"},
		{"look-alike prefix", nil, false, "a@eviltenant-a.example", ReasonUserSelector, sig("tenant-a.example/a-ed"), "may not sign"},
		{"tenant-b user with tenant-a From", func(u *store.OutgoingUser) {
			u.Name, u.Domain, u.Selector, u.GrantedDomains = "bob", "tenant-b.example", "b", nil
		}, false, from, ReasonUserSelector, sig("tenant-b.example/b"), "may not sign as From domain tenant-a.example"},
		{"tenant-b user naming tenant-a's selector", func(u *store.OutgoingUser) {
			u.Name, u.Domain, u.GrantedDomains = "bob", "tenant-b.example", nil // Selector stays a-ed
		}, false, from, ReasonSelectorNoKey, nil, "names no key of tenant-b.example"},

		// The user's selector (rule 3).
		{"selector of a pending key", func(u *store.OutgoingUser) { u.Selector = "a-pending" }, false, "x@tenant-b.example", ReasonSelectorNoKey, nil, "a-pending names a pending key"},
		{"selector of a retired key", func(u *store.OutgoingUser) { u.Selector = "a-retired" }, false, "x@tenant-b.example", ReasonSelectorNoKey, nil, "a-retired"},
		{"selector of no key", func(u *store.OutgoingUser) { u.Selector = "nope" }, false, "x@tenant-b.example", ReasonSelectorNoKey, nil, "nope"},
		{"selector of the other key", func(u *store.OutgoingUser) { u.Selector = "a-rsa" }, false, "x@tenant-b.example", ReasonUserSelector, sig("tenant-a.example/a-rsa"), ""},
		{"own From domain: every key, whatever the selector", func(u *store.OutgoingUser) { u.Selector = "a-rsa" }, false, from, ReasonFromDomain,
			sig("tenant-a.example/a-rsa", "tenant-a.example/a-ed"), ""},

		// The user.
		{"re-authenticating user", func(u *store.OutgoingUser) { u.Auth, u.Selector = store.AuthReauth, "" }, false, from, ReasonReauth, nil,
			"DKIM signing is unavailable for re-authenticating users"},
		{"re-authenticating user with a selector anyway", func(u *store.OutgoingUser) { u.Auth = store.AuthReauth }, false, from, ReasonReauth, nil,
			"DKIM signing is unavailable for re-authenticating users"},
		{"disabled user", func(u *store.OutgoingUser) { u.Enabled = false }, false, from, ReasonUserDisabled, nil, "disabled"},
		{"IP-authenticated user", func(u *store.OutgoingUser) { u.Auth = store.AuthIP }, false, from, ReasonFromDomain,
			sig("tenant-a.example/a-rsa", "tenant-a.example/a-ed"), ""},
		{"no user", nil, true, from, ReasonNoUser, nil, "no authenticated user"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The signing rule, for a user that may send foreign mail:
			// what a user that may not is refused is TestEvaluateRefuses.
			u := alice()
			u.AllowForeignFrom = true
			if tc.user != nil {
				tc.user(&u)
			}
			up := &u
			if tc.nilUser {
				up = nil
			}
			d := Decide(context.Background(), f.db, up, tc.from)
			if d.Reason != tc.reason {
				t.Fatalf("reason %s (%s), want %s", d.Reason, d.Message, tc.reason)
			}
			want := OutcomeUnsigned
			switch {
			case tc.sign != nil:
				want = OutcomeSigned
			case tc.reason == ReasonUserDisabled:
				want = OutcomeRefused
			}
			if d.Outcome != want {
				t.Fatalf("outcome %s, want %s", d.Outcome, want)
			}
			if len(d.Sign) != len(tc.sign) {
				t.Fatalf("signatures %+v, want %+v", d.Sign, tc.sign)
			}
			for i := range d.Sign {
				if d.Sign[i] != tc.sign[i] {
					t.Fatalf("signature %d = %+v, want %+v", i, d.Sign[i], tc.sign[i])
				}
				if d.Sign[i].Domain != d.Domain {
					t.Fatalf("signature %d is for %s, decision for %s", i, d.Sign[i].Domain, d.Domain)
				}
			}
			if d.Signs() && !u.MaySignAs(d.Domain) {
				t.Fatalf("signs as %s, which user %s (%s, granted %v) may not", d.Domain, u.Name, u.Domain, u.GrantedDomains)
			}
			if !d.Signs() && !d.Domain.IsZero() {
				t.Fatalf("no signature but d=%s", d.Domain)
			}
			if tc.reason == ReasonReauth {
				if d.Message != tc.message {
					t.Fatalf("message %q, want exactly %q", d.Message, tc.message)
				}
			} else if !strings.Contains(d.Message, tc.message) {
				t.Fatalf("message %q, want it to contain %q", d.Message, tc.message)
			}
			if d.Err != nil {
				t.Fatalf("Err = %v", d.Err)
			}
		})
	}
}

func TestDecideForName(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	u := alice()
	u.PasswordHash = mustHash(t)
	if _, err := f.db.AddUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	d := DecideForName(ctx, f.db, "ALICE", "a@granted.example")
	if d.Reason != ReasonFromDomain || d.Domain.String() != "granted.example" || d.User != "alice" {
		t.Fatalf("DecideForName = %+v", d)
	}
	d = DecideForName(ctx, f.db, "mallory", "a@granted.example")
	if d.Reason != ReasonNoUser || d.Signs() {
		t.Fatalf("DecideForName(unknown) = %+v", d)
	}
}

func mustHash(t *testing.T) string {
	t.Helper()
	h, err := auth.HashPasswordParams("pw", auth.Params{Memory: 64, Time: 1, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// A store that cannot answer gives a temporary failure, never an unsigned
// pass nor a guess.
func TestDecideLookupFailed(t *testing.T) {
	f := newFixture(t)
	if err := f.db.Close(); err != nil {
		t.Fatal(err)
	}
	u := alice()
	u.AllowForeignFrom = true
	for _, from := range []string{"a@tenant-a.example", "a@tenant-b.example"} {
		d := Decide(context.Background(), f.db, &u, from)
		if d.Reason != ReasonLookupFailed || d.Outcome != OutcomeDeferred || d.Err == nil || d.Signs() {
			t.Fatalf("Decide on a closed store (From %s) = %+v", from, d)
		}
	}
	d := DecideForName(context.Background(), f.db, "alice", "a@tenant-a.example")
	if d.Reason != ReasonLookupFailed || d.Err == nil {
		t.Fatalf("DecideForName on a closed store = %+v", d)
	}
}

func TestDecisionLog(t *testing.T) {
	f := newFixture(t)
	u := alice()
	d := Decide(context.Background(), f.db, &u, "a@tenant-a.example")
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("dkim_decision", "decision", d)
	for _, want := range []string{"decision.reason=from_domain", "decision.domain=tenant-a.example", "decision.selectors=a-rsa,a-ed", "decision.user=alice"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log line %q lacks %q", buf.String(), want)
		}
	}
}

func TestValidateSelectorForUser(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name   string
		change func(u *store.OutgoingUser)
		want   error
	}{
		{"valid: active key", func(u *store.OutgoingUser) {}, nil},
		{"pending key", func(u *store.OutgoingUser) { u.Selector = "a-pending" }, nil},
		{"no selector", func(u *store.OutgoingUser) { u.Selector = "" }, nil},
		{"re-authenticating user", func(u *store.OutgoingUser) { u.Auth = store.AuthReauth }, store.ErrReauthSelector},
		{"no such key", func(u *store.OutgoingUser) { u.Selector = "nope" }, ErrSelectorNoKey},
		{"retired key", func(u *store.OutgoingUser) { u.Selector = "a-retired" }, ErrSelectorNoKey},
		{"other tenant's selector", func(u *store.OutgoingUser) { u.Selector = "b" }, ErrSelectorNoKey},
		{"granted domain's selector", func(u *store.OutgoingUser) { u.Selector = "g" }, ErrSelectorNoKey},
		{"sub-domain's selector", func(u *store.OutgoingUser) { u.Selector = "sub" }, ErrSelectorNoKey},
		{"revoked key of another user domain", func(u *store.OutgoingUser) { u.Domain, u.Selector = "revoked.example", "r" }, ErrSelectorNoKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := alice()
			tc.change(&u)
			err := ValidateSelectorForUser(context.Background(), f.db, &u)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tc.want) || !errors.Is(err, store.ErrInvalid) {
				t.Fatalf("err = %v, want %v as a store.ErrInvalid", err, tc.want)
			}
			var fe *store.FieldError
			if !errors.As(err, &fe) || fe.Field != "selector" {
				t.Fatalf("err = %v, want a FieldError for selector", err)
			}
			if tc.want == store.ErrReauthSelector && fe.Err.Error() != "DKIM signing is unavailable for re-authenticating users" {
				t.Fatalf("explanation %q, want exactly the issue's words", fe.Err)
			}
		})
	}
}

// TestEvaluateRefuses: what the relay refuses before the signing rule, in
// its order, for a user that may not send foreign mail (the default). The
// explainer gives the same verdict (admin's TestExplainAgreesWithRelay).
func TestEvaluateRefuses(t *testing.T) {
	f := newFixture(t)
	const own = "Alice <alice@tenant-a.example>"
	tests := []struct {
		name    string
		user    func(u *store.OutgoingUser)
		from    []string
		outcome Outcome
		reason  Reason
		message string
	}{
		{"valid: own From domain signs", nil, []string{own}, OutcomeSigned, ReasonFromDomain, "signed as From domain"},
		{"granted From domain signs", nil, []string{"a@granted.example"}, OutcomeSigned, ReasonFromDomain, ""},
		{"granted domain without key: user selector", nil, []string{"a@nokey.example"}, OutcomeSigned, ReasonUserSelector, ""},
		{"other tenant's From refused", nil, []string{"ceo@tenant-b.example"}, OutcomeRefused, ReasonFromNotPermitted, "may not send mail from tenant-b.example"},
		{"sub-domain of own domain refused", nil, []string{"a@sub.tenant-a.example"}, OutcomeRefused, ReasonFromNotPermitted, "sub.tenant-a.example"},
		{"look-alike suffix refused", nil, []string{"a@tenant-a.example.evil"}, OutcomeRefused, ReasonFromNotPermitted, ""},
		{"display name of own, address foreign: refused", nil, []string{`"alice@tenant-a.example" <ceo@tenant-b.example>`}, OutcomeRefused, ReasonFromNotPermitted, ""},
		{"unparseable From refused", nil, []string{"<<<alice@tenant-a.example"}, OutcomeRefused, ReasonFromNotPermitted, "does not parse"},
		{"empty From refused", nil, []string{""}, OutcomeRefused, ReasonFromNotPermitted, "no address"},
		{"two addresses refused", nil, []string{"alice@tenant-a.example, bob@tenant-a.example"}, OutcomeRefused, ReasonFromNotPermitted, "several addresses"},
		// RFC 5322 §3.6: exactly one From field, whatever the user.
		{"no From field refused", nil, nil, OutcomeRefused, ReasonFromCount, "0 From fields"},
		{"two From fields refused", nil, []string{own, own}, OutcomeRefused, ReasonFromCount, "2 From fields"},
		{"two From fields refused even with foreign mail allowed", func(u *store.OutgoingUser) { u.AllowForeignFrom = true }, []string{own, own}, OutcomeRefused, ReasonFromCount, ""},
		{"disabled user refused", func(u *store.OutgoingUser) { u.Enabled = false }, []string{own}, OutcomeRefused, ReasonUserDisabled, "disabled"},
		{"re-authenticating user with foreign From refused", func(u *store.OutgoingUser) { u.Auth, u.Selector = store.AuthReauth, "" }, []string{"x@tenant-b.example"}, OutcomeRefused, ReasonFromNotPermitted, ""},
		{"re-authenticating user, own From: unsigned", func(u *store.OutgoingUser) { u.Auth, u.Selector = store.AuthReauth, "" }, []string{own}, OutcomeUnsigned, ReasonReauth, ""},
		{"foreign mail allowed: other tenant's From unsigned, never signed as it", func(u *store.OutgoingUser) { u.AllowForeignFrom, u.Selector = true, "" }, []string{"ceo@tenant-b.example"}, OutcomeUnsigned, ReasonNoKey, "may not sign"},
		{"foreign mail allowed: unparseable From unsigned", func(u *store.OutgoingUser) { u.AllowForeignFrom = true }, []string{"<<<x"}, OutcomeUnsigned, ReasonFromInvalid, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := alice()
			if tc.user != nil {
				tc.user(&u)
			}
			d := Evaluate(context.Background(), f.db, Request{User: &u, From: tc.from})
			if d.Outcome != tc.outcome || d.Reason != tc.reason {
				t.Fatalf("%s (%s): %s, want %s (%s)", d.Outcome, d.Reason, d.Message, tc.outcome, tc.reason)
			}
			if d.Refused() != (tc.outcome == OutcomeRefused) || (d.Outcome == OutcomeRefused && d.Signs()) {
				t.Fatalf("decision %+v", d)
			}
			if !strings.Contains(d.Message, tc.message) {
				t.Fatalf("message %q, want it to contain %q", d.Message, tc.message)
			}
		})
	}
}

// TestEvaluateFollowsRotation: a user's selector whose key a rotation
// replaced signs with the active successor, through several rotations;
// one retired with nothing active after it does not sign, and says why.
func TestEvaluateFollowsRotation(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	mk, err := keys.NewMasterKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	rsa := keys.Spec{Algorithm: keys.RSA, Bits: 1024}
	add := func(sel string, replaces int64) store.Key {
		t.Helper()
		nk, err := storetest.NewKey(mk, "nokey.example", sel, rsa)
		if err != nil {
			t.Fatal(err)
		}
		nk.Replaces = replaces
		k, err := f.db.CreateKey(ctx, nk)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	activate := func(k store.Key) {
		t.Helper()
		if _, err := f.db.SetKeyStates(ctx, store.KeyStateChange{ID: k.ID, To: store.KeyActive}); err != nil {
			t.Fatal(err)
		}
	}
	// mail2026 → 202612 → 202706 → 202712 (pending): 202706 signs.
	k1 := add("mail2026", 0)
	activate(k1)
	k2 := add("202612", k1.ID)
	activate(k2) // retires mail2026
	if _, err := f.db.SetKeyState(ctx, k1.ID, store.KeyRevoked); err != nil {
		t.Fatal(err)
	}
	k3 := add("202706", k2.ID)
	activate(k3)
	add("202712", k3.ID)
	lone := add("lone", 0)
	activate(lone)
	if _, err := f.db.SetKeyState(ctx, lone.ID, store.KeyRetired); err != nil {
		t.Fatal(err)
	}
	waiting := add("waiting", 0)
	activate(waiting)
	add("waiting-next", waiting.ID)
	if _, err := f.db.SetKeyState(ctx, waiting.ID, store.KeyRetired); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		selector string
		reason   Reason
		signs    string
		message  string
	}{
		{"202706", ReasonUserSelector, "202706", ""},
		{"mail2026", ReasonUserSelectorRotated, "202706", "202706, which replaced the user's selector mail2026 in a rotation"},
		{"202612", ReasonUserSelectorRotated, "202706", ""},
		{"202712", ReasonSelectorNoKey, "", "pending"},
		{"lone", ReasonSelectorNoKey, "", "names a retired key that no active key replaced"},
		{"waiting", ReasonSelectorNoKey, "", "waiting-next, which replaces it, is still pending"},
		{"nope", ReasonSelectorNoKey, "", "names no key of nokey.example"},
	}
	for _, tc := range tests {
		t.Run(tc.selector, func(t *testing.T) {
			// Rule 3: the From domain is one carol may not sign as.
			u := store.OutgoingUser{Name: "carol", Domain: "nokey.example", Auth: store.AuthPassword, Enabled: true,
				AllowForeignFrom: true, Selector: tc.selector}
			d := Decide(ctx, f.db, &u, "carol@tenant-b.example")
			if d.Reason != tc.reason {
				t.Fatalf("reason %s (%s), want %s", d.Reason, d.Message, tc.reason)
			}
			got := ""
			if d.Signs() {
				got = d.Sign[0].Selector
			}
			if got != tc.signs || len(d.Sign) > 1 {
				t.Fatalf("signs with %v, want %q", d.Sign, tc.signs)
			}
			if (tc.reason == ReasonUserSelectorRotated) != (d.Replaced == tc.selector) {
				t.Fatalf("Replaced = %q", d.Replaced)
			}
			if !strings.Contains(d.Message, tc.message) {
				t.Fatalf("message %q, want it to contain %q", d.Message, tc.message)
			}
			// Saving the user with that selector is refused only when
			// nothing active or pending is at the end of it.
			err := ValidateSelectorForUser(ctx, f.db, &u)
			if wantErr := tc.selector == "lone" || tc.selector == "nope"; (err != nil) != wantErr {
				t.Fatalf("ValidateSelectorForUser = %v, want an error: %v", err, wantErr)
			}
		})
	}
}

func mustDomain(t *testing.T, name string) mailaddr.Domain {
	t.Helper()
	d, err := mailaddr.ParseDomain(name)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
