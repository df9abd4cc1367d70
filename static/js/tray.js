// The comparison tray: unit pages add their unit to a tray kept in this browser; the tray's
// page is /models/compare/?units=<keys>, so the URL is the tray (shareable), and visiting one
// makes it this browser's tray. Without this script, "Add to comparison" opens a tray of one.
(function () {
  "use strict";
  var STORE = "microscope.tray", MAX = 8;

  function load() {
    try {
      var keys = JSON.parse(window.localStorage.getItem(STORE) || "[]");
      return Array.isArray(keys) ? keys.filter(function (k) { return typeof k === "string"; }) : [];
    } catch (error) {
      return [];
    }
  }

  function save(keys) {
    try { window.localStorage.setItem(STORE, JSON.stringify(keys.slice(0, MAX))); } catch (error) { /* private mode */ }
  }

  function trayUrl(base, keys) {
    return keys.length ? base + "?units=" + keys.map(encodeURI).join(",") : base;
  }

  var page = document.querySelector(".tray-tools[data-tray-keys]");
  if (page) {
    var keys = page.getAttribute("data-tray-keys");
    save(keys ? keys.split(",") : []);
  }

  var bar = document.querySelector(".tray-bar[data-unit-key]");
  if (!bar) return;
  var key = bar.getAttribute("data-unit-key"), base = bar.getAttribute("data-compare-url");
  var add = bar.querySelector(".tray-add"), open = bar.querySelector(".tray-open");

  function show() {
    var tray = load(), inside = tray.indexOf(key) >= 0;
    add.textContent = inside ? "In the comparison tray" : "Add to comparison";
    add.setAttribute("aria-pressed", inside ? "true" : "false");
    add.href = trayUrl(base, inside ? tray : tray.concat([key]).slice(-MAX));
    open.hidden = tray.length === 0;
    open.textContent = "Compare the tray (" + tray.length + " unit" + (tray.length === 1 ? "" : "s") + ")";
    open.href = trayUrl(base, tray);
  }

  add.addEventListener("click", function (event) {
    var tray = load();
    if (tray.indexOf(key) >= 0) return;  // already in: the link opens the tray
    event.preventDefault();
    tray.push(key);
    save(tray.slice(-MAX));
    show();
  });
  window.addEventListener("storage", show);
  show();
})();
