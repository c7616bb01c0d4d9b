// reidkit gallery search page: upload / drop a photo or type a description, show the ranked gallery.
"use strict";

const $ = (id) => document.getElementById(id);
let health = null;

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

function clearResults() {
  $("grid").replaceChildren();
  $("summary").textContent = "";
}

// who a result is: the dataset's identity, "distractor" (pid 0), nothing for unlabelled photos (pid -1)
function identity(pid) {
  if (pid === 0) return "distractor";
  return pid > 0 ? `ID ${pid}` : "";
}

function topK() {
  return parseInt($("k").value, 10);
}

async function readError(response) {
  try {
    const body = await response.json();
    if (typeof body.detail === "string") return body.detail;
    return JSON.stringify(body.detail);
  } catch (err) {
    return `${response.status} ${response.statusText}`;
  }
}

function render(data, label) {
  const grid = $("grid");
  grid.replaceChildren();
  const what = data.mode === "centroid" ? "identities" : "images";
  $("summary").textContent =
    `${data.results.length} ${what} for ${label} · ${data.took_ms.toFixed(1)} ms`;
  for (const hit of data.results) {
    const li = document.createElement("li");
    li.className = "card";
    li.dataset.pid = hit.pid;
    const img = document.createElement("img");
    img.src = hit.image_url;
    img.alt = `gallery image ${hit.name}`;
    img.loading = "lazy";
    const link = document.createElement("a");  // the full image, in a new tab
    link.href = hit.image_url;
    link.target = "_blank";
    link.rel = "noopener";
    link.title = `open ${hit.name}`;
    link.append(img);
    const rank = document.createElement("span");
    rank.className = "rank";
    rank.textContent = `#${hit.rank}`;
    const meta = document.createElement("div");
    meta.className = "meta";
    const score = document.createElement("div");
    score.className = "score";
    score.textContent = `similarity ${hit.score.toFixed(3)}`;
    score.title = "cosine similarity to the query: 1 = the same picture, around 0 = unrelated";
    const name = document.createElement("div");
    name.className = "name";
    name.textContent = hit.name;
    name.title = hit.name;  // the whole name when it is cut short
    const sub = document.createElement("div");
    sub.className = "sub";
    // cameras are stored from 0; datasets number them from 1 (c1, c2, ...)
    const cam = hit.camid >= 0 ? `camera ${hit.camid + 1}` : hit.num_images > 1 ? `${hit.num_images} images` : "";
    sub.textContent = [identity(hit.pid), cam].filter(Boolean).join(" · ");
    meta.append(score, name, sub);
    if (hit.captions.length) {
      const cap = document.createElement("div");
      cap.className = "caption";
      cap.textContent = hit.captions[0];
      cap.title = hit.captions.join("\n");
      meta.append(cap);
    }
    li.append(link, rank, meta);
    grid.append(li);
  }
}

async function searchImage(file) {
  showError("");
  if (!health || !health.search.image) {
    clearResults();
    showError("Image search is not available on this server.");
    return;
  }
  if (file.size > health.max_upload_bytes) {
    clearResults();
    showError(`The file is larger than ${(health.max_upload_bytes / 1048576).toFixed(0)} MB.`);
    return;
  }
  const preview = $("preview");
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  $("drop-hint").hidden = true;
  const body = new FormData();
  body.append("file", file, file.name || "query");
  $("drop").classList.add("busy");
  try {
    const response = await fetch(`/search/image?k=${topK()}`, { method: "POST", body });
    if (!response.ok) throw new Error(await readError(response));
    render(await response.json(), "the photo");
  } catch (err) {
    clearResults();  // results of an earlier query must not look like this one's
    showError(`Search failed: ${err.message}`);
  } finally {
    $("drop").classList.remove("busy");
  }
}

async function searchText(event) {
  event.preventDefault();
  showError("");
  const text = $("text").value.trim();
  if (!text) {
    showError("Type a description first.");
    return;
  }
  try {
    const response = await fetch("/search/text", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ text, k: topK() }),
    });
    if (!response.ok) throw new Error(await readError(response));
    render(await response.json(), `“${text}”`);
  } catch (err) {
    clearResults();
    showError(`Search failed: ${err.message}`);
  }
}

function wireDropZone() {
  const drop = $("drop");
  const input = $("file");
  drop.addEventListener("click", () => input.click());
  drop.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); }
  });
  input.addEventListener("change", () => {
    if (input.files.length) searchImage(input.files[0]);
    input.value = "";
  });
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) {
    drop.addEventListener(name, (e) => { e.preventDefault(); drop.classList.remove("over"); });
  }
  drop.addEventListener("drop", (e) => {
    const file = e.dataTransfer.files[0];
    if (file) searchImage(file);
  });
  document.addEventListener("paste", (e) => {
    const file = [...e.clipboardData.files].find((f) => f.type.startsWith("image/"));
    if (file) searchImage(file);
  });
}

async function init() {
  wireDropZone();
  $("text-form").addEventListener("submit", searchText);
  try {
    const response = await fetch("/health");
    if (!response.ok) throw new Error(await readError(response));
    health = await response.json();
    const kinds = [health.search.image && "image", health.search.text && "text"].filter(Boolean);
    $("status").textContent =
      `${health.count} ${health.mode === "centroid" ? "identities" : "images"} · ` +
      `${health.factory} · dim ${health.dim} · search by ${kinds.join(" and ") || "nothing"}`;
    if (!health.search.text) {
      $("text-search").disabled = true;
      $("text").disabled = true;
      $("text").placeholder = "Text search is not available on this server.";
    }
  } catch (err) {
    $("status").textContent = "Server unreachable";
    showError(`Could not reach the server: ${err.message}`);
  }
}

init();
