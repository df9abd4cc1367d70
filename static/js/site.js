// Microscope's only script. Every page works without it; with it, moving between units,
// layers and technique tabs swaps the page's <main> for the next one (fetched ahead of time)
// instead of loading a whole new page, and the reader stays where they were on the page.
(function () {
  "use strict";
  const pages = new Map(); // url -> {at, html: Promise<{url, html}>}
  const FRESH_MS = 60000;
  const MOVES = "nav.steps a, nav.tabs a, nav.modelnav a";

  function fetchPage(url) {
    const kept = pages.get(url);
    if (kept && Date.now() - kept.at < FRESH_MS) return kept.html;
    const html = fetch(url, { headers: { Accept: "text/html" }, credentials: "same-origin" })
      .then((response) => {
        if (!response.ok || !response.headers.get("Content-Type").startsWith("text/html")) {
          throw new Error(`${response.status}`);
        }
        return response.text().then((text) => ({ url: response.url, html: text }));
      });
    html.catch(() => pages.delete(url));
    pages.set(url, { at: Date.now(), html });
    return html;
  }

  // The neighbouring units' and layers' pages and the other technique tabs that have something
  // to show are fetched as soon as a page is shown (each a cached page, a few kB); when the
  // browser is idle, the images the next and previous units' tabs show.
  function prefetch(main) {
    const steps = [...main.querySelectorAll("nav.steps a[data-key]")];
    const tabs = [...main.querySelectorAll("nav.tabs a:not(.empty):not([aria-current])")];
    steps.concat(tabs).forEach((a) => fetchPage(a.href).catch(() => {}));
    const units = steps.filter((a) => a.dataset.key === "j" || a.dataset.key === "k");
    const idle = window.requestIdleCallback || ((f) => setTimeout(f, 50));
    idle(() => units.forEach((a) => fetchPage(a.href).then(({ html }) => {
      const doc = new DOMParser().parseFromString(html, "text/html");
      doc.querySelectorAll(".tab-panel img").forEach((img, i) => {
        if (i < 24) new Image().src = img.src;
      });
    }).catch(() => {})));
  }

  async function go(url, { push = true } = {}) {
    let page;
    try { page = await fetchPage(url); } catch (error) { window.location.href = url; return; }
    const doc = new DOMParser().parseFromString(page.html, "text/html");
    const next = doc.querySelector("main");
    const main = document.querySelector("main");
    if (!next || !main) { window.location.href = url; return; }
    main.replaceWith(next);
    document.title = doc.title;
    if (push) history.pushState({ swapped: true }, "", page.url);
    if (!next.querySelector(".tab-panel")) window.scrollTo(0, 0);
    setUp(next);
    requestAnimationFrame(() => requestAnimationFrame(() => performance.mark("microscope:swapped")));
  }

  function swappable(link) {
    return link && link.origin === window.location.origin && !link.hasAttribute("download");
  }

  document.addEventListener("click", (event) => {
    if (event.defaultPrevented || event.button !== 0 || event.ctrlKey || event.metaKey ||
        event.shiftKey || event.altKey) return;
    const link = event.target.closest(MOVES);
    if (!swappable(link)) return;
    event.preventDefault();
    go(link.href);
  });

  window.addEventListener("popstate", () => go(window.location.href, { push: false }));
  history.replaceState({ swapped: true }, "");

  // j / → next unit, k / ← previous unit, ] / [ next and previous layer, 1–9 a technique tab.
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))) return;
    const key = { ArrowRight: "j", ArrowLeft: "k" }[event.key] || event.key;
    let link = document.querySelector(`main nav.steps a[data-key="${CSS.escape(key)}"]`);
    if (!link && /^[1-9]$/.test(key)) link = document.querySelectorAll("main nav.tabs a")[Number(key) - 1];
    if (!link) return;
    event.preventDefault();
    go(link.href);
  });

  // While a job fills this tab, show its place in the queue and swap the tab in when it lands.
  function poll(main) {
    const job = main.querySelector("[data-status-url]");
    if (!job) return;
    const tick = async () => {
      if (!job.isConnected) return;
      try {
        const response = await fetch(job.dataset.statusUrl, { headers: { Accept: "application/json" } });
        const state = await response.json();
        if (state.job === null || (state.ready && job.dataset.ready === "0")) {
          pages.delete(window.location.href);
          go(window.location.href, { push: false });
          return;
        }
        const s = state.job;
        const where = s.status === "running" ? `Computing now (${Math.round(s.progress * 100)}%)`
          : `Queued: ${s.ahead ? `${s.ahead} job${s.ahead === 1 ? "" : "s"} ahead of it` : "next in line"}`;
        const when = s.estimate_s === null ? "no estimate yet (no job of this kind has finished here)"
          : `ready in about ${s.estimate_s < 90 ? `${s.estimate_s} s` : `${Math.round(s.estimate_s / 60)} min`} (one worker, at the pace of recent jobs)`;
        job.textContent = `${where}; ${when}. This page updates when it is ready.`;
      } catch (error) { /* the next poll tries again */ }
      setTimeout(tick, 3000);
    };
    setTimeout(tick, 3000);
  }

  function setUp(main) {
    // "Copy BibTeX"
    main.querySelectorAll("[data-copy]").forEach((button) => {
      button.addEventListener("click", async () => {
        const text = document.getElementById(button.dataset.copy).textContent;
        try { await navigator.clipboard.writeText(text); button.textContent = "Copied"; }
        catch (error) { window.getSelection().selectAllChildren(document.getElementById(button.dataset.copy)); }
      });
    });
    // On a phone the layer bar scrolls sideways: bring the current layer into view.
    const current = main.querySelector("nav.modelnav [aria-current]");
    const bar = current && current.closest("nav.modelnav");
    if (bar && bar.scrollWidth > bar.clientWidth) bar.scrollLeft = current.offsetLeft - bar.clientWidth / 3;
    poll(main);
    prefetch(main);
  }

  // Dataset examples: a first tap opens the preview (there is no hover on a phone), a second
  // tap the whole image.
  let pointer = "mouse";
  document.addEventListener("pointerdown", (event) => { pointer = event.pointerType; }, true);
  document.addEventListener("click", (event) => {
    const link = event.target.closest("ol.crops a");
    if (!link || pointer === "mouse") return;
    const item = link.parentElement;
    if (item.classList.contains("open")) return;
    event.preventDefault();
    document.querySelectorAll("ol.crops li.open").forEach((open) => open.classList.remove("open"));
    item.classList.add("open");
  }, true);

  const main = document.querySelector("main");
  if (main) setUp(main);
})();

// A page the browser restores from its back/forward cache has painted when it is shown.
window.addEventListener("pageshow", (event) => {
  if (event.persisted) requestAnimationFrame(() => requestAnimationFrame(() => performance.mark("microscope:swapped")));
});
