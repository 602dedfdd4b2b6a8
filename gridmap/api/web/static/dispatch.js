// gridmap dispatcher's desk (GET /dispatch): the queue of incidents by stage, a case with its
// timeline and the steps the API allows the caller, intake, and a map of the cases coloured
// by stage. It listens to /api/incidents/live (server-sent events) and reads its queue and
// the incident tiles again whenever cases near its divisions change. Everything is served by
// gridmap itself; changes go with the page session's cookie and its X-CSRF-Token header.
"use strict";

const $ = (id) => document.getElementById(id);

// the labels of gridmap/domain/incidents.py (STAGE_LABELS, ACTION_LABELS), Chinese first
const STAGE_LABELS = {
  collected: "信息收集 Collected",
  registered: "案件建立 Registered",
  dispatched: "任务派遣 Dispatched",
  handling: "任务处理 Handling",
  reported: "处理反馈 Fed back",
  verified: "核查结案 Verified",
  closed: "已结案 Closed",
  evaluated: "综合评价 Evaluated",
  returned: "已退回 Returned",
  cancelled: "已取消 Cancelled",
};
const ACTION_LABELS = {
  register: "立案 Register",
  cancel: "取消 Cancel",
  dispatch: "派遣 Dispatch",
  accept: "接单 Accept",
  return: "退回 Return",
  feed_back: "反馈 Feed back",
  reject: "核查不通过 Reject",
  verify: "核查通过 Verify",
  close: "结案 Close",
  evaluate: "评价 Evaluate",
};
// timeline entries that are not steps a person takes
const EVENT_LABELS = { collect: "接报 Reported", route: "改派网格 Routed to a grid" };
const OVERDUE_LABELS = {
  dispatch: "派遣超期 dispatch overdue",
  handling: "处置超期 handling overdue",
  verification: "核查超期 verification overdue",
};
const NEEDS_NOTE = new Set(["return", "reject", "cancel"]);
const REPORTERS = new Set(["admin", "dispatcher", "grid_worker"]);  // who may file a report

// stage → colour on the map and in the queue (always with its label: never colour alone)
const GROUPS = [
  { colour: "#1f78b4", label: "新报 New", stages: ["collected"] },
  { colour: "#e66101", label: "待派遣 Awaiting dispatch", stages: ["registered", "returned"] },
  { colour: "#7b3294", label: "处理中 In hand", stages: ["dispatched", "handling"] },
  { colour: "#1a9641", label: "待核查结案 To check and close",
    stages: ["reported", "verified", "closed"] },
  { colour: "#8c8c8c", label: "已结束 Finished", stages: ["evaluated", "cancelled"] },
];
const STAGE_COLOURS = Object.fromEntries(
  GROUPS.flatMap((g) => g.stages.map((s) => [s, g.colour])));
// the queue's tabs: stages, or every case past a deadline of its stage
const QUEUES = [
  { key: "new", label: "新报 New", query: "stage=collected" },
  { key: "dispatch", label: "待派遣 Awaiting dispatch", query: "stage=registered&stage=returned" },
  { key: "hand", label: "处理中 In hand", query: "stage=dispatched&stage=handling" },
  { key: "check", label: "待核查 To check",
    query: "stage=reported&stage=verified&stage=closed" },
  { key: "overdue", label: "超期 Overdue", query: "overdue=true" },
];

// ---- requests -------------------------------------------------------------------------

class RequestError extends Error {
  constructor(url, status, detail) {
    super(detail || `${url}: HTTP ${status}`);
    this.url = url;
    this.status = status;
  }
}

// the body and ETag of an answer; a RequestError with the server's words if it failed
async function request(url, init = {}) {
  let res;
  let text;
  try {
    res = await fetch(url, { credentials: "same-origin", ...init });
    text = await res.text();
  } catch (err) {
    throw new RequestError(url, 0, `网络错误 Network error: ${err.message}`);
  }
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;  // not JSON (a proxy's error page): the status says enough
  }
  if (!res.ok) throw new RequestError(url, res.status, detailText(body) || `HTTP ${res.status}`);
  return { body, etag: res.headers.get("ETag") };
}

