package panel

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/store"
)

// chromiumPath is where Debian's chromium package puts the browser.
const chromiumPath = "/usr/bin/chromium"

// TestPanelBrowser drives the panel in headless Chromium: one browser, a
// browser context (own cookies) per account. It saves a PNG of each page
// under DKIMD_ARTIFACTS, or <repo>/artifacts/screenshots.
func TestPanelBrowser(t *testing.T) {
	browserCtx := startChromium(t)
	e := newPanelEnv(t, panelEnvOptions{})
	shots := screenshotDir(t)
	t.Logf("screenshots of every page at 1280 and 390 px: %s", shots)

	root := newTab(t, browserCtx, e, shots)
	root.login("root", rootPassword)

	t.Run("seed flow", func(t *testing.T) {
		b := root.with(t)
		b.shot("01-domains")
		b.typeIn("#domain-name", "shop.example")
		b.submit(`form[action="/domains"] button[type=submit]`)
		b.wantPath("/domains/shop.example/outgoing/dkim")
		b.wantText("main", "The domain was added.")

		// Domain > Outgoing > DKIM: 2048 preselected and advised, 1024 weak,
		// 3072/4096 need long records, Ed25519 optional with its caveat.
		if !b.eval(`document.getElementById("length-rsa2048").checked`) {
			t.Errorf("RSA 2048 is not preselected")
		}
		b.wantText("label[for=length-rsa2048]", "advised")
		b.wantText("label[for=length-rsa1024]", "weak")
		b.wantText("label[for=length-rsa4096]", "Your DNS host must take long records")
		// One set of true statements about record length, where the
		// length is chosen and on the record page alike.
		b.wantText("label[for=length-rsa2048]", "410 characters, 2 strings")
		b.wantText("label[for=length-rsa1024]", "fits in one string")
		if txt := b.text("label[for=length-rsa2048]"); strings.Contains(txt, "every DNS host") {
			t.Errorf("RSA 2048 still claims to fit every DNS host: %q", txt)
		}
		b.wantText("main", "Some receivers do not verify Ed25519 signatures")
		if b.eval(`document.getElementById("ed25519").checked || !document.getElementById("ed-selector-field").hidden`) {
			t.Errorf("Ed25519 is not optional, or its selector shows before it is asked for")
		}
		b.shot("02-outgoing-dkim")

		b.typeIn("#selector", "s2026")
		b.submit("form button[data-busy]")
		b.wantPath("/domains/shop.example/keys/s2026")
		b.wantText("main", "The key pair was generated and saved.")
		if v := b.value("#rec-host"); v != "s2026._domainkey" {
			t.Errorf("host %q", v)
		}
		if v := b.value("#rec-value"); !strings.HasPrefix(v, "v=DKIM1; k=rsa; p=MII") || strings.Contains(v, `"`) {
			t.Errorf("value for web forms %q", v)
		}
		if v := b.value("#rec-zone"); !strings.HasPrefix(v, "s2026._domainkey.shop.example.") || strings.Count(v, `"`) < 4 {
			t.Errorf("zone-file form %q: want the name and the value in quoted strings", v)
		}
		if !b.eval(`[...document.querySelectorAll("[data-copy]")].length === 3 && [...document.querySelectorAll("[data-copy]")].every(b => !b.hidden)`) {
			t.Errorf("want three visible copy buttons")
		}
		b.wantText("main", "At 410 characters it takes 2 strings of at most 255")
		b.wantText("#dns-status", "Not checked yet")
		b.shot("03-record")

		// Check now, in the background with progress; first not published.
		b.click("#dns-status button[type=submit]")
		b.waitText("#dns-status", "Not found in DNS")
		b.wantText("#dns-status", "What to do")
		b.shot("04-check-not-found")

		e.publish("shop.example", "s2026")
		b.click("#dns-status button[type=submit]")
		b.waitText("#dns-status", "Published, matches this key")
		b.shot("05-check-match")

		// Copy: the button answers (headless Chromium may refuse the
		// clipboard; then it says to select and copy).
		b.click("[data-copy=rec-value]")
		b.waitEval(`document.querySelector("[data-copy=rec-value]").textContent !== "Copy"`)

		// Activate, behind a confirmation; the check before it sees DNS.
		b.navigate("/domains/shop.example/keys/s2026/activate")
		b.wantText("main", "dkimd first checks that its record is published")
		b.shot("06-confirm-activate")
		b.submit("main form button[type=submit]")
		b.wantPath("/domains/shop.example/keys/s2026")
		b.wantText("main", "The key is active")

		b.navigate("/domains/shop.example/keys")
		b.wantText("main table", "s2026")
		b.wantText("main table", "active")
		b.wantText("main table", "Published, matches this key")
		b.shot("07-keys")

		b.navigate("/domains/shop.example/keys/s2026/revoke")
		b.wantText("main", "It cannot be undone")
		b.wantText("main", "only active key")
		b.shot("08-confirm-revoke")
	})

	t.Run("outgoing users", func(t *testing.T) {
		b := root.with(t)
		b.navigate("/domains/shop.example/outgoing/users/new")
		b.typeIn("#name", "web@shop.example")
		b.typeIn("#password", "a long password for the shop")
		b.typeIn("#selector", "s2026")
		b.shot("09-user-new")
		b.submit("form[data-userform] button[type=submit]")
		b.wantPath("/domains/shop.example/outgoing/users")
		b.wantText("main table", "web@shop.example")
		b.wantText("main table", "s2026")

		// A re-authenticating user: the selector field is disabled, and
		// says why.
		b.navigate("/domains/shop.example/outgoing/users/new")
		b.typeIn("#name", "relay@shop.example")
		b.click("#auth-reauth")
		if !b.eval(`document.getElementById("selector").disabled && !document.getElementById("selector-reason").hidden`) {
			t.Errorf("the selector field of a re-authenticating user is not disabled with its reason")
		}
		b.wantText("#selector-reason", store.ReauthSelectorMessage)
		b.shot("10-user-reauth-disabled")
		// The server refuses it too, beside the field, if the field is
		// sent anyway (no script, or a crafted form).
		b.typeIn("#networks", "198.51.100.7")
		b.evalDo(`document.getElementById("selector").disabled = false; document.getElementById("selector").value = "s2026"`)
		b.submit("form[data-userform] button[type=submit]")
		b.wantText("#selector-error", store.ReauthSelectorMessage)
		b.shot("11-user-reauth-refused")
		// Without a selector it is saved.
		b.evalDo(`document.getElementById("selector").disabled = false; document.getElementById("selector").value = ""; document.getElementById("auth-reauth").click()`)
		b.submit("form[data-userform] button[type=submit]")
		b.wantPath("/domains/shop.example/outgoing/users")
		b.wantText("main table", "relay@shop.example")

		// Which key would sign?
		b.evalDo(`document.getElementById("explain-user").value = "web@shop.example"`)
		b.typeIn("#explain-from", "Shop <news@shop.example>")
		b.submit("#which-key button[type=submit]")
		b.wantText("#decision", "Signs with d=shop.example")
		b.wantText("#decision", "s=s2026")
		b.shot("12-which-key")
		b.evalDo(`document.getElementById("explain-user").value = "relay@shop.example"`)
		b.submit("#which-key button[type=submit]")
		b.wantText("#decision", "Not signed")
		b.wantText("#decision", store.ReauthSelectorMessage)

		b.navigate("/audit?domain=shop.example")
		b.wantText("main table", "key.create")
		b.wantText("main table", "user.add")
		b.shot("13-audit")
	})

	t.Run("rotate", func(t *testing.T) {
		b := root.with(t)
		b.navigate("/domains/shop.example/keys/s2026")
		b.submit(`a[href="/domains/shop.example/keys/s2026/rotate"]`)
		b.wantText("main", "A new key of the same kind is made on a new selector")
		b.typeIn("#selector", "s2026b")
		b.shot("18-confirm-rotate")
		b.submit("main form button[type=submit]")
		b.wantPath("/domains/shop.example/keys/s2026b")
		b.wantText("main", "The new key was generated")
		b.wantText("main", "pending")

		// Published and seen, it activates and the old key retires in the
		// same step.
		e.publish("shop.example", "s2026b")
		b.click("#dns-status button[type=submit]")
		b.waitText("#dns-status", "Published, matches this key")
		b.wantText("#dns-history", "Published, matches this key")
		b.navigate("/domains/shop.example/keys/s2026b/activate")
		b.submit("main form button[type=submit]")
		b.wantText("main", "The key is active")
		b.navigate("/domains/shop.example/keys/s2026")
		b.wantText("main", "retired")
		b.wantText("#safe-to-revoke", "Safe to revoke")
		b.shot("19-retired-key")
		b.navigate("/domains/shop.example/keys")
		b.wantText("main table", "s2026b")
		b.shot("20-keys-after-rotation")

		// The record of the active key goes away: the alert on the keys
		// page once a check sees it.
		e.dns.Publish("shop.example", "s2026b._domainkey.shop.example")
		b.navigate("/domains/shop.example/keys/s2026b")
		b.click("#dns-status button[type=submit]")
		b.waitText("#dns-status", "Not found in DNS")
		b.navigate("/domains/shop.example/keys")
		b.wantText("#domain-status", "Mail signed now fails DKIM")
		b.shot("21-keys-alert")
		e.publish("shop.example", "s2026b")
	})

	t.Run("queue", func(t *testing.T) {
		b := root.with(t)
		now := e.clk.Now()
		deferAll(t, e.spool, e.msgID, now, now.Add(20*time.Minute))
		b.navigate("/")
		b.submit(`.mainnav a[href="/queue"]`)
		b.wantPath("/queue")
		b.wantText("#queue", "ann@a.example")
		b.wantText("#queue", "2 of 2")
		b.shot("22-queue")
		b.submit("#queue a")
		b.wantPath("/queue/" + e.msgID)
		b.wantText("#recipients", "451 4.7.1 greylisted, try again later")
		b.wantText("#recipients", "connection refused")
		// The breadcrumb leads to the heading, above it.
		if !b.eval(`!!(document.querySelector("main nav.crumbs").compareDocumentPosition(document.querySelector("main h1")) & Node.DOCUMENT_POSITION_FOLLOWING)`) {
			t.Errorf("the queued message's breadcrumb is not above its heading")
		}
		b.shot("23-queued-message")

		b.submit(`a[href$="/retry"]`)
		b.wantText("main", "Its deferred recipients become due at once")
		b.submit("main form button[type=submit]")
		b.wantPath("/queue/" + e.msgID)
		b.wantText("main", "delivery is being tried again")

		b.submit(`a[href$="/remove"]`)
		b.wantText("main", "It cannot be undone")
		b.shot("24-confirm-remove")
		b.submit("main form button[type=submit]")
		b.wantPath("/queue")
		b.wantText("main", "The queue is empty")
		if _, err := e.spool.Get(e.ctx, e.msgID); err == nil {
			t.Errorf("the message is still queued")
		}
	})

	t.Run("desktop", func(t *testing.T) {
		b := root.with(t)
		for _, pg := range mainPages {
			b.navigate(pg.path)
			if b.eval(`document.documentElement.scrollWidth > document.documentElement.clientWidth`) {
				t.Errorf("%s scrolls sideways at 1280 px", pg.path)
			}
			b.shot("desktop-" + pg.name)
		}
	})

	t.Run("phone", func(t *testing.T) {
		b := root.with(t)
		b.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulatePortrait))
		defer b.do(chromedp.EmulateViewport(1280, 900))
		// scrollWidth against clientWidth: innerWidth grows with a page
		// that is too wide, so it cannot catch one.
		for _, pg := range mainPages {
			b.navigate(pg.path)
			if b.eval(`document.documentElement.scrollWidth > document.documentElement.clientWidth`) {
				t.Errorf("%s scrolls sideways at 390 px: %s wide", pg.path, b.read("html", "scrollWidth.toString()"))
			}
			// The current tab is in view, not scrolled off.
			if !b.eval(`(() => { const a = document.querySelector('.tabs a[aria-current="page"]'); if (!a) return true; const r = a.getBoundingClientRect(); return r.left >= 0 && r.right <= document.documentElement.clientWidth; })()`) {
				t.Errorf("%s: the current tab is cut off at 390 px", pg.path)
			}
			b.shot("phone-" + pg.name)
		}
	})

	t.Run("domain admin", func(t *testing.T) {
		alice := newTab(t, browserCtx, e, shots)
		alice.login("alice", alicePassword)
		alice.wantText("main", "a.example")
		if txt := alice.text("main"); strings.Contains(txt, "b.example") || strings.Contains(txt, "shop.example") {
			t.Errorf("alice's domain list shows another tenant's domain: %q", txt)
		}
		status := alice.navigateStatus("/domains/b.example/keys/b1")
		if status != http.StatusNotFound {
			t.Errorf("another tenant's key: status %d, want 404", status)
		}
		alice.wantText("h1", "Not found")
		if txt := alice.text("body"); strings.Contains(txt, "b.example") || strings.Contains(txt, "b1") {
			t.Errorf("the 404 page shows something of b.example: %q", txt)
		}
		alice.shot("16-domain-admin-404")
		if alice.eval(`document.querySelector('.mainnav a[href="/queue"]') !== null`) {
			t.Errorf("a domain admin's navigation links the queue")
		}
		if status := alice.navigateStatus("/queue"); status != http.StatusForbidden {
			t.Errorf("the queue for a domain admin: status %d, want 403", status)
		}

		// A page on another origin posts a form to the panel without the
		// token: refused, nothing made.
		evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, `<!doctype html><title>Win a prize</title><form id="f" method="post" action="%s/domains/a.example/outgoing/dkim">
<input name="length" value="rsa1024"><input name="selector" value="forged"></form><script>document.getElementById("f").submit()</script>`, e.srv.URL)
		}))
		defer evil.Close()
		alice.do(chromedp.Navigate(evil.URL))
		alice.waitEval(`location.href.indexOf("/outgoing/dkim") > 0 && document.readyState === "complete"`)
		alice.wantText("h1", "Not allowed")
		alice.wantText("main", "Nothing was changed")
		alice.shot("17-forged-post")
		if _, err := e.svc.GetKey(e.ctx, admin.CLI(), "a.example", "forged"); err == nil {
			t.Errorf("the forged post made a key")
		}
	})

	t.Run("account", func(t *testing.T) {
		b := root.with(t)
		tok, _, err := e.svc.NewToken(e.ctx, admin.CLI(), "root", "backup script", 0)
		if err != nil {
			t.Fatal(err)
		}
		b.navigate("/")
		b.submit(".who-name a")
		b.wantPath("/accounts/root")
		b.wantText("main", "backup script")
		b.wantText("main", "this one")
		b.shot("25-account")
		// Newest first: the API token's row comes first.
		b.submit(`form[action^="/accounts/root/tokens/"] button`)
		b.wantPath("/accounts/root")
		b.wantText("main", "The token was revoked")
		if _, _, err := e.svc.Authenticate(e.ctx, tok); err == nil {
			t.Errorf("the revoked token still works")
		}
	})

	t.Run("forms", func(t *testing.T) {
		// Every field is checked at once; what was typed stays, but the
		// password, which the page asks for again; focus goes to the
		// first field in error, whose description holds the error.
		b := root.with(t)
		b.navigate("/domains/shop.example/outgoing/users/new")
		b.typeIn("#password", "short")
		b.typeIn("#networks", "not-an-ip")
		b.typeIn("#selector", "bad selector")
		b.typeIn("#granted", "not a domain!!")
		b.submit("form[data-userform] button[type=submit]")
		for _, id := range []string{"name", "password", "networks", "selector", "granted"} {
			if !b.eval(fmt.Sprintf(`document.getElementById(%q).getAttribute("aria-invalid") === "true" && document.getElementById(%q).getAttribute("aria-describedby").includes("-error")`, id, id)) {
				t.Errorf("#%s is not marked in error with its message", id)
			}
		}
		b.wantText(".form-errors[role=alert]", "Correct the 5 fields")
		if v := b.value("#networks"); v != "not-an-ip" {
			t.Errorf("networks as typed not kept: %q", v)
		}
		if v := b.value("#selector"); v != "bad selector" {
			t.Errorf("selector as typed not kept: %q", v)
		}
		if v := b.value("#password"); v != "" {
			t.Errorf("the password was sent back to the browser")
		}
		b.wantText("#password-help", "type it again")
		if id := b.read("body", "ownerDocument.activeElement.id"); id != "name" {
			t.Errorf("focus is on %q, want the first field in error, #name", id)
		}
		b.shot("26-form-errors")
	})

	t.Run("dead ends", func(t *testing.T) {
		b := root.with(t)
		// Accounts: list, add (errors keep what was typed), role, remove.
		b.navigate("/")
		b.submit(`.mainnav a[href="/accounts"]`)
		b.wantPath("/accounts")
		b.wantText("#accounts", "alice")
		b.typeIn("#name", "carol")
		b.typeIn("#domains", "a.example")
		b.typeIn("#password", "short")
		b.submit(`form[action="/accounts"] button[type=submit]`)
		b.wantText("#password-error", "at least")
		if b.value("#name") != "carol" || b.value("#domains") != "a.example" || b.value("#password") != "" {
			t.Errorf("the add form did not keep what was typed (but the password): %q %q %q", b.value("#name"), b.value("#domains"), b.value("#password"))
		}
		b.wantText("#password-help", "type it again")
		if id := b.read("body", "ownerDocument.activeElement.id"); id != "password" {
			t.Errorf("focus is on %q, want #password", id)
		}
		b.typeIn("#password", "a long password for carol")
		b.submit(`form[action="/accounts"] button[type=submit]`)
		b.wantPath("/accounts/carol")
		b.wantText("main", "The account was added")
		b.click("#role-admin")
		b.submit(`form[action="/accounts/carol/settings"] button[type=submit]`)
		b.wantText("main", "role and domains were saved")
		if as, _ := e.svc.ListAccounts(e.ctx, admin.CLI()); !slices.ContainsFunc(as, func(a store.Account) bool { return a.Name == "carol" && a.Role == store.RoleAdmin }) {
			t.Errorf("carol is not an admin after the change: %+v", as)
		}
		b.shot("27-account-admin")
		b.submit(`a[href="/accounts/carol/remove"]`)
		b.wantText("main", "can no longer log in")
		b.submit("main form button[type=submit]")
		b.wantPath("/accounts")
		if strings.Contains(b.text("#accounts"), "carol") {
			t.Errorf("carol is still listed after removal")
		}

		// Remove an outgoing user.
		b.navigate("/domains/shop.example/outgoing/users/relay@shop.example")
		b.submit(`a[href$="/remove"]`)
		b.submit("main form button[type=submit]")
		b.wantPath("/domains/shop.example/outgoing/users")
		b.wantText("main", "The user was removed")
		if strings.Contains(b.text("main table"), "relay@shop.example") {
			t.Errorf("the removed user is still listed")
		}

		// Switching a user to re-authenticating says its selector went.
		b.navigate("/domains/shop.example/outgoing/users/web@shop.example")
		b.click("#auth-reauth")
		b.waitText("#selector-reason", "removes its selector s2026")
		if !b.eval(`document.getElementById("granted").closest("[data-for]").hidden`) {
			t.Errorf("a re-authenticating user is offered other domains to sign as")
		}
		b.wantText("#identity-header-help", "default, X-AuthUser")
		b.typeIn("#networks", "198.51.100.8")
		b.submit("form[data-userform] button[type=submit]")
		b.wantPath("/domains/shop.example/outgoing/users")
		b.wantText("main", "the selector it had was removed")
		// Why it is unsigned is on the page, not in a tooltip.
		b.wantText("main table", store.ReauthSelectorMessage)

		// A pending key made by mistake is deleted, not revoked in red.
		b.navigate("/domains/shop.example/outgoing/dkim")
		b.wantText("#selector-help", "dots")
		b.typeIn("#selector", "oops")
		b.submit("form button[data-busy]")
		b.wantPath("/domains/shop.example/keys/oops")
		b.wantText(`.tabs a[aria-current="page"]`, "DKIM")
		if b.eval(`document.querySelector('a[href$="/oops/revoke"]') !== null`) {
			t.Errorf("a never-published pending key offers Revoke")
		}
		if b.eval(`document.querySelector('a[href$="/oops/delete"]').classList.contains("btn-danger")`) {
			t.Errorf("Delete of a never-published key is shown as dangerous")
		}
		b.submit(`a[href$="/oops/delete"]`)
		b.wantText("main", "deleted outright")
		b.shot("28-confirm-delete")
		b.submit("main form button[type=submit]")
		b.wantPath("/domains/shop.example/keys")
		b.wantText("main", "The key was deleted")
		if _, err := e.svc.GetKey(e.ctx, admin.CLI(), "shop.example", "oops"); err == nil {
			t.Errorf("the deleted key is still there")
		}

		// Remove a domain: refused, saying what is left, or done.
		b.navigate("/domains/shop.example/remove")
		b.submit("main form button[type=submit]")
		b.wantText("main", "still has")
		b.navigate("/")
		b.typeIn("#domain-name", "gone.example")
		b.submit(`form[action="/domains"] button[type=submit]`)
		b.navigate("/domains/gone.example/keys")
		b.submit(`a[href="/domains/gone.example/remove"]`)
		b.submit("main form button[type=submit]")
		b.wantPath("/")
		b.wantText("main", "The domain was removed")
	})

	t.Run("smaller", func(t *testing.T) {
		b := root.with(t)
		b.navigate("/")
		// The Add domain checkbox sits beside its label, not above it.
		if !b.eval(`(() => { const i = document.getElementById("auto-activate").getBoundingClientRect(), l = document.querySelector('label[for="auto-activate"]').getBoundingClientRect(); return l.left > i.right - 1 && l.top < i.bottom; })()`) {
			t.Errorf("the Add domain checkbox is not beside its label")
		}
		// Audit dates on one line.
		b.navigate("/audit")
		if !b.eval(`[...document.querySelectorAll('td[data-label="When"] time')].every(t => t.getClientRects().length === 1 && t.getBoundingClientRect().height < 30)`) {
			t.Errorf("audit dates wrap")
		}
	})

	t.Run("login page", func(t *testing.T) {
		anon := newTab(t, browserCtx, e, shots)
		anon.navigate("/login")
		anon.shot("00-login")
	})
}

