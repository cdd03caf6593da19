// The new chat's collection picker: the sidebar names what will be searched, and the picker
// locks once the first question is asked (the conversation keeps that scope).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const picker = document.getElementById("scope-picker");
  const names = document.getElementById("scope-names");
  const messages = document.getElementById("messages");
  if (!picker || !names || !messages) return;
  const all = names.textContent;
  const boxes = [...picker.querySelectorAll("input[name=scope]")];
  picker.addEventListener("change", () => {
    const ticked = boxes.filter((box) => box.checked);
    names.textContent = ticked.length
      ? ticked.map((box) => box.parentElement.textContent.trim()).join(", ") : all;
  });
  new MutationObserver((records, observer) => {
    if (!messages.querySelector(".msg.user")) return;
    picker.disabled = true;
    observer.disconnect();
  }).observe(messages, { childList: true });
});
