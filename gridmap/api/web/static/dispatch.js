// gridmap dispatcher's desk (GET /dispatch): the queue of incidents by stage, a case with its
// timeline and the steps the API allows the caller, intake, and a map of the cases coloured
// by stage. It listens to /api/incidents/live (server-sent events) and reads its queue and
// the incident tiles again whenever cases near its divisions change. Everything is served by
// gridmap itself; changes go with the page session's cookie and its X-CSRF-Token header.
"use strict";

const $ = (id) => document.getElementById(id);

const NEEDS_NOTE = new Set(["return", "reject", "cancel"]);
const REPORTERS = new Set(["admin", "dispatcher", "grid_worker"]);  // who may file a report

// stage → colour on the map and in the queue (always with its label: never colour alone)
const GROUPS = [
  { colour: "#1f78b4", key: "new", stages: ["collected"] },
  { colour: "#e66101", key: "dispatch", stages: ["registered", "returned"] },
  { colour: "#7b3294", key: "hand", stages: ["dispatched", "handling"] },
  { colour: "#1a9641", key: "close", stages: ["reported", "verified", "closed"] },
  { colour: "#8c8c8c", key: "finished", stages: ["evaluated", "cancelled"] },
];
const STAGE_COLOURS = Object.fromEntries(
  GROUPS.flatMap((g) => g.stages.map((s) => [s, g.colour])));
// the queue's tabs: stages, or every case past a deadline of its stage
const QUEUES = [
  { key: "new", query: "stage=collected" },
  { key: "dispatch", query: "stage=registered&stage=returned" },
  { key: "hand", query: "stage=dispatched&stage=handling" },
  { key: "check", query: "stage=reported&stage=verified&stage=closed" },
  { key: "overdue", query: "overdue=true" },
];

// ---- requests -------------------------------------------------------------------------

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
  const a = el("a", "button", i18n.t("account.login"));
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
  if (retry) box.append(" ", button(i18n.t("retry"), retry, "retry"));
}

function problem(what, err, retry) {
  $("problem").hidden = false;
  $("problem-text").textContent = err ? `${what}: ${err.message}` : what;
  $("problem-retry").hidden = !retry;
  $("problem-retry").onclick = retry ? () => { $("problem").hidden = true; retry(); } : null;
}

const when = (iso) => (iso ? i18n.formatTime(iso) : "—");

function stageBadge(stage) {
  const badge = el("span", "stage");
  const chip = el("i");
  chip.style.background = STAGE_COLOURS[stage] || "#444";
  badge.append(chip, i18n.label("stage", stage));
  return badge;
}

const overdueMark = (overdue) => el("span", "overdue-mark",
  `⚠ ${i18n.t("case.overdue")}${overdue.length
    ? ` (${overdue.map((k) => i18n.t(`overdue.${k}`)).join(", ")})` : ""}`);

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
      problem(i18n.t("account.logout.failed", { message: err.message }), null, signOut);
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