const getJSON = async (url) => (await request(url)).body;

function cookie(name) {
  const hit = document.cookie.split("; ").find((c) => c.startsWith(`${name}=`));
  return hit ? decodeURIComponent(hit.slice(name.length + 1)) : "";
}

function post(url, body, headers = {}) {
  return request(url, {
    method: "POST",
    headers: { "Content-Type": "application/json",
               "X-CSRF-Token": me.csrf_token || cookie("gridmap_csrf"), ...headers },
    body: JSON.stringify(body),
  });
}

// a form with photos (multipart/form-data): the fields, then each file as "photo"
function postForm(url, fields, files, headers = {}) {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) {
    if (v !== null && v !== undefined && v !== "") form.append(k, v);
  }
  for (const file of files) form.append("photo", file, file.name || "photo.jpg");
  return request(url, { method: "POST", body: form, headers: {
    "X-CSRF-Token": me.csrf_token || cookie("gridmap_csrf"), ...headers } });
}

// ---- small DOM helpers ----------------------------------------------------------------

function loginLink() {
  const a = el("a", "button", "登录 Sign in");
  a.href = `/login?next=${encodeURIComponent("/dispatch")}`;
  return a;
}

function showStatus(box, text) {
  box.classList.remove("error");
  box.textContent = text;
}

// what failed, in the server's words, and a way to try again (never a stuck "loading…")
function showFailure(box, what, err, retry) {
  box.classList.add("error");
  box.replaceChildren(err ? `${what}: ${err.message}` : what);
  if (err && err.status === 401) box.append(" ", loginLink());
  if (retry) box.append(" ", button("重试 Retry", retry, "retry"));
}

function problem(what, err, retry) {
  $("problem").hidden = false;
  $("problem-text").textContent = err ? `${what}: ${err.message}` : what;
  $("problem-retry").hidden = !retry;
  $("problem-retry").onclick = retry ? () => { $("problem").hidden = true; retry(); } : null;
}

const when = (iso) => (iso ? new Date(iso).toLocaleString("zh-CN", { hour12: false }) : "—");

function stageBadge(stage) {
  const badge = el("span", "stage");
  const chip = el("i");
  chip.style.background = STAGE_COLOURS[stage] || "#444";
  badge.append(chip, STAGE_LABELS[stage] || stage);
  return badge;
}

const overdueMark = (overdue) => el("span", "overdue-mark",
  `⚠ 超期 Overdue${overdue.length ? ` (${overdue.map((k) => OVERDUE_LABELS[k] || k).join(", ")})` : ""}`);

// ---- who is calling -------------------------------------------------------------------

let me = { name: null, role: "public", reads: [], csrf_token: null };
const may = (resource) => me.reads.includes(resource);

function showAccount() {
  const signedIn = Boolean(me.name);
  $("who").textContent = signedIn ? `${me.name} (${me.role})` : "";
  $("who").hidden = !signedIn;
  $("logout").hidden = !signedIn;
  $("login").hidden = signedIn;
}

async function signOut() {
  $("logout").disabled = true;
  try {
    await request("/auth/logout", { method: "POST",
      headers: { "X-CSRF-Token": me.csrf_token || cookie("gridmap_csrf") } });
  } catch (err) {
    if (err.status !== 401) {  // 401: the session had already ended
      problem("退出失败 Sign-out failed", err, signOut);
      $("logout").disabled = false;
      return;
    }
  }
  location.assign("/login?next=/dispatch");
}
$("logout").addEventListener("click", signOut);

// ---- views ----------------------------------------------------------------------------

const VIEWS = ["queue", "case", "report"];

