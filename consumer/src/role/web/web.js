// tweet-pipeline live view: columns fed by /events (SSE), the analysis and schedule panels.
// Post content is untrusted: it is only ever set with textContent or as an attribute value
// (links: http/https only), never parsed as HTML.
"use strict";

const MAX_CARDS = 200;
const CSRF = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
const columns = new Map(); // name -> column
const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "short", timeStyle: "medium" });
const SOURCES = { x: "X", mastodon: "Mastodon", bluesky: "Bluesky", replay: "replay" };
// Cards waiting for their analysis (the analysis group stores a post after it reaches the
// page): looked up together every ANNOTATE_MS, at most ANNOTATE_BATCH ids a request (the
// server's bound), each for at most ANNOTATE_FOR_MS after it arrived.
const ANNOTATE_MS = 2000;
const ANNOTATE_BATCH = 500;
const ANNOTATE_FOR_MS = 120000;
const MAX_AWAITING = 2000; // the oldest is given up first
const awaiting = new Map(); // id -> {card, since}

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
  if (filter.has_media === true && !card.has_media) return false;
  // The sentiment comes from the store after the card: a sentiment column takes a card once
  // its label is known (see annotate).
  if (set(filter.sentiment) && !(card.annotation && card.annotation.sentiment_label === set(filter.sentiment))) return false;
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
  if (card.has_media) meta.push(el("span", { class: "badge", text: "media" }));
  for (const badge of analysisBadges(card)) meta.push(badge);
  const body = el("p", { class: "text" }, textNodes(card));
  const article = el("article", { class: "card", tabindex: "0" }, [el("div", { class: "card-meta" }, meta), body]);
  article.dataset.id = card.id;
  // From the producer receiving the line to this card: the pipeline's end-to-end latency;
  // from the record's Kafka timestamp to this card: the web view's own. Not for the posts
  // the server sends a page that connects (they arrived before it).
  if (card.recent) article.dataset.recent = "true";
  else if (card.received_at_ms) article.dataset.latencyMs = String(Date.now() - card.received_at_ms);
  if (card.kafka_at_ms && !card.recent) article.dataset.kafkaLatencyMs = String(Date.now() - card.kafka_at_ms);
  if (card.rules.length) article.append(el("div", { class: "rules", text: "rules: " + card.rules.join(", ") }));
  return article;
}

// The detected language and sentiment, once the analysis group stored them.
function analysisBadges(card) {
  const a = card.annotation;
  if (!a) return [];
  const badges = [];
  if (a.detected_lang) badges.push(el("span", { class: "badge detected", text: "detected " + a.detected_lang }));
  if (a.sentiment_label) {
    const score = typeof a.sentiment_compound === "number" ? " " + a.sentiment_compound.toFixed(2) : "";
    badges.push(el("span", { class: "badge sentiment " + a.sentiment_label, text: a.sentiment_label + score }));
  }
  return badges;
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
  awaiting.set(card.id, { card: card, since: Date.now() });
  if (awaiting.size > MAX_AWAITING) awaiting.delete(awaiting.keys().next().value);
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

// A post the server held from before this page connected; after a reconnect the page may
// already show it.
function onRecent(card) {
  for (const node of document.querySelectorAll("article.card")) if (node.dataset.id === card.id) return;
  card.recent = true;
  onPost(card);
}

function onDelete(id) {
  awaiting.delete(id);
  for (const column of columns.values()) {
    for (const node of Array.from(column.list.children)) {
      if (node.dataset.id === id) node.remove();
    }
    column.count.textContent = String(column.list.childElementCount);
    column.pending = column.pending.filter((card) => card.id !== id);
    updateNews(column);
  }
}

// One request for every card still waiting for its analysis.
async function annotate() {
  const now = Date.now();
  for (const [id, entry] of awaiting) if (now - entry.since > ANNOTATE_FOR_MS) awaiting.delete(id);
  const ids = Array.from(awaiting.keys()).slice(0, ANNOTATE_BATCH);
  if (ids.length === 0) return;
  let data;
  try { data = await post("/api/annotations", { ids: ids }); } catch (error) { return; }
  for (const a of data.annotations) {
    const entry = awaiting.get(a.id);
    if (!entry) continue;
    awaiting.delete(a.id);
    const card = entry.card;
    card.annotation = a;
    const shownIn = new Set();
    for (const column of columns.values()) {
      for (const node of Array.from(column.list.children)) {
        if (node.dataset.id !== a.id) continue;
        shownIn.add(column.name);
        if (node.dataset.annotated) continue; // an earlier copy of the post, already shown so
        node.dataset.annotated = "true";
        node.querySelector(".card-meta").append(...analysisBadges(card));
        if (a.sentiment_label) node.dataset.sentiment = a.sentiment_label;
        if (a.detected_lang) node.dataset.detectedLang = a.detected_lang;
      }
    }
    // Columns that filter by sentiment take the card now that its label is known.
    for (const column of columns.values()) {
      if (shownIn.has(column.name) || !column.filter.sentiment || !matches(column.filter, card)) continue;
      if (column.paused) { column.pending.push(card); updateNews(column); } else show(column, card);
    }
  }
}

function connect() {
  const source = new EventSource("/events");
  source.addEventListener("ready", () => setStatus("live"));
  source.addEventListener("recent", (e) => onRecent(JSON.parse(e.data)));
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
    const sentiment = data.sentiment_per_minute.map((m) => m[1]);
    const moods = el("div", { class: "bars mood", role: "img", "aria-label": "mean sentiment per minute, last 30 minutes, -1 to 1: " + sentiment.map((v) => (v === null ? "none" : v.toFixed(2))).join(", ") },
      sentiment.map((v) => {
        const bar = el("span", { class: "bar " + (v === null ? "none" : v >= 0 ? "pos" : "neg"), title: v === null ? "no scored posts" : "mean " + v.toFixed(2) });
        bar.style.height = (v === null ? 0 : Math.round(Math.abs(v) * 100)) + "%";
        return bar;
      }));
    const max = Math.max(1, ...perMinute);
    const bars = el("div", { class: "bars", role: "img", "aria-label": "posts per minute, last 30 minutes: " + perMinute.join(", ") },
      perMinute.map((n) => { const bar = el("span", { class: "bar", title: n + " posts" }); bar.style.height = Math.round((n / max) * 100) + "%"; return bar; }));
    target.replaceChildren(
      el("p", { text: data.total + " posts in " + data.db }),
      el("h3", { text: "Posts per minute (received)" }), bars,
      el("h3", { text: "Sentiment over time (mean compound per minute; dark: positive, red: negative)" }), moods,
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
      } else if (r.state === "failed" || r.state === "missed") {
        action = el("button", { type: "button", class: "retry", text: "Retry", "aria-label": "retry " + r.id + " at " + r.destination });
        action.addEventListener("click", () => retry(r.id, r.destination));
      }
      return [r.state, timeFormat.format(new Date(r.due_at)), r.destination, r.id, r.detail, r.text, action];
    });
    const rendered = table(["state", "due (your time)", "network", "id", "detail", "text", ""], rows);
    rendered.querySelectorAll("tbody tr").forEach((tr, i) => {
      tr.dataset.id = data.rows[i].id;
      tr.dataset.state = data.rows[i].state;
      tr.dataset.destination = data.rows[i].destination;
    });
    target.replaceChildren(rows.length ? rendered : el("p", { text: "Nothing scheduled." }));
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

