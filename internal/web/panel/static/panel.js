// dkimd control panel: small enhancements. Every page works without
// them: the copy buttons stay hidden (the text is selectable), "check
// now" is a plain form post, and the server refuses what the form allows.
(function () {
  "use strict";

  // A form sent back with errors: focus its first field in error (whose
  // description holds the error, so a screen reader reads both), or else
  // the summary above the form, which is a role="alert" region.
  var invalid = [].filter.call(document.querySelectorAll('form [aria-invalid="true"]'), function (el) { return !el.disabled; });
  if (invalid.length) {
    invalid[0].focus();
  } else {
    var summary = document.querySelector(".form-errors");
    if (summary) { summary.focus(); }
  }

  // Copy buttons: copy the text of the element named in data-copy.
  document.querySelectorAll("[data-copy]").forEach(function (btn) {
    var target = document.getElementById(btn.getAttribute("data-copy"));
    if (!target) { return; }
    btn.hidden = false;
    btn.setAttribute("aria-label", "Copy " + (document.querySelector('label[for="' + target.id + '"]') || {}).textContent);
    btn.addEventListener("click", function () {
      var text = target.value !== undefined ? target.value : target.textContent;
      var done = function (ok) {
        var was = "Copy";
        btn.textContent = ok ? "Copied" : "Select and copy";
        setTimeout(function () { btn.textContent = was; }, 2000);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(function () { done(true); }, function () { fallback(); });
      } else {
        fallback();
      }
      function fallback() {
        target.focus();
        if (target.select) { target.select(); }
        var ok = false;
        try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
        done(ok);
      }
    });
  });

  // Check now: post in the background, show progress, swap in the result.
  function wireCheck(form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var section = form.closest(".dnsstatus");
      var btn = form.querySelector("button");
      var progress = form.querySelector(".progress");
      btn.disabled = true;
      progress.hidden = false;
      section.classList.add("busy");
      section.setAttribute("aria-busy", "true");
      fetch(form.action, {
        method: "POST",
        body: new URLSearchParams(new FormData(form)),
        headers: { "X-Panel-Part": "status" },
        credentials: "same-origin"
      }).then(function (res) {
        if (!res.ok) { throw new Error("status " + res.status); }
        return res.text();
      }).then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("dns-status");
        if (!fresh) { throw new Error("no status in the answer"); }
        // The domain's and the key's status change with the check too.
        ["domain-status", "key-status"].forEach(function (id) {
          var old = document.getElementById(id), now = doc.getElementById(id);
          if (old && now) { old.replaceWith(now); }
        });
        section.replaceWith(fresh);
        var f = fresh.querySelector("form[data-check]");
        if (f) { wireCheck(f); }
        var title = fresh.querySelector("h2");
        if (title) { title.setAttribute("tabindex", "-1"); }
      }).catch(function () {
        form.submit(); // let the browser do it the plain way
      });
    });
  }
  document.querySelectorAll("form[data-check]").forEach(wireCheck);

  // Busy label on slow submits (key generation).
  document.querySelectorAll("button[data-busy]").forEach(function (btn) {
    btn.form.addEventListener("submit", function () {
      setTimeout(function () { btn.disabled = true; btn.textContent = btn.getAttribute("data-busy"); }, 0);
    });
  });

  // Outgoing > DKIM: the Ed25519 selector only matters when asked for.
  var ed = document.getElementById("ed25519");
  var edField = document.getElementById("ed-selector-field");
  if (ed && edField) {
    var syncEd = function () { edField.hidden = !ed.checked; };
    ed.addEventListener("change", syncEd);
    syncEd();
  }

  // User form: show the fields of the chosen authentication; a
  // re-authenticating user has no DKIM selector, and the field says why.
  var uf = document.querySelector("form[data-userform]");
  if (uf) {
    var sel = uf.querySelector("#selector");
    var reason = uf.querySelector("#selector-reason");
    var sync = function () {
      var checked = uf.querySelector('input[name="auth"]:checked');
      var auth = checked ? checked.value : "";
      uf.querySelectorAll("[data-for]").forEach(function (el) {
        el.hidden = el.getAttribute("data-for").split(" ").indexOf(auth) < 0;
      });
      var reauth = auth === "reauth";
      sel.disabled = reauth;
      reason.hidden = !reauth;
    };
    uf.querySelectorAll('input[name="auth"]').forEach(function (r) { r.addEventListener("change", sync); });
    sync();
  }
})();
