// The demo shop's behaviour: search (text, category filter), "more like this" (item_id
// search), and a multi-turn refinement session (pick a product, type feedback, repeat).
// Talks only to tailord's public API v1.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { sessionId: null, reference: null };

async function api(method, path, body) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const data = await response.json();
  if (!response.ok) throw new Error(`${data.error.code}: ${data.error.message}`);
  return data;
}

function setStatus(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function filter() {
  const category = $("category").value;
  return category ? { category } : undefined;
}

function card(result) {
  const div = document.createElement("div");
  div.className = "card";
  div.dataset.id = result.id;
  const img = document.createElement("img");
  img.src = result.image_url;
  img.alt = result.title;
  img.loading = "lazy";
  const body = document.createElement("div");
  body.className = "body";
  const title = document.createElement("div");
  title.className = "title";
  title.textContent = result.title;
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.textContent = `${result.category} · ${result.subcategory} · ${result.score.toFixed(3)}`;
  const actions = document.createElement("div");
  actions.className = "actions";
  const more = document.createElement("button");
  more.textContent = "More like this";
  more.className = "more-like-this";
  more.onclick = () => moreLikeThis(result);
  const refine = document.createElement("button");
  refine.textContent = "Refine";
  refine.className = "secondary refine";
  refine.onclick = () => startRefining(result);
  actions.append(more, refine);
  body.append(title, meta, actions);
  div.append(img, body);
  return div;
}

function showResults(results, label) {
  $("results").replaceChildren(...results.map(card));
  setStatus(`${results.length} results ${label}`);
}

async function run(label, action) {
  setStatus("searching…");
  try {
    await action();
  } catch (err) {
    setStatus(err.message, true);
  }
}

function search(event) {
  event.preventDefault();
  const text = $("query").value.trim();
  if (!text) return;
  run("", async () => {
    const data = await api("POST", "/v1/search", { text, filter: filter(), limit: 24 });
    showResults(data.results, `for “${text}”`);
  });
}

function moreLikeThis(result) {
  run("", async () => {
    const data = await api("POST", "/v1/search", { item_id: result.id, filter: filter(), limit: 24 });
    showResults(data.results, `like “${result.title}”`);
  });
}

async function startRefining(result) {
  if (!state.sessionId) state.sessionId = (await api("POST", "/v1/sessions", {})).session_id;
  state.reference = result;
  $("refine").hidden = false;
  const img = document.createElement("img");
  img.src = result.image_url;
  img.alt = result.title;
  const caption = document.createElement("p");
  caption.textContent = result.title;
  $("reference").replaceChildren(img, caption);
  $("feedback").focus();
}

function refine(event) {
  event.preventDefault();
  const text = $("feedback").value.trim();
  if (!text || !state.sessionId) return;
  run("", async () => {
    const body = { text, filter: filter(), limit: 24 };
    if (state.reference) body.reference_item_id = state.reference.id;
    const data = await api("POST", `/v1/sessions/${state.sessionId}/turns`, body);
    state.reference = null; // later turns refine the session's own query
    const item = document.createElement("li");
    item.textContent = text;
    $("turns").append(item);
    $("feedback").value = "";
    showResults(data.results, `after turn ${data.turn.turn}`);
  });
}

async function endSession() {
  if (state.sessionId) await api("DELETE", `/v1/sessions/${state.sessionId}`).catch(() => {});
  state.sessionId = null;
  state.reference = null;
  $("turns").replaceChildren();
  $("refine").hidden = true;
}

async function loadCategories() {
  try {
    const info = await api("GET", "/v1/info");
    const categories = Object.keys((info.engine && info.engine.index.categories) || {}).sort();
    for (const name of categories) {
      const option = document.createElement("option");
      option.value = option.textContent = name;
      $("category").append(option);
    }
  } catch (err) {
    setStatus(err.message, true);
  }
}

$("search-form").addEventListener("submit", search);
$("refine-form").addEventListener("submit", refine);
$("end-session").addEventListener("click", endSession);
loadCategories();