function showView(name) {
  for (const view of VIEWS) {
    $(`${view}-view`).hidden = view !== name;
    $(`tab-${view}`).setAttribute("aria-selected", String(view === name));
  }
  // the view from its top: the panel's own scroll, or the page's on a phone
  const panel = $("panel");
  panel.scrollTop = 0;
  if (panel.getBoundingClientRect().top < 0) panel.scrollIntoView();
}
for (const view of VIEWS) $(`tab-${view}`).addEventListener("click", () => showView(view));

// ---- the map --------------------------------------------------------------------------

const map = baseMap();
map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
if (window.matchMedia("(max-width: 700px)").matches) $("legend-box").open = false;

for (const group of GROUPS) {
  const row = el("li");
  const chip = el("i");
  chip.style.background = group.colour;
  row.append(chip, group.label);
  $("legend-stages").append(row);
}

const tileURL = (layer, version) =>
  `${location.origin}/tiles/${layer}/{z}/{x}/{y}.mvt${version ? `?v=${version}` : ""}`;
let tileVersion = 0;
let layersAdded = false;

function addLayers() {
  const source = (layer) => ({ type: "vector", tiles: [tileURL(layer)], minzoom: 0, maxzoom: 22 });
  addBasemap(map);  // streets and buildings under the grids
  map.addSource("grids", source("grids"));
  map.addSource("communities", source("communities"));
  map.addSource("incidents", source("incidents"));
  map.addLayer({ id: "grids-fill", type: "fill", source: "grids", "source-layer": "grids",
                 paint: { "fill-color": "#b8c2cc", "fill-opacity": 0.35 } });
  map.addLayer({ id: "grids-line", type: "line", source: "grids", "source-layer": "grids",
                 paint: { "line-color": "#ffffff", "line-width": 1 } });
  map.addLayer({ id: "communities-line", type: "line", source: "communities",
                 "source-layer": "communities",
                 paint: { "line-color": "#1f3b57", "line-width": 2 } });
  // overdue: a thick black ring around the dot (a shape, not a colour)
  map.addLayer({ id: "incidents-overdue", type: "circle", source: "incidents",
                 "source-layer": "incidents", filter: ["in", ["get", "id"], ["literal", []]],
                 paint: { "circle-radius": 9, "circle-color": "rgba(0,0,0,0)",
                          "circle-stroke-color": "#111", "circle-stroke-width": 3.5 } });
  map.addLayer({ id: "incidents", type: "circle", source: "incidents",
                 "source-layer": "incidents",
                 paint: {
                   "circle-radius": 6,
                   "circle-color": ["match", ["get", "status"],
                     ...Object.entries(STAGE_COLOURS).flat(), "#444"],
                   "circle-stroke-color": "#fff", "circle-stroke-width": 1.5,
                 } });
  map.addLayer({ id: "incidents-selected", type: "circle", source: "incidents",
                 "source-layer": "incidents", filter: ["==", ["get", "id"], ""],
                 paint: { "circle-radius": 13, "circle-color": "rgba(0,0,0,0)",
                          "circle-stroke-color": "#ffbf00", "circle-stroke-width": 3 } });
  map.on("click", "incidents", (e) => openCase(e.features[0].properties.id));
  map.on("mouseenter", "incidents", () => (map.getCanvas().style.cursor = "pointer"));
  map.on("mouseleave", "incidents", () => (map.getCanvas().style.cursor = ""));
  layersAdded = true;
}

// new or changed cases: the incident tiles again (the server's tile cache has evicted them
// on the same change notice; a new URL keeps MapLibre and the browser from reusing theirs)
function refreshTiles() {
  const source = map.getSource("incidents");
  if (!source) return;
  tileVersion += 1;
  source.setTiles([tileURL("incidents", tileVersion)]);
}

function showOverdueOnMap() {
  if (!layersAdded) return;
  const ids = (Array.isArray(lists.overdue) ? lists.overdue : []).map((c) => c.id);
  map.setFilter("incidents-overdue", ["in", ["get", "id"], ["literal", ids]]);
}

