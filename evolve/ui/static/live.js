// Live refresh: poll the database's change fingerprint; when it moves, re-fetch this page and swap
// in its [data-live] sections (rendered and escaped by the server), then let the page's own script
// (window.evolveRefresh) update its charts.
(function () {
  "use strict";
  const body = document.body;
  const every = Number(body.dataset.pollMs) || 3000;
  const badge = document.getElementById("live-status");
  const state = { version: body.dataset.version, updates: 0, busy: false };
  window.evolveLive = state;

  function clock() {
    return new Date().toLocaleTimeString();
  }

  async function swapLiveSections() {
    const reply = await fetch(location.href, { cache: "no-store", headers: { Accept: "text/html" } });
    if (!reply.ok) throw new Error("page answered " + reply.status);
    const fresh = new DOMParser().parseFromString(await reply.text(), "text/html");
    document.querySelectorAll("[data-live][id]").forEach(function (old) {
      const replacement = fresh.getElementById(old.id);
      if (!replacement) return;
      const open = Array.from(old.querySelectorAll("details")).map(function (d) { return d.open; });
      const node = document.importNode(replacement, true);
      Array.from(node.querySelectorAll("details")).forEach(function (d, i) { if (i < open.length) d.open = open[i]; });
      old.replaceWith(node);
    });
  }

  async function tick() {
    if (state.busy || document.hidden) return;
    state.busy = true;
    try {
      const reply = await fetch("/api/version?" + (body.dataset.scope || ""), { cache: "no-store" });
      if (!reply.ok) throw new Error("the server answered " + reply.status);
      const now = (await reply.json()).version;
      if (now !== state.version) {
        await swapLiveSections();
        if (typeof window.evolveRefresh === "function") await window.evolveRefresh();
        state.version = now;
        body.dataset.version = now;
        state.updates += 1;
        badge.textContent = "live · updated " + clock();
      } else if (!badge.textContent.startsWith("live · updated")) {
        badge.textContent = "live · checked " + clock();
      }
      badge.className = "live-status ok";
    } catch (error) {
      badge.textContent = "not refreshing: " + error.message;
      badge.className = "live-status error";
    } finally {
      state.busy = false;
    }
  }

  setInterval(tick, every);
  document.addEventListener("visibilitychange", tick);
})();
