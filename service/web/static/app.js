// Flowtide runs page: view switching and "Jump to failed step" (no inline scripts: CSP). Live updates: live.js.
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
});