function showSelectedOnMap() {
  if (layersAdded) map.setFilter("incidents-selected", ["==", ["get", "id"], current ? current.id : ""]);
}

function bounds(fc) {
  const b = new maplibregl.LngLatBounds();
  const walk = (c) => (typeof c[0] === "number" ? b.extend(c) : c.forEach(walk));
  fc.features.forEach((f) => f.geometry && walk(f.geometry.coordinates));
  return b;
}

async function fitToDivisions() {
  let view = bounds(await getJSON("/api/communities.geojson"));
  if (view.isEmpty()) view = bounds(await getJSON("/api/grids.geojson"));
  if (!view.isEmpty()) map.fitBounds(view, { padding: 20, animate: false, maxZoom: 16 });
}

// a tile that fails: say why (a 401 means the session ended meanwhile)
map.on("error", (e) => {
  const status = e.error && e.error.status;
  if (status === 401 || status === 403) {
    problem(status === 401 ? "登录已失效，请重新登录 Session ended, sign in again"
      : `无权查看 Not allowed: ${e.error.message}`, null, null);
    return;
  }
  console.error(e.error || e);
});

// ---- the queue ------------------------------------------------------------------------

let lists = {};  // queue key → cases (the last answer that came)
let activeQueue = "new";
let queueRound = 0;

async function loadQueues() {
  const round = ++queueRound;
  if (!Object.keys(lists).length) showStatus($("queue-status"), "加载中… Loading…");
  const answers = await Promise.allSettled(
    QUEUES.map((q) => getJSON(`/api/incidents?${q.query}&limit=200`)));
  if (round !== queueRound) return;  // a newer round is under way
  const failed = [];
  QUEUES.forEach((q, i) => {
    if (answers[i].status === "fulfilled") lists[q.key] = answers[i].value;
    else failed.push(answers[i].reason);
  });
  renderQueueTabs();
  renderQueue();
  showOverdueOnMap();
  if (failed.length) {
    showFailure($("queue-status"), "队列读取失败 The queue could not be read", failed[0],
                loadQueues);
  } else {
    showStatus($("queue-status"), `更新于 Updated ${new Date().toLocaleTimeString("zh-CN", { hour12: false })}`);
  }
}

function renderQueueTabs() {
  const tabs = QUEUES.map((q) => {
    const n = Array.isArray(lists[q.key]) ? lists[q.key].length : "?";
    const tab = button(`${q.label} (${n})`, () => {
      activeQueue = q.key;
      renderQueueTabs();
      renderQueue();
    }, `queue-tab queue-${q.key}`);
    tab.setAttribute("role", "tab");
    tab.dataset.queue = q.key;
    tab.setAttribute("aria-selected", String(q.key === activeQueue));
    return tab;
  });
  $("queues").replaceChildren(...tabs);
}

function renderQueue() {
  const list = $("queue-list");
  const cases = lists[activeQueue];
  list.replaceChildren();
  if (!Array.isArray(cases)) return;
  if (!cases.length) {
    list.append(el("li", "empty", "没有案件 No cases"));
    return;
  }
  for (const c of cases) list.append(queueItem(c));
}

function queueItem(c) {
  const item = el("li");
  const b = button("", () => openCase(c.id), "case-item");
  b.dataset.id = c.id;
  if (c.overdue.length) b.classList.add("overdue");
  if (current && current.id === c.id) b.setAttribute("aria-current", "true");
  const top = el("span", "case-line");
  top.append(el("span", "case-id", c.id), stageBadge(c.status));
  if (c.overdue.length) top.append(overdueMark(c.overdue));
  const where = c.grid_code ? `网格 Grid ${c.grid_code}`
    : `街道 Township ${c.township_code || "—"}（未入格 outside every grid）`;
  b.append(top, el("span", "case-cat", c.category), el("span", "case-grid", where));
  item.append(b);
  return item;
}

// ---- a case ---------------------------------------------------------------------------

let current = null;  // { id, etag, case }
let caseRound = 0;
let acting = false;

