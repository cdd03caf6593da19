// Bulk upload: a chosen folder or files and folders dropped on the form are posted with each
// file's relative path, so the collection keeps the folder structure. Without this script the
// form still uploads the chosen files (folders then lose their paths, nothing else).
"use strict";

(function () {
  const form = document.getElementById("upload-form");
  if (!form) return;
  const zone = form.querySelector("[data-drop-zone]");
  const folder = form.querySelector("[data-folder]");
  let dropped = [];

  function readEntry(entry, prefix) {
    return new Promise((resolve) => {
      if (entry.isFile) {
        entry.file((file) => resolve([{ file, path: prefix + file.name }]), () => resolve([]));
      } else if (entry.isDirectory) {
        const reader = entry.createReader();
        const all = [];
        const next = () =>
          reader.readEntries(async (entries) => {
            if (!entries.length) return resolve(all);
            for (const child of entries) all.push(...(await readEntry(child, prefix + entry.name + "/")));
            next();
          }, () => resolve(all));
        next();
      } else resolve([]);
    });
  }

  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", async (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    // Items are readable only during the event: take each one's entry (a file or a folder to
    // walk) or, where the browser gives no entry, the plain file, before the first await.
    const items = [...event.dataTransfer.items]
      .filter((item) => item.kind === "file")
      .map((item) => (item.webkitGetAsEntry && item.webkitGetAsEntry()) || item.getAsFile())
      .filter(Boolean);
    dropped = [];
    for (const item of items) {
      dropped.push(...(item instanceof File ? [{ file: item, path: "" }] : await readEntry(item, "")));
    }
    zone.textContent = dropped.length + " file(s) ready to upload.";
  });

  form.addEventListener("submit", async (event) => {
    const chosen = [...form.querySelector("input[name=files]").files].map((file) => ({ file, path: "" }));
    const inFolder = folder ? [...folder.files].map((file) => ({ file, path: file.webkitRelativePath })) : [];
    const all = [...chosen, ...inFolder, ...dropped];
    event.preventDefault();
    const data = new FormData();
    data.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
    for (const { file, path } of all) {
      data.append("files", file, file.name);
      data.append("paths", path);
    }
    const response = await fetch(form.action, { method: "POST", body: data, credentials: "same-origin" });
    window.location.href = response.url || window.location.href;
  });
})();
