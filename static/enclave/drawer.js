// On narrow screens the sidebar is a drawer: its button opens and closes it; Esc, a tap
// outside it or moving focus out of it closes it. Without this script the sidebar just stacks.
"use strict";

(() => {
  const button = document.querySelector("[data-drawer-toggle]");
  const drawer = button && document.getElementById(button.getAttribute("aria-controls"));
  if (!drawer) return;
  drawer.classList.add("drawer");
  button.hidden = false;

  function isOpen() {
    return button.getAttribute("aria-expanded") === "true";
  }

  function setOpen(open, focusButton) {
    drawer.classList.add("used");  // from now on it slides (app.css): never on page load
    button.setAttribute("aria-expanded", String(open));
    drawer.classList.toggle("open", open);
    if (open) {
      const first = drawer.querySelector("a[href], button, input, select, textarea, summary");
      if (first) first.focus();
    } else if (focusButton) {
      button.focus();
    }
  }

  button.addEventListener("click", () => setOpen(!isOpen(), false));
  // Capture on window: while the drawer is open, Esc closes it and nothing else.
  window.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && isOpen()) {
      event.stopPropagation();
      setOpen(false, true);
    }
  }, true);
  // A tap on the dimmed page closes the drawer and does nothing else.
  document.addEventListener("click", (event) => {
    if (isOpen() && !drawer.contains(event.target) && !button.contains(event.target)) {
      event.preventDefault();
      event.stopPropagation();
      setOpen(false, false);
    }
  }, true);
  drawer.addEventListener("focusout", (event) => {
    if (isOpen() && event.relatedTarget && !drawer.contains(event.relatedTarget)
        && event.relatedTarget !== button) {
      setOpen(false, false);
    }
  });
})();
