// gridmap, the planner's editor (GET /editor): a community's draft on a MapLibre map, drawn
// on with terra-draw (served locally from web/node_modules). Every edit goes to the drafts
// API (POST /api/drafts/{id}/edits with the draft's ETag in If-Match) and the answer — the
// draft's grids, statistics and defects — redraws the map and the panel. Submit, approve and
// publish, or abandon (asked first); the difference from the published grids or between two
// versions (a table, and the grids outlined on the map); the community's history and
// restore. A refused request says what went wrong (the server's detail, in the page's
// language) and what to do about it.
"use strict";

const $ = (id) => document.getElementById(id);
const { t, label } = i18n;
const map = baseMap();
map.addControl(new maplibregl.NavigationControl(), "top-right");
map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-right");

// what the page holds (window.editor: the tests read it)
const state = {
  me: null, communities: [], community: null, draft: null, etag: null, view: null,
  tool: null, selected: [], vertex: null, versions: [],
};
window.editor = state;
const EMPTY = { type: "FeatureCollection", features: [] };
const SYMBOL = { below: "▽", within: "✓", above: "▲", over_residents: "▲", not_banded: "–" };

// ---- requests -------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail);
    this.status = status;
    this.code = code;
  }
}

// a JSON request; changes carry the CSRF token, and a draft's changes its ETag (If-Match)
async function api(method, url, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") {
    headers["Content-Type"] = "application/json";
    headers["X-CSRF-Token"] = (state.me && state.me.csrf_token) || cookie("gridmap_csrf");
    if (state.draft && url.startsWith(`/api/drafts/${state.draft}/`) && state.etag) {
      headers["If-Match"] = state.etag;
    }
  }
  const answer = await fetchAnswer(url, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (answer.status === 0) {
    throw new ApiError(0, "network", t("problem.network", { url, message: answer.error }));
  }
  if (!answer.ok) {
    throw new ApiError(answer.status, answer.body && answer.body.code,
                       detailText(answer.body) || t("http.status", { url, status: answer.status }));
  }
  return { body: answer.body, etag: answer.etag };
}

// a refusal in the problem bar: what failed, the server's reason, and what to do
function showProblem(what, err) {
  $("problem-what").textContent = what;
  $("problem-text").textContent = err.message;
  const fix = [401, 403, 404, 409, 412, 422, 428].includes(err.status) ? err.status
    : err.status === 0 ? "network" : "other";
  $("problem-fix").textContent = t(`editor.fix.${fix}`);
  $("problem").hidden = false;
  $("problem").dataset.status = String(err.status);
  if (err.status === 412 && state.draft) {  // someone else's change: show the newer revision
    loadDraft(state.draft).catch((again) => {
      $("problem-text").textContent += ` ${again.message}`;
    });
  }
}

function clearProblem() {
  $("problem").hidden = true;
  delete $("problem").dataset.status;
}
$("problem-close").addEventListener("click", clearProblem);

// run *work* with *control* disabled; a refusal goes to the problem bar under *what*
async function busy(control, what, work) {
  if (control) control.disabled = true;
  document.body.dataset.busy = "1";
  try {
    clearProblem();
    return await work();
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    showProblem(what, err);
    return null;
  } finally {
    delete document.body.dataset.busy;
    if (control) control.disabled = false;
    if (state.view) showButtons();
  }
}

// ---- the map --------------------------------------------------------------------------