function showLegend() {
  $("legend-stages").replaceChildren(...GROUPS.map((group) => {
    const row = el("li");
    const chip = el("i");
    chip.style.background = group.colour;
    row.append(chip, i18n.t(`queue.${group.key}`));
    return row;
  }));
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
  addStreetLabels(map);  // the streets' names above the grids' fill, under the cases
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
async function fitToDivisions() {
  let view = bounds(await getJSON("/api/communities.geojson"));
  if (view.isEmpty()) view = bounds(await getJSON("/api/grids.geojson"));
  if (!view.isEmpty()) map.fitBounds(view, { padding: 20, animate: false, maxZoom: 16 });
}

// a tile that fails: say why (a 401 means the session ended meanwhile)
map.on("error", (e) => {
  const status = e.error && e.error.status;
  if (status === 401 || status === 403) {
    problem(status === 401 ? i18n.t("session.ended")
      : i18n.t("not.allowed", { message: e.error.message }), null, null);
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
  if (!Object.keys(lists).length) showStatus($("queue-status"), i18n.t("loading"));
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
    showFailure($("queue-status"), i18n.t("dispatch.queue.failed"), failed[0],
                loadQueues);
  } else {
    showStatus($("queue-status"), i18n.t("dispatch.updated", { when: i18n.formatTime(new Date().toISOString()) }));
  }
}

function renderQueueTabs() {
  const tabs = QUEUES.map((q) => {
    const n = Array.isArray(lists[q.key]) ? lists[q.key].length : "?";
    const tab = button(`${i18n.t(`queue.${q.key}`)} (${n})`, () => {
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
    list.append(el("li", "empty", i18n.t("dispatch.none")));
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
  const where = c.grid_code ? `${i18n.t("case.field.grid")} ${c.grid_code}`
    : i18n.t("dispatch.outside", { township: c.township_code || "—" });
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
  if (!quiet) showStatus(status, i18n.t("loading"));
  try {
    const { body, etag } = await request(`/api/incidents/${encodeURIComponent(id)}`);
    if (round !== caseRound) return;
    current = { id, etag, case: body };
    renderCase();
    if (!quiet) showStatus(status, "");
  } catch (err) {
    if (round !== caseRound) return;
    showFailure(status, i18n.t("case.failed", { id }), err,
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
    ["category", `${c.category}${c.urgent ? i18n.t("report.urgent") : ""}`],
    ["grid", c.grid_code || i18n.t("dispatch.no.grid")],
    ["community", c.community_code],
    ["township", c.township_code],
    ["assignee", c.assignee],
    ["reported", when(c.reported_at)],
    ["dispatch_due", c.dispatch_due && when(c.dispatch_due)],
    ["handle_due", c.handle_due && when(c.handle_due)],
    ["verify_due", c.verify_due && when(c.verify_due)],
    ["closed_at", c.closed_at && when(c.closed_at)],
    ["description", c.description],
    ["reporter", c.reporter],
    ["location", `${c.lon.toFixed(6)}, ${c.lat.toFixed(6)}`],
  ];
  const fields = $("case-fields");
  fields.replaceChildren();
  for (const [label, value] of rows) {
    if (value === undefined || value === null || value === "") continue;
    fields.append(el("dt", null, i18n.t(`case.field.${label}`)), el("dd", null, value));
  }
  const photoLink = (p) => {
    const a = el("a");
    a.href = p.url;
    a.target = "_blank";
    a.rel = "noopener";
    const img = el("img");
    img.src = p.url;
    img.alt = `${i18n.t("case.photo", { id: p.id.slice(0, 6) })} (${p.width}×${p.height})`;
    img.loading = "lazy";
    a.append(img);
    return a;
  };
  const photosById = Object.fromEntries((c.photos || []).map((p) => [p.id, p]));
  $("case-photos").replaceChildren(...(c.photos || []).map(photoLink));
  const actions = $("case-actions");
  actions.replaceChildren();
  for (const action of c.next_actions) {
    const b = button(i18n.label("action", action), () => act(action),
                     `action${NEEDS_NOTE.has(action) ? " needs-note" : ""}`);
    b.dataset.action = action;
    actions.append(b);
  }
  $("case-steps").hidden = !c.next_actions.length;
  const timeline = $("case-timeline");
  timeline.replaceChildren();
  for (const e of c.timeline || []) {
    const item = el("li");
    const stage = (s) => i18n.label("stage", s);
    const stages = e.from_stage && e.from_stage !== e.to_stage
      ? `${stage(e.from_stage)} → ${stage(e.to_stage)}` : stage(e.to_stage);
    const role = e.role ? ` (${i18n.label("role", e.role)})` : "";
    item.append(el("time", null, when(e.at)), " ", el("strong", null, eventLabel(e.action)),
                ` · ${stages}`, ` · ${e.actor || i18n.t("case.system")}${role}`);
    if (e.assignee) item.append(` · ${i18n.t("case.field.assignee")} ${e.assignee}`);
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
  const label = i18n.label("action", action);
  const note = $("case-note").value.trim();
  acting = true;
  for (const b of $("case-actions").querySelectorAll("button")) b.disabled = true;
  showStatus(status, i18n.t("case.sending", { action: label }));
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
    showStatus(status, `✓ ${i18n.t("case.done", { action: label })}`);
    acting = false;
    loadQueues();
    refreshTiles();
    await loadCase(id, { quiet: true });
  } catch (err) {
    acting = false;
    if (err.status === 409 || err.status === 412) {
      showFailure(status, i18n.t("case.changed"), err, null);
      loadQueues();
      await loadCase(id, { quiet: true });
    } else if (err.status === 422) {
      showFailure(status, i18n.t("case.not.done", { action: label }), err, null);
      if (NEEDS_NOTE.has(action)) $("case-note").focus();
    } else {
      showFailure(status, i18n.t("case.failed.step", { action: label }), err, () => act(action));
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
  select.replaceChildren(new Option(i18n.t("loading"), ""));
  try {
    const categories = await getJSON("/api/incident-categories");
    const groups = new Map();
    for (const c of categories) {
      if (!groups.has(c.kind)) groups.set(c.kind, el("optgroup"));
      groups.get(c.kind).label = c.kind;
      groups.get(c.kind).append(new Option(
        `${c.major} / ${c.minor}${c.urgent ? i18n.t("report.urgent") : ""}`, c.code));
    }
    select.replaceChildren(new Option(i18n.t("report.choose"), ""), ...groups.values());
    select.disabled = false;
    showStatus($("report-result"), "");
  } catch (err) {
    select.replaceChildren(new Option(i18n.t("report.categories.failed"), ""));
    showFailure($("report-result"), i18n.t("report.categories.failed"), err,
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
    showFailure(out, i18n.t("report.category.needed"), null, null);
    $("report-category").focus();
    return;
  }
  if (!point) {
    showFailure(out, i18n.t("dispatch.place.needed"), null, null);
    $("report-xy").focus();
    return;
  }
  submit.disabled = true;
  showStatus(out, i18n.t("sending"));
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
    showFailure(out, i18n.t("report.failed"), err,
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
  head.append(`✓ ${i18n.t("dispatch.reported")} `, el("strong", "case-id", c.id), " ", stageBadge(c.status));
  const where = el("dl", "routed");
  const add = (label, value, id) => {
    where.append(el("dt", null, label));
    const dd = el("dd", null, value || "—");
    if (id) dd.id = id;
    where.append(dd);
  };
  add(i18n.t("case.field.grid"), c.grid_code || i18n.t("dispatch.no.grid"), "routed-grid");
  add(i18n.t("case.field.community"), c.community_code, "routed-community");
  add(i18n.t("case.field.township"), c.township_code, "routed-township");
  add(i18n.t("case.field.assignee"), c.assignee, "routed-assignee");
  const open = button(i18n.t("dispatch.open"), () => openCase(c.id), "open-case");
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
      where.append(el("dt", null, i18n.t("dispatch.workers")), el("dd", null, workers.join("; ")));
    }
  }, (err) => out.append(el("p", "hint", i18n.t("dispatch.names.failed", { message: err.message }))));
}

// ---- live: server-sent events ---------------------------------------------------------

let events = null;
let changeTimer = null;
let quietTimer = null;

function setLive(state) {
  const mark = { connecting: "○", live: "●", stopped: "✕" }[state];
  $("live-state").textContent = `${mark} ${i18n.t(`live.${state}`)}`;
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
    if (!now.name) problem(i18n.t("session.ended"), null, null);
  } catch (err) {
    problem(i18n.t("dispatch.unreachable"), err, null);
  }
}

// ---- start ----------------------------------------------------------------------------

async function start() {
  $("problem").hidden = true;
  try {
    me = await getJSON("/auth/me");
  } catch (err) {
    problem(i18n.t("dispatch.who.failed"), err, start);
    window.gridmapError = err.message;
    return;
  }
  showAccount();
  if (!me.name || !may("incidents")) {
    problem(me.name ? i18n.t("case.forbidden") : i18n.t("dispatch.signin"), null, null);
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
    (err) => problem(i18n.t("dispatch.divisions.failed"), err, fit));
  await Promise.all([fit(), ...loads]);
  window.dispatchReady = true;
}

map.on("load", () => {
  i18n.ready.then(() => {
    showLegend();
    renderQueueTabs();
    return start();
  }).catch((err) => {
    problem(i18n.t("dispatch.unexpected"), err, start);
    window.gridmapError = err.message;
    console.error(err);
  });
});
