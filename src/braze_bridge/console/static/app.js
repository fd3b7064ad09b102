// braze-bridge console. Vanilla JS, no build step, no third-party code.
// The token lives in sessionStorage (this tab only) and travels only in the Authorization
// header: the live feed is read with fetch() streaming, never EventSource with a URL token.
"use strict";

const TOKEN_KEY = "braze-bridge.token";
const PAGE_SIZE = 50;
const HEALTH_REFRESH_MS = 10000;

const FEED_RETRY_MS = 2000;
const NIL_ID = "00000000-0000-0000-0000-000000000000";
const IN_MOTION = new Set(["received", "queued"]);  // statuses that can still change alone
// The URL holds these (plus `event`, the open detail): a link or a reload restores the view.
const FILTERS = [
  ["connection_id", "f-connection"], ["status", "f-status"], ["kind", "f-kind"],
  ["user", "f-user"], ["since", "f-since"], ["until", "f-until"],
];

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  offline: false,
  detailSeq: 0,             // the newest detail load; older answers are dropped
  connections: new Map(),   // id → health row
  rows: new Map(),          // event id → <tr>
  newestId: null,
  nextCursor: null,
  selectedId: null,
  feedAbort: null,
  healthTimer: null,
  feedRetry: null,
  feedWatch: new Set(),     // ids the current stream follows
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

// Times in the browser's zone, with the zone named; the UTC instant is in the tooltip.
const WHEN = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
});

function when(iso) {
  if (!iso) return "—";
  return WHEN.format(new Date(iso));
}

function timeEl(iso) {
  return iso ? el("time", { datetime: iso, title: new Date(iso).toISOString() }, when(iso)) : "—";
}

// ISO instant ↔ the value of an <input type="datetime-local"> (the browser's zone).
function toLocalInput(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function fromLocalInput(value) {
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? "" : d.toISOString();
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

// --- server reachability -----------------------------------------------------------------

function serverAway(status) {
  return status === 0 || status === 502 || status === 503 || status === 504;
}

function markOffline() {
  if (state.offline) return;
  state.offline = true;
  $("offline").hidden = false;
  $("live").classList.remove("on");
}

function markOnline() {
  if (!state.offline) return;
  state.offline = false;
  $("offline").hidden = true;
  // What changed while away: connections now; the feed's restart brings rows up to date.
  if (state.token) {
    loadHealth().catch(() => {});
    if (state.selectedId) openDetail(state.selectedId, { keepMessage: true });
  }
}

async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, {
      ...options,
      headers: {
        Authorization: `Bearer ${state.token}`,
        ...(options.body ? { "Content-Type": "application/json" } : {}),
        ...(options.headers || {}),
      },
    });
  } catch (error) {
    markOffline();
    throw new ApiError(0, { error: { message: "The server is not answering." } });
  }
  if (serverAway(response.status)) markOffline();
  else markOnline();
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
  state.offline = false;
  $("offline").hidden = true;
}

function showApp() {
  $("signin-view").hidden = true;
  $("app-view").hidden = false;
  $("who").hidden = false;
  const kind = state.token.startsWith("bbo_") ? "operator" : "tenant";
  $("who-label").textContent = `${kind} token ${state.token.slice(0, 8)}…`;
  clearInterval(state.healthTimer);
  state.healthTimer = setInterval(() => loadHealth().catch(() => {}), HEALTH_REFRESH_MS);
  restoreFromUrl();
  reloadEvents();
  if (state.selectedId) openDetail(state.selectedId);
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
  for (const [name, id] of FILTERS) {
    const input = $(id);
    const value = input.type === "datetime-local" ? fromLocalInput(input.value) : input.value.trim();
    if (value) params.set(name, value);
  }
  return params;
}

// The view in the URL: filters, and the open event. Never the token.
function writeUrl() {
  const params = filterParams();
  if (state.selectedId) params.set("event", state.selectedId);
  const query = params.toString();
  const url = `${location.pathname}${query ? `?${query}` : ""}`;
  if (url !== `${location.pathname}${location.search}`) history.replaceState(null, "", url);
}

function restoreFromUrl() {
  const params = new URLSearchParams(location.search);
  for (const [name, id] of FILTERS) {
    const input = $(id);
    const value = params.get(name) || "";
    if (input.tagName === "SELECT" && value && ![...input.options].some((o) => o.value === value)) {
      input.append(el("option", { value }, value));  // a connection not (yet) listed
    }
    input.value = input.type === "datetime-local" && value ? toLocalInput(value) : value;
  }
  state.selectedId = params.get("event") || null;
}