function addLayers() {
  for (const kind of ["below", "above"]) map.addImage(`band-${kind}`, patternImage(kind));
  for (const id of ["communities", "published", "draft", "vertex"]) {
    map.addSource(id, { type: "geojson", data: EMPTY });
  }
  map.addLayer({ id: "draft-fill", type: "fill", source: "draft", paint: {
    "fill-color": ["match", ["get", "status"], "below", "#6baed6", "within", "#74c476",
                   "above", "#fb6a4a", "over_residents", "#fb6a4a", "#b8c2cc"],
    "fill-opacity": 0.55 } });
  map.addLayer({ id: "draft-pattern", type: "fill", source: "draft",
                 filter: ["in", ["get", "status"], ["literal", ["below", "above", "over_residents"]]],
                 paint: { "fill-pattern": ["match", ["get", "status"], "below", "band-below",
                                           "band-above"] } });
  map.addLayer({ id: "communities-line", type: "line", source: "communities",
                 paint: { "line-color": "#1f3b57", "line-width": 3 } });
  map.addLayer({ id: "published-line", type: "line", source: "published",
                 paint: { "line-color": "#555", "line-width": 1.5, "line-dasharray": [2, 2] } });
  map.addLayer({ id: "draft-line", type: "line", source: "draft",
                 paint: { "line-color": "#1f3b57", "line-width": 1.5 } });
  map.addLayer({ id: "draft-locked", type: "line", source: "draft",
                 filter: ["==", ["get", "locked"], true],
                 paint: { "line-color": "#1b2733", "line-width": 5, "line-dasharray": [1, 1] } });
  // the difference: added grids thick, reshaped dashed, retired (published) dotted red
  map.addLayer({ id: "diff-added", type: "line", source: "draft", filter: ["in", "code", ""],
                 paint: { "line-color": "#006d2c", "line-width": 5 } });
  map.addLayer({ id: "diff-reshaped", type: "line", source: "draft", filter: ["in", "code", ""],
                 paint: { "line-color": "#54278f", "line-width": 4, "line-dasharray": [3, 1] } });
  map.addLayer({ id: "diff-retired", type: "line", source: "published",
                 filter: ["in", "code", ""],
                 paint: { "line-color": "#a50f15", "line-width": 4, "line-dasharray": [0.5, 1.5] } });
  map.addLayer({ id: "draft-selected", type: "line", source: "draft", filter: ["in", "code", ""],
                 paint: { "line-color": "#f2b632", "line-width": 6 } });
  map.addLayer({ id: "vertex", type: "circle", source: "vertex", paint: {
    "circle-radius": 9, "circle-color": "#f2b632", "circle-stroke-color": "#1b2733",
    "circle-stroke-width": 3 } });
}

function codeFilter(codes) {
  return ["in", ["get", "code"], ["literal", codes.length ? codes : [""]]];
}

// the grid under a map point (the draft's)
function gridAt(point) {
  const hit = map.queryRenderedFeatures(point, { layers: ["draft-fill"] });
  return hit.length ? hit[0].properties.code : null;
}

// ---- point in polygon (which grid a drawn line crosses) --------------------------------

function inRing(x, y, ring) {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i];
    const [xj, yj] = ring[j];
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

function inGeometry([x, y], geometry) {
  const polygons = geometry.type === "Polygon" ? [geometry.coordinates] : geometry.coordinates;
  return polygons.some((rings) => inRing(x, y, rings[0])
    && !rings.slice(1).some((hole) => inRing(x, y, hole)));
}

// the draft grid a line runs through the longest (sampled along it); null when none
function gridCrossed(coordinates) {
  const votes = new Map();
  for (let i = 1; i < coordinates.length; i++) {
    const [a, b] = [coordinates[i - 1], coordinates[i]];
    for (let s = 0; s <= 40; s++) {
      const p = [a[0] + ((b[0] - a[0]) * s) / 40, a[1] + ((b[1] - a[1]) * s) / 40];
      for (const f of state.view.grids.features) {
        if (f.properties.kind === "micro" || !inGeometry(p, f.geometry)) continue;
        votes.set(f.id, (votes.get(f.id) || 0) + 1);
      }
    }
  }
  let best = null;
  for (const [code, n] of votes) if (!best || n > votes.get(best)) best = code;
  return best;
}

// ---- drawing (terra-draw) --------------------------------------------------------------

let draw = null;

function startDrawing() {
  draw = new terraDraw.TerraDraw({
    adapter: new terraDrawMaplibreGlAdapter.TerraDrawMapLibreGLAdapter({ map }),
    modes: [new terraDraw.TerraDrawLineStringMode(), new terraDraw.TerraDrawPolygonMode()],
  });
  draw.start();
  draw.on("finish", (id) => {
    const feature = draw.getSnapshotFeature(id);
    draw.clear();
    if (!feature) return;
    if (state.tool === "split") splitAlong(feature.geometry);
    else if (state.tool === "paint") paintArea(feature.geometry);
  });
}