// mainPages are the pages shown at both widths (1280 and 390 px) once the
// flows above have filled them: shop.example with a rotated key and its
// check history, users, the audit log, the queue.
var mainPages = []struct{ name, path string }{
	{"domains", "/"},
	{"dkim", "/domains/shop.example/outgoing/dkim"},
	{"users", "/domains/shop.example/outgoing/users"},
	{"user-new", "/domains/shop.example/outgoing/users/new"},
	{"user-edit", "/domains/shop.example/outgoing/users/web@shop.example"},
	{"keys", "/domains/shop.example/keys"},
	{"key-checked", "/domains/shop.example/keys/s2026b"},
	{"key-retired", "/domains/shop.example/keys/s2026"},
	{"confirm-rotate", "/domains/shop.example/keys/s2026b/rotate"},
	{"audit", "/audit"},
	{"audit-domain", "/audit?domain=shop.example&tab=1"},
	{"queue", "/queue"},
	{"account", "/accounts/root"},
	{"accounts", "/accounts"},
}

// tab is one browser context: its own tab and cookies.
type tab struct {
	t     *testing.T
	ctx   context.Context
	e     *panelEnv
	shots string
}

// startChromium starts headless Chromium for a test, or skips the test
// when it is missing (fails with DKIMD_REQUIRE_PEERS=1) or in -short. It
// is stopped when the test ends.
func startChromium(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("DKIMD_REQUIRE_PEERS") == "1" {
			t.Fatalf("%s is missing (Debian package chromium) and DKIMD_REQUIRE_PEERS=1", chromiumPath)
		}
		t.Skipf("%s is missing (install the Debian package chromium): the panel is not tested in a browser", chromiumPath)
	}
	if testing.Short() {
		t.Skip("a browser test; not in -short")
	}
	profile := t.TempDir()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(profile),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		// PEERS.md: this machine has no network; keep Chromium off it.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("hide-scrollbars", true),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	return browserCtx
}

