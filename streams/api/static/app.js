// kronwheel web page: plain JavaScript, no build step, nothing fetched from elsewhere.
// Everything it shows comes from the REST API and the /v1/stream WebSocket of the
// caller's tenant; cron math stays on the server (POST /v1/schedules:preview).
"use strict";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "kronwheel.token";
const PAGE = 50;
const CHART_WINDOW_MS = 5 * 60 * 1000;
const BUCKET_MS = 5000;
const BUCKETS = 24;
const FEED_MAX = 100;

const state = {
  token: localStorage.getItem(TOKEN_KEY),
  tasks: new Map(),        // id -> task, as shown in the list
  cursor: null,
  selected: null,          // id of the task in the detail panel
  editing: null,           // id of the task in the form, null for a new one
  upcoming: [],            // next fire times of the selected task (RFC 3339)
  executions: new Map(),   // fire_id -> execution, for the charts
  ws: null,
  reconnectMs: 1000,
};

// --- REST -------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, error) {
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code;
    this.field = error.field;
  }
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => null);
  if (response.status === 401) {
    signOut("That token was refused.");
  }
  if (!response.ok) throw new ApiError(response.status, (data && data.error) || {});
  return data;
}

const errorText = (e) => (e.field ? `${e.field}: ${e.message}` : e.message);

// --- formatting ---------------------------------------------------------------------

function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toLocaleString(undefined, {
    year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) node.append(child);
  return node;
}

const badge = (text) => el("span", { class: `status ${text}` }, text);

function describeSchedule(schedule) {
  if (!schedule) return "";
  if (schedule.cron) return `cron ${schedule.cron} (${schedule.timezone || "UTC"})`;
  if (schedule.at) return `once at ${fmtTime(schedule.at)}`;
  return `every ${schedule.every_ms / 1000} s`;
}

function describeTarget(target) {
  if (target && target.http) return `${target.http.method} ${target.http.url}`;
  if (target && target.kafka) return `kafka ${target.kafka.topic}`;
  return "";
}

// --- sign in ---------------------------------------------------------------------------

async function start() {
  if (!state.token) return showLogin("");
  try {
    const me = await api("GET", "/v1/whoami");
    $("tenant").textContent = `${me.tenant} · ${me.name}`;
  } catch (e) {
    return showLogin(errorText(e));
  }
  $("login").hidden = true;
  $("app").hidden = false;
  $("new-task").hidden = false;
  $("sign-out").hidden = false;
  await loadTasks(true);
  connect();
}

function showLogin(message) {
  $("login").hidden = false;
  $("app").hidden = true;
  $("new-task").hidden = true;
  $("sign-out").hidden = true;
  $("login-error").textContent = message;
}

function signOut(message) {
  localStorage.removeItem(TOKEN_KEY);
  state.token = null;
  if (state.ws) state.ws.close();
  showLogin(message || "");
}

// --- task list ----------------------------------------------------------------------------

function filters() {
  return { status: $("status-filter").value, text: $("search").value.trim() };
}

function matches(task) {
  const { status, text } = filters();
  if (status && task.status !== status) return false;
  if (!text) return true;
  const needle = text.toLowerCase();
  return task.name.toLowerCase().includes(needle) || task.id.toLowerCase().includes(needle);
}

async function loadTasks(reset) {
  const { status, text } = filters();
  const query = new URLSearchParams({ limit: PAGE });
  if (status) query.set("status", status);
  if (text) query.set("name", text);
  if (!reset && state.cursor) query.set("cursor", state.cursor);
  const page = await api("GET", `/v1/tasks?${query}`);
  if (reset) {
    state.tasks.clear();
    $("tasks").tBodies[0].replaceChildren();
  }
  for (const task of page.tasks) upsertRow(task, false);
  state.cursor = page.next_cursor;
  $("more").hidden = !state.cursor;
  $("tasks-empty").hidden = state.tasks.size > 0;
}

function rowFor(task) {
  const last = task.last_outcome ? badge(task.last_outcome.outcome) : el("span", { class: "muted" }, "—");
  const row = el(
    "tr", { "data-id": task.id },
    el("td", {}, task.name || "(unnamed)", el("span", { class: "sub" }, task.id)),
    el("td", {}, badge(task.status)),
    el("td", {}, fmtTime(task.next_fire_at)),
    el("td", {}, last),
  );
  row.addEventListener("click", () => selectTask(task.id).catch((e) => feed(errorText(e), "failed")));
  if (task.id === state.selected) row.classList.add("selected");
  return row;
}

