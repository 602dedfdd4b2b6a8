// gridmap, the grid worker's phone page (GET /mine): my grid's open cases on a list and a
// small map; a case's steps the API allows me (accept, return, feed back) with a note and
// photos from the phone's camera; a new report at my position (or where I tap the map) with
// photos. Changes go with the page session's cookie and its X-CSRF-Token header; photos go
// as multipart/form-data, checked and stored by the server with the step.
"use strict";

const $ = (id) => document.getElementById(id);

const NEEDS_NOTE = new Set(["return", "reject", "cancel"]);
// open cases: every stage but the finished ones; mine first (dispatched to me, in hand)
const OPEN = ["dispatched", "handling", "returned", "reported", "collected", "registered",
              "verified"];
const COLOURS = { dispatched: "#7b3294", handling: "#7b3294", collected: "#1f78b4",
                  registered: "#e66101", returned: "#e66101", reported: "#1a9641",
                  verified: "#1a9641" };

// ---- requests -------------------------------------------------------------------------

function csrf() {
  return me.csrf_token || cookie("gridmap_csrf");
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
    const a = el("a", "button", i18n.t("account.login"));
    a.href = "/login?next=%2Fmine";
    box.append(" ", a);
  }
}

const when = (iso) => (iso ? i18n.formatTime(iso) : "—");

function stageBadge(stage) {
  const badge = el("span", "stage");
  const chip = el("i");
  chip.style.background = COLOURS[stage] || "#8c8c8c";
  badge.append(chip, i18n.label("stage", stage));
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
  if (input.files.length) box.append(el("span", "hint", i18n.tn("case.photos", input.files.length)));
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
    if (err.status !== 401) return problem(i18n.t("account.logout.failed", { message: err.message }));
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
    dot.title = `${c.id} ${i18n.label("stage", c.status)}`;
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
    addStreetLabels(map);  // the streets' names above my grid's fill
  }
}

// ---- my cases -------------------------------------------------------------------------

let cases = [];

async function loadCases() {
  const box = $("cases-status");
  if (!cases.length) say(box, i18n.t("loading"));
  try {
    const query = OPEN.map((s) => `stage=${s}`).join("&");
    const found = await getJSON(`/api/incidents?${query}&limit=200`);
    const rank = (c) => OPEN.indexOf(c.status);
    cases = found.sort((a, b) => rank(a) - rank(b) || (a.reported_at < b.reported_at ? 1 : -1));
    renderCases();
    say(box, "");
  } catch (err) {
    fail(box, i18n.t("cases.failed"), err);
  }
}

function renderCases() {
  const list = $("cases");
  list.replaceChildren();
  showPins(cases);
  if (!cases.length) {
    list.append(el("li", "empty", i18n.t("mine.none")));
    return;
  }
  for (const c of cases) {
    const item = el("li");
    const b = button("", () => openCase(c.id), `case-item${c.overdue.length ? " overdue" : ""}`);
    b.dataset.id = c.id;
    const top = el("span", "case-line");
    top.append(el("span", "case-id", c.id), stageBadge(c.status));
    if (c.overdue.length) top.append(el("span", "overdue-mark", `⚠ ${i18n.t("case.overdue")}`));
    const due = c.handle_due || c.verify_due || c.dispatch_due;
    b.append(top, el("span", null, c.category.split("/").slice(1).join(" / ")));
    if (c.description) b.append(el("span", "hint", c.description));
    if (due) b.append(el("span", "hint", i18n.t("case.due", { when: when(due) })));
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
    fail(status, i18n.t("case.failed", { id }), err);
  }
}

function photoImg(p) {
  const img = el("img");
  img.src = p.url;
  img.alt = i18n.t("case.photo", { id: p.id.slice(0, 6) });
  img.loading = "lazy";
  return img;
}

