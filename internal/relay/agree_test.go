package relay_test

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/auth"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/policy"
	"github.com/dkimd/dkimd/internal/store"
	"github.com/dkimd/dkimd/internal/store/storetest"
)

// TestExplainAgreesWithRelay drives one table through the real relay (SMTP
// on loopback) and through the explainer (admin.Service.Explain, behind
// the panel, the API and "dkimd policy explain"), and asserts the same
// verdict: refused, unsigned, or signed with the same d= and selectors
// (issue 12.1). Before policy.Evaluate the explainer answered "signs with
// d=tenant-a.example" for mail the relay refused with 550 5.7.1.
func TestExplainAgreesWithRelay(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()

	// A rotation: "old" was replaced by "new", which signs now. A user
	// whose selector is "old" follows it (issue 12.2).
	ed := keys.Spec{Algorithm: keys.Ed25519}
	mkKey := func(sel string, replaces int64) store.Key {
		nk, err := storetest.NewKey(f.mk, "granted.example", sel, ed)
		if err != nil {
			t.Fatal(err)
		}
		nk.Replaces = replaces
		k, err := f.db.CreateKey(ctx, nk)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.db.SetKeyStates(ctx, store.KeyStateChange{ID: k.ID, To: store.KeyActive}); err != nil {
			t.Fatal(err)
		}
		return k
	}
	old := mkKey("old", 0)
	mkKey("new", old.ID)
	if k, err := f.db.KeyBySelector(ctx, "granted.example", "old"); err != nil || k.State != store.KeyRetired {
		t.Fatalf("old key: %+v, %v; want it retired by the rotation", k, err)
	}
	const pwRotated = "rotated-secret-pw"
	if _, err := f.db.AddUser(ctx, store.OutgoingUser{Name: "rotated", Domain: "granted.example", Auth: store.AuthPassword,
		PasswordHash: mustHashPW(t, pwRotated), Enabled: true, Selector: "old", AllowForeignFrom: true}); err != nil {
		t.Fatal(err)
	}

	mk, err := keys.NewMasterKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	lc, err := lifecycle.NewService(lifecycle.ServiceOptions{Store: f.db, Master: mk})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := admin.New(admin.Options{Store: f.db, Lifecycle: lc})
	if err != nil {
		t.Fatal(err)
	}

	pw := map[string]string{"alice": pwAlice, "foreign": pwForeign, "nosel": pwNosel, "rotated": pwRotated, "reauthpw": pwReauth}
	sender := map[string]string{"alice": "alice@tenant-a.example", "foreign": "f@tenant-a.example", "nosel": "n@tenant-a.example",
		"rotated": "r@granted.example", "reauthpw": "r@tenant-a.example"}
	tests := []struct {
		name, user, from string
		outcome          policy.Outcome
		signs            string // "d=…; s=…,…" when signed
	}{
		{"valid: own From domain, every active key", "alice", "Alice <alice@tenant-a.example>", policy.OutcomeSigned, "d=tenant-a.example; s=a2,a1"},
		{"granted From domain", "alice", "a@granted.example", policy.OutcomeSigned, "d=granted.example; s=g1,new"},
		{"another tenant's From: refused", "alice", "ceo@tenant-b.example", policy.OutcomeRefused, ""},
		{"sub-domain of own domain: refused", "alice", "x@sub.tenant-a.example", policy.OutcomeRefused, ""},
		{"two addresses in From: refused", "alice", "a@tenant-a.example, b@tenant-a.example", policy.OutcomeRefused, ""},
		{"From with no domain: refused", "alice", "alice", policy.OutcomeRefused, ""},
		{"foreign mail allowed: signed as the user's domain", "foreign", "ceo@tenant-b.example", policy.OutcomeSigned, "d=tenant-a.example; s=a1"},
		{"foreign mail allowed, no selector: unsigned", "nosel", "ceo@tenant-b.example", policy.OutcomeUnsigned, ""},
		{"foreign mail allowed, two addresses: unsigned", "foreign", "a@tenant-a.example, b@tenant-a.example", policy.OutcomeUnsigned, ""},
		{"re-authenticating user: unsigned", "reauthpw", "someone@tenant-a.example", policy.OutcomeUnsigned, ""},
		{"selector of a rotated key: the successor signs", "rotated", "x@tenant-b.example", policy.OutcomeSigned, "d=granted.example; s=new"},
	}
	sigRE := regexp.MustCompile(`(?s)DKIM-Signature:.*?\bd=([^;\s]+);.*?\bs=([^;\s]+);`)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The explainer.
			dec, err := svc.Explain(ctx, admin.CLI(), tc.user, tc.from)
			if err != nil {
				t.Fatal(err)
			}
			explained := ""
			if dec.Signs() {
				var sels []string
				for _, s := range dec.Sign {
					sels = append(sels, s.Selector)
				}
				explained = "d=" + dec.Domain.String() + "; s=" + strings.Join(sels, ",")
			}
			if dec.Outcome != tc.outcome || explained != tc.signs {
				t.Fatalf("explainer: %s %q (%s: %s), want %s %q", dec.Outcome, explained, dec.Reason, dec.Message, tc.outcome, tc.signs)
			}

			// The relay.
			before := len(f.q.Messages())
			c := f.login(tc.user, pw[tc.user])
			hdr := []string{"From: " + tc.from, "To: bob@example.net"}
			if tc.user == "reauthpw" {
				hdr = append(hdr, "X-Sender-Id: someone")
			}
			code, msg := c.send(sender[tc.user], []string{"bob@example.net"}, message(hdr...))
			relayed := policy.OutcomeUnsigned
			switch {
			case code == 550 && tc.outcome == policy.OutcomeRefused:
				relayed = policy.OutcomeRefused
				if !strings.Contains(msg, "5.7.1") && !strings.Contains(msg, "5.6.0") {
					t.Fatalf("relay refused with %d %s", code, msg)
				}
			case code/100 != 2:
				t.Fatalf("relay: %d %s, want the message %s", code, msg, tc.outcome)
			}
			signed := ""
			if ms := f.q.Messages(); len(ms) > before {
				body := string(ms[len(ms)-1].Body)
				var ds, sels []string
				for _, m := range sigRE.FindAllStringSubmatch(body, -1) {
					ds, sels = append(ds, m[1]), append(sels, m[2])
				}
				if len(sels) > 0 {
					relayed = policy.OutcomeSigned
					if len(slices.Compact(slices.Clone(ds))) != 1 {
						t.Fatalf("signatures with several d=: %v", ds)
					}
					signed = "d=" + ds[0] + "; s=" + strings.Join(sels, ",")
				}
			} else if relayed != policy.OutcomeRefused {
				t.Fatalf("relay answered %d but queued nothing", code)
			}
			if relayed != dec.Outcome || signed != explained {
				t.Fatalf("row %d: relay %s %q, explainer %s %q", i, relayed, signed, dec.Outcome, explained)
			}
		})
	}
}

func mustHashPW(t *testing.T, pw string) string {
	t.Helper()
	h, err := auth.HashPasswordParams(pw, fastParams)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