async function openCase(id) {
  showView("case");
  await loadCase(id);
  if (current && current.id === id) {
    map.easeTo({ center: [current.case.lon, current.case.lat], zoom: Math.max(map.getZoom(), 15) });
  }
}

async function loadCase(id, { quiet = false } = {}) {
  const round = ++caseRound;
  const status = $("case-status");
  $("case-empty").hidden = true;
  $("case").hidden = false;
  if (!current || current.id !== id) {
    current = null;
    $("case-title").textContent = id;
    for (const part of ["case-fields", "case-photos", "case-actions", "case-timeline"]) {
      $(part).replaceChildren();
    }
    $("case-steps").hidden = true;
    $("case-note").value = "";
    $("case-photo").value = "";
  }
  if (!quiet) showStatus(status, "加载中… Loading…");
  try {
    const { body, etag } = await request(`/api/incidents/${encodeURIComponent(id)}`);
    if (round !== caseRound) return;
    current = { id, etag, case: body };
    renderCase();
    if (!quiet) showStatus(status, "");
  } catch (err) {
    if (round !== caseRound) return;
    showFailure(status, `案件 ${id} 读取失败 The case could not be read`, err,
                () => loadCase(id));
  }
  showSelectedOnMap();
  for (const b of document.querySelectorAll(".case-item")) {
    if (b.dataset.id === id) b.setAttribute("aria-current", "true");
    else b.removeAttribute("aria-current");
  }
}

function renderCase() {
  const c = current.case;
  const title = $("case-title");
  title.replaceChildren(el("span", "case-id", c.id), " ", stageBadge(c.status));
  if (c.overdue.length) title.append(" ", overdueMark(c.overdue));
  const rows = [
    ["类别 Category", `${c.category}${c.urgent ? "（紧急 urgent）" : ""}`],
    ["网格 Grid", c.grid_code || "未入格 outside every grid"],
    ["社区 Community", c.community_code],
    ["街道 Township", c.township_code],
    ["处理人 Assignee", c.assignee],
    ["上报时间 Reported", when(c.reported_at)],
    ["派遣时限 Dispatch due", c.dispatch_due && when(c.dispatch_due)],
    ["处置时限 Handling due", c.handle_due && when(c.handle_due)],
    ["核查时限 Verification due", c.verify_due && when(c.verify_due)],
    ["结案时间 Closed", c.closed_at && when(c.closed_at)],
    ["描述 Description", c.description],
    ["报告人 Reporter", c.reporter],
    ["位置 Location", `${c.lon.toFixed(6)}, ${c.lat.toFixed(6)}`],
  ];
  const fields = $("case-fields");
  fields.replaceChildren();
  for (const [label, value] of rows) {
    if (value === undefined || value === null || value === "") continue;
    fields.append(el("dt", null, label), el("dd", null, value));
  }
  const photoLink = (p) => {
    const a = el("a");
    a.href = p.url;
    a.target = "_blank";
    a.rel = "noopener";
    const img = el("img");
    img.src = p.url;
    img.alt = `照片 photo ${p.id.slice(0, 6)} (${p.width}×${p.height})`;
    img.loading = "lazy";
    a.append(img);
    return a;
  };
  const photosById = Object.fromEntries((c.photos || []).map((p) => [p.id, p]));
  $("case-photos").replaceChildren(...(c.photos || []).map(photoLink));
  const actions = $("case-actions");
  actions.replaceChildren();
  for (const action of c.next_actions) {
    const b = button(ACTION_LABELS[action] || action, () => act(action),
                     `action${NEEDS_NOTE.has(action) ? " needs-note" : ""}`);
    b.dataset.action = action;
    actions.append(b);
  }
  $("case-steps").hidden = !c.next_actions.length;
  const timeline = $("case-timeline");
  timeline.replaceChildren();
  for (const e of c.timeline || []) {
    const item = el("li");
    const label = ACTION_LABELS[e.action] || EVENT_LABELS[e.action]
      || (e.action.startsWith("escalate_") ? "超期督办 Escalated"
        : e.action.startsWith("warn_") ? "临期预警 Deadline warning" : e.action);
    const stages = e.from_stage && e.from_stage !== e.to_stage
      ? `${STAGE_LABELS[e.from_stage] || e.from_stage} → ${STAGE_LABELS[e.to_stage] || e.to_stage}`
      : STAGE_LABELS[e.to_stage] || e.to_stage;
    item.append(el("time", null, when(e.at)), " ", el("strong", null, label), ` · ${stages}`,
                ` · ${e.actor || "系统 system"}${e.role ? ` (${e.role})` : ""}`);
    if (e.assignee) item.append(` · 处理人 ${e.assignee}`);
    if (e.note) item.append(el("span", "note", e.note));
    const shots = (e.photos || []).filter((id) => photosById[id]);
    if (shots.length) {
      const box = el("span", "photos");
      box.append(...shots.map((id) => photoLink(photosById[id])));
      item.append(box);
    }
    timeline.append(item);
  }
}

