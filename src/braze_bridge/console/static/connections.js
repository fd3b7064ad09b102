// Running a connection from the console: create, edit, pause / resume, rotate the webhook
// secret, test against Braze, preview a body, and the last 24 h chart. Vanilla JS, no build.
// Every action is a call to the admin REST API with the signed-in token (sessionStorage, this
// tab only); the API's 422 `details` are shown next to the field they name.

const TOKEN_KEY = "braze-bridge.token";
const SVG_NS = "http://www.w3.org/2000/svg";

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

class ApiError extends Error {
  constructor(status, body) {
    super(body && body.error ? body.error.message : `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
  get fields() {
    const details = this.body && this.body.error ? this.body.error.details : null;
    return Array.isArray(details) ? details : [];
  }
}

async function api(path, { method = "GET", body } = {}) {
  const headers = { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY)}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const json = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok) throw new ApiError(response.status, json);
  return json;
}

function pretty(value) {
  return JSON.stringify(value, null, 2);
}

function refreshList() {
  // app.js owns the connection list; its Refresh button reloads it.
  $("refresh-health")?.click();
}

// --- the form ----------------------------------------------------------------------------

// Each input names the request field it fills; an error whose path starts with that name is
// shown under it (`settings.reward_states.1` under "settings").
const FIELDS = [
  { path: "tenant_id", label: "Tenant id", create: true, operatorOnly: true, hint: "operator tokens only" },
  { path: "name", label: "Name" },
  { path: "source", label: "Source", create: true, options: ["extole", "antavo"] },
  { path: "braze.rest_endpoint", label: "Braze REST endpoint", placeholder: "https://rest.iad-01.braze.com" },
  { path: "braze.api_key", label: "Braze API key", type: "password", hint: "write-only; leave empty to keep" },
  { path: "braze.app_id", label: "Braze app id", hint: "optional" },
  { path: "webhook_auth.mode", label: "Webhook auth", options: ["", "hmac_sha256", "jwt_hs256", "bearer", "basic"] },
  { path: "webhook_auth.username", label: "Basic auth user name", hint: "basic only" },
  { path: "settings", label: "Settings (JSON)", textarea: true },
  { path: "limits", label: "Limits (JSON)", textarea: true, hint: "optional" },
];

function fieldId(path) {
  return `m-${path.replaceAll(".", "-").replaceAll("_", "-")}`;
}

function fieldTestId(path) {
  return path.replaceAll(".", "-");
}

function buildForm(mode, connection) {
  const operator = (sessionStorage.getItem(TOKEN_KEY) || "").startsWith("bbo_");
  const form = el("form", { id: "m-form", class: "manage-form", dataset: { testid: "connection-form", mode }, novalidate: true });
  for (const field of FIELDS) {
    if (field.create && mode !== "create") continue;
    if (field.operatorOnly && !operator) continue;
    const id = fieldId(field.path);
    const attrs = { id, name: field.path, dataset: { testid: `field-${fieldTestId(field.path)}` } };
    let input;
    if (field.options) {
      input = el("select", attrs, field.options.map((o) => el("option", { value: o }, o || "(source default)")));
    } else if (field.textarea) {
      input = el("textarea", { ...attrs, rows: field.path === "settings" ? 8 : 3, spellcheck: "false", class: "mono" });
    } else {
      input = el("input", { ...attrs, type: field.type || "text", placeholder: field.placeholder, spellcheck: "false", autocomplete: "off" });
    }
    form.append(
      el(
        "div",
        { class: "field", dataset: { field: field.path } },
        el("label", { for: id }, field.label, field.hint ? el("span", { class: "muted" }, ` — ${field.hint}`) : null),
        input,
        el("p", { class: "field-error", role: "alert", dataset: { testid: `error-${fieldTestId(field.path)}` } }),
      ),
    );
  }
  form.append(
    el("p", { class: "error", id: "m-form-error", role: "alert", dataset: { testid: "form-error" } }),
    el("button", { type: "submit", class: "primary", dataset: { testid: "save-connection" } }, mode === "create" ? "Create connection" : "Save changes"),
  );
  if (connection) fillForm(form, connection);
  else form.querySelector('[name="settings"]').value = "{}";
  return form;
}

function fillForm(form, c) {
  const values = {
    name: c.name,
    "braze.rest_endpoint": c.braze.rest_endpoint,
    "braze.api_key": "",
    "braze.app_id": c.braze.app_id || "",
    "webhook_auth.mode": c.webhook_auth.mode,
    "webhook_auth.username": c.webhook_auth.username || "",
    settings: pretty(c.settings),
    limits: pretty(c.limits),
  };
  for (const [path, value] of Object.entries(values)) {
    const input = form.querySelector(`[name="${path}"]`);
    if (input) input.value = value;
  }
}

function setPath(target, path, value) {
  const parts = path.split(".");
  let node = target;
  for (const part of parts.slice(0, -1)) node = node[part] ??= {};
  node[parts.at(-1)] = value;
}

// The request body: on create every filled field; on edit only what changed. A JSON box that
// does not parse is reported on its own field without calling the API.
function readForm(form, mode, original) {
  const body = {};
  const local = [];
  for (const input of form.querySelectorAll("[name]")) {
    const path = input.name;
    const raw = input.value;
    let value = raw.trim();
    if (path === "settings" || path === "limits") {
      if (value === "") continue;
      try {
        value = JSON.parse(value);
      } catch {
        local.push({ field: path, message: "is not valid JSON" });
        continue;
      }
      if (mode === "edit" && JSON.stringify(value) === JSON.stringify(original[path])) continue;
      if (mode === "edit" && path === "limits") delete value.export_rate_preset;
    } else if (mode === "edit") {
      const before = path.split(".").reduce((node, key) => (node ? node[key] : undefined), original);
      if (path === "braze.api_key" && value === "") continue;
      if ((before ?? "") === value) continue;
      if (value === "" && (path === "braze.app_id" || path === "webhook_auth.username")) value = null;
    } else if (value === "") {
      continue;
    }
    setPath(body, path, path === "braze.api_key" ? raw.trim() : value);
  }
  return { body, local };
}

function clearErrors(form) {
  for (const p of form.querySelectorAll(".field-error")) p.textContent = "";
  for (const f of form.querySelectorAll(".field.invalid")) f.classList.remove("invalid");
  form.querySelector("#m-form-error").textContent = "";
}

// Puts each error under the field with the longest name its path starts with.
function showErrors(form, errors, fallback) {
  const unplaced = [];
  const wrappers = [...form.querySelectorAll(".field")];
  for (const error of errors) {
    const path = error.field || "";
    const wrapper = wrappers
      .filter((w) => path === w.dataset.field || path.startsWith(`${w.dataset.field}.`))
      .sort((a, b) => b.dataset.field.length - a.dataset.field.length)[0];
    if (!wrapper) {
      unplaced.push(path ? `${path}: ${error.message}` : error.message);
      continue;
    }
    wrapper.classList.add("invalid");
    const box = wrapper.querySelector(".field-error");
    const inner = path.length > wrapper.dataset.field.length ? `${path}: ` : "";
    box.textContent = [box.textContent, `${inner}${error.message}`].filter(Boolean).join("; ");
  }
  if (unplaced.length || (!errors.length && fallback)) {
    form.querySelector("#m-form-error").textContent = unplaced.length ? unplaced.join("; ") : fallback;
  }
  form.querySelector(".field.invalid [name]")?.focus();
}

// --- the panel -----------------------------------------------------------------------------

const panel = { connection: null };

function drawer() {
  let root = $("manage");
  if (!root) {
    root = el("section", { id: "manage", class: "detail manage", hidden: true, dataset: { testid: "manage" }, "aria-label": "Connection" });
    document.body.append(root);
  }
  return root;
}

function closeDrawer() {
  drawer().hidden = true;
  panel.connection = null;
}

function notice(text, { error = false, testid = "manage-notice" } = {}) {
  const box = $("m-notice");
  box.replaceChildren(...(Array.isArray(text) ? text : [text]));
  box.classList.toggle("error", error);
  box.dataset.testid = testid;
  box.hidden = false;
}

function oneTimeSecrets(title, secrets) {
  return [
    el("strong", {}, title),
    el("span", {}, " Copy now: it is shown only this once."),
    ...secrets.map(([label, value, testid]) =>
      el("div", { class: "secret" }, el("span", { class: "muted" }, `${label} `), el("code", { dataset: { testid } }, value)),
    ),
  ];
}

function head(title, connection) {
  return el(
    "div",
    { class: "detail-head" },
    el(
      "div",
      {},
      el("h2", { dataset: { testid: "manage-title" } }, title, " ", connection ? el("span", { class: `badge ${connection.state}`, dataset: { testid: "manage-state" } }, connection.state.replaceAll("_", " ")) : null),
      connection ? el("div", { class: "muted mono" }, connection.webhook_url) : null,
    ),
    el("div", { class: "detail-actions" }, el("button", { type: "button", class: "link", dataset: { testid: "close-manage" }, onclick: closeDrawer }, "Close")),
  );
}

export function openCreate() {
  const root = drawer();
  const form = buildForm("create");
  root.replaceChildren(head("New connection"), el("p", { id: "m-notice", class: "notice", role: "status", hidden: true }), form);
  root.hidden = false;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    const { body, local } = readForm(form, "create");
    if (local.length) return showErrors(form, local);
    try {
      const created = await api("/v1/connections", { method: "POST", body });
      refreshList();
      await openManage(created.id, { created });
    } catch (error) {
      showErrors(form, error.fields, error.message);
    }
  });
  form.querySelector("[name]").focus();
}

export async function openManage(id, { created = null } = {}) {
  let connection;
  try {
    connection = created || (await api(`/v1/connections/${id}`));
  } catch (error) {
    window.alert(error.message);
    return;
  }
  panel.connection = connection;
  const root = drawer();
  root.dataset.connectionId = connection.id;
  const paused = connection.state === "paused";
  const actions = el(
    "div",
    { class: "manage-actions" },
    el("button", { type: "button", dataset: { testid: paused ? "resume" : "pause" }, onclick: () => setRunning(paused) }, paused ? "Resume" : "Pause"),
    connection.state === "auth_error" ? el("button", { type: "button", dataset: { testid: "resume" }, onclick: () => setRunning(true) }, "Resume") : null,
    el("button", { type: "button", dataset: { testid: "test-connection" }, onclick: runTest }, "Test against Braze"),
    el("button", { type: "button", class: "warn", dataset: { testid: "rotate-secret" }, onclick: rotate }, "Rotate webhook secret…"),
  );
  const form = buildForm("edit", connection);
  const preview = el(
    "form",
    { id: "m-preview", class: "manage-form", dataset: { testid: "preview-form" } },
    el("div", { class: "field" },
      el("label", { for: "m-preview-body" }, "A webhook body, as the partner would send it"),
      el("textarea", { id: "m-preview-body", rows: 6, class: "mono", spellcheck: "false", dataset: { testid: "preview-body" } }),
    ),
    el("button", { type: "submit", dataset: { testid: "run-preview" } }, "Preview"),
    el("div", { id: "m-preview-result", dataset: { testid: "preview-result" } }),
  );
  root.replaceChildren(
    head(connection.name, connection),
    actions,
    el("p", { id: "m-notice", class: "notice", role: "status", hidden: true }),
    el("h3", {}, "Last 24 hours"),
    el("div", { id: "m-chart", class: "chart", dataset: { testid: "stats-chart" } }, el("p", { class: "muted" }, "Loading…")),
    el("div", { id: "m-alerts" }),
    el("h3", {}, "Settings"),
    form,
    el("h3", {}, "Preview a body"),
    preview,
  );
  root.hidden = false;
  if (created) {
    notice(oneTimeSecrets("Connection created.", [
      ["Webhook secret", created.webhook_secret, "new-webhook-secret"],
      ["Content token", created.content_token, "new-content-token"],
    ]), { testid: "one-time-secret" });
  }
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    const { body, local } = readForm(form, "edit", connection);
    if (local.length) return showErrors(form, local);
    if (!Object.keys(body).length) {
      form.querySelector("#m-form-error").textContent = "Nothing changed.";
      return;
    }
    try {
      const saved = await api(`/v1/connections/${connection.id}`, { method: "PATCH", body });
      refreshList();
      await openManage(saved.id);
      notice(`Saved (version ${saved.version}).`, { testid: "saved" });
    } catch (error) {
      showErrors(form, error.fields, error.message);
    }
  });
  preview.addEventListener("submit", (e) => { e.preventDefault(); runPreview(); });
  loadChart(connection.id);
  loadAlerts(connection.id);
}

async function setRunning(running) {
  const c = panel.connection;
  try {
    await api(`/v1/connections/${c.id}/${running ? "resume" : "pause"}`, { method: "POST" });
    refreshList();
    await openManage(c.id);
    notice(running ? "Resumed: delivery to Braze goes on." : "Paused: webhooks are still accepted and stored, nothing is sent to Braze.");
  } catch (error) {
    notice(error.message, { error: true });
  }
}

async function rotate() {
  const c = panel.connection;
  if (!window.confirm("Rotate the webhook secret? The current one keeps working for 24 h.")) return;
  try {
    const rotated = await api(`/v1/connections/${c.id}/rotate-secret`, { method: "POST" });
    await openManage(c.id);
    notice(oneTimeSecrets("New webhook secret.", [["Webhook secret", rotated.webhook_secret, "new-webhook-secret"]]).concat(
      el("div", { class: "muted" }, `The previous secret is accepted until ${new Date(rotated.webhook_auth.previous_secret_expires_at).toLocaleString(undefined, { timeZoneName: "short" })}.`),
    ), { testid: "one-time-secret" });
  } catch (error) {
    notice(error.message, { error: true });
  }
}

async function runTest() {
  const c = panel.connection;
  notice("Calling Braze…", { testid: "test-result" });
  try {
    const report = await api(`/v1/connections/${c.id}/test`, { method: "POST" });
    notice([
      el("strong", {}, report.ok ? "Every check passed." : "Some checks failed."),
      el("ul", { class: "checks" }, report.checks.map((check) =>
        el("li", { class: check.ok ? "ok" : "bad", dataset: { testid: "check", ok: String(check.ok) } },
          `${check.ok ? "✓" : "✗"} ${check.name}: ${check.detail}`, check.hint ? el("div", { class: "muted" }, check.hint) : null),
      )),
    ], { error: !report.ok, testid: "test-result" });
    if (report.state !== c.state) refreshList();
  } catch (error) {
    notice(error.message, { error: true, testid: "test-result" });
  }
}

async function runPreview() {
  const c = panel.connection;
  const out = $("m-preview-result");
  try {
    const result = await api(`/v1/connections/${c.id}/preview`, { method: "POST", body: $("m-preview-body").value });
    const count = result.braze.attributes.length + result.braze.events.length + result.braze.purchases.length;
    out.replaceChildren(
      el("p", {}, el("span", { class: `badge ${result.status}` }, result.status), ` ${count} Braze object${count === 1 ? "" : "s"}`, result.reason ? ` — ${result.reason}` : ""),
      ...result.notes.map((n) => el("p", { class: "muted", dataset: { testid: "preview-note" } }, n)),
      el("pre", { class: "code" }, pretty(result.braze)),
    );
  } catch (error) {
    out.replaceChildren(el("p", { class: "error", dataset: { testid: "preview-error" } }, error.message));
  }
}

// --- the 24 h chart --------------------------------------------------------------------------

const FLOW = [
  ["received", "webhooks received", "#3a5bd9"],
  ["delivered", "objects delivered", "#1f8a4c"],
  ["failed", "failed", "#b54708"],
  ["dead", "dead", "#c0262d"],
];
const ANSWERS = [
  ["answers_2xx", "2xx", "#1f8a4c"],
  ["answers_4xx", "4xx", "#b54708"],
  ["answers_429", "429", "#a15c07"],
  ["answers_5xx", "5xx", "#c0262d"],
  ["answers_network", "network", "#667085"],
];
const W = 640;
const H = 120;
const PAD = 28;

function hourLabel(iso) {
  return new Date(iso).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

function legend(series, buckets) {
  return el("div", { class: "legend" }, series.map(([key, label, color]) => {
    const total = buckets.reduce((sum, b) => sum + b[key], 0);
    return el("span", { dataset: { testid: `total-${key}` } }, svg("svg", { width: 10, height: 10, class: "swatch" }, svg("rect", { width: 10, height: 10, fill: color })), `${label} ${total}`);
  }));
}

function axis(buckets, max) {
  const step = (W - PAD) / buckets.length;
  const ticks = [];
  buckets.forEach((b, i) => {
    if (i % 6 === 0) ticks.push(svg("text", { x: PAD + i * step, y: H + 14, class: "tick" }, hourLabel(b.hour)));
  });
  return [
    svg("line", { x1: PAD, y1: H, x2: W, y2: H, class: "axis" }),
    svg("text", { x: 0, y: 10, class: "tick" }, String(max)),
    svg("text", { x: 0, y: H, class: "tick" }, "0"),
    ...ticks,
  ];
}

function flowChart(buckets) {
  const max = Math.max(1, ...buckets.flatMap((b) => FLOW.map(([k]) => b[k])));
  const step = (W - PAD) / buckets.length;
  const lines = FLOW.map(([key, label, color]) =>
    svg("polyline", {
      points: buckets.map((b, i) => `${(PAD + (i + 0.5) * step).toFixed(1)},${(H - (b[key] / max) * (H - 4)).toFixed(1)}`).join(" "),
      fill: "none", stroke: color, "stroke-width": 2, "data-series": key,
    }, svg("title", {}, label)),
  );
  return svg("svg", { viewBox: `0 0 ${W} ${H + 18}`, class: "chart-svg", role: "img", "aria-label": "Webhooks and objects per hour" }, ...axis(buckets, max), ...lines);
}

function answersChart(buckets) {
  const max = Math.max(1, ...buckets.map((b) => ANSWERS.reduce((sum, [k]) => sum + b[k], 0)));
  const step = (W - PAD) / buckets.length;
  const bars = [];
  buckets.forEach((b, i) => {
    let top = H;
    for (const [key, label, color] of ANSWERS) {
      if (!b[key]) continue;
      const height = (b[key] / max) * (H - 4);
      top -= height;
      bars.push(svg("rect", {
        x: (PAD + i * step + 1).toFixed(1), y: top.toFixed(1), width: Math.max(step - 2, 1).toFixed(1), height: height.toFixed(1),
        fill: color, "data-series": key, "data-hour": b.hour,
      }, svg("title", {}, `${hourLabel(b.hour)}: ${b[key]} × ${label}`)));
    }
  });
  return svg("svg", { viewBox: `0 0 ${W} ${H + 18}`, class: "chart-svg", role: "img", "aria-label": "Braze answers per hour by class" }, ...axis(buckets, max), ...bars);
}

export async function loadChart(id) {
  const box = $("m-chart");
  try {
    const stats = await api(`/v1/connections/${id}/stats?hours=24`);
    if (!box.isConnected || panel.connection?.id !== id) return;
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    box.replaceChildren(
      legend(FLOW, stats.buckets),
      flowChart(stats.buckets),
      el("div", { class: "muted small" }, "Braze answers"),
      legend(ANSWERS, stats.buckets),
      answersChart(stats.buckets),
      el("div", { class: "muted small" }, `Hourly, times in ${zone}.`),
    );
    box.dataset.loaded = "true";
  } catch (error) {
    box.replaceChildren(el("p", { class: "error" }, `Chart unavailable: ${error.message}`));
  }
}

// GET /v1/connections/{id}/alerts (docs/ops.md, "Alerts"): the webhook, what it last told,
// and each alert with its delivery state. A server without the route shows nothing.
const localTime = (iso) =>
  iso ? new Date(iso).toLocaleString(undefined, { timeZoneName: "short" }) : "";

function alertRow(a) {
  const delivery =
    a.status === "pending" && a.next_attempt_at
      ? `pending, next try ${localTime(a.next_attempt_at)}`
      : a.status;
  const answer = a.last_status_code ? `answer ${a.last_status_code}` : a.last_error || "";
  return el(
    "li",
    { class: `alert alert-${a.status}`, dataset: { testid: "alert", kind: a.kind, status: a.status } },
    el("span", { class: "alert-kind" }, a.kind),
    el("span", { class: "alert-when" }, localTime(a.created_at)),
    el("span", { class: "alert-status" }, `${delivery} · ${a.attempts} attempt(s)${answer ? ` · ${answer}` : ""}`),
    el("div", { class: "alert-text" }, a.text || ""),
  );
}

async function loadAlerts(id) {
  const box = $("m-alerts");
  let body;
  try {
    body = await api(`/v1/connections/${id}/alerts`);
  } catch {
    return;
  }
  if (!box.isConnected) return;
  const hook = body.webhook;
  const items = body.items || [];
  box.replaceChildren(
    el("h3", {}, "Alerts"),
    el(
      "p",
      { class: "muted", dataset: { testid: "alert-webhook" } },
      hook
        ? `Alert webhook ${hook.url}: last told "${hook.condition}" (since ${localTime(hook.condition_since)}).`
        : "No alert webhook: set one with PUT /v1/connections/{id}/alert-webhook (docs/ops.md).",
    ),
    items.length
      ? el("ul", { class: "alerts", dataset: { testid: "alerts" } }, ...items.map(alertRow))
      : el("p", { class: "muted", dataset: { testid: "alerts" } }, "No alerts."),
  );
}

// --- wiring --------------------------------------------------------------------------------

// A "Manage" button on each connection app.js lists (its list is re-rendered often).
function decorate(list) {
  for (const item of list.querySelectorAll("li.connection")) {
    if (item.querySelector(".manage-button")) continue;
    const id = item.dataset.connectionId;
    item.querySelector(".name")?.append(
      el("button", {
        type: "button", class: "link manage-button", dataset: { testid: "manage-connection" }, "aria-label": "Manage connection",
        onclick: (e) => { e.stopPropagation(); openManage(id); },
      }, "Manage"),
    );
  }
}

function start() {
  const list = $("connection-list");
  if (list) {
    new MutationObserver(() => decorate(list)).observe(list, { childList: true });
    decorate(list);
  }
  $("new-connection")?.addEventListener("click", openCreate);
  document.addEventListener("keydown", (e) => { if (e.key === "Escape" && !drawer().hidden) closeDrawer(); });
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
