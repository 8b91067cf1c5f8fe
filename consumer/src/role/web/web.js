// tweet-pipeline live view: columns fed by /events (SSE), the analysis and schedule panels.
// Post content is untrusted: it is only ever set with textContent or as an attribute value
// (links: http/https only), never parsed as HTML.
"use strict";

const MAX_CARDS = 200;
const CSRF = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
const columns = new Map(); // name -> column
const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "short", timeStyle: "medium" });
const SOURCES = { x: "X", mastodon: "Mastodon", bluesky: "Bluesky", replay: "replay" };

function el(tag, props, children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children || []) node.append(child);
  return node;
}

function setStatus(text) {
  document.getElementById("status").textContent = text;
}

// The same rules as the server's ColumnFilter (consumer/src/role/web/filter.rs).
function matches(filter, card) {
  const primary = (tag) => tag.split(/[-_]/)[0].toLowerCase();
  const set = (v) => (typeof v === "string" && v.trim() !== "" ? v.trim() : null);
  if (set(filter.lang) && !(card.lang && primary(card.lang) === primary(set(filter.lang)))) return false;
  if (set(filter.source) && card.source !== set(filter.source).toLowerCase()) return false;
  if (set(filter.contains) && !card.text.toLowerCase().includes(set(filter.contains).toLowerCase())) return false;
  if (filter.has_link === true && card.links.length === 0) return false;
  if (set(filter.rule) && !card.rules.includes(set(filter.rule))) return false;
  return true;
}

function safeLink(href, label) {
  const a = el("a", { href: href, rel: "noopener noreferrer", target: "_blank", text: label });
  return a;
}

function hashtagUrl(source, tag) {
  const t = encodeURIComponent(tag);
  return source === "bluesky" ? "https://bsky.app/hashtag/" + t : "https://x.com/hashtag/" + t;
}

// The text as nodes: links (only those the server found, all http/https) and hashtags
// become anchors, everything else text nodes.
function textNodes(card) {
  const nodes = [];
  const tags = new Set(card.hashtags.map((h) => h.toLowerCase()));
  const links = new Set(card.links);
  for (const part of card.text.split(/(\s+)/)) {
    const trimmed = part.replace(/[.,;:!?)\]}'"…]+$/, "");
    const rest = part.slice(trimmed.length);
    if (links.has(trimmed) && /^https?:\/\//.test(trimmed)) {
      nodes.push(safeLink(trimmed, trimmed), document.createTextNode(rest));
    } else if (trimmed.startsWith("#") && tags.has(trimmed.slice(1).toLowerCase())) {
      nodes.push(safeLink(hashtagUrl(card.source, trimmed.slice(1)), trimmed), document.createTextNode(rest));
    } else {
      nodes.push(document.createTextNode(part));
    }
  }
  return nodes;
}

function cardNode(card) {
  const when = card.created_at || (card.received_at_ms ? new Date(card.received_at_ms).toISOString() : null);
  const meta = [el("span", { class: "author", text: card.author ? "@" + card.author : "unknown author" })];
  if (when) meta.push(el("time", { datetime: when, text: timeFormat.format(new Date(when)) }));
  meta.push(el("span", { class: "badge source", text: SOURCES[card.source] || card.source }));
  if (card.lang) meta.push(el("span", { class: "badge lang", text: card.lang }));
  if (card.kind === "retweet") meta.push(el("span", { class: "badge", text: "repost" }));
  const body = el("p", { class: "text" }, textNodes(card));
  const article = el("article", { class: "card", tabindex: "0" }, [el("div", { class: "card-meta" }, meta), body]);
  article.dataset.id = card.id;
  // From the producer receiving the line to this card: the pipeline's end-to-end latency.
  if (card.received_at_ms) article.dataset.latencyMs = String(Date.now() - card.received_at_ms);
  if (card.rules.length) article.append(el("div", { class: "rules", text: "rules: " + card.rules.join(", ") }));
  return article;
}

function addColumn(name, filter, removable) {
  if (columns.has(name)) return columns.get(name);
  const title = el("h3", { text: name });
  const count = el("span", { class: "count", text: "0" });
  const pause = el("button", { type: "button", "aria-pressed": "false", text: "Pause" });
  const news = el("button", { type: "button", class: "new-posts", hidden: "" });
  const list = el("div", { class: "cards", role: "feed", "aria-label": name + " posts" });
  const tools = el("div", { class: "tools" }, [pause, news]);
  const section = el("section", { class: "column", "aria-label": "column " + name }, [el("div", { class: "column-head" }, [title, count, tools]), list]);
  const column = { name, filter, section, list, count, pause, news, paused: false, pending: [] };
  pause.addEventListener("click", () => setPaused(column, !column.paused));
  news.addEventListener("click", () => setPaused(column, false));
  if (removable) {
    const remove = el("button", { type: "button", text: "Remove", "aria-label": "remove column " + name });
    remove.addEventListener("click", () => { columns.delete(name); section.remove(); });
    tools.append(remove);
  }
  document.getElementById("columns").append(section);
  columns.set(name, column);
  return column;
}

function setPaused(column, paused) {
  column.paused = paused;
  column.pause.textContent = paused ? "Resume" : "Pause";
  column.pause.setAttribute("aria-pressed", String(paused));
  if (!paused) {
    for (const card of column.pending) show(column, card);
    column.pending = [];
  }
  updateNews(column);
}

function updateNews(column) {
  const n = column.pending.length;
  column.news.hidden = n === 0;
  column.news.textContent = n === 1 ? "1 new post" : n + " new posts";
}

