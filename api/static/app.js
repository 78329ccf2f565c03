// The pages' shared code: calls to the /v1 API (with the API key kept in this browser, when the
// deployment asks for one), small DOM helpers, and the lineage footer.
"use strict";

const KEY_STORE = "pool-api-key";

async function api(path, options = {}) {
  const headers = Object.assign({ Accept: "application/json" }, options.headers || {});
  const key = window.localStorage.getItem(KEY_STORE);
  if (key) headers["X-API-Key"] = key;
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (response.status === 401 || response.status === 403) {
    const given = window.prompt("This API needs a key (X-API-Key):");
    if (given) { window.localStorage.setItem(KEY_STORE, given); return api(path, options); }
  }
  let body = null;
  try { body = await response.json(); } catch (e) { body = { error: "not_json", detail: "the answer is not JSON" }; }
  return { status: response.status, ok: response.ok, body };
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function card(label, value, attrs = {}) {
  return el("div", { class: "card" }, el("div", { class: "label", text: label }), el("div", Object.assign({ class: "value" }, attrs), value));
}

function fmt(x, digits = 4) {
  if (x === null || x === undefined) return "—";
  if (typeof x === "number") return Number.isInteger(x) ? x.toLocaleString("en-US") : x.toFixed(digits);
  return String(x);
}

function showProblem(target, answer) {
  const b = answer.body || {};
  target.replaceChildren(el("div", { class: "problem", id: "problem" },
    el("b", { text: `${answer.status} ${b.error || "error"}` }), el("div", { text: b.detail || "" }),
    el("div", { class: "muted small", text: b.what_to_do || "" })));
}

function footer(lineage, model) {
  const f = document.getElementById("lineage");
  if (!f || !lineage) return;
  f.textContent = `snapshot ${lineage.snapshot_day} (version ${lineage.snapshot_version}) · data since ${lineage.data_since} · ` +
    `last block ${fmt(lineage.watermark.block_number)} at ${lineage.watermark.block_time} · pools list sha256 ${lineage.pools_sha256}` +
    (model ? ` · model ${model}` : "");
}

const PALETTE = ["#1f5fbf", "#1a7f37", "#c2410c", "#7c3aed", "#b91c1c", "#0e7490", "#a16207", "#4b5563", "#db2777", "#65a30d"];

// An image of the API (a report's plot) fetched with the key, so it loads where a key is needed.
function apiImage(src, attrs = {}) {
  const img = el("img", attrs);
  const key = window.localStorage.getItem(KEY_STORE);
  fetch(src, { headers: key ? { "X-API-Key": key } : {} }).then((r) => r.ok ? r.blob() : null)
    .then((blob) => { if (blob) img.src = URL.createObjectURL(blob); img.setAttribute("data-src", src); });
  return img;
}
