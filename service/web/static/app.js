// Flowtide runs page: view switching, "Jump to failed step", and refreshing an open run (no inline scripts: CSP).
"use strict";

function setupViews(root) {
  root.querySelectorAll(".views").forEach(function (group) {
    var buttons = group.querySelectorAll("button[data-view]");
    function show(id) {
      buttons.forEach(function (b) {
        var on = b.dataset.view === id;
        b.setAttribute("aria-pressed", on ? "true" : "false");
        var panel = document.getElementById(b.dataset.view);
        if (panel) { panel.hidden = !on; }
      });
    }
    buttons.forEach(function (b) { b.addEventListener("click", function () { show(b.dataset.view); }); });
    show(buttons[0].dataset.view);
  });
}

function openStep(id, focus) {
  var target = document.getElementById(id);
  if (!target) { return; }
  target.open = true;
  target.scrollIntoView({ block: "start" });
  if (focus) { target.querySelector("summary").focus(); }
}

function setupJump(root) {
  var jump = root.querySelector("#jump");
  if (jump) {
    jump.addEventListener("click", function (ev) {
      if (jump.getAttribute("href").charAt(0) !== "#") { return; }  // the failed row is on another page of rows
      ev.preventDefault();
      var id = jump.getAttribute("href").slice(1);
      history.replaceState(null, "", "#" + id);
      openStep(id, true);
    });
  }
}

// Refresh the run in place (no full reload: focus, open steps and chosen views stay as they are).
function scheduleRefresh() {
  var seconds = parseFloat(document.body.dataset.refresh || "0");
  if (!(seconds > 0)) { return; }
  window.setTimeout(function () {
    fetch(window.location.pathname, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      return r.text();
    }).then(function (html) {
      var doc = new DOMParser().parseFromString(html, "text/html");
      var fresh = doc.getElementById("run"), old = document.getElementById("run");
      if (!fresh || !old) { return; }
      // never throw away what someone is typing (a signal's payload): try again at the next tick
      var typing = Array.prototype.some.call(old.querySelectorAll("textarea, input:not([type=hidden])"),
        function (f) { return f.value !== "" || f === document.activeElement; });
      if (typing) { scheduleRefresh(); return; }
      var opened = Array.prototype.map.call(old.querySelectorAll("details[open][id]"), function (d) { return d.id; });
      var chosen = Array.prototype.map.call(old.querySelectorAll("button[aria-pressed='true'][data-view]"),
        function (b) { return b.dataset.view; });
      old.replaceWith(fresh);
      opened.forEach(function (id) { var d = document.getElementById(id); if (d) { d.open = true; } });
      setupViews(fresh);
      chosen.forEach(function (id) {
        var b = fresh.querySelector("button[data-view='" + id + "']");
        if (b) { b.click(); }
      });
      setupJump(fresh);
      document.body.dataset.refreshed = String(parseInt(document.body.dataset.refreshed || "0", 10) + 1);
      if (doc.body.dataset.refresh) { scheduleRefresh(); } else { delete document.body.dataset.refresh; }
    }).catch(function () {
      var status = document.getElementById("refresh-status");
      if (status) { status.textContent = "Could not refresh the run; reload the page to try again."; }
    });
  }, seconds * 1000);
}

document.addEventListener("DOMContentLoaded", function () {
  setupViews(document);
  setupJump(document);
  if (window.location.hash.indexOf("#step-") === 0) { openStep(window.location.hash.slice(1), false); }
  // a node of the graph or a lane of the timeline leads to its row (data-href: no links inside role="img")
  document.addEventListener("click", function (ev) {
    var target = ev.target.closest && ev.target.closest("svg [data-href]");
    if (target) { window.location.assign(target.getAttribute("data-href")); }
  });
  window.addEventListener("hashchange", function () {
    if (window.location.hash.indexOf("#step-") === 0) { openStep(window.location.hash.slice(1), false); }
  });
  scheduleRefresh();
});
