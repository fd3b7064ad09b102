// braze-bridge console. Vanilla JS, no build step, no third-party code.
// The token lives in sessionStorage (this tab only) and travels only in the Authorization
// header: the live feed is read with fetch() streaming, never EventSource with a URL token.
"use strict";

const TOKEN_KEY = "braze-bridge.token";
const PAGE_SIZE = 50;
const HEALTH_REFRESH_MS = 10000;

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  connections: new Map(),   // id → health row
  rows: new Map(),          // event id → <tr>
  newestId: null,
  nextCursor: null,
  selectedId: null,
  feedAbort: null,
  healthTimer: null,
  jobTimer: null,
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function badge(word) {
  return el("span", { class: `badge ${word}`, "data-status": word }, word.replaceAll("_", " "));
}

function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
}

function age(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 86400) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} d`;
}

function pretty(value) {
  return value === null || value === undefined ? "—" : JSON.stringify(value, null, 2);
}

class ApiError extends Error {
  constructor(status, body) {
    const message = body && body.error ? body.error.message : `HTTP ${status}`;
    super(message);
    this.status = status;
    this.body = body;
  }
}

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: {
      Authorization: `Bearer ${state.token}`,
      ...(options.body ? { "Content-Type": "application/json" } : {}),
      ...(options.headers || {}),
    },
  });
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (response.status === 401) {
    signOut("Your token was refused. Sign in again.");
    throw new ApiError(401, body);
  }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

// --- sign in -----------------------------------------------------------------------------

async function signIn(token) {
  state.token = token;
  try {
    await loadHealth();
  } catch (error) {
    state.token = null;
    throw error;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  showApp();
}

function signOut(message = "") {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  stopFeed();
  clearInterval(state.healthTimer);
  clearInterval(state.jobTimer);
  $("app-view").hidden = true;
  $("who").hidden = true;
  $("detail").hidden = true;
  $("signin-view").hidden = false;
  $("signin-error").textContent = message;
  $("token-input").value = "";
}

function showApp() {
  $("signin-view").hidden = true;
  $("app-view").hidden = false;
  $("who").hidden = false;
  const kind = state.token.startsWith("bbo_") ? "operator" : "tenant";
  $("who-label").textContent = `${kind} token ${state.token.slice(0, 8)}…`;
  clearInterval(state.healthTimer);
  state.healthTimer = setInterval(() => loadHealth().catch(() => {}), HEALTH_REFRESH_MS);
  reloadEvents();
}

// --- connections -------------------------------------------------------------------------

async function loadHealth() {
  const body = await api("/v1/health");
  state.connections = new Map(body.connections.map((c) => [c.connection_id, c]));
  renderConnections();
}

function renderConnections() {
  const list = $("connection-list");
  const select = $("f-connection");
  const chosen = select.value;
  list.replaceChildren();
  select.replaceChildren(el("option", { value: "" }, "All connections"));
  if (state.connections.size === 0) {
    list.append(el("li", { class: "muted" }, "No connections yet."));
  }
  for (const c of state.connections.values()) {
    const counts = Object.entries(c.counts_last_hour).map(([k, v]) => `${v} ${k.replaceAll("_", " ")}`).join(", ");
    const item = el(
      "li",
      {
        class: `connection${chosen === c.connection_id ? " selected" : ""}`,
        dataset: { connectionId: c.connection_id, testid: "connection" },
        tabindex: "0",
        onclick: () => {
          select.value = select.value === c.connection_id ? "" : c.connection_id;
          renderConnections();
          reloadEvents();
        },
      },
      el("div", { class: "name" }, el("span", {}, c.name), badge(c.status)),
      el(
        "div",
        { class: "figures" },
        el("span", {}, `${c.source}`),
        el("span", {}, `queue ${c.queue_depth}`),
        el("span", {}, `oldest ${age(c.oldest_pending_age_seconds)}`),
        el("span", {}, c.data_points_saved ? `${c.data_points_saved} data points saved` : ""),
      ),
      el("div", { class: "counts muted" }, counts ? `last hour: ${counts}` : "no events in the last hour"),
      c.last_error ? el("div", { class: "last-error" }, c.last_error) : null,
    );
    list.append(item);
    select.append(el("option", { value: c.connection_id }, c.name));
  }
  select.value = chosen;
}

function connectionName(id) {
  const c = state.connections.get(id);
  return c ? c.name : id.slice(0, 8);
}

// --- event feed --------------------------------------------------------------------------

function filterParams() {
  const params = new URLSearchParams();
  for (const [name, id] of [["connection_id", "f-connection"], ["status", "f-status"], ["kind", "f-kind"], ["user", "f-user"]]) {
    const value = $(id).value.trim();
    if (value) params.set(name, value);
  }
  return params;
}

function eventRow(event) {
  return el(
    "tr",
    {
      dataset: { eventId: event.id, testid: "event-row", status: event.status },
      class: event.id === state.selectedId ? "active" : "",
      onclick: () => openDetail(event.id),
    },
    el("td", { class: "when" }, when(event.received_at)),
    el("td", {}, badge(event.status)),
    el("td", {}, event.kind || "—"),
    el("td", { class: "mono" }, event.user || "—"),
    el("td", {}, connectionName(event.connection_id)),
    el("td", { class: "reason" }, event.reason || ""),
  );
}

async function reloadEvents() {
  stopFeed();
  state.rows.clear();
  $("event-rows").replaceChildren();
  state.newestId = null;
  state.nextCursor = null;
  await loadPage();
  startFeed();
}

async function loadPage() {
  const params = filterParams();
  params.set("limit", String(PAGE_SIZE));
  if (state.nextCursor) params.set("cursor", state.nextCursor);
  let page;
  try {
    page = await api(`/v1/events?${params}`);
  } catch (error) {
    $("no-events").hidden = false;
    $("no-events").textContent = error.message;
    return;
  }
  for (const event of page.items) {
    if (state.rows.has(event.id)) continue;
    const row = eventRow(event);
    state.rows.set(event.id, row);
    $("event-rows").append(row);
    if (!state.newestId) state.newestId = event.id;
  }
  state.nextCursor = page.next_cursor;
  $("load-older").hidden = !page.next_cursor;
  $("no-events").hidden = state.rows.size > 0;
  $("no-events").textContent = "No events match.";
}

function applyFeedMessage(kind, event, { refreshDetail = true } = {}) {
  const existing = state.rows.get(event.id);
  if (kind === "updated" && !existing) return;
  const row = eventRow(event);
  if (existing) {
    existing.replaceWith(row);
  } else {
    row.classList.add("fresh");
    $("event-rows").prepend(row);
    state.newestId = event.id;
  }
  state.rows.set(event.id, row);
  $("no-events").hidden = true;
  if (refreshDetail && event.id === state.selectedId) openDetail(event.id, { keepMessage: true });
}

function stopFeed() {
  if (state.feedAbort) state.feedAbort.abort();
  state.feedAbort = null;
  $("live").classList.remove("on");
}

async function startFeed() {
  stopFeed();
  const abort = new AbortController();
  state.feedAbort = abort;
  const params = filterParams();
  if (state.newestId) params.set("after", state.newestId);
  // Rows still in motion: the feed reports when their status changes.
  let watched = 0;
  for (const [id, row] of state.rows) {
    if (watched >= 100) break;
    if (row.dataset.status === "received" || row.dataset.status === "queued") {
      params.append("watch", id);
      watched += 1;
    }
  }
  try {
    const response = await fetch(`/v1/events/stream?${params}`, {
      headers: { Authorization: `Bearer ${state.token}`, Accept: "text/event-stream" },
      signal: abort.signal,
    });
    if (!response.ok) throw new Error(`stream answered ${response.status}`);
    $("live").classList.add("on");
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let split;
      while ((split = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, split);
        buffer = buffer.slice(split + 2);
        let kind = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) kind = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).trim());
        }
        if (data.length && (kind === "created" || kind === "updated")) {
          applyFeedMessage(kind, JSON.parse(data.join("\n")));
        }
      }
    }
  } catch (error) {
    if (abort.signal.aborted) return;
  }
  if (state.feedAbort === abort && state.token) {
    $("live").classList.remove("on");
    setTimeout(() => { if (state.feedAbort === abort) startFeed(); }, 3000);
  }
}

// --- event detail ------------------------------------------------------------------------

async function openDetail(id, { keepMessage = false } = {}) {
  state.selectedId = id;
  for (const [rowId, row] of state.rows) row.classList.toggle("active", rowId === id);
  let event;
  try {
    event = await api(`/v1/events/${id}`);
  } catch (error) {
    showMessage(error.message, true);
    return null;
  }
  $("detail").hidden = false;
  $("detail").dataset.eventId = id;
  $("d-title").replaceChildren(`${event.kind || "event"} `, badge(event.status));
  $("d-id").textContent = event.id;
  if (!keepMessage) $("d-message").hidden = true;

  const summary = [
    ["Connection", connectionName(event.connection_id)],
    ["User", event.user || "—"],
    ["Reason", event.reason || "—"],
    ["Source event id", event.source_event_id || "—"],
    ["Received", when(event.received_at)],
    ["Occurred", when(event.occurred_at)],
    ["Settled", when(event.settled_at)],
  ];
  $("d-summary").replaceChildren(...summary.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));

  $("d-objects").replaceChildren(
    ...(event.objects.length
      ? event.objects.map((o) =>
          el(
            "tr",
            { dataset: { testid: "object-row", status: o.status } },
            el("td", {}, o.position),
            el("td", {}, o.kind),
            el("td", {}, badge(o.status)),
            el("td", { class: "reason" }, o.reason || ""),
            el("td", {}, o.attempts),
            el("td", {}, el("details", { class: "payload" }, el("summary", {}, "show"), el("pre", { class: "code" }, pretty(o.sent_object || o.payload)))),
          ),
        )
      : [el("tr", {}, el("td", { colspan: "6", class: "muted" }, "No Braze objects (see reason)."))]),
  );

  $("d-attempts").replaceChildren(
    ...(event.attempts.length
      ? event.attempts.map((a) =>
          el(
            "div",
            { class: "attempt", dataset: { testid: "attempt" } },
            el(
              "div",
              { class: "line" },
              el("strong", {}, a.status_code === null ? "no response" : `HTTP ${a.status_code}`),
              el("span", { class: "mono" }, a.endpoint),
              el("span", { class: "muted" }, when(a.started_at)),
              el("span", { class: "muted" }, `${Math.round(a.duration_ms)} ms`),
              el("span", { class: "muted" }, a.worker_id ? `worker ${a.worker_id}` : ""),
              a.error ? el("span", { class: "reason" }, a.error) : null,
            ),
            el("details", {}, el("summary", {}, "request"), el("pre", { class: "code" }, pretty(a.request_body))),
            el("details", {}, el("summary", {}, "response"), el("pre", { class: "code" }, a.response_body || "—")),
          ),
        )
      : [el("p", { class: "muted" }, "No attempts yet.")]),
  );

  $("d-normalized").textContent = pretty(event.normalized);
  $("d-raw").textContent = event.raw
    ? (event.raw.json !== null ? pretty(event.raw.json) : event.raw.body)
    : "Purged after the retention period.";
  $("d-headers").textContent = event.raw ? pretty(event.raw.headers) : "—";
  return event;
}

function showMessage(text, isError = false) {
  const box = $("d-message");
  box.textContent = text;
  box.classList.toggle("error", isError);
  box.hidden = false;
}

async function replaySelected() {
  const id = state.selectedId;
  if (!id) return;
  $("d-replay").disabled = true;
  try {
    const result = await api(`/v1/events/${id}/replay`, { method: "POST" });
    const what = result.requeued
      ? `${result.requeued} Braze object${result.requeued === 1 ? "" : "s"} queued again`
      : "nothing to send: every object was already delivered";
    showMessage(`Replayed${result.remapped ? " (re-mapped with current settings)" : ""}: ${what}. Status: ${result.status.replaceAll("_", " ")}.`);
    const event = await openDetail(id, { keepMessage: true });
    // Show the new status in the list now, and follow it from here on.
    if (event && state.rows.has(id)) {
      applyFeedMessage("updated", event, { refreshDetail: false });
      startFeed();
    }
  } catch (error) {
    showMessage(`Replay refused: ${error.message}`, true);
  } finally {
    $("d-replay").disabled = false;
  }
}

// --- bulk replay -------------------------------------------------------------------------

async function replayMatching() {
  const filters = Object.fromEntries(filterParams());
  const described = Object.entries(filters).map(([k, v]) => `${k}=${v}`).join(", ") || "every event";
  if (!window.confirm(`Replay ${described}? Objects already delivered are never sent again.`)) return;
  let job;
  try {
    job = await api("/v1/events/replay", { method: "POST", body: JSON.stringify(filters) });
  } catch (error) {
    $("job").hidden = false;
    $("job-label").textContent = `Replay refused: ${error.message}`;
    return;
  }
  showJob(job);
  clearInterval(state.jobTimer);
  state.jobTimer = setInterval(async () => {
    try {
      const current = await api(`/v1/replays/${job.id}`);
      showJob(current);
      if (current.status === "done" || current.status === "failed") clearInterval(state.jobTimer);
    } catch {
      clearInterval(state.jobTimer);
    }
  }, 1000);
}

function showJob(job) {
  $("job").hidden = false;
  $("job").dataset.status = job.status;
  const total = job.total ?? 0;
  $("job-progress").max = Math.max(total, 1);
  $("job-progress").value = job.status === "done" ? Math.max(total, 1) : job.done;
  const of = job.total === null ? "counting…" : `${job.done} of ${job.total} events`;
  $("job-label").textContent =
    `Replay ${job.status}: ${of}, ${job.requeued} objects queued again` +
    (job.skipped ? `, ${job.skipped} skipped` : "") + (job.error ? ` — ${job.error}` : "");
}

// --- wiring ------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const token = $("token-input").value.trim();
    $("signin-error").textContent = "";
    try {
      await signIn(token);
    } catch (error) {
      $("signin-error").textContent = error.status === 401 ? "That token was refused." : error.message;
    }
  });
  $("sign-out").addEventListener("click", () => signOut());
  $("filters").addEventListener("submit", (e) => { e.preventDefault(); renderConnections(); reloadEvents(); });
  $("load-older").addEventListener("click", () => loadPage());
  $("refresh-health").addEventListener("click", () => loadHealth());
  $("d-close").addEventListener("click", () => {
    $("detail").hidden = true;
    state.selectedId = null;
    for (const row of state.rows.values()) row.classList.remove("active");
  });
  $("d-replay").addEventListener("click", replaySelected);
  $("replay-matching").addEventListener("click", replayMatching);
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") $("d-close").click(); });

  if (state.token) {
    signIn(state.token).catch(() => signOut("Sign in again."));
  }
});