func newTab(t *testing.T, browserCtx context.Context, e *panelEnv, shots string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	// The first call makes the tab; it must not run under a step's
	// timeout, which would close the tab when it ends.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("browser: new tab: %v", err)
	}
	b := &tab{t: t, ctx: ctx, e: e, shots: shots}
	b.do(chromedp.EmulateViewport(1280, 900))
	return b
}

// with gives the tab for a subtest.
func (b *tab) with(t *testing.T) *tab {
	c := *b
	c.t = t
	return &c
}

// step bounds one action, so a missing element fails the test in seconds
// rather than hanging it.
func (b *tab) step() (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.ctx, 15*time.Second)
}

func (b *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v (at %s)", err, b.location())
	}
}

func (b *tab) location() string {
	ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	return loc
}

func (b *tab) navigate(path string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.e.srv.URL + path))
}

// navigateStatus navigates and gives the HTTP status of the page.
func (b *tab) navigateStatus(path string) int64 {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	res, err := chromedp.Run(ctx, chromedp.NavigateResponse(b.e.srv.URL+path))
	if err != nil {
		b.t.Fatalf("browser: %v", err)
	}
	return res.Status
}

func (b *tab) login(name, password string) {
	b.t.Helper()
	b.navigate("/login")
	b.typeIn("#name", name)
	b.typeIn("#password", password)
	b.submit("main form button[type=submit]")
	b.wantPath("/")
}

