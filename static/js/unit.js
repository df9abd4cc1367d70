// While a render of this unit is queued or running, poll its status and reload when it lands.
(function () {
  const job = document.querySelector("[data-status-url]");
  if (!job) return;
  const url = job.dataset.statusUrl;
  const had = Number(job.dataset.renders);
  const poll = async () => {
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      const state = await response.json();
      if (state.renders > had || state.job === null) { window.location.reload(); return; }
      job.textContent = `A render is ${state.job.status} (${Math.round(state.job.progress * 100)}%): this page updates when it is ready.`;
    } catch (error) { /* the next poll tries again */ }
    setTimeout(poll, 3000);
  };
  setTimeout(poll, 3000);
})();

// j / → : next unit; k / ← : previous unit (not while typing in a field).
document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  if (target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))) return;
  const rel = { j: "next", ArrowRight: "next", k: "prev", ArrowLeft: "prev" }[event.key];
  const link = rel && document.querySelector(`.pager a[rel="${rel}"]`);
  if (link) { event.preventDefault(); window.location.href = link.href; }
});

// "Copy BibTeX"
document.querySelectorAll("[data-copy]").forEach((button) => {
  button.addEventListener("click", async () => {
    const text = document.getElementById(button.dataset.copy).textContent;
    try { await navigator.clipboard.writeText(text); button.textContent = "Copied"; }
    catch (error) { window.getSelection().selectAllChildren(document.getElementById(button.dataset.copy)); }
  });
});
