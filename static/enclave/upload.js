// Bulk upload: a chosen folder or files and folders dropped on the form are posted with each
// file's relative path, so the collection keeps the folder structure, and the form shows the
// bytes sent and says so when the request fails. Without this script the form still uploads
// the chosen files (folders then lose their paths, nothing else).
"use strict";

(function () {
  const form = document.getElementById("upload-form");
  if (!form) return;
  const zone = form.querySelector("[data-drop-zone]");
  const folder = form.querySelector("[data-folder]");
  const button = form.querySelector("button[type=submit]");
  const bar = form.querySelector("[data-upload-progress]");
  const sent = form.querySelector("[data-upload-sent]");
  const failure = form.querySelector("[data-upload-error]");
  let dropped = [];

  const megabytes = (bytes) =>
    interpolate(gettext("%(size)s MB"), { size: (bytes / (1024 * 1024)).toFixed(1) }, true);
  const stay = (event) => event.preventDefault(); // leaving the page would cut the upload off

  function finish() {
    window.removeEventListener("beforeunload", stay);
    bar.hidden = true;
    sent.textContent = "";
    button.disabled = false;
  }

  function fail(message) {
    finish();
    failure.textContent = message;
    failure.hidden = false;
  }

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
    // English keeps "file(s)" in both forms; other languages get their plural forms.
    const ready = ngettext("%(count)s file(s) ready to upload.", "%(count)s file(s) ready to upload.",
      dropped.length);
    zone.textContent = interpolate(ready, { count: dropped.length }, true);
  });

  form.addEventListener("submit", (event) => {
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
    // XMLHttpRequest, not fetch: only it reports the bytes of the body sent so far.
    const request = new XMLHttpRequest();
    let whole = false; // every byte sent: the server may have stored the upload
    request.upload.addEventListener("progress", (progress) => {
      if (!progress.lengthComputable) return;
      bar.max = progress.total;
      bar.value = progress.loaded;
      sent.textContent = interpolate(gettext("%(sent)s of %(total)s sent"),
        { sent: megabytes(progress.loaded), total: megabytes(progress.total) }, true);
    });
    request.upload.addEventListener("load", () => {
      whole = true;
      sent.textContent = gettext("All sent; saving…");
    });
    request.addEventListener("load", () => {
      // The server names the page to show (the collection, with its messages; or sign-in).
      const next = request.getResponseHeader("HX-Redirect");
      if (next || request.status < 400) {
        finish();
        window.location.href = next || request.responseURL || window.location.href;
      } else if ((request.getResponseHeader("Content-Type") || "").startsWith("text/plain")) {
        fail(request.responseText); // a 429 says how long to wait
      } else {
        fail(interpolate(gettext("The server refused the upload (HTTP %(status)s)."),
          { status: request.status }, true));
      }
    });
    request.addEventListener("error", () =>
      fail(
        whole
          ? gettext("The connection was lost after the files were sent: reload the page to see whether they arrived.")
          : gettext("The upload was interrupted (the connection was lost): nothing was uploaded. Please try again."),
      ),
    );
    request.addEventListener("abort", () => fail(gettext("The upload was cancelled: nothing was uploaded.")));
    failure.hidden = true;
    button.disabled = true;
    bar.value = 0;
    bar.hidden = false;
    window.addEventListener("beforeunload", stay);
    request.open("POST", form.action);
    request.setRequestHeader("HX-Request", "true"); // answered with HX-Redirect, not a redirect
    request.send(data);
  });
})();
