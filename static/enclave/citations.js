// Opens a cited passage in a side panel (a sheet on phones): a modal <dialog> filled with the
// server-rendered partial for that source. Without this script the links work as before.
"use strict";

(() => {
  const SOURCE_ID = /^src-(\d+)-(\d+)$/;
  let loading = 0; // only the latest click fills the panel

  function sourceOf(link) {
    // [n] points at #src-<message>-<n>; a source's own link sits in <li id="src-<message>-<n>">.
    if (link.matches("a.cite")) return SOURCE_ID.exec((link.getAttribute("href") || "").slice(1));
    const item = link.closest("li[id^='src-']");
    return item && SOURCE_ID.exec(item.id);
  }

  async function show(panel, link, [, message, n]) {
    const body = panel.querySelector(".citation-body");
    const url = panel.dataset.url.replace("/0/sources/0/", `/${message}/sources/${n}/`);
    const ticket = ++loading;
    panel.returnTo = link;
    body.textContent = gettext("Loading…");
    if (!panel.open) panel.showModal();
    let html = null;
    try {
      const response = await fetch(url, { credentials: "same-origin" });
      // Redirected: the session ended and this is the sign-in page.
      if (response.ok && !response.redirected) html = await response.text();
    } catch (error) {
      // shown below
    }
    if (ticket !== loading) return;
    if (html === null) {
      body.textContent = gettext("The source could not be loaded. Reload the page and try again.");
      return;
    }
    body.innerHTML = html; // rendered by the server, every value escaped
    const passage = body.querySelector("mark");
    if (passage) passage.scrollIntoView({ block: "center" });
  }

  function keepFocusInside(panel, event) {
    if (event.key !== "Tab") return;
    const items = [...panel.querySelectorAll("a[href], button")];
    const first = items[0];
    const last = items[items.length - 1];
    if (event.shiftKey && document.activeElement === first) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && document.activeElement === last) {
      event.preventDefault();
      first.focus();
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    const panel = document.getElementById("citation-panel");
    if (!panel) return;
    panel.addEventListener("keydown", (event) => keepFocusInside(panel, event));
    // A click on the backdrop lands on the dialog itself (its content fills it).
    panel.addEventListener("click", (event) => {
      if (event.target === panel) panel.close();
    });
    panel.addEventListener("close", () => {
      if (panel.returnTo && panel.returnTo.isConnected) panel.returnTo.focus();
    });
    document.addEventListener("click", (event) => {
      const link = event.target.closest("a.cite, .sources a.source-link");
      if (!link || event.button !== 0) return;
      if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return; // new tab
      const source = sourceOf(link);
      if (!source) return;
      event.preventDefault();
      show(panel, link, source);
    });
  });
})();