function show(column, card) {
  column.list.prepend(cardNode(card));
  while (column.list.childElementCount > MAX_CARDS) column.list.lastElementChild.remove();
  column.count.textContent = String(column.list.childElementCount);
}

function onPost(card) {
  for (const rule of card.rules) addColumn(rule, { rule: rule }, false);
  for (const column of columns.values()) {
    if (!matches(column.filter, card)) continue;
    if (column.paused) {
      column.pending.push(card);
      if (column.pending.length > MAX_CARDS) column.pending.shift();
      updateNews(column);
    } else {
      show(column, card);
    }
  }
}

function onDelete(id) {
  for (const column of columns.values()) {
    for (const node of Array.from(column.list.children)) {
      if (node.dataset.id === id) node.remove();
    }
    column.count.textContent = String(column.list.childElementCount);
    column.pending = column.pending.filter((card) => card.id !== id);
    updateNews(column);
  }
}

function connect() {
  const source = new EventSource("/events");
  source.addEventListener("ready", () => setStatus("live"));
  source.addEventListener("post", (e) => onPost(JSON.parse(e.data)));
  source.addEventListener("delete", (e) => onDelete(JSON.parse(e.data).id));
  source.addEventListener("reload", () => {
    source.close();
    setStatus("this page fell behind the stream; reloading…");
    setTimeout(() => location.reload(), 1000);
  });
  source.onerror = () => setStatus("disconnected; retrying…");
}

function table(headers, rows) {
  const head = el("tr", {}, headers.map((h) => el("th", { scope: "col", text: h })));
  const body = rows.map((r) => el("tr", {}, r.map((c) => (c instanceof Node ? el("td", {}, [c]) : el("td", { text: String(c) })))));
  return el("table", {}, [el("thead", {}, [head]), el("tbody", {}, body)]);
}

async function refreshAnalysis() {
  const target = document.getElementById("analysis");
  try {
    const response = await fetch("/api/analysis");
    const data = await response.json();
    if (!response.ok) throw new Error(data.error || response.statusText);
    if (!data.available) { target.replaceChildren(el("p", { text: "No store yet at " + data.db + " (run the analysis group)." })); return; }
    const perMinute = data.per_minute.map((m) => m[1]);
    const max = Math.max(1, ...perMinute);
    const bars = el("div", { class: "bars", role: "img", "aria-label": "posts per minute, last 30 minutes: " + perMinute.join(", ") },
      perMinute.map((n) => { const bar = el("span", { class: "bar", title: n + " posts" }); bar.style.height = Math.round((n / max) * 100) + "%"; return bar; }));
    target.replaceChildren(
      el("p", { text: data.total + " posts in " + data.db }),
      el("h3", { text: "Posts per minute (received)" }), bars,
      el("h3", { text: "Languages and sentiment" }),
      table(["language", "positive", "neutral", "negative", "unscored", "total"],
        data.languages.map((l) => [l.language, l.positive, l.neutral, l.negative, l.unscored, l.total])),
      el("h3", { text: "Top hashtags" }),
      table(["hashtag", "posts"], data.hashtags.map((h) => ["#" + h[0], h[1]])));
  } catch (error) {
    target.replaceChildren(el("p", { text: "analysis unavailable: " + error.message }));
  }
}

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": CSRF },
    body: JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

async function refreshSchedule() {
  const target = document.getElementById("schedule");
  try {
    const response = await fetch("/api/schedule");
    const data = await response.json();
    if (!response.ok) throw new Error(data.error || response.statusText);
    const rows = data.rows.map((r) => {
      let action = "";
      if (r.state === "pending") {
        action = el("button", { type: "button", text: "Cancel", "aria-label": "cancel " + r.id });
        action.addEventListener("click", () => cancel(r.id));
      }
      return [r.state, timeFormat.format(new Date(r.due_at)), r.destination, r.id, r.detail, r.text, action];
    });
    target.replaceChildren(rows.length ? table(["state", "due (your time)", "network", "id", "detail", "text", ""], rows) : el("p", { text: "Nothing scheduled." }));
  } catch (error) {
    target.replaceChildren(el("p", { text: "schedule unavailable: " + error.message }));
  }
}

async function cancel(id) {
  const message = document.getElementById("schedule-message");
  try { await post("/api/schedule/cancel", { id: id }); message.textContent = "cancelled " + id; }
  catch (error) { message.textContent = "cancel failed: " + error.message; }
  refreshSchedule();
}

document.getElementById("schedule-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = e.target;
  const message = document.getElementById("schedule-message");
  const to = Array.from(form.querySelectorAll('input[name="to"]:checked')).map((i) => i.value);
  try {
    const at = new Date(form.elements.at.value).toISOString();
    const data = await post("/api/schedule", { text: form.elements.text.value, at: at, to: to });
    message.textContent = "scheduled " + data.id;
    form.reset();
  } catch (error) { message.textContent = "not scheduled: " + error.message; }
  refreshSchedule();
});

document.getElementById("add-column").addEventListener("submit", (e) => {
  e.preventDefault();
  const f = e.target.elements;
  addColumn(f.name.value.trim(), { lang: f.lang.value, source: f.source.value, contains: f.contains.value, has_link: f.has_link.checked ? true : null }, true);
  e.target.reset();
});

addColumn("All", {}, false);
connect();
refreshAnalysis();
refreshSchedule();
setInterval(refreshAnalysis, 5000);
setInterval(refreshSchedule, 10000);