function upsertRow(task, atTop) {
  const body = $("tasks").tBodies[0];
  const existing = body.querySelector(`tr[data-id="${CSS.escape(task.id)}"]`);
  if (!matches(task)) {
    if (existing) existing.remove();
    state.tasks.delete(task.id);
    return;
  }
  state.tasks.set(task.id, task);
  const row = rowFor(task);
  if (existing) existing.replaceWith(row);
  else if (atTop) body.prepend(row);
  else body.append(row);
  $("tasks-empty").hidden = true;
}

// --- detail -----------------------------------------------------------------------------------

async function selectTask(id, accepted) {
  state.selected = id;
  for (const row of $("tasks").tBodies[0].rows) row.classList.toggle("selected", row.dataset.id === id);
  const path = `/v1/tasks/${encodeURIComponent(id)}`;
  let task, runs, next;
  try {
    [task, runs, next] = await Promise.all([
      api("GET", `${path}?audit=true`),
      api("GET", `${path}/executions?limit=50`),
      api("GET", `${path}/upcoming?n=5`),
    ]);
  } catch (e) {
    if (state.selected !== id) return;
    // Just accepted and not in the read model yet: show what the API accepted.
    if (!accepted || e.status !== 404) throw e;
    $("detail").hidden = false;
    showTask(accepted);
    $("action-note").textContent = "accepted; the scheduler has not confirmed it yet";
    return;
  }
  if (state.selected !== id) return;
  $("detail").hidden = false;
  $("action-note").textContent = "";
  showTask(task);
  renderAudit(task.audit || []);
  $("executions").tBodies[0].replaceChildren(...runs.executions.map(executionRow));
  runs.executions.forEach(recordExecution);
  state.upcoming = next.fire_times;
  renderUpcoming();
  drawCharts();
}

function showTask(task) {
  $("d-name").textContent = task.name || "(unnamed)";
  $("d-id").textContent = task.id;
  const status = $("d-status");
  status.textContent = task.status;
  status.className = `status ${task.status}`;
  $("d-schedule").textContent = describeSchedule(task.schedule);
  $("d-target").textContent = describeTarget(task.target);
  $("d-next").textContent = fmtTime(task.next_fire_at);
  $("d-count").textContent = `${task.fire_count} time(s)`;
  const live = task.status === "scheduled" || task.status === "paused";
  $("a-pause").disabled = task.status !== "scheduled";
  $("a-resume").disabled = task.status !== "paused";
  $("a-trigger").disabled = !live;
  $("a-edit").disabled = !live;
  $("a-cancel").disabled = !live;
  if (!live) state.upcoming = [];
  renderUpcoming();
}

function renderUpcoming() {
  // Fire times pass while the page is open: show only those still ahead.
  const now = Date.now();
  state.upcoming = (state.upcoming || []).filter((t) => Date.parse(t) > now);
  $("d-upcoming").replaceChildren(...state.upcoming.map((t) => el("li", {}, fmtTime(t))));
}

function executionRow(x) {
  return el(
    "tr", { "data-fire": x.fire_id },
    el("td", {}, fmtTime(x.scheduled_at)),
    el("td", {}, String(x.attempt)),
    el("td", {}, badge(x.outcome)),
    el("td", {}, String(x.lateness_ms)),
    el("td", {}, String(x.duration_ms)),
    el("td", {}, x.http_status == null ? (x.error || "—") : String(x.http_status)),
  );
}

function renderAudit(entries) {
  $("audit").replaceChildren(...entries.map((entry) => el(
    "li", {},
    `${fmtTime(entry.issued_at)} · ${entry.kind} by ${entry.issuer}`,
    ...entry.changes.slice(0, 12).map((c) => el(
      "span", { class: "change" }, `${c.field}: ${JSON.stringify(c.from)} → ${JSON.stringify(c.to)}`,
    )),
  )));
}

async function refreshAudit(id) {
  const trail = await api("GET", `/v1/tasks/${encodeURIComponent(id)}/audit`);
  if (state.selected === id) renderAudit(trail.audit);
}

async function act(action) {
  const id = state.selected;
  const path = `/v1/tasks/${encodeURIComponent(id)}`;
  const note = $("action-note");
  note.textContent = `${action}…`;
  try {
    const task = action === "cancel"
      ? await api("DELETE", `${path}?wait_ms=3000`)
      : await api("POST", `${path}/${action}?wait_ms=3000`);
    showTask(task);
    upsertRow(task, false);
    note.textContent = `${action}: accepted`;
  } catch (e) {
    note.textContent = `${action} failed: ${errorText(e)}`;
  }
}

// --- create / edit form --------------------------------------------------------------------------

