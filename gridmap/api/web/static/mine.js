// gridmap, the grid worker's phone page (GET /mine): my grid's open cases on a list and a
// small map; a case's steps the API allows me (accept, return, feed back) with a note and
// photos from the phone's camera; a new report at my position (or where I tap the map) with
// photos. Changes go with the page session's cookie and its X-CSRF-Token header; photos go
// as multipart/form-data, checked and stored by the server with the step.
"use strict";

const $ = (id) => document.getElementById(id);

// the labels of gridmap/domain/incidents.py (STAGE_LABELS, ACTION_LABELS), Chinese first
const STAGE_LABELS = {
  collected: "信息收集 Collected", registered: "案件建立 Registered",
  dispatched: "任务派遣 Dispatched", handling: "任务处理 Handling",
  reported: "处理反馈 Fed back", verified: "核查结案 Verified", closed: "已结案 Closed",
  evaluated: "综合评价 Evaluated", returned: "已退回 Returned", cancelled: "已取消 Cancelled",
};
const ACTION_LABELS = {
  register: "立案 Register", cancel: "取消 Cancel", dispatch: "派遣 Dispatch",
  accept: "接单 Accept", return: "退回 Return", feed_back: "反馈 Feed back",
  reject: "核查不通过 Reject", verify: "核查通过 Verify", close: "结案 Close",
  evaluate: "评价 Evaluate",
};
const EVENT_LABELS = { collect: "接报 Reported", route: "改派网格 Routed to a grid" };
const NEEDS_NOTE = new Set(["return", "reject", "cancel"]);
// open cases: every stage but the finished ones; mine first (dispatched to me, in hand)
const OPEN = ["dispatched", "handling", "returned", "reported", "collected", "registered",
              "verified"];
const COLOURS = { dispatched: "#7b3294", handling: "#7b3294", collected: "#1f78b4",
                  registered: "#e66101", returned: "#e66101", reported: "#1a9641",
                  verified: "#1a9641" };

// ---- requests -------------------------------------------------------------------------

class RequestError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

async function request(url, init = {}) {
  let res;
  let text;
  try {
    res = await fetch(url, { credentials: "same-origin", ...init });
    text = await res.text();
  } catch (err) {
    throw new RequestError(0, `网络错误，请检查信号后重试 Network error: ${err.message}`);
  }
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!res.ok) throw new RequestError(res.status, detailText(body) || `HTTP ${res.status}`);
  return { body, etag: res.headers.get("ETag") };
}

const getJSON = async (url) => (await request(url)).body;

function csrf() {
  const hit = document.cookie.split("; ").find((c) => c.startsWith("gridmap_csrf="));
  return me.csrf_token || (hit ? decodeURIComponent(hit.slice(13)) : "");
}

// a form with the fields and the photos (the server checks each photo's type and size)
function postForm(url, fields, files, headers = {}) {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) if (v !== null && v !== "") form.append(k, v);
  for (const file of files) form.append("photo", file, file.name || "photo.jpg");
  return request(url, { method: "POST", body: form,
                        headers: { "X-CSRF-Token": csrf(), ...headers } });
}

// ---- small DOM helpers ----------------------------------------------------------------

function say(box, text, kind) {
  box.className = kind || "";
  box.textContent = text;
}

function fail(box, what, err) {
  say(box, err ? `${what}: ${err.message}` : what, "error");
  if (err && err.status === 401) {
    const a = el("a", "button", "登录 Sign in");
    a.href = "/login?next=%2Fmine";
    box.append(" ", a);
  }
}

const when = (iso) => (iso ? new Date(iso).toLocaleString("zh-CN", { hour12: false }) : "—");

function stageBadge(stage) {
  const badge = el("span", "stage");
  const chip = el("i");
  chip.style.background = COLOURS[stage] || "#8c8c8c";
  badge.append(chip, STAGE_LABELS[stage] || stage);
  return badge;
}

// chosen photos as thumbnails (object URLs, released when replaced)
function preview(input, box) {
  for (const img of box.querySelectorAll("img")) URL.revokeObjectURL(img.src);
  box.replaceChildren();
  for (const file of input.files) {
    const img = el("img");
    img.alt = file.name;
    img.src = URL.createObjectURL(file);
    box.append(img);
  }
  if (input.files.length) box.append(el("span", "hint", `${input.files.length} 张照片 photo(s)`));
}

// ---- who is calling -------------------------------------------------------------------

let me = { name: null, role: "public", reads: [], csrf_token: null };