function splitAlong(line) {
  const grid = gridCrossed(line.coordinates) || state.selected[0];
  if (!grid) {
    showProblem(t("editor.failed.split"), new ApiError(422, "no_grid", t("editor.split.nogrid")));
    return;
  }
  edit("split", { grid, line }, t("editor.failed.split"));
}

function paintArea(area) {
  edit("paint", { grid: $("paint-target").value, area }, t("editor.failed.paint"));
}

// ---- tools ----------------------------------------------------------------------------

const TOOLS = ["split", "merge", "move", "paint", "lock"];

function useTool(tool) {
  state.tool = state.tool === tool ? null : tool;
  state.selected = [];
  state.vertex = null;
  for (const name of TOOLS) {
    $(`tool-${name}`).setAttribute("aria-pressed", String(state.tool === name));
  }
  if (draw) {
    draw.clear();
    draw.setMode(state.tool === "split" ? "linestring" : state.tool === "paint" ? "polygon"
      : "static");
  }
  $("paint-box").hidden = state.tool !== "paint";
  $("merge-apply").hidden = state.tool !== "merge";
  $("tool-cancel").hidden = !state.tool;
  showSelection();
  hint();
}
for (const name of TOOLS) $(`tool-${name}`).addEventListener("click", () => useTool(name));
$("tool-cancel").addEventListener("click", () => useTool(state.tool));

function hint() {
  let text = state.tool ? t(`editor.hint.${state.tool}`) : t("editor.hint.none");
  if (state.tool === "merge" && state.selected.length) {
    text = t("editor.hint.merge.selected", { codes: state.selected.join(", ") });
  }
  if (state.tool === "move" && state.vertex) text = t("editor.hint.move.to");
  $("tool-hint").textContent = text;
}

function showSelection() {
  if (!map.getLayer("draft-selected")) return;
  map.setFilter("draft-selected", codeFilter(state.selected));
  map.getSource("vertex").setData(state.vertex ? { type: "FeatureCollection", features: [
    { type: "Feature", properties: {}, geometry: { type: "Point", coordinates: state.vertex } }] }
    : EMPTY);
  $("merge-apply").disabled = state.selected.length < 2;
}

// the draft's vertex nearest to a click, within 24 px
function vertexNear(point) {
  let best = null;
  let bestD = 24;
  const walk = (c) => {
    if (typeof c[0] === "number") {
      const p = map.project(c);
      const d = Math.hypot(p.x - point.x, p.y - point.y);
      if (d < bestD) {
        bestD = d;
        best = c;
      }
    } else c.forEach(walk);
  };
  state.view.grids.features.forEach((f) => walk(f.geometry.coordinates));
  return best;
}

map.on("click", (e) => {
  if (!state.view || !state.tool || state.tool === "split" || state.tool === "paint") return;
  const code = gridAt(e.point);
  if (state.tool === "merge" && code) {
    state.selected = state.selected.includes(code) ? state.selected.filter((c) => c !== code)
      : [...state.selected, code];
  } else if (state.tool === "lock" && code) {
    const grid = state.view.grids.features.find((f) => f.id === code);
    edit("lock", { grid: code, locked: !grid.properties.locked }, t("editor.failed.lock"));
  } else if (state.tool === "move") {
    if (!state.vertex) {
      state.vertex = vertexNear(e.point);
      if (!state.vertex) {
        showProblem(t("editor.failed.move"), new ApiError(422, "no_vertex",
                                                          t("editor.move.novertex")));
      }
    } else {
      const at = state.vertex;
      state.vertex = null;
      edit("move_vertex", { at, to: [e.lngLat.lng, e.lngLat.lat] }, t("editor.failed.move"));
    }
  }
  showSelection();
  hint();
});

$("merge-apply").addEventListener("click", () => {
  edit("merge", { grids: state.selected }, t("editor.failed.merge"), $("merge-apply"));
});

// ---- a draft --------------------------------------------------------------------------

async function edit(op, params, what, control) {
  await busy(control, what, async () => {
    const { body, etag } = await api("POST", `/api/drafts/${state.draft}/edits`,
                                     { op, ...params });
    state.selected = [];
    show(body, etag);
  });
  showSelection();
  hint();
}