// one step, on the case as it was read (If-Match): a case that changed meanwhile (412) or a
// step no longer allowed (409) is said so and read again
async function act(action) {
  if (!current || acting) return;
  const { id, etag } = current;
  const status = $("case-status");
  const label = ACTION_LABELS[action] || action;
  const note = $("case-note").value.trim();
  acting = true;
  for (const b of $("case-actions").querySelectorAll("button")) b.disabled = true;
  showStatus(status, `${label}：提交中… Sending…`);
  try {
    const files = [...$("case-photo").files];
    if (files.length) {
      await postForm(`/api/incidents/${encodeURIComponent(id)}/actions`,
                     { action, note }, files, { "If-Match": etag });
    } else {
      await post(`/api/incidents/${encodeURIComponent(id)}/actions`,
                 { action, note: note || null }, { "If-Match": etag });
    }
    $("case-note").value = "";
    $("case-photo").value = "";
    showStatus(status, `✓ 已完成 Done: ${label}`);
    acting = false;
    loadQueues();
    refreshTiles();
    await loadCase(id, { quiet: true });
  } catch (err) {
    acting = false;
    if (err.status === 409 || err.status === 412) {
      showFailure(status, "案件已变化，已重新读取 The case changed and was read again", err, null);
      loadQueues();
      await loadCase(id, { quiet: true });
    } else if (err.status === 422) {
      showFailure(status, `${label} 未完成 Not done`, err, null);
      if (NEEDS_NOTE.has(action)) $("case-note").focus();
    } else {
      showFailure(status, `${label} 失败 Failed`, err, () => act(action));
    }
  } finally {
    acting = false;
    for (const b of $("case-actions").querySelectorAll("button")) b.disabled = false;
  }
}

// ---- intake ---------------------------------------------------------------------------

let marker = null;

function placeMarker(lon, lat) {
  if (marker) marker.remove();
  marker = new maplibregl.Marker({ color: "#d7191c" }).setLngLat([lon, lat]).addTo(map);
}

async function loadCategories() {
  const select = $("report-category");
  select.disabled = true;
  select.replaceChildren(new Option("加载中… Loading…", ""));
  try {
    const categories = await getJSON("/api/incident-categories");
    const groups = new Map();
    for (const c of categories) {
      if (!groups.has(c.kind)) groups.set(c.kind, el("optgroup"));
      groups.get(c.kind).label = c.kind;
      groups.get(c.kind).append(new Option(
        `${c.major} / ${c.minor}${c.urgent ? "（紧急 urgent）" : ""}`, c.code));
    }
    select.replaceChildren(new Option("— 请选择 Choose —", ""), ...groups.values());
    select.disabled = false;
    showStatus($("report-result"), "");
  } catch (err) {
    select.replaceChildren(new Option("类别未加载 Categories not loaded", ""));
    showFailure($("report-result"), "类别读取失败 The categories could not be read", err,
                loadCategories);
  }
}