function problem(text, retry) {
  $("problem").hidden = false;
  $("problem-text").textContent = text;
  $("problem-retry").hidden = !retry;
  $("problem-retry").onclick = retry ? () => { $("problem").hidden = true; retry(); } : null;
}

$("logout").addEventListener("click", async () => {
  try {
    await request("/auth/logout", { method: "POST", headers: { "X-CSRF-Token": csrf() } });
  } catch (err) {
    if (err.status !== 401) return problem(`退出失败 Sign-out failed: ${err.message}`);
  }
  location.assign("/login?next=%2Fmine");
});

// ---- views ----------------------------------------------------------------------------

function showView(name) {
  $("cases-view").hidden = name !== "cases";
  $("case-view").hidden = name !== "case";
  $("report-view").hidden = name !== "report";
  $("tab-cases").setAttribute("aria-selected", String(name !== "report"));
  $("tab-report").setAttribute("aria-selected", String(name === "report"));
  if (name !== "report" && marker) {
    marker.remove();
    marker = null;
  }
  window.scrollTo(0, 0);
}
$("tab-cases").addEventListener("click", () => { showView("cases"); loadCases(); });
$("tab-report").addEventListener("click", () => showView("report"));
$("back").addEventListener("click", () => { showView("cases"); loadCases(); });

// ---- the map --------------------------------------------------------------------------

const map = baseMap();
map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
let pins = [];
let marker = null;

function showPins(cases) {
  for (const pin of pins) pin.remove();
  pins = cases.map((c) => {
    // a 44 px target around a 24 px dot (a thick black ring: overdue)
    const dot = el("button", "pin");
    dot.type = "button";
    dot.dataset.id = c.id;
    dot.title = `${c.id} ${STAGE_LABELS[c.status] || c.status}`;
    dot.setAttribute("aria-label", dot.title);
    const face = el("i");
    face.style.background = COLOURS[c.status] || "#8c8c8c";
    if (c.overdue.length) face.classList.add("overdue");
    dot.append(face);
    dot.addEventListener("click", (e) => { e.stopPropagation(); openCase(c.id); });
    return new maplibregl.Marker({ element: dot }).setLngLat([c.lon, c.lat]).addTo(map);
  });
}

async function fitToGrid() {
  const fc = await getJSON("/api/grids.geojson");
  const b = new maplibregl.LngLatBounds();
  const walk = (c) => (typeof c[0] === "number" ? b.extend(c) : c.forEach(walk));
  fc.features.forEach((f) => f.geometry && walk(f.geometry.coordinates));
  if (!b.isEmpty()) map.fitBounds(b, { padding: 16, animate: false, maxZoom: 17 });
  if (!map.getSource("mine")) {
    addBasemap(map);  // streets and buildings under my grid
    map.addSource("mine", { type: "geojson", data: fc });
    map.addLayer({ id: "mine-fill", type: "fill", source: "mine",
                   paint: { "fill-color": "#b8c2cc", "fill-opacity": 0.35 } });
    map.addLayer({ id: "mine-line", type: "line", source: "mine",
                   paint: { "line-color": "#1f3b57", "line-width": 2 } });
  }
}

// ---- my cases -------------------------------------------------------------------------

let cases = [];

async function loadCases() {
  const box = $("cases-status");
  if (!cases.length) say(box, "加载中… Loading…");
  try {
    const query = OPEN.map((s) => `stage=${s}`).join("&");
    const found = await getJSON(`/api/incidents?${query}&limit=200`);
    const rank = (c) => OPEN.indexOf(c.status);
    cases = found.sort((a, b) => rank(a) - rank(b) || (a.reported_at < b.reported_at ? 1 : -1));
    renderCases();
    say(box, "");
  } catch (err) {
    fail(box, "案件读取失败 Cases could not be read", err);
  }
}

function renderCases() {
  const list = $("cases");
  list.replaceChildren();
  showPins(cases);
  if (!cases.length) {
    list.append(el("li", "empty", "没有待办案件 No open cases"));
    return;
  }
  for (const c of cases) {
    const item = el("li");
    const b = button("", () => openCase(c.id), `case-item${c.overdue.length ? " overdue" : ""}`);
    b.dataset.id = c.id;
    const top = el("span", "case-line");
    top.append(el("span", "case-id", c.id), stageBadge(c.status));
    if (c.overdue.length) top.append(el("span", "overdue-mark", "⚠ 超期 Overdue"));
    const due = c.handle_due || c.verify_due || c.dispatch_due;
    b.append(top, el("span", null, c.category.split("/").slice(1).join(" / ")));
    if (c.description) b.append(el("span", "hint", c.description));
    if (due) b.append(el("span", "hint", `时限 Due ${when(due)}`));
    item.append(b);
    list.append(item);
  }
}