async function loadDraft(id) {
  const { body, etag } = await api("GET", `/api/drafts/${id}`);
  show(body, etag);
}

// the draft's answer: the map, the statistics, the defects, the buttons
function show(view, etag) {
  state.view = view;
  state.draft = view.draft.id;
  state.etag = etag;
  const rows = new Map(view.stats.grids.map((g) => [g.code, g]));
  const features = view.grids.features.map((f) => ({
    ...f, properties: { ...f.properties, ...(rows.get(f.id) || {}) } }));
  map.getSource("draft").setData({ type: "FeatureCollection", features });
  showStats(view);
  showDefects(view);
  showWarnings(view);
  showButtons();
  closeAbandon();
  fillPaintTargets(view);
  for (const id of ["edit-box", "stats-box", "publish-box", "diff-box"]) $(id).hidden = false;
  $("draft-info").textContent = t("editor.draft.info", {
    id: view.draft.id, title: view.draft.title, status: t(`editor.status.${view.draft.status}`),
    revision: view.draft.revision });
  document.body.dataset.draftStatus = view.draft.status;
  document.body.dataset.revision = String(view.draft.revision);
}

function showStats(view) {
  const body = $("stats").tBodies[0];
  body.replaceChildren(...view.stats.grids.map((g) => {
    const tr = el("tr");
    tr.dataset.code = g.code;
    tr.className = g.status;
    if (view.changed.includes(g.code)) tr.classList.add("changed");
    const name = el("th", null, g.code);
    name.scope = "row";
    name.append(el("br"), el("span", "name", g.name + (g.locked ? ` · ${t("editor.locked")}` : "")));
    const workers = `${g.full_time_workers}/${g.workers}`;
    const band = `${SYMBOL[g.status] || ""} ${g.status === "not_banded" ? t("editor.not.banded")
      : label("band", g.status)}`;
    tr.append(name, el("td", "households", g.households), el("td", null, g.residents),
              el("td", null, g.vulnerable_households), el("td", null, workers),
              el("td", "band", `${band} (${g.band_low}–${g.band_high})`));
    return tr;
  }));
  const households = view.stats.grids.reduce((s, g) => s + (g.kind === "micro" ? 0 : g.households), 0);
  $("stats-summary").textContent = t("editor.stats.summary", {
    grids: view.stats.grids.length, households, outside: view.stats.households_outside,
    ms: Math.round(view.stats.server_ms) });
}

function showDefects(view) {
  const list = $("defects");
  const items = view.stats.defects.map((d) => el("li", d.defect, t("editor.defect", {
    defect: label("defect", d.defect),
    where: [d.grid_code, d.other_code].filter(Boolean).join(" / ") || d.community_code || "",
    area: Math.round(d.area_m2).toLocaleString(i18n.language) })));
  list.replaceChildren(...(items.length ? items : [el("li", "none", t("editor.defects.none"))]));
}

// what stops publishing and what submitting must acknowledge, from the statistics
function showWarnings(view) {
  const out = [];
  const blocking = ["invalid", "gap", "overlap", "outside"];
  for (const d of view.stats.defects) {
    if (blocking.includes(d.defect)) {
      out.push(el("li", "blocking", t("editor.warn.blocking", {
        defect: label("defect", d.defect), grid: d.grid_code || d.community_code || "" })));
    }
  }
  for (const g of view.stats.grids) {
    if (["below", "above", "over_residents"].includes(g.status)) {
      out.push(el("li", "warning", t("editor.warn.band", {
        grid: g.code, households: g.households, band: label("band", g.status),
        low: g.band_low, high: g.band_high })));
    }
    if (g.kind === "comprehensive" && g.full_time_workers === 0) {
      out.push(el("li", "warning", t("editor.warn.worker", { grid: g.code })));
    }
  }
  for (const d of view.stats.defects) {
    if (!blocking.includes(d.defect)) {
      out.push(el("li", "warning", t("editor.warn.defect", {
        defect: label("defect", d.defect), grid: d.grid_code || "" })));
    }
  }
  if (!out.length) out.push(el("li", "none", t("editor.warn.none")));
  $("warnings").replaceChildren(...out);
}