// "lon, lat" (a comma, a Chinese comma or spaces between)
function parsePoint(text) {
  const numbers = text.trim().split(/[\s,，]+/).filter(Boolean).map(Number);
  return numbers.length === 2 && numbers.every(Number.isFinite) ? numbers : null;
}

map.on("click", (e) => {
  if ($("report-view").hidden) return;
  if (layersAdded && map.queryRenderedFeatures(e.point, { layers: ["incidents"] }).length) return;
  $("report-xy").value = `${e.lngLat.lng.toFixed(6)}, ${e.lngLat.lat.toFixed(6)}`;
  $("report-crs").value = "wgs84";
  placeMarker(e.lngLat.lng, e.lngLat.lat);
});

$("report-xy").addEventListener("change", () => {
  const point = parsePoint($("report-xy").value);
  if (point && $("report-crs").value === "wgs84") placeMarker(point[0], point[1]);
});

async function fileReport(event) {
  event.preventDefault();
  const out = $("report-result");
  const submit = $("report-submit");
  const category = $("report-category").value;
  const point = parsePoint($("report-xy").value);
  if (!category) {
    showFailure(out, "请选择类别 Choose a category", null, null);
    $("report-category").focus();
    return;
  }
  if (!point) {
    showFailure(out, "请点选地图或输入“经度, 纬度” Click the map or type \"lon, lat\"", null, null);
    $("report-xy").focus();
    return;
  }
  submit.disabled = true;
  showStatus(out, "提交中… Sending…");
  try {
    const fields = {
      lon: point[0], lat: point[1], crs: $("report-crs").value, category,
      description: $("report-description").value.trim(),
      reporter: $("report-reporter").value.trim() || null,
    };
    const files = [...$("report-photo").files];
    const { body } = files.length ? await postForm("/api/incidents", fields, files)
      : await post("/api/incidents", fields);
    for (const field of ["report-description", "report-reporter", "report-xy", "report-photo"]) {
      $(field).value = "";
    }
    placeMarker(body.lon, body.lat);
    showRouted(body);
    loadQueues();
    refreshTiles();
  } catch (err) {
    showFailure(out, "接报未受理 The report was not taken", err,
                () => $("report-form").requestSubmit());
  } finally {
    submit.disabled = false;
  }
}
$("report-form").addEventListener("submit", fileReport);

// where the new case went: its grid, community, township and assignee (with names and the
// grid's workers when the locate index has them), and the server's warnings
function showRouted(c) {
  const out = $("report-result");
  out.classList.remove("error");
  const head = el("p", "routed-head");
  head.append(`✓ 已接报 Reported: `, el("strong", "case-id", c.id), " ", stageBadge(c.status));
  const where = el("dl", "routed");
  const add = (label, value, id) => {
    where.append(el("dt", null, label));
    const dd = el("dd", null, value || "—");
    if (id) dd.id = id;
    where.append(dd);
  };
  add("网格 Grid", c.grid_code || "未入格 outside every grid", "routed-grid");
  add("社区 Community", c.community_code, "routed-community");
  add("街道 Township", c.township_code, "routed-township");
  add("处理人 Assignee", c.assignee, "routed-assignee");
  const open = button("查看案件 Open the case", () => openCase(c.id), "open-case");
  out.replaceChildren(head, where);
  for (const warning of c.warnings || []) out.append(el("p", "warning", `⚠ ${warning}`));
  out.append(open);
  out.scrollIntoView({ block: "nearest" });
  if (!c.grid_code) return;
  // names and the workers to call: the locate index (a failure leaves the codes)
  const query = new URLSearchParams({ lon: c.lon, lat: c.lat, crs: "wgs84" });
  getJSON(`/api/locate?${query}`).then((place) => {
    if (!place.inside || !place.grid || place.grid.code !== c.grid_code) return;
    $("routed-grid").textContent = `${place.grid.name} (${c.grid_code})`;
    if (place.community) $("routed-community").textContent = `${place.community.name} (${c.community_code})`;
    if (place.township) $("routed-township").textContent = `${place.township.name} (${c.township_code})`;
    const workers = (place.workers || []).map((w) => `${w.name} ${w.role} ${w.phone || ""}`.trim());
    if (workers.length) {
      where.append(el("dt", null, "网格员 Workers"), el("dd", null, workers.join("; ")));
    }
  }, (err) => out.append(el("p", "hint", `（名称未加载 names not loaded: ${err.message}）`)));
}