func (b *tab) typeIn(sel, text string) {
	b.t.Helper()
	b.do(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).value = ""`, sel)), chromedp.SendKeys(chromedp.CSS(sel), text))
}

func (b *tab) click(sel string) {
	b.t.Helper()
	b.do(chromedp.Click(chromedp.CSS(sel)))
}

// submit clicks a button that loads a new page, and waits for it.
func (b *tab) submit(sel string) {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.WaitEvent(cdppage.LoadEventFired, nil, chromedp.Click(chromedp.CSS(sel)))); err != nil {
		b.t.Fatalf("browser: submit %s: %v (at %s)", sel, err, b.location())
	}
}

func (b *tab) wantPath(path string) {
	b.t.Helper()
	loc := b.location()
	got := strings.TrimPrefix(loc, b.e.srv.URL)
	if i := strings.IndexAny(got, "?#"); i >= 0 {
		got = got[:i]
	}
	if got != path {
		b.t.Fatalf("at %s, want %s; page: %.1500s", loc, path, b.text("main"))
	}
}

// text gives an element's text. It reads the live document by script:
// chromedp's node tracking can lose the document after a form post.
func (b *tab) text(sel string) string {
	b.t.Helper()
	return b.read(sel, "textContent")
}

func (b *tab) value(sel string) string {
	b.t.Helper()
	return b.read(sel, "value")
}

func (b *tab) read(sel, prop string) string {
	b.t.Helper()
	b.waitEval(fmt.Sprintf(`document.querySelector(%q) !== null`, sel))
	ctx, cancel := b.step()
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q).%s`, sel, prop)))
	if err != nil {
		b.t.Fatalf("browser: %s of %s: %v (at %s)", prop, sel, err, b.location())
	}
	return s
}