function renderCase() {
  const c = current.case;
  $("case-title").replaceChildren(el("span", "case-id", c.id), " ", stageBadge(c.status));
  if (c.overdue.length) $("case-title").append(el("span", "overdue-mark", `⚠ ${i18n.t("case.overdue")}`));
  const fields = $("case-fields");
  fields.replaceChildren();
  for (const [label, value] of [
    ["category", c.category], ["description", c.description],
    ["reporter", c.reporter], ["reported", when(c.reported_at)],
    ["handle_due", c.handle_due && when(c.handle_due)],
    ["grid", c.grid_code], ["assignee", c.assignee]]) {
    if (value) fields.append(el("dt", null, i18n.t(`case.field.${label}`)), el("dd", null, value));
  }
  $("case-photos").replaceChildren(...(c.photos || []).map(photoImg));
  const actions = $("case-actions");
  actions.replaceChildren();
  for (const action of c.next_actions) {
    const b = button(i18n.label("action", action), () => act(action),
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
    item.append(el("strong", null, eventLabel(e.action)),
                ` · ${when(e.at)} · ${e.actor || i18n.t("case.system")}`);
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
  const label = i18n.label("action", action);
  const note = $("case-note").value.trim();
  if (NEEDS_NOTE.has(action) && !note) {
    fail(status, i18n.t("case.note.needed", { action: label }));
    $("case-note").focus();
    return;
  }
  acting = true;
  const buttons = $("case-actions").querySelectorAll("button");
  for (const b of buttons) b.disabled = true;
  const files = [...$("case-photo").files];
  say(status, i18n.t("case.sending", { action: label })
      + (files.length ? ` (${i18n.tn("case.photos", files.length)})` : ""));
  try {
    await postForm(`/api/incidents/${encodeURIComponent(current.id)}/actions`,
                   { action, note }, files, { "If-Match": current.etag });
    $("case-note").value = "";
    $("case-photo").value = "";
    preview($("case-photo"), $("case-preview"));
    say(status, `✓ ${i18n.t("case.done", { action: label })}`, "ok");
    await loadCase(current.id);
  } catch (err) {
    if (err.status === 409 || err.status === 412) {
      fail(status, i18n.t("case.changed"), err);
      await loadCase(current.id);
    } else {
      fail(status, i18n.t("case.not.done", { action: label }), err);
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
  setPlace(e.lngLat.lng, e.lngLat.lat, i18n.t("mine.place.tapped"));
});

$("report-here").addEventListener("click", () => {
  const out = $("report-place");
  if (!navigator.geolocation) {
    fail(out, i18n.t("mine.place.unable"));
    return;
  }
  say(out, i18n.t("mine.place.finding"), "hint");
  navigator.geolocation.getCurrentPosition((pos) => {
    const { longitude, latitude, accuracy } = pos.coords;
    setPlace(longitude, latitude, i18n.t("mine.place.mine", { m: Math.round(accuracy) }));
    map.easeTo({ center: place, zoom: Math.max(map.getZoom(), 17) });
  }, (err) => {
    fail(out, i18n.t("mine.place.failed", { message: err.message }));
  }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 30000 });
});

async function loadCategories() {
  const select = $("report-category");
  try {
    const categories = await getJSON("/api/incident-categories");
    select.replaceChildren(new Option(i18n.t("report.choose"), ""), ...categories.map(
      (c) => new Option(`${c.major} / ${c.minor}${c.urgent ? i18n.t("report.urgent") : ""}`,
                        c.code)));
  } catch (err) {
    fail($("report-result"), i18n.t("report.categories.failed"), err);
  }
}

$("report-photo").addEventListener("change", () => preview($("report-photo"), $("report-preview")));

$("report-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const out = $("report-result");
  const category = $("report-category").value;
  if (!category) {
    fail(out, i18n.t("report.category.needed"));
    $("report-category").focus();
    return;
  }
  if (!place) {
    fail(out, i18n.t("mine.place.needed"));
    return;
  }
  const submit = $("report-submit");
  submit.disabled = true;
  say(out, i18n.t("sending"));
  try {
    const { body } = await postForm("/api/incidents", {
      lon: place[0], lat: place[1], crs: "wgs84", category,
      description: $("report-description").value.trim(),
    }, [...$("report-photo").files]);
    say(out, `✓ ${i18n.t("report.done", { id: body.id, grid: body.grid_code || "—" })}`, "ok");
    out.dataset.id = body.id;
    for (const w of body.warnings || []) out.append(el("span", "note", ` ⚠ ${w}`));
    $("report-description").value = "";
    $("report-photo").value = "";
    preview($("report-photo"), $("report-preview"));
    cases = [];
    loadCases();
  } catch (err) {
    fail(out, i18n.t("report.failed"), err);
  } finally {
    submit.disabled = false;
  }
});

// ---- start ----------------------------------------------------------------------------

async function start() {
  try {
    me = await getJSON("/auth/me");
  } catch (err) {
    problem(i18n.t("problem.failed", { what: "/auth/me", message: err.message }), start);
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
    problem(i18n.t("case.forbidden"));
    window.mineReady = true;
    return;
  }
  await Promise.all([loadCases(), loadCategories(),
                     fitToGrid().catch((err) => problem(i18n.t("mine.grid.failed", { message: err.message })))]);
  window.mineReady = true;
}

map.on("load", () => i18n.ready.then(start).catch((err) => {
  problem(i18n.t("problem.unexpected", { message: err.message }), start);
  window.mineError = err.message;
}));