function scheduleKind() {
  return document.querySelector('input[name="kind"]:checked').value;
}

function formSchedule() {
  const schedule = formScheduleKind();
  const jitterMs = Math.round(Number($("f-jitter").value || 0) * 1000);
  if (jitterMs) schedule.jitter_ms = jitterMs;  // validated by the API (below the period)
  return schedule;
}

function formScheduleKind() {
  switch (scheduleKind()) {
    case "cron": return { cron: $("f-cron").value.trim(), timezone: $("f-timezone").value.trim() || "UTC" };
    case "at": {
      const value = $("f-at").value;
      return { at: value ? new Date(value).toISOString() : "" };
    }
    default: return { every_ms: Math.round(Number($("f-every").value) * 1000) };
  }
}

function showKind() {
  const kind = scheduleKind();
  for (const part of document.querySelectorAll("[data-kind]")) part.hidden = part.dataset.kind !== kind;
  schedulePreview();
}

let previewTimer = null;
let previewSeq = 0;
function schedulePreview() {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(preview, 200);
}

async function preview() {
  const seq = ++previewSeq;
  try {
    const answer = await api("POST", "/v1/schedules:preview", { schedule: formSchedule(), n: 5 });
    if (seq !== previewSeq) return;
    $("preview-error").textContent = "";
    $("cron-preview").replaceChildren(...answer.fire_times.map((t) => el(
      "li", { title: t.at }, `${t.local.replace("T", " ")} (${answer.timezone})`,
    )));
  } catch (e) {
    if (seq !== previewSeq) return;
    $("cron-preview").replaceChildren();
    $("preview-error").textContent = errorText(e);
  }
}

// The per-field inputs and the expression edit the same thing: each follows the other.
// An empty "second" means a 5-field expression.
function cronToFields() {
  const parts = $("f-cron").value.trim().split(/\s+/);
  const six = parts.length === 6 ? parts : ["", ...parts];
  for (const input of document.querySelectorAll("#cron-fields input")) {
    input.value = six[Number(input.dataset.field)] || "";
  }
}

function fieldsToCron() {
  const values = [...document.querySelectorAll("#cron-fields input")].map((i) => i.value.trim() || "*");
  const second = document.querySelector('#cron-fields input[data-field="0"]').value.trim();
  $("f-cron").value = (second ? values : values.slice(1)).join(" ");
  $("f-preset").value = "";
  schedulePreview();
}

function openForm(task) {
  state.editing = task ? task.id : null;
  $("form-title").textContent = task ? `Edit ${task.name || task.id}` : "New task";
  $("f-submit").textContent = task ? "Save" : "Create";
  $("form-error").textContent = "";
  if (task) {
    $("f-name").value = task.name;
    const s = task.schedule;
    const kind = s.cron ? "cron" : s.at ? "at" : "every";
    document.querySelector(`input[name="kind"][value="${kind}"]`).checked = true;
    if (s.cron) { $("f-cron").value = s.cron; $("f-timezone").value = s.timezone || "UTC"; }
    if (s.every_ms) $("f-every").value = s.every_ms / 1000;
    $("f-jitter").value = (s.jitter_ms || 0) / 1000;
    if (task.target.http) {
      $("f-url").value = task.target.http.url;
      $("f-method").value = task.target.http.method;
      $("f-body").value = task.target.http.body || "";
    }
    $("f-attempts").value = task.retry ? task.retry.max_attempts : 1;
  }
  $("task-form").hidden = false;
  cronToFields();
  showKind();
}

async function submitForm(event) {
  event.preventDefault();
  const http = { url: $("f-url").value.trim(), method: $("f-method").value };
  if ($("f-body").value) http.body = $("f-body").value;
  const body = {
    name: $("f-name").value.trim(),
    schedule: formSchedule(),
    target: { http },
    retry: { max_attempts: Number($("f-attempts").value) || 1 },
  };
  try {
    const task = state.editing
      ? await api("PATCH", `/v1/tasks/${encodeURIComponent(state.editing)}?wait=true`, body)
      : await api("POST", "/v1/tasks?wait=true", body);
    $("task-form").hidden = true;
    upsertRow(task, true);
    await selectTask(task.id, task);
  } catch (e) {
    $("form-error").textContent = errorText(e);
  }
}

// --- live feed -----------------------------------------------------------------------------------