// ---- a case ---------------------------------------------------------------------------

let current = null;  // { id, etag, case }
let acting = false;

async function openCase(id) {
  showView("case");
  $("case-title").textContent = id;
  for (const part of ["case-fields", "case-photos", "case-actions", "case-timeline"]) {
    $(part).replaceChildren();
  }
  $("case-note").value = "";
  $("case-photo").value = "";
  preview($("case-photo"), $("case-preview"));
  $("case-steps").hidden = true;
  await loadCase(id);
}

async function loadCase(id) {
  const status = $("case-status");
  try {
    const { body, etag } = await request(`/api/incidents/${encodeURIComponent(id)}`);
    current = { id, etag, case: body };
    renderCase();
    map.easeTo({ center: [body.lon, body.lat], zoom: Math.max(map.getZoom(), 16) });
  } catch (err) {
    fail(status, `案件 ${id} 读取失败 The case could not be read`, err);
  }
}

function photoImg(p) {
  const img = el("img");
  img.src = p.url;
  img.alt = `照片 photo ${p.id.slice(0, 6)}`;
  img.loading = "lazy";
  return img;
}

function renderCase() {
  const c = current.case;
  $("case-title").replaceChildren(el("span", "case-id", c.id), " ", stageBadge(c.status));
  if (c.overdue.length) $("case-title").append(el("span", "overdue-mark", "⚠ 超期 Overdue"));
  const fields = $("case-fields");
  fields.replaceChildren();
  for (const [label, value] of [
    ["类别 Category", c.category], ["描述 Description", c.description],
    ["报告人 Reporter", c.reporter], ["上报 Reported", when(c.reported_at)],
    ["处置时限 Handling due", c.handle_due && when(c.handle_due)],
    ["网格 Grid", c.grid_code], ["处理人 Assignee", c.assignee]]) {
    if (value) fields.append(el("dt", null, label), el("dd", null, value));
  }
  $("case-photos").replaceChildren(...(c.photos || []).map(photoImg));
  const actions = $("case-actions");
  actions.replaceChildren();
  for (const action of c.next_actions) {
    const b = button(ACTION_LABELS[action] || action, () => act(action),
                     NEEDS_NOTE.has(action) ? "needs-note" : "");
    b.dataset.action = action;
    actions.append(b);
  }
  $("case-steps").hidden = !c.next_actions.length;
  const byId = Object.fromEntries((c.photos || []).map((p) => [p.id, p]));
  const timeline = $("case-timeline");
  timeline.replaceChildren();
  for (const e of [...(c.timeline || [])].reverse()) {
    const item = el("li");
    const label = ACTION_LABELS[e.action] || EVENT_LABELS[e.action]
      || (e.action.startsWith("escalate_") ? "超期督办 Escalated"
        : e.action.startsWith("warn_") ? "临期预警 Deadline warning" : e.action);
    item.append(el("strong", null, label), ` · ${when(e.at)} · ${e.actor || "系统 system"}`);
    if (e.note) item.append(el("span", "note", e.note));
    const shots = (e.photos || []).filter((p) => byId[p]).map((p) => photoImg(byId[p]));
    if (shots.length) {
      const box = el("div", "photos");
      box.append(...shots);
      item.append(box);
    }
    timeline.append(item);
  }
}

async function act(action) {
  if (!current || acting) return;
  const status = $("case-status");
  const label = ACTION_LABELS[action] || action;
  const note = $("case-note").value.trim();
  if (NEEDS_NOTE.has(action) && !note) {
    fail(status, `${label}：请先填写说明 Write why in the note first`);
    $("case-note").focus();
    return;
  }
  acting = true;
  const buttons = $("case-actions").querySelectorAll("button");
  for (const b of buttons) b.disabled = true;
  const files = [...$("case-photo").files];
  say(status, `${label}：提交中… Sending…${files.length ? ` (${files.length} 张照片 photos)` : ""}`);
  try {
    await postForm(`/api/incidents/${encodeURIComponent(current.id)}/actions`,
                   { action, note }, files, { "If-Match": current.etag });
    $("case-note").value = "";
    $("case-photo").value = "";
    preview($("case-photo"), $("case-preview"));
    say(status, `✓ 已完成 Done: ${label}`, "ok");
    await loadCase(current.id);
  } catch (err) {
    if (err.status === 409 || err.status === 412) {
      fail(status, "案件已变化，已重新读取 The case changed and was read again", err);
      await loadCase(current.id);
    } else {
      fail(status, `${label} 未完成 Not done`, err);
    }
  } finally {
    acting = false;
    for (const b of $("case-actions").querySelectorAll("button")) b.disabled = false;
  }
}