function showButtons() {
  const view = state.view;
  const status = view.draft.status;
  const open = status === "open";
  for (const name of TOOLS) $(`tool-${name}`).disabled = !open;
  $("undo").disabled = !open || !view.can_undo;
  $("redo").disabled = !open || !view.can_redo;
  $("submit").disabled = !open;
  $("approve").disabled = status !== "submitted";
  $("publish").disabled = status !== "approved";
  $("abandon").disabled = !LIVE.includes(status);
  if (!open && state.tool) useTool(state.tool);  // a closed draft takes no more edits
}

function fillPaintTargets(view) {
  const keep = $("paint-target").value;
  $("paint-target").replaceChildren(...view.stats.grids.filter((g) => g.kind === "comprehensive")
    .map((g) => {
      const option = el("option", null, `${g.code} ${g.name}`);
      option.value = g.code;
      return option;
    }));
  if (keep) $("paint-target").value = keep;
}

$("undo").addEventListener("click", () => busy($("undo"), t("editor.failed.undo"), async () => {
  const { body, etag } = await api("POST", `/api/drafts/${state.draft}/undo`);
  show(body, etag);
}));
$("redo").addEventListener("click", () => busy($("redo"), t("editor.failed.redo"), async () => {
  const { body, etag } = await api("POST", `/api/drafts/${state.draft}/redo`);
  show(body, etag);
}));

// ---- submit, approve, publish ----------------------------------------------------------

$("submit").addEventListener("click", () => busy($("submit"), t("editor.failed.submit"),
                                                 async () => {
  const note = $("note").value.trim();
  const { body, etag } = await api("POST", `/api/drafts/${state.draft}/submit`, {
    note: note || null, acknowledge: $("acknowledge").checked });
  show(body, etag);
  $("summary").textContent = t(body.draft.status === "approved" ? "editor.done.approved"
    : "editor.done.submitted", { id: state.draft });
}));

$("approve").addEventListener("click", () => busy($("approve"), t("editor.failed.approve"),
                                                  async () => {
  const note = $("note").value.trim();
  await api("POST", `/api/drafts/${state.draft}/approve`, { note: note || null });
  await loadDraft(state.draft);
  $("summary").textContent = t("editor.done.approved", { id: state.draft });
}));

$("publish").addEventListener("click", () => busy($("publish"), t("editor.failed.publish"),
                                                  async () => {
  const { body } = await api("POST", `/api/drafts/${state.draft}/publish`);
  await loadDraft(state.draft);
  await Promise.all([loadPublished(), loadHistory(), loadDrafts()]);
  $("summary").textContent = t("editor.done.published", {
    id: body.draft, grids: body.grids.length, households: body.moved.household || 0 });
}));

// ---- abandon ---------------------------------------------------------------------------
// Abandoning closes a draft for good: none of it is published and it takes no more edits,
// submitting or approval (the API keeps its grids and edit log, readable). The button only
// asks: the question says what would be lost (the draft against the published grids) and
// nothing is sent until it is confirmed — with the draft's ETag, so a change made by someone
// else meanwhile is refused (412) rather than abandoned unseen.

const LIVE = ["open", "submitted", "approved"];

function closeAbandon() {
  $("abandon-box").hidden = true;
  $("abandon").setAttribute("aria-expanded", "false");
}

$("abandon").addEventListener("click", () => busy($("abandon"), t("editor.failed.abandon"),
                                                  async () => {
  const { body } = await api("GET", `/api/drafts/${state.draft}/diff`);
  $("abandon-loss").textContent = t("editor.abandon.loss", {
    id: state.draft, title: state.view.draft.title, grids: body.grids.length,
    households: body.households_moved });
  $("abandon-box").hidden = false;
  $("abandon").setAttribute("aria-expanded", "true");
  $("abandon-keep").focus();
}));

$("abandon-keep").addEventListener("click", () => {
  closeAbandon();
  $("abandon").focus();
});

