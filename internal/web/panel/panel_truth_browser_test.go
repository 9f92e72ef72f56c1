package panel

import (
	"testing"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/store"
)

// TestPanelBrowserTruth drives issue 12's points 1, 2, 3, 5 and 7 in
// headless Chromium: the panel says what dkimd does. a.example signs with
// mail2026 (its record published); news@a.example names it as selector.
func TestPanelBrowserTruth(t *testing.T) {
	browserCtx := startChromium(t)
	e := newPanelEnv(t, panelEnvOptions{})
	shots := screenshotDir(t)
	cli := admin.CLI()
	ed := keys.Spec{Algorithm: keys.Ed25519}
	gen := func(domain, sel string) {
		t.Helper()
		if _, err := e.svc.GenerateKey(e.ctx, cli, lifecycle.NewKeyRequest{Domain: domain, Selector: sel, Spec: ed}); err != nil {
			t.Fatal(err)
		}
	}
	activate := func(domain, sel string) {
		t.Helper()
		e.publish(domain, sel)
		if _, err := e.svc.ActivateKey(e.ctx, cli, domain, sel, false); err != nil {
			t.Fatal(err)
		}
		check(t, e, domain, sel)
	}
	gen("a.example", "mail2026")
	activate("a.example", "mail2026")
	activate("b.example", "b1") // b.example has nothing wrong
	pw, auth := "a long password for the news", store.AuthPassword
	for _, name := range []string{"news@a.example", "ed@a.example"} {
		if _, err := e.svc.AddUser(e.ctx, cli, name, "a.example", admin.UserChange{Auth: &auth, Password: &pw}); err != nil {
			t.Fatal(err)
		}
	}
	sel := "mail2026"
	if _, err := e.svc.UpdateUser(e.ctx, cli, "news@a.example", admin.UserChange{Selector: &sel}); err != nil {
		t.Fatal(err)
	}

	b := newTab(t, browserCtx, e, shots)
	b.login("root", rootPassword)
	explain := func(user, from string) {
		t.Helper()
		b.navigate("/domains/a.example/outgoing/users")
		b.evalDo(`document.getElementById("explain-user").value = "` + user + `"`)
		b.typeIn("#explain-from", from)
		b.submit("#which-key button[type=submit]")
	}

	t.Run("12.1 the explainer gives the relay's verdict", func(t *testing.T) {
		b := b.with(t)
		// The relay answers 550 5.7.1 to this From: the explainer too.
		explain("news@a.example", "ceo@b.example")
		b.wantText("#decision", "Refused")
		b.wantText("#decision", "from_not_permitted")
		if b.eval(`document.getElementById("decision").innerText.includes("Signs with")`) {
			t.Errorf("the explainer promises a signature for mail the relay refuses")
		}
		b.shot("truth-01-refused")
		// Signed, but the record is gone: the explainer says the
		// signature fails, from the stored check.
		e.unpublish("a.example", "mail2026")
		check(t, e, "a.example", "mail2026")
		explain("news@a.example", "News <news@a.example>")
		b.wantText("#decision", "Signs with d=a.example, but the signature fails DKIM at receivers")
		b.wantText("#decision-warnings", "Mail signed with mail2026 fails DKIM: its record is missing")
		if !b.eval(`document.querySelector("#decision .decision-head").classList.contains("bad")`) {
			t.Errorf("a signature that fails is not shown in red")
		}
		b.shot("truth-02-signed-fails")
	})

	t.Run("12.3 every page says the domain's worst problem the same way", func(t *testing.T) {
		b := b.with(t)
		const fails = "Mail signed now fails DKIM: the record of mail2026 is missing"
		b.navigate("/")
		b.wantText(`tr:has(a[href="/domains/a.example/outgoing/dkim"]) td[data-level="bad"]`, fails)
		b.wantText(`tr:has(a[href="/domains/b.example/outgoing/dkim"]) td[data-level="ok"]`, "Mail is signed with b1")
		b.shot("truth-03-overview")
		// Filtered and sorted by it.
		b.submit("#show-problems")
		b.wantText("main table", "a.example")
		if b.eval(`document.querySelector("main table").innerText.includes("b.example")`) {
			t.Errorf("the problems filter shows b.example, which has none")
		}
		b.navigate("/?sort=status")
		if !b.eval(`document.querySelector("main table tbody tr").innerText.includes("a.example")`) {
			t.Errorf("worst first does not put a.example first")
		}
		for _, page := range []string{"/domains/a.example/outgoing/dkim", "/domains/a.example/keys", "/domains/a.example/outgoing/users"} {
			b.navigate(page)
			b.wantText("#domain-status", fails)
			if !b.eval(`document.getElementById("domain-status").classList.contains("alert-bad")`) {
				t.Errorf("%s: the domain's failure is not red", page)
			}
		}
	})

	t.Run("12.7 one status, red for a missing record, refreshed by Check now", func(t *testing.T) {
		b := b.with(t)
		// A missing record on an active key is red, not amber.
		b.navigate("/domains/a.example/keys")
		if !b.eval(`document.querySelector("tr:has(a[href='/domains/a.example/keys/mail2026']) .badge.dns-bad") !== null`) {
			t.Errorf("the missing record of an active key is not red")
		}
		// Check now: the page's alert follows without a reload.
		e.publish("a.example", "mail2026")
		b.navigate("/domains/a.example/keys/mail2026")
		b.wantText("#domain-status", "Mail signed now fails DKIM")
		b.evalDo(`window.notReloaded = true`)
		b.click("#dns-status button[type=submit]")
		b.waitText("#dns-status", "Published, matches this key")
		b.waitEval(`document.getElementById("domain-status").dataset.level === "ok"`)
		if !b.eval(`window.notReloaded === true`) {
			t.Errorf("the page was reloaded; want the status swapped in")
		}
		b.wantText("#domain-status", "Mail is signed with mail2026")
		b.shot("truth-04-check-now")

		// A second active key that verifies: no "fails DKIM" for the
		// domain, only amber for the broken key.
		gen("a.example", "mail2026e")
		activate("a.example", "mail2026e")
		e.unpublish("a.example", "mail2026")
		check(t, e, "a.example", "mail2026")
		b.navigate("/domains/a.example/keys")
		b.wantText("#domain-status", "Signatures made with mail2026 fail, but mail still verifies with mail2026e")
		if b.eval(`document.body.innerText.includes("Mail signed now fails DKIM")`) {
			t.Errorf("the keys page says mail fails DKIM while mail2026e verifies")
		}
		e.publish("a.example", "mail2026")
		check(t, e, "a.example", "mail2026")

		// A forced activation: one status about it, not three.
		b.navigate("/domains/a.example/keys/a1/activate")
		b.click("#force")
		b.submit("main form button[type=submit]")
		b.wantText(".notice", "The key is active")
		b.wantText("#domain-status", "a1 signs, but its record was never checked in DNS")
		// The status of a1 once (the domain's, which is a1's), and nothing
		// that says mail fails.
		if !b.eval(`[...document.querySelectorAll("main .alert")].filter(a => a.innerText.includes("a1")).length === 1`) ||
			b.eval(`document.querySelector("main").innerText.includes("fails DKIM")`) {
			t.Errorf("the status of a1 said more than once, or a failure: %s", b.text("main"))
		}
		b.shot("truth-05-forced")
		e.publish("a.example", "a1")
		check(t, e, "a.example", "a1")
	})

	t.Run("12.5 and 12.2 rotation says what happens next, and users follow it", func(t *testing.T) {
		b := b.with(t)
		b.navigate("/domains/a.example/keys/mail2026/rotate")
		// Auto-activate is off (the default): nothing becomes active by
		// itself.
		b.wantText("#next-step", "activate it yourself once DNS serves it")
		b.wantText("#next-step", "when the new key is activated, mail2026 retires")
		if b.eval(`document.querySelector("main").innerText.includes("becomes active")`) {
			t.Errorf("the Rotate page promises an activation that does not happen")
		}
		b.typeIn("#selector", "202612")
		b.submit("main form button[type=submit]")
		b.wantPath("/domains/a.example/keys/202612")
		b.wantText(".notice", "then activate it yourself once DNS serves it")
		e.publish("a.example", "202612")

		b.navigate("/domains/a.example/keys/202612/activate")
		b.wantText("#next-step", "202612 starts signing mail at once, and mail2026, which it replaces, retires in the same step")
		b.wantText("#followers", "news@a.example")
		b.shot("truth-06-confirm-activate")
		b.submit("main form button[type=submit]")
		b.wantText(".notice", "mail2026, which it replaces, is retired")
		// The activation's own check is kept: no "never checked".
		if b.eval(`document.getElementById("domain-status").innerText.includes("never checked")`) {
			t.Errorf("a key activated after its record was seen is said never checked")
		}

		// news@a.example follows the rotation: the list says so, and the
		// explainer signs with 202612.
		foreign := true
		if _, err := e.svc.UpdateUser(e.ctx, cli, "news@a.example", admin.UserChange{AllowForeignFrom: &foreign}); err != nil {
			t.Fatal(err)
		}
		b.navigate("/domains/a.example/outgoing/users")
		b.wantText(`tr:has(a[href="/domains/a.example/outgoing/users/news@a.example"])`, "signs with 202612")
		explain("news@a.example", "ceo@b.example")
		b.wantText("#decision", "Signs with d=a.example")
		b.wantText("#decision", "s=202612")
		b.wantText("#decision", "user_selector_rotated")

		// Saving the user for another reason works.
		b.navigate("/domains/a.example/outgoing/users/news@a.example")
		b.submit("form[data-userform] button[type=submit]")
		b.wantPath("/domains/a.example/outgoing/users")

		// A selector whose key retired with nothing after it: flagged.
		sel := "mail2026e"
		if _, err := e.svc.UpdateUser(e.ctx, cli, "ed@a.example", admin.UserChange{Selector: &sel}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.SetKeyState(e.ctx, cli, "a.example", "mail2026e", store.KeyRetired, false); err != nil {
			t.Fatal(err)
		}
		b.navigate("/domains/a.example/outgoing/users")
		b.wantText(`tr:has(a[href="/domains/a.example/outgoing/users/ed@a.example"]) .selector-problem`, "cannot sign")
		b.wantText(`tr:has(a[href="/domains/a.example/outgoing/users/ed@a.example"])`, "names a retired key that no active key replaced")
		b.shot("truth-07-users")

		// With auto-activate on, the Rotate page says dkimd activates.
		if _, err := e.svc.SetAutoActivate(e.ctx, cli, "a.example", true); err != nil {
			t.Fatal(err)
		}
		b.navigate("/domains/a.example/keys/202612/rotate")
		b.wantText("#next-step", "dkimd starts signing with it by itself within about 5 minutes, and 202612 retires in the same step")
	})
}

// check runs the DNS check of a key now, as "Check now" or the monitor
// would, and keeps it in the store.
func check(t *testing.T, e *panelEnv, domain, selector string) {
	t.Helper()
	if _, err := e.svc.CheckKeyNow(e.ctx, admin.CLI(), domain, selector); err != nil {
		t.Fatal(err)
	}
}
