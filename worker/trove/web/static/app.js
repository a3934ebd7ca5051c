// Trove's web app: a little JavaScript where it helps. Pages work without it, except the import upload.
"use strict";

// Live sync progress: every running sync on the page is refreshed from /app/sync/<id>.json until it is done.
function followSync(box) {
  const id = box.dataset.sync;
  const tick = async () => {
    let data;
    try {
      const response = await fetch(`/app/sync/${encodeURIComponent(id)}.json`, { credentials: "same-origin" });
      if (!response.ok) return;
      data = await response.json();
    } catch {
      setTimeout(tick, 3000);
      return;
    }
    for (const field of box.querySelectorAll("[data-field]")) {
      const value = data[field.dataset.field];
      if (value !== undefined && value !== null) field.textContent = String(value);
    }
    const status = box.querySelector('[data-field="status"]');
    if (status) status.className = `badge status-${data.status}`;
    box.dataset.running = data.running ? "yes" : "no";
    if (data.running) setTimeout(tick, 1000);
  };
  setTimeout(tick, 500);
}

// The import upload: the file itself is the request body (the server streams it to disk, never a form).
function setUpImport(form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = form.querySelector('input[type="file"]').files[0];
    const status = document.getElementById("import-status");
    if (!file) return;
    status.textContent = `Uploading ${file.name}…`;
    try {
      const response = await fetch("/app/import", {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "X-CSRF-Token": form.dataset.csrf,
          "X-File-Name": unescape(encodeURIComponent(file.name)),
          "Content-Type": "application/octet-stream",
        },
        body: file,
      });
      const data = await response.json();
      if (!response.ok) {
        status.textContent = `Not imported: ${data.detail}`;
        return;
      }
      status.textContent = data.joined ? "Already uploaded: following that import." : "Uploaded. Reading it now…";
      setTimeout(() => location.reload(), 1500);
    } catch (error) {
      status.textContent = `The upload failed: ${error}`;
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  for (const box of document.querySelectorAll('[data-sync][data-running="yes"]')) followSync(box);
  const form = document.getElementById("import-form");
  if (form) setUpImport(form);
});