$("case-photo").addEventListener("change", () => preview($("case-photo"), $("case-preview")));

// ---- a new report ---------------------------------------------------------------------

let place = null;  // [lon, lat] in WGS84

function setPlace(lon, lat, how) {
  place = [lon, lat];
  if (marker) marker.remove();
  marker = new maplibregl.Marker({ color: "#d7191c" }).setLngLat(place).addTo(map);
  say($("report-place"), `${how}: ${lon.toFixed(6)}, ${lat.toFixed(6)}`, "hint");
}

map.on("click", (e) => {
  if ($("report-view").hidden) return;
  setPlace(e.lngLat.lng, e.lngLat.lat, "地图点选 Tapped on the map");
});

$("report-here").addEventListener("click", () => {
  const out = $("report-place");
  if (!navigator.geolocation) {
    fail(out, "此设备无法定位，请在地图上点选 No position here: tap the map");
    return;
  }
  say(out, "定位中… Finding your position…", "hint");
  navigator.geolocation.getCurrentPosition((pos) => {
    const { longitude, latitude, accuracy } = pos.coords;
    setPlace(longitude, latitude, `我的位置 My position (±${Math.round(accuracy)} m)`);
    map.easeTo({ center: place, zoom: Math.max(map.getZoom(), 17) });
  }, (err) => {
    fail(out, `无法定位，请在地图上点选 No position (${err.message}): tap the map`);
  }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 30000 });
});

async function loadCategories() {
  const select = $("report-category");
  try {
    const categories = await getJSON("/api/incident-categories");
    select.replaceChildren(new Option("— 请选择 Choose —", ""), ...categories.map(
      (c) => new Option(`${c.major} / ${c.minor}${c.urgent ? "（紧急 urgent）" : ""}`, c.code)));
  } catch (err) {
    fail($("report-result"), "类别读取失败 Categories could not be read", err);
  }
}

$("report-photo").addEventListener("change", () => preview($("report-photo"), $("report-preview")));

$("report-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const out = $("report-result");
  const category = $("report-category").value;
  if (!category) {
    fail(out, "请选择类别 Choose a category");
    $("report-category").focus();
    return;
  }
  if (!place) {
    fail(out, "请用我的位置或在地图上点选 Use your position or tap the map");
    return;
  }
  const submit = $("report-submit");
  submit.disabled = true;
  say(out, "提交中… Sending…");
  try {
    const { body } = await postForm("/api/incidents", {
      lon: place[0], lat: place[1], crs: "wgs84", category,
      description: $("report-description").value.trim(),
    }, [...$("report-photo").files]);
    say(out, `✓ 已上报 Reported: ${body.id} → 网格 grid ${body.grid_code || "—"}`, "ok");
    out.dataset.id = body.id;
    for (const w of body.warnings || []) out.append(el("span", "note", ` ⚠ ${w}`));
    $("report-description").value = "";
    $("report-photo").value = "";
    preview($("report-photo"), $("report-preview"));
    cases = [];
    loadCases();
  } catch (err) {
    fail(out, "上报未受理 The report was not taken", err);
  } finally {
    submit.disabled = false;
  }
});

// ---- start ----------------------------------------------------------------------------

async function start() {
  try {
    me = await getJSON("/auth/me");
  } catch (err) {
    problem(`无法读取登录状态 Could not read who you are: ${err.message}`, start);
    window.mineError = err.message;
    return;
  }
  if (!me.name) {
    location.assign("/login?next=%2Fmine");
    return;
  }
  $("who").textContent = `${me.name}`;
  $("who").hidden = false;
  $("logout").hidden = false;
  if (!me.reads.includes("incidents")) {
    problem("您的角色不能查看事件 Your role may not read incidents");
    window.mineReady = true;
    return;
  }
  await Promise.all([loadCases(), loadCategories(),
                     fitToGrid().catch((err) => problem(`网格读取失败 Grid not read: ${err.message}`))]);
  window.mineReady = true;
}

map.on("load", () => start().catch((err) => {
  problem(`出错了 Something went wrong: ${err.message}`, start);
  window.mineError = err.message;
}));
