// Flowtide live updates: an element with data-live="URL" follows that server-sent event stream; on each event
// the page is read again (fetch, no reload) and the element replaced in place, keeping open steps and chosen
// views. The stream ends at a terminal status. Without JavaScript the pages work as they are (reload by hand).
"use strict";

(function () {
  function announce(text) {
    var status = document.getElementById("refresh-status");
    if (status) { status.textContent = text; }
  }

  function typing(el) {
    return Array.prototype.some.call(el.querySelectorAll("textarea, input:not([type=hidden])"),
      function (f) { return f.value !== "" || f === document.activeElement; });
  }

  function replace(old, fresh) {
    var opened = Array.prototype.map.call(old.querySelectorAll("details[open][id]"), function (d) { return d.id; });
    var chosen = Array.prototype.map.call(old.querySelectorAll("button[aria-pressed='true'][data-view]"),
      function (b) { return b.dataset.view; });
    old.replaceWith(fresh);
    opened.forEach(function (id) { var d = document.getElementById(id); if (d) { d.open = true; } });
    if (typeof setupViews === "function") { setupViews(fresh); }
    chosen.forEach(function (id) {
      var b = fresh.querySelector("button[data-view='" + id + "']");
      if (b) { b.click(); }
    });
    if (typeof setupJump === "function") { setupJump(fresh); }
    document.body.dataset.refreshed = String(parseInt(document.body.dataset.refreshed || "0", 10) + 1);
  }

  function follow(el) {
    var id = el.id, busy = false, again = false, source = new EventSource(el.dataset.live);

    function reread() {
      if (busy) { again = true; return; }
      busy = true;
      fetch(window.location.href, { credentials: "same-origin", headers: { accept: "text/html" } }).then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.text();
      }).then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(id);
        var old = document.getElementById(id);
        // never throw away what someone is typing (a signal's payload): read again a little later
        if (old && typing(old)) { window.setTimeout(reread, 2000); return; }
        // nothing changed on the page (often so at the first event): keep the elements, focus and clicks stay
        if (fresh && old && fresh.innerHTML !== old.innerHTML) { replace(old, fresh); }
        if (fresh && !fresh.dataset.live) { source.close(); }
      }).catch(function () {
        announce("Could not update the page; reload it to see the latest state.");
      }).then(function () {
        busy = false;
        if (again) { again = false; reread(); }
      });
    }

    // the first event may already differ from what the page was rendered with: it is read again too
    source.addEventListener("run", reread);
    source.addEventListener("runs", reread);
    source.addEventListener("end", function () { source.close(); reread(); });
    source.addEventListener("error", function () {
      if (source.readyState === EventSource.CLOSED) {
        announce("Live updates stopped; reload the page to see the latest state.");
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!window.EventSource || !window.fetch) { return; }
    document.querySelectorAll("[data-live]").forEach(follow);
  });
})();