$("abandon-yes").addEventListener("click", () => busy($("abandon-yes"),
                                                      t("editor.failed.abandon"), async () => {
  const id = state.draft;
  await api("POST", `/api/drafts/${id}/abandon`, { note: $("abandon-note").value.trim() || null });
  $("abandon-note").value = "";
  await Promise.all([loadDraft(id), loadDrafts()]);
  $("summary").textContent = t("editor.done.abandoned", { id });
}));

// ---- the difference --------------------------------------------------------------------

function showDiff(grids, moved, movedCount, title) {
  $("diff").tBodies[0].replaceChildren(...grids.map((g) => {
    const tr = el("tr", g.change);
    tr.dataset.code = g.code;
    tr.append(el("td", null, g.code), el("td", null, t(`editor.change.${g.change}`)));
    return tr;
  }));
  $("diff-summary").textContent = t("editor.diff.summary", {
    title, grids: grids.length, households: movedCount });
  $("moved").replaceChildren(...(moved || []).slice(0, 500).map((m) => el("li", null,
    t("editor.moved.one", { id: m.id, from: m.from_grid || "—", to: m.to_grid || "—" }))));
  const codes = (kind) => grids.filter((g) => g.change === kind).map((g) => g.code);
  map.setFilter("diff-added", codeFilter(codes("added")));
  map.setFilter("diff-reshaped", codeFilter([...codes("reshaped"), ...codes("renamed")]));
  map.setFilter("diff-retired", codeFilter(codes("retired")));
}

$("diff-draft").addEventListener("click", () => busy($("diff-draft"), t("editor.failed.diff"),
                                                     async () => {
  const { body } = await api("GET", `/api/drafts/${state.draft}/diff`);
  showDiff(body.grids, body.households, body.households_moved, t("editor.diff.draft"));
}));
$("diff-clear").addEventListener("click", () => showDiff([], [], 0, ""));

// ---- the community: its published grids, drafts and history -----------------------------

async function loadPublished() {
  const { body } = await api("GET", `/api/grids.geojson?community=${state.community}`);
  map.getSource("published").setData(body);
  return body;
}

async function loadDrafts() {
  const { body } = await api("GET", "/api/drafts");
  const mine = body.filter((d) => ["open", "submitted", "approved"].includes(d.status)
    && (d.area_code === state.community || state.community.startsWith(d.area_code.slice(0, 9))
        && d.area_code.endsWith("000")));
  $("drafts").replaceChildren(...mine.map((d) => {
    const option = el("option", null, t("editor.draft.option", {
      id: d.id, title: d.title, status: t(`editor.status.${d.status}`) }));
    option.value = d.id;
    return option;
  }));
  if (!mine.length) $("drafts").append(el("option", null, t("editor.drafts.none")));
  $("continue-draft").disabled = !mine.length;
}

async function loadHistory() {
  const { body } = await api("GET", `/api/communities/${state.community}/versions`);
  state.versions = body;
  const current = body.length ? body[0].version : null;
  $("history").replaceChildren(...body.map((v) => {
    const li = el("li");
    li.dataset.version = v.version;
    li.append(el("span", "version", t("editor.version", {
      version: v.version, at: i18n.formatTime(v.valid_from), grids: v.grids,
      author: v.author || "—", note: v.note || "" })));
    const row = el("div", "row");
    if (v.version !== current) {
      row.append(button(t("editor.diff.version"), (e) => busy(e.currentTarget,
        t("editor.failed.diff"), async () => {
          const { body: d } = await api("GET",
            `/api/communities/${state.community}/diff?from=${v.version}`);
          showDiff(d.grids, d.households, d.households_moved,
                   t("editor.diff.versions", { from: d.from_version, to: d.to_version }));
        })), button(t("editor.restore"), (e) => restore(v.version, current, e.currentTarget)));
    } else {
      row.append(el("span", "current", t("editor.current")));
    }
    li.append(row);
    return li;
  }));
  $("history-box").hidden = false;
}

function restore(version, current, control) {
  return busy(control, t("editor.failed.restore"), async () => {
    const { body } = await api("POST", `/api/communities/${state.community}/restore`, {
      version, note: $("restore-note").value.trim(), expected_version: current });
    await Promise.all([loadPublished(), loadHistory()]);
    $("summary").textContent = t("editor.done.restored", { version, grids: body.grids.length });
  });
}