func (b *tab) wantText(sel, want string) {
	b.t.Helper()
	if got := b.text(sel); !strings.Contains(got, want) {
		b.t.Fatalf("%s says %.1500q, want %q", sel, got, want)
	}
}

// waitText waits until an element says want (after a background request).
func (b *tab) waitText(sel, want string) {
	b.t.Helper()
	b.waitEval(fmt.Sprintf(`(document.querySelector(%q) || {}).innerText && document.querySelector(%q).innerText.includes(%q)`, sel, sel, want))
}

func (b *tab) waitEval(expr string) {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	var err error
	for range 3 {
		_, err = chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(10*time.Second)))
		// The document the poll ran in went away (the page was still
		// loading or reloaded itself): poll again, in the one there now.
		if err == nil || !contextLost(err) {
			break
		}
	}
	if err != nil {
		ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
		defer cancel()
		html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : "(no body)"`))
		b.t.Fatalf("browser: waiting for %s: %v (at %s); page: %.1000s", expr, err, b.location(), html)
	}
}

// contextLost reports whether err is Chrome's answer to a script sent to a
// document that has been replaced.
func contextLost(err error) bool {
	return strings.Contains(err.Error(), "Cannot find context with specified id")
}

func (b *tab) eval(expr string) bool {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
	if err != nil {
		b.t.Fatalf("browser: %s: %v", expr, err)
	}
	return v
}

func (b *tab) evalDo(expr string) {
	b.t.Helper()
	b.do(chromedp.Evaluate[chromedp.Void](expr))
}

// shot saves a PNG of the whole page.
func (b *tab) shot(name string) { b.shotAs(b.t, name) }

func (b *tab) shotAs(t *testing.T, name string) {
	t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("browser: screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, "panel-"+name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// screenshotDir gives DKIMD_ARTIFACTS, or artifacts/screenshots at the
// top of the repository (git-ignored), made if need be.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("DKIMD_ARTIFACTS")
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		for d := wd; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				dir = filepath.Join(d, "artifacts", "screenshots")
				break
			}
			if filepath.Dir(d) == d {
				t.Fatalf("no go.mod above %s", wd)
			}
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
