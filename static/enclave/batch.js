// The batch job form: only the chosen type's fieldset shows, and rows of labels or fields can be
// added in place. Without this script every fieldset shows and saving offers more empty rows.
"use strict";

(function () {
  const form = document.getElementById("batch-form");
  if (!form) return;

  const kind = form.querySelector("[data-kind-choice]"); // absent when editing: a job keeps its type
  function show() {
    form.querySelectorAll("fieldset[data-kind]").forEach((set) => {
      set.hidden = set.dataset.kind !== kind.value;
    });
  }
  if (kind) {
    kind.addEventListener("change", show);
    show();
  }

  form.querySelectorAll("[data-add-row]").forEach((button) => {
    button.hidden = false;
    button.addEventListener("click", () => {
      const rows = button.parentElement.querySelector("[data-rows]");
      const row = rows.lastElementChild.cloneNode(true);
      row.querySelectorAll("input").forEach((input) => { input.value = ""; });
      row.querySelectorAll("select").forEach((select) => { select.selectedIndex = 0; });
      rows.appendChild(row);
      row.querySelector("input").focus();
    });
  });
  form.querySelectorAll("[data-without-script]").forEach((note) => { note.hidden = true; });
})();