function rowReason(event) {
  const parts = [event.reason || ""];
  if (event.next_retry_at) parts.push(`next try ${when(event.next_retry_at)}`);
  return parts.filter(Boolean).join(" · ");
}

function eventRow(event) {
  return el(
    "tr",
    {
      dataset: { eventId: event.id, testid: "event-row", status: event.status },
      class: event.id === state.selectedId ? "active" : "",
      tabindex: "0",
      onclick: () => openDetail(event.id),
    },
    el("td", { class: "when" }, timeEl(event.received_at)),
    el("td", {}, badge(event.status)),
    el("td", {}, event.kind || "—"),
    el("td", { class: "mono" }, event.user || "—"),
    el("td", {}, connectionName(event.connection_id)),
    el("td", { class: "reason", dataset: { testid: "row-reason" } }, rowReason(event)),
  );
}

// Arrow keys move between rows, Home/End jump, Enter opens the focused row's detail.
function onRowKey(e) {
  const row = e.target.closest("tr[data-event-id]");
  if (!row) return;
  let target = null;
  if (e.key === "ArrowDown") target = row.nextElementSibling;
  else if (e.key === "ArrowUp") target = row.previousElementSibling;
  else if (e.key === "Home") target = $("event-rows").firstElementChild;
  else if (e.key === "End") target = $("event-rows").lastElementChild;
  else if (e.key === "Enter" || e.key === " ") {
    e.preventDefault();
    openDetail(row.dataset.eventId);
    return;
  } else return;
  e.preventDefault();
  if (target) target.focus();
}