function connect() {
  if (!state.token) return;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/v1/stream`, ["kronwheel", `bearer.${state.token}`]);
  state.ws = ws;
  ws.onopen = () => {
    state.reconnectMs = 1000;
    $("live").className = "live on";
    $("live").textContent = "live";
  };
  ws.onclose = () => {
    $("live").className = "live off";
    $("live").textContent = "offline";
    if (state.token && state.ws === ws) {
      setTimeout(connect, state.reconnectMs);
      state.reconnectMs = Math.min(30000, state.reconnectMs * 2);
    }
  };
  ws.onmessage = (message) => onEvent(JSON.parse(message.data));
}

function feed(text, cls) {
  const item = el("li", { class: cls || "" }, el("time", {}, new Date().toLocaleTimeString()), text);
  const list = $("feed");
  list.prepend(item);
  while (list.children.length > FEED_MAX) list.lastChild.remove();
}

function onEvent(event) {
  switch (event.type) {
    case "task": {
      const task = event.task;
      const known = state.tasks.has(task.id);
      upsertRow(task, !known);
      if (state.selected === task.id) showTask(task);
      break;
    }
    case "execution": {
      const x = event.execution;
      recordExecution(x);
      const name = (state.tasks.get(x.task_id) || {}).name || x.task_id;
      feed(`${name} fired: ${x.outcome}, ${x.lateness_ms} ms late`, x.outcome);
      if (state.selected === x.task_id) {
        const body = $("executions").tBodies[0];
        if (!body.querySelector(`tr[data-fire="${CSS.escape(x.fire_id)}"]`)) body.prepend(executionRow(x));
      }
      requestDraw();
      break;
    }
    case "command": {
      const c = event.command;
      const name = (state.tasks.get(c.task_id) || {}).name || c.task_id;
      feed(`${c.kind} ${name} by ${c.issuer}`);
      if (state.selected === c.task_id) refreshAudit(c.task_id).catch(() => {});
      break;
    }
    case "lagged":
      loadTasks(true).catch(() => {});
      break;
    default:
      break;
  }
}

// --- charts (canvas, no library) ------------------------------------------------------------------

function recordExecution(x) {
  state.executions.set(x.fire_id, {
    at: Date.parse(x.finished_at), lateness: x.lateness_ms, ok: x.outcome === "succeeded",
  });
}

let drawPending = false;
function requestDraw() {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => { drawPending = false; drawCharts(); });
}

function prepare(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = Number(canvas.getAttribute("height"));
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  canvas.style.height = `${height}px`;
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  ctx.font = "11px system-ui, sans-serif";
  return { ctx, width, height };
}

function percentile(sorted, p) {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

function drawLateness(now, recent) {
  const { ctx, width, height } = prepare($("lateness-chart"));
  const pad = { l: 44, r: 8, t: 8, b: 18 };
  const sorted = recent.map((x) => x.lateness).sort((a, b) => a - b);
  const p50 = percentile(sorted, 0.5);
  const p99 = percentile(sorted, 0.99);
  const top = Math.max(10, p99 * 1.3, sorted.length ? sorted[sorted.length - 1] : 0);
  const x = (t) => pad.l + ((t - (now - CHART_WINDOW_MS)) / CHART_WINDOW_MS) * (width - pad.l - pad.r);
  const y = (v) => height - pad.b - (Math.min(v, top) / top) * (height - pad.t - pad.b);
  axes(ctx, width, height, pad, top, "ms");
  ctx.fillStyle = "#6b7488";
  ctx.fillText("−5 min", pad.l, height - 4);
  ctx.fillText("now", width - pad.r - 20, height - 4);
  // p50 labelled on the left, p99 on the right, so close values stay readable.
  for (const [label, value, color, at] of [
    ["p50", p50, "#2f5bea", pad.l + 4], ["p99", p99, "#c98a12", width - pad.r - 64],
  ]) {
    if (!sorted.length) break;
    ctx.strokeStyle = color;
    ctx.setLineDash([4, 3]);
    ctx.beginPath();
    ctx.moveTo(pad.l, y(value));
    ctx.lineTo(width - pad.r, y(value));
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = color;
    ctx.fillText(`${label} ${value} ms`, at, y(value) - 3);
  }
  for (const point of recent) {
    ctx.fillStyle = point.ok ? "#1f9d55" : "#d64545";
    ctx.beginPath();
    ctx.arc(x(point.at), y(point.lateness), 2.5, 0, Math.PI * 2);
    ctx.fill();
  }
  $("lateness-stats").textContent = sorted.length
    ? `p50 ${p50} ms · p99 ${p99} ms · n ${sorted.length}` : "no executions yet";
}

function drawThroughput(now, recent) {
  const { ctx, width, height } = prepare($("throughput-chart"));
  const pad = { l: 44, r: 8, t: 8, b: 18 };
  const end = Math.floor(now / BUCKET_MS) * BUCKET_MS + BUCKET_MS;
  const buckets = Array.from({ length: BUCKETS }, () => ({ ok: 0, failed: 0 }));
  for (const point of recent) {
    const index = BUCKETS - 1 - Math.floor((end - 1 - point.at) / BUCKET_MS);
    if (index >= 0 && index < BUCKETS) buckets[index][point.ok ? "ok" : "failed"] += 1;
  }
  const top = Math.max(5, ...buckets.map((b) => b.ok + b.failed));
  axes(ctx, width, height, pad, top, "");
  const slot = (width - pad.l - pad.r) / BUCKETS;
  const scale = (height - pad.t - pad.b) / top;
  buckets.forEach((b, i) => {
    const left = pad.l + i * slot + 1;
    const okHeight = b.ok * scale;
    const failedHeight = b.failed * scale;
    ctx.fillStyle = "#1f9d55";
    ctx.fillRect(left, height - pad.b - okHeight, slot - 2, okHeight);
    ctx.fillStyle = "#d64545";
    ctx.fillRect(left, height - pad.b - okHeight - failedHeight, slot - 2, failedHeight);
  });
  ctx.fillStyle = "#6b7488";
  ctx.fillText("−2 min", pad.l, height - 4);
  ctx.fillText("now", width - pad.r - 20, height - 4);
  const last = buckets[BUCKETS - 2];
  const failed = buckets.reduce((sum, b) => sum + b.failed, 0);
  $("throughput-stats").textContent =
    `${((last.ok + last.failed) / (BUCKET_MS / 1000)).toFixed(1)}/s · ${failed} failed`;
}

function axes(ctx, width, height, pad, top, unit) {
  ctx.clearRect(0, 0, width, height);
  ctx.strokeStyle = "#e3e7ef";
  ctx.fillStyle = "#6b7488";
  for (let i = 0; i <= 4; i += 1) {
    const value = (top * i) / 4;
    const y = height - pad.b - (i / 4) * (height - pad.t - pad.b);
    ctx.beginPath();
    ctx.moveTo(pad.l, y);
    ctx.lineTo(width - pad.r, y);
    ctx.stroke();
    ctx.fillText(`${Math.round(value)}${unit}`, 2, y + 4);
  }
}

function drawCharts() {
  if ($("app").hidden) return;
  const now = Date.now();
  for (const [fire, point] of state.executions) {
    if (point.at < now - CHART_WINDOW_MS) state.executions.delete(fire);
  }
  const recent = [...state.executions.values()];
  drawLateness(now, recent);
  drawThroughput(now, recent);
}

// --- wiring ----------------------------------------------------------------------------------------

function debounce(fn, ms) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

function wire() {
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.token = $("token-input").value.trim();
    localStorage.setItem(TOKEN_KEY, state.token);
    start();
  });
  $("sign-out").addEventListener("click", () => signOut(""));
  $("new-task").addEventListener("click", () => openForm(null));
  $("f-cancel").addEventListener("click", () => { $("task-form").hidden = true; });
  $("task-form").addEventListener("submit", submitForm);
  $("search").addEventListener("input", debounce(() => loadTasks(true), 250));
  $("status-filter").addEventListener("change", () => loadTasks(true));
  $("more").addEventListener("click", () => loadTasks(false));
  $("f-preset").addEventListener("change", () => {
    if ($("f-preset").value) $("f-cron").value = $("f-preset").value;
    cronToFields();
    schedulePreview();
  });
  $("f-cron").addEventListener("input", cronToFields);
  for (const input of document.querySelectorAll("#cron-fields input")) {
    input.addEventListener("input", fieldsToCron);
  }
  for (const id of ["f-cron", "f-timezone", "f-at", "f-every"]) $(id).addEventListener("input", schedulePreview);
  for (const radio of document.querySelectorAll('input[name="kind"]')) radio.addEventListener("change", showKind);
  for (const action of ["pause", "resume", "trigger", "cancel"]) {
    $(`a-${action}`).addEventListener("click", () => act(action));
  }
  $("a-edit").addEventListener("click", async () => {
    openForm(await api("GET", `/v1/tasks/${encodeURIComponent(state.selected)}`));
  });
  const zones = Intl.supportedValuesOf ? Intl.supportedValuesOf("timeZone") : ["UTC"];
  $("zones").replaceChildren(...["UTC", ...zones].map((z) => el("option", { value: z })));
  setInterval(drawCharts, 1000);
  window.addEventListener("resize", requestDraw);
}

wire();
start();
