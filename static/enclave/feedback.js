// An answer streamed in by chat.js arrives as HTML htmx never saw: let htmx wire up its
// feedback form so that giving feedback does not reload the page.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const messages = document.getElementById("messages");
  if (!messages || !window.htmx) return;
  new MutationObserver((records) => {
    for (const record of records) {
      for (const node of record.addedNodes) {
        if (node.nodeType !== Node.ELEMENT_NODE) continue;
        node.querySelectorAll("form.feedback:not([data-wired])").forEach((form) => {
          form.dataset.wired = "";
          htmx.process(form);
        });
      }
    }
  }).observe(messages, { childList: true, subtree: true });
});