async function retry(id, destination) {
  const message = document.getElementById("schedule-message");
  try { const data = await post("/api/schedule/retry", { id: id, destination: destination }); message.textContent = "retrying " + id + " as " + data.id; }
  catch (error) { message.textContent = "retry failed: " + error.message; }
  refreshSchedule();
}

function byKey(map, format) {
  const keys = Object.keys(map || {});
  return keys.length ? keys.map((k) => (k || "(none)") + ": " + format(map[k])).join(", ") : "—";
}

async function refreshHealth() {
  const target = document.getElementById("stream-health");
  try {
    const response = await fetch("/api/stream-health");
    const data = await response.json();
    if (!response.ok) throw new Error(data.error || response.statusText);
    if (data.endpoints.length === 0) { target.replaceChildren(el("p", { text: "No endpoints: start the web view with --metrics-url http://127.0.0.1:9101/metrics (repeat for each process)." })); return; }
    const n = (v) => String(Math.round(v));
    const rate = (v) => v.toFixed(1) + "/s";
    const rows = data.endpoints.map((e) => [
      e.url, e.up ? "up" : "down: " + (e.error || "?"),
      byKey(e.records_per_second, rate),
      e.totals.keepalives == null ? "—" : n(e.totals.keepalives) + (e.keepalives_per_second == null ? "" : " (" + rate(e.keepalives_per_second) + ")"),
      byKey(e.totals.disconnects_by_reason, n),
      byKey(e.totals.dead_letters_by_reason, n),
      e.totals.spool_bytes == null ? "—" : n(e.totals.spool_bytes) + " B",
      byKey(e.totals.lag_by_group_topic, n),
    ]);
    target.replaceChildren(table(["endpoint", "state", "records by topic", "keep-alives", "disconnects by reason", "dead letters by reason", "spool", "consumer lag (records)"], rows));
  } catch (error) {
    target.replaceChildren(el("p", { text: "stream health unavailable: " + error.message }));
  }
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
  addColumn(f.name.value.trim(), { lang: f.lang.value, source: f.source.value, contains: f.contains.value, sentiment: f.sentiment.value, has_link: f.has_link.checked ? true : null, has_media: f.has_media.checked ? true : null }, true);
  e.target.reset();
});

addColumn("All", {}, false);
connect();
refreshAnalysis();
refreshSchedule();
refreshHealth();
setInterval(refreshAnalysis, 5000);
setInterval(refreshSchedule, 5000);
setInterval(refreshHealth, 5000);
setInterval(annotate, ANNOTATE_MS);