// ---- live: server-sent events ---------------------------------------------------------

let events = null;
let changeTimer = null;
let quietTimer = null;

function setLive(state) {
  const text = { connecting: "○ 连接中… Connecting…", live: "● 实时 Live",
                 stopped: "✕ 实时更新已停止 Live updates stopped" }[state];
  $("live-state").textContent = text;
  $("live").dataset.state = state;
  $("live-retry").hidden = state !== "stopped";
}

// a change near the caller's divisions: the queue, the tiles and the open case again
function changed() {
  window.liveEvents = (window.liveEvents || 0) + 1;
  refreshTiles();
  loadQueues();
  if (current && !acting) loadCase(current.id, { quiet: true });
}

function listen() {
  if (events) events.close();
  clearTimeout(quietTimer);
  setLive("connecting");
  const source = new EventSource("/api/incidents/live");
  events = source;
  source.addEventListener("open", () => {
    clearTimeout(quietTimer);
    setLive("live");
  });
  source.addEventListener("incidents", () => {
    clearTimeout(changeTimer);
    changeTimer = setTimeout(changed, 150);  // a burst of changes: one round of reads
  });
  source.addEventListener("error", () => {
    if (source !== events) return;
    if (source.readyState === EventSource.CLOSED) {  // refused: no more tries by itself
      setLive("stopped");
      checkSession();
      return;
    }
    // the stream ended (it does every minute) and EventSource reconnects by itself,
    // catching up on what it missed: say so only if that takes a while
    clearTimeout(quietTimer);
    quietTimer = setTimeout(() => setLive("connecting"), 4000);
  });
}

$("live-retry").addEventListener("click", () => {
  listen();
  loadQueues();
  refreshTiles();
});

async function checkSession() {
  try {
    const now = await getJSON("/auth/me");
    if (!now.name) problem("登录已失效，请重新登录 Session ended, sign in again", null, null);
  } catch (err) {
    problem("无法连接服务器 The server cannot be reached", err, null);
  }
}

// ---- start ----------------------------------------------------------------------------

async function start() {
  $("problem").hidden = true;
  try {
    me = await getJSON("/auth/me");
  } catch (err) {
    problem("无法读取登录状态 Could not read who you are", err, start);
    window.gridmapError = err.message;
    return;
  }
  showAccount();
  if (!me.name || !may("incidents")) {
    problem(me.name ? "您的角色不能查看事件 Your role may not read incidents"
      : "请先登录 Sign in to use the dispatch desk", null, null);
    if (!me.name) $("problem-text").append(" ", loginLink());
    $("panel").hidden = true;
    setLive("stopped");
    $("live-retry").hidden = true;
    window.dispatchReady = true;
    return;
  }
  $("tab-report").hidden = !REPORTERS.has(me.role);
  if (!layersAdded) addLayers();
  listen();
  const loads = [loadQueues()];
  if (REPORTERS.has(me.role)) loads.push(loadCategories());
  const fit = () => fitToDivisions().catch(
    (err) => problem("辖区范围读取失败 Your divisions could not be read", err, fit));
  await Promise.all([fit(), ...loads]);
  window.dispatchReady = true;
}

renderQueueTabs();
map.on("load", () => {
  start().catch((err) => {
    problem("出错了 Something went wrong", err, start);
    window.gridmapError = err.message;
    console.error(err);
  });
});
