// A starter question goes into the question box, ready to send or to edit first.
"use strict";

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-starter]");
  if (!button) return;
  const field = document.querySelector("#ask textarea[name=question]");
  if (!field) return;
  field.value = button.dataset.starter;
  field.focus();
});