async function reloadEvents() {
  stopFeed();
  state.rows.clear();
  $("event-rows").replaceChildren();
  state.newestId = null;
  state.nextCursor = null;
  writeUrl();
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
  if (kind === "updated" && !existing) {
    if (refreshDetail && event.id === state.selectedId) openDetail(event.id, { keepMessage: true });
    return;
  }
  const row = eventRow(event);
  if (existing) {
    const focused = document.activeElement === existing;
    existing.replaceWith(row);
    if (focused) row.focus();
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
  clearTimeout(state.feedRetry);
  $("live").classList.remove("on");
}

// The stream's first messages are the current state of every `watch` row, then whatever was
// created after the newest row: each (re)connect brings the list up to date by itself.
function watchedIds() {
  const ids = [];
  if (state.selectedId) ids.push(state.selectedId);
  for (const [id, row] of state.rows) {
    if (ids.length >= 100) break;
    if (id !== state.selectedId && IN_MOTION.has(row.dataset.status)) ids.push(id);
  }
  return ids;
}

async function startFeed() {
  stopFeed();
  const abort = new AbortController();
  state.feedAbort = abort;
  const params = filterParams();
  // After the newest row shown; with none shown, after nothing: every match is new to this
  // list (starting "at the newest" would skip one stored between the page load and now).
  params.set("after", state.newestId || NIL_ID);
  state.feedWatch = new Set(watchedIds());
  for (const id of state.feedWatch) params.append("watch", id);
  let connected = false;
  try {
    const response = await fetch(`/v1/events/stream?${params}`, {
      headers: { Authorization: `Bearer ${state.token}`, Accept: "text/event-stream" },
      signal: abort.signal,
    });
    if (response.status === 401) {
      signOut("Your token was refused. Sign in again.");
      return;
    }
    if (serverAway(response.status)) markOffline();
    if (!response.ok) throw new Error(`stream answered ${response.status}`);
    connected = true;
    markOnline();
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
    if (!connected && error instanceof TypeError) markOffline();  // fetch itself failed
  }
  // The stream ended (the server stopped, or the network dropped): try again soon.
  if (state.feedAbort === abort && state.token) {
    $("live").classList.remove("on");
    state.feedRetry = setTimeout(() => { if (state.feedAbort === abort) startFeed(); }, FEED_RETRY_MS);
  }
}

// --- event detail ------------------------------------------------------------------------

function attemptClass(statusCode) {
  if (statusCode === null || statusCode === undefined) return "network";
  if (statusCode === 429) return "c429";
  if (statusCode >= 200 && statusCode < 300) return "c2xx";
  if (statusCode >= 400 && statusCode < 500) return "c4xx";
  if (statusCode >= 500) return "c5xx";
  return "other";
}

function objectNextTry(o) {
  if (o.next_retry_at) return o.next_retry_at;
  return o.status === "pending" && o.attempts > 0 ? o.available_at : null;
}

async function openDetail(id, { keepMessage = false } = {}) {
  const opening = state.selectedId !== id;
  state.selectedId = id;
  for (const [rowId, row] of state.rows) row.classList.toggle("active", rowId === id);
  writeUrl();
  // Loads can finish out of order (a replay's and the feed's): only the newest one is shown.
  const seq = ++state.detailSeq;
  let event;
  try {
    event = await api(`/v1/events/${id}`);
  } catch (error) {
    if (seq !== state.detailSeq) return null;
    if (error.status === 404) {
      closeDetail();
      return null;
    }
    $("detail").hidden = false;
    showMessage(error.message, true);
    return null;
  }
  if (seq !== state.detailSeq || state.selectedId !== id) return null;
  // Follow the open event while it can still change, even when no row of the list shows it.
  if (opening && state.feedAbort && IN_MOTION.has(event.status) && !state.feedWatch.has(id)) startFeed();
  $("detail").hidden = false;
  $("detail").dataset.eventId = id;
  $("d-title").replaceChildren(`${event.kind || "event"} `, badge(event.status));
  $("d-id").textContent = event.id;
  if (!keepMessage) $("d-message").hidden = true;

  const notes = event.notes || [];
  const summary = [
    ["Connection", connectionName(event.connection_id)],
    ["User", event.user || "—"],
    ["Reason", el("span", { dataset: { testid: "detail-reason" } }, event.reason || "—")],
    event.next_retry_at ? ["Next try", el("span", { dataset: { testid: "detail-next-retry" } }, timeEl(event.next_retry_at))] : null,
    notes.length ? ["Notes", el("ul", { class: "notes", dataset: { testid: "detail-notes" } }, notes.map((n) => el("li", {}, n)))] : null,
    ["Source event id", event.source_event_id || "—"],
    ["Received", timeEl(event.received_at)],
    ["Occurred", timeEl(event.occurred_at)],
    ["Settled", timeEl(event.settled_at)],
  ].filter(Boolean);
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
            el(
              "td",
              { class: "reason" },
              o.reason || "",
              objectNextTry(o) ? el("div", { class: "next-try", dataset: { testid: "object-next-retry" } }, "next try ", timeEl(objectNextTry(o))) : null,
            ),
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
            { class: `attempt ${attemptClass(a.status_code)}`, dataset: { testid: "attempt", outcome: attemptClass(a.status_code) } },
            el(
              "div",
              { class: "line" },
              el("strong", { class: "code-class" }, a.status_code === null ? "no response" : `HTTP ${a.status_code}`),
              el("span", { class: "mono" }, a.endpoint),
              el("span", { class: "muted" }, timeEl(a.started_at)),
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

function closeDetail() {
  $("detail").hidden = true;
  const id = state.selectedId;
  state.selectedId = null;
  state.detailSeq += 1;  // a load still on its way must not reopen it
  for (const row of state.rows.values()) row.classList.remove("active");
  writeUrl();
  const row = id && state.rows.get(id);
  if (row) row.focus();
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
    // Show the new status in the list now, and follow it from here on: the restarted
    // stream's first message is this event's state as read after the restart, so an event
    // that settled meanwhile (before the stream was back) still converges.
    if (event && state.rows.has(id)) applyFeedMessage("updated", event, { refreshDetail: false });
    startFeed();
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
  $("tz-name").textContent = `(${Intl.DateTimeFormat().resolvedOptions().timeZone})`;
  $("sign-out").addEventListener("click", () => signOut());
  $("filters").addEventListener("submit", (e) => { e.preventDefault(); renderConnections(); reloadEvents(); });
  $("load-older").addEventListener("click", () => loadPage());
  $("refresh-health").addEventListener("click", () => loadHealth());
  $("d-close").addEventListener("click", closeDetail);
  $("d-replay").addEventListener("click", replaySelected);
  $("replay-matching").addEventListener("click", replayMatching);
  $("event-rows").addEventListener("keydown", onRowKey);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !$("detail").hidden) closeDetail();
    else if (e.key === "/" && !["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement?.tagName) && !$("app-view").hidden) {
      e.preventDefault();
      $("f-user").focus();
    }
  });

  if (state.token) {
    signIn(state.token).catch(() => signOut("Sign in again."));
  }
});