async function pickCommunity() {
  state.community = $("community").value;
  state.draft = null;
  state.view = null;
  const community = state.communities.find((f) => f.properties.code === state.community);
  map.getSource("communities").setData({ type: "FeatureCollection", features: [community] });
  map.getSource("draft").setData(EMPTY);
  for (const id of ["edit-box", "stats-box", "publish-box", "diff-box"]) $(id).hidden = true;
  $("draft-info").textContent = "";
  const view = bounds({ features: [community] });
  if (!view.isEmpty()) map.fitBounds(view, { padding: 30, animate: false });
  await busy($("community"), t("editor.failed.community"), () => Promise.all([
    loadPublished(), loadDrafts(), loadHistory()]));
}
$("community").addEventListener("change", pickCommunity);

$("open-draft").addEventListener("click", () => busy($("open-draft"), t("editor.failed.open"),
                                                     async () => {
  const name = $("community").selectedOptions[0].textContent;
  const { body, etag } = await api("POST", "/api/drafts", {
    area: state.community, title: t("editor.draft.title", { name, date: new Date()
      .toLocaleDateString(i18n.language) }) });
  show(body, etag);
  await loadDrafts();
  $("drafts").value = String(body.draft.id);
}));

$("continue-draft").addEventListener("click", () => busy($("continue-draft"),
                                                         t("editor.failed.open"),
                                                         () => loadDraft($("drafts").value)));

// ---- locate ----------------------------------------------------------------------------

$("locate-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const parts = $("locate-xy").value.split(/[\s,，]+/).filter(Boolean).map(Number);
  const out = $("locate-result");
  if (parts.length !== 2 || parts.some(Number.isNaN)) {
    out.textContent = t("editor.locate.help");
    return;
  }
  busy(e.submitter, t("editor.failed.locate"), async () => {
    const { body } = await api("GET", `/api/locate?lon=${parts[0]}&lat=${parts[1]}`);
    out.dataset.grid = body.inside ? body.grid.code : "";
    out.textContent = body.inside ? t("editor.locate.grid", { code: body.grid.code,
                                                              name: body.grid.name })
      : t("editor.locate.outside");
  });
});

// ---- the panel on a phone --------------------------------------------------------------

function toggle(control, target) {
  const open = control.getAttribute("aria-expanded") !== "true";
  control.setAttribute("aria-expanded", String(open));
  target.classList.toggle("open", open);
}
$("panel-toggle").addEventListener("click", () => toggle($("panel-toggle"), $("panel")));
$("menu-toggle").addEventListener("click", () => toggle($("menu-toggle"),
                                                        document.querySelector("header")));

// ---- start ----------------------------------------------------------------------------

async function start() {
  await i18n.ready;
  await new Promise((resolve) => (map.loaded() ? resolve() : map.once("load", resolve)));
  addLayers();
  startDrawing();
  hint();
  const { body: me } = await api("GET", "/auth/me");
  state.me = me;
  const editor = ["planner", "admin"].includes(me.role);
  $("who").textContent = me.name ? t("account.who", { name: me.name, role: label("role", me.role) })
    : "";
  $("who").hidden = !me.name;
  $("login").hidden = Boolean(me.name);
  if (!editor) {
    $("summary").textContent = t(me.name ? "editor.not.planner" : "editor.sign.in");
    $("open-draft").disabled = true;
    $("continue-draft").disabled = true;
    window.gridmapReady = true;
    return;
  }
  const { body: communities } = await api("GET", "/api/communities.geojson");
  state.communities = communities.features;
  $("community").replaceChildren(...communities.features.map((f) => {
    const option = el("option", null, `${f.properties.name} (${f.properties.code})`);
    option.value = f.properties.code;
    return option;
  }));
  $("summary").textContent = t("editor.ready", { n: communities.features.length });
  if (communities.features.length) await pickCommunity();
  window.gridmapReady = true;
}

start().catch((err) => {
  window.gridmapError = err.message;
  showProblem(t("editor.failed.start"), err instanceof ApiError ? err : new ApiError(-1, "", err.message));
});
