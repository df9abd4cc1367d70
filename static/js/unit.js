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
