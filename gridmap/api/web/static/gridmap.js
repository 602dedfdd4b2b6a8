// gridmap home page: communities and grids of the district on a MapLibre map.
// Everything is served by gridmap itself (vector tiles included): no CDN, no glyphs (labels
// are drawn from the installed CJK font). Streets and buildings lie under the grids, the
// names of communities and grids over them.
// Its words come from i18n.js (Chinese or English); a request that fails says so in the
// problem bar with a retry button, never a page stuck on "loading…".
// What is drawn follows what the caller may read (GET /auth/me): the public sees the
// boundaries only; a signed-in account sees its own divisions, with counts, facilities and
// incidents as its role allows. The page session is an HTTP-only cookie, sent with every
// same-origin request (tiles included); changes send the X-CSRF-Token header.
"use strict";

// households per comprehensive grid against the deployment's standard (GET /api/standard)
const isRural = ["==", ["get", "urban_rural"], "rural"];
const NEUTRAL_FILL = "#b8c2cc";

const map = baseMap();
map.addControl(new maplibregl.NavigationControl(), "top-right");
map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-right");

const $ = (id) => document.getElementById(id);
const { t, tn, label } = i18n;
// on a phone the legend starts folded (a tap on its title opens it): the map needs the room,
// and the header's links and switches sit behind its menu button
const PHONE = window.matchMedia("(max-width: 700px)");
if (PHONE.matches) $("legend-box").open = false;
$("menu-toggle").addEventListener("click", () => {
  const open = $("menu-toggle").getAttribute("aria-expanded") !== "true";
  $("menu-toggle").setAttribute("aria-expanded", String(open));
  document.querySelector("header").classList.toggle("open", open);
});

// ---- requests -------------------------------------------------------------------------

// ---- who is calling -------------------------------------------------------------------

let me = { name: null, role: "public", reads: [], csrf_token: null };
const may = (resource) => me.reads.includes(resource);

function showAccount() {
  const signedIn = Boolean(me.name);
  $("who").textContent = signedIn ? t("account.who", { name: me.name, role: label("role", me.role) })
    : "";
  $("who").hidden = !signedIn;
  $("logout").hidden = !signedIn;
  $("login").hidden = signedIn;
  $("coverage-link").hidden = !may("counts");
  $("editor-link").hidden = !["planner", "admin"].includes(me.role);
}

async function signOut() {
  const button = $("logout");
  button.disabled = true;
  try {
    await getJSON("/auth/logout", {
      method: "POST",
      headers: { "X-CSRF-Token": me.csrf_token || cookie("gridmap_csrf") },
    });
  } catch (err) {
    if (err.status !== 401) {  // 401: the session had already ended
      $("summary").textContent = t("account.logout.failed", { message: err.message });
      button.disabled = false;
      return;
    }
  }
  location.reload();
}
$("logout").addEventListener("click", signOut);

// ---- the map --------------------------------------------------------------------------

// a value as the page shows it: a label of the vocabulary, a time, a grid kind, a number
function shown(value, kind) {
  if (kind === "time") return i18n.formatTime(value);
  if (kind === "kind") return t(`kind.${value}`);
  if (kind) return label(kind, value);
  return typeof value === "number" ? value.toLocaleString(i18n.language) : String(value);
}

// a popup's table, built as DOM nodes (names come from the data: never parsed as HTML)
function popupTable(props, fields) {
  const table = document.createElement("table");
  for (const [key, name, kind] of fields) {
    if (props[key] === undefined || props[key] === null) continue;
    const row = table.insertRow();
    row.insertCell().textContent = t(name);
    row.insertCell().textContent = shown(props[key], kind);
  }
  return table;
}

// a comprehensive grid's place against the standard's band (when its count is known)
function withBand(props, standard) {
  if (props.kind !== "comprehensive" || typeof props.households !== "number") return props;
  const [low, high] = props.urban_rural === "rural" ? standard.rural_households
    : standard.urban_households;
  const where = props.households < low ? "below" : props.households > high ? "above" : "within";
  return { ...props, band: where };
}

// the caller's divisions in numbers (a grid worker holds no township or community whole)
function showSummary(summary) {
  const parts = [];
  if (summary.townships) parts.push(tn("summary.townships", summary.townships));
  if (summary.communities) parts.push(tn("summary.communities", summary.communities));
  parts.push(tn("summary.grids", summary.grids), tn("summary.households", summary.households));
  $("summary").textContent = parts.join(" · ");
}

async function loadSummary() {
  if (!may("counts")) {
    $("summary").textContent = t("summary.signin");
    return;
  }
  try {
    showSummary(await getJSON("/api/summary"));
  } catch (err) {
    if (err.status === 401) $("summary").textContent = t("summary.signin");
    else if (err.status === 403) $("summary").textContent = t("summary.forbidden");
    else throw err;
  }
}

function showLegend(standard) {
  const counts = may("counts");
  for (const row of document.querySelectorAll("#legend [data-needs]")) {
    row.hidden = !may(row.dataset.needs);
  }
  $("legend-plain").hidden = counts;
  $("legend-note").hidden = counts;
  $("legend-title").textContent = counts ? t("legend.households") : t("legend.grids");
  for (const band of ["below", "within", "above"]) $(`band-${band}`).textContent = label("band", band);
  $("band").textContent = t("legend.band", { urban: standard.urban_households.join("–"),
                                             rural: standard.rural_households.join("–") });
}

// where to look: the caller's communities, or its grids when it holds grids only
async function extent() {
  const communities = await getJSON("/api/communities.geojson");
  if (communities.features.length) return bounds(communities);
  const grids = await getJSON("/api/grids.geojson");
  return grids.features.length ? bounds(grids) : null;
}

function band(low, high) {
  return ["case", ["<", ["get", "households"], low], "below",
          [">", ["get", "households"], high], "above", "within"];
}

function addLayers(standard) {
  if (map.getSource("grids")) return;  // a retry after a later step failed
  addBasemap(map);
  const low = ["case", isRural, standard.rural_households[0], standard.urban_households[0]];
  const high = ["case", isRural, standard.rural_households[1], standard.urban_households[1]];
  map.addSource("grids", tileSource("grids"));
  map.addSource("communities", tileSource("communities"));
  map.addLayer({
    id: "grids-fill",
    type: "fill",
    source: "grids",
    "source-layer": "grids",
    filter: ["==", ["get", "kind"], "comprehensive"],
    paint: {
      // without the counts permission the tiles carry no households: one neutral fill
      "fill-color": may("counts") ? [
        "case",
        ["<", ["get", "households"], low], "#6baed6",
        [">", ["get", "households"], high], "#fb6a4a",
        "#74c476",
      ] : NEUTRAL_FILL,
      // the streets and buildings show through
      "fill-opacity": ["interpolate", ["linear"], ["zoom"], 12, 0.55, 15, 0.4],
    },
  });
  if (may("counts")) {
    for (const kind of ["below", "above"]) {
      if (!map.hasImage(`band-${kind}`)) map.addImage(`band-${kind}`, patternImage(kind));
    }
    map.addLayer({
      id: "grids-pattern", type: "fill", source: "grids", "source-layer": "grids",
      filter: ["all", ["==", ["get", "kind"], "comprehensive"],
               ["!=", band(low, high), "within"]],
      paint: { "fill-pattern": ["concat", "band-", band(low, high)] },
    });
  }
  map.addLayer({
    id: "grids-line", type: "line", source: "grids", "source-layer": "grids",
    filter: ["==", ["get", "kind"], "comprehensive"],
    paint: { "line-color": "#ffffff", "line-width": 0.8 },
  });
  map.addLayer({
    id: "exclusive-fill", type: "fill", source: "grids", "source-layer": "grids",
    filter: ["!=", ["get", "kind"], "comprehensive"],
    paint: { "fill-color": "#9e6ac8", "fill-opacity": 0.8 },
  });
  map.addLayer({
    id: "communities-line", type: "line", source: "communities", "source-layer": "communities",
    paint: { "line-color": "#1f3b57", "line-width": 2 },
  });
  const points = [];
  if (may("facilities")) {
    map.addSource("facilities", tileSource("facilities"));
    map.addLayer({
      id: "facilities", type: "circle", source: "facilities", "source-layer": "facilities",
      minzoom: 12,
      paint: { "circle-radius": 4, "circle-color": "#2171b5", "circle-stroke-color": "#fff",
               "circle-stroke-width": 1 },
    });
    points.push(["facilities", [["name", "popup.facility"], ["type", "popup.type", "facility_type"],
                                ["capacity", "popup.capacity"]]]);
  }
  if (may("incidents")) {
    map.addSource("incidents", tileSource("incidents"));
    map.addLayer({
      id: "incidents", type: "circle", source: "incidents", "source-layer": "incidents",
      minzoom: 12,
      filter: ["!", ["in", ["get", "status"], ["literal", ["closed", "evaluated", "cancelled"]]]],
      paint: { "circle-radius": 3, "circle-color": "#e6550d" },
    });
    points.push(["incidents", [["category", "popup.incident"], ["status", "popup.status", "stage"],
                               ["reported_at", "popup.reported", "time"]]]);
  }
  addLabels();
  for (const [layer, fields] of points) {
    map.on("click", layer, (e) => {
      new maplibregl.Popup().setLngLat(e.lngLat)
        .setDOMContent(popupTable(e.features[0].properties, fields)).addTo(map);
      e.originalEvent.stopPropagation();
    });
  }
  for (const layer of ["exclusive-fill", "grids-fill"]) {
    map.on("click", layer, (e) => {
      new maplibregl.Popup()
        .setLngLat(e.lngLat)
        .setDOMContent(popupTable(withBand(e.features[0].properties, standard), [
          ["name", "popup.grid"], ["code", "popup.code"], ["kind", "popup.kind", "kind"],
          ["community", "popup.community"], ["households", "popup.households"],
          ["band", "popup.band", "band"], ["residents", "popup.residents"],
          ["version", "popup.version"],
        ]))
        .addTo(map);
      e.originalEvent.stopPropagation();
    });
    map.on("mouseenter", layer, () => (map.getCanvas().style.cursor = "pointer"));
    map.on("mouseleave", layer, () => (map.getCanvas().style.cursor = ""));
  }
}

// street names along the streets from zoom 13, community names from zoom 11, grid names
// from 14 (one point each in the tiles): dark text
// on a white halo (AA contrast on any fill), placed where they do not collide
function addLabels() {
  const text = (size) => ({
    "text-field": ["get", "name"],
    "text-font": LABEL_FONT,
    "text-size": size,
    "text-max-width": 8,
    "text-padding": 4,
  });
  const halo = { "text-color": "#1b1b1b", "text-halo-color": "#ffffff", "text-halo-width": 2 };
  addStreetLabels(map);  // the streets' names, under the grids' and communities'
  map.addLayer({
    id: "grids-label", type: "symbol", source: "grids", "source-layer": "grid_labels",
    minzoom: 14,
    filter: ["==", ["get", "kind"], "comprehensive"],
    layout: text(14), paint: halo,
  });
  map.addLayer({
    id: "communities-label", type: "symbol", source: "communities",
    "source-layer": "communities_labels", minzoom: 11, maxzoom: 14.5,
    layout: { ...text(16), "symbol-sort-key": ["-", 0, ["coalesce", ["get", "population"], 0]] },
    paint: { ...halo, "text-color": "#0d2a45" },
  });
}

// the page's steps, each retried from the problem bar if it fails: who calls, then what
// they may see
async function load() {
  let body;
  try {
    body = await getJSON("/auth/me");
  } catch (err) {
    if (err.status === 401) {  // a session that was revoked or expired: every request fails
      showAccount();
      throw new RequestError(err.url, 401, `${t("session.ended")}: ${err.message}`);
    }
    throw err;
  }
  me = body;
  showAccount();
  if (!may("boundaries")) {
    $("summary").textContent = t("summary.map.signin");
    $("legend").hidden = true;
    window.gridmapReady = true;
    return;
  }
  const [standard, view] = await Promise.all([getJSON("/api/standard"), extent(),
                                               loadSummary()]);
  showLegend(standard);
  addLayers(standard);
  if (view) map.fitBounds(view, { padding: 20, animate: false, maxZoom: 16 });
  else $("summary").textContent = t("summary.none");
  window.gridmapReady = true;
}

// a failed step: what failed and why, in words, with a retry (never a stuck "loading…")
function showProblem(err) {
  const what = err.url ? t(`what.${new URL(err.url, location.origin).pathname}`) : "";
  $("problem-text").textContent = err.status === 401 ? err.message
    : t("problem.failed", { what: what.startsWith("what.") ? err.url : what,
                            message: err.message });
  $("problem").hidden = false;
  $("summary").textContent = "";
  window.gridmapError = err.message;
  if (err.status === 401) $("login").hidden = false;
  if (!(err instanceof RequestError)) console.error(err);
}

function start() {
  $("problem").hidden = true;
  window.gridmapError = null;
  $("summary").textContent = t("loading");
  load().catch(showProblem);
}
$("problem-retry").addEventListener("click", start);

// a tile that fails: say why on the page (a 401 means the session ended meanwhile)
map.on("error", (e) => {
  const status = e.error && e.error.status;
  if (status === 401 || status === 403) {
    $("summary").textContent = status === 401 ? t("session.ended")
      : t("not.allowed", { message: e.error.message });
    return;
  }
  console.error(e.error || e);
});

// ---- the dispatcher's locate box --------------------------------------------------------
// a point (lon, lat) in WGS84 / GCJ-02 / BD-09, or an address (partial, typos allowed)
// → grid and workers
let marker = null;
const out = $("locate-result");

function workersText(workers) {
  if (workers.length) {
    return workers.map((w) => `${w.name} (${label("worker_role", w.role)}) ${w.phone}`).join("; ");
  }
  return may("workers") ? t("workers.none") : t("workers.signin");
}

function describe(body) {
  return `${body.township.name} › ${body.community.name} › ${body.grid.name} ` +
    `(${body.grid.code}) — ${workersText(body.workers || [])}`;
}

// a refusal or failure, as the server worded it; a sign-in link when signing in would help
function showError(err) {
  out.replaceChildren(`${err.message}`);
  out.classList.add("error");
  if (err.status === 401) {
    const link = document.createElement("a");
    link.href = `/login?next=${encodeURIComponent(location.pathname)}`;
    link.textContent = t("account.login");
    out.append(" — ", link);
  }
}

function showText(text) {
  out.classList.remove("error");
  out.textContent = text;
}

async function locatePoint(lon, lat, crs) {
  const query = new URLSearchParams({ lon, lat, crs });
  const body = await getJSON(`/api/locate?${query}`);
  if (marker) marker.remove();
  marker = new maplibregl.Marker().setLngLat([body.lon, body.lat]).addTo(map);
  map.easeTo({ center: [body.lon, body.lat], zoom: Math.max(map.getZoom(), 14) });
  if (!body.inside) {
    showText(body.message);
    return;
  }
  const candidates = body.candidates || [];
  const near = body.near_edge && candidates.length
    ? t("locate.edge", { m: body.edge_distance_m, codes: candidates.map((c) => c.code).join(", ") })
    : "";
  showText(describe(body) + near);
}

function scoreBadge(value) {
  const score = document.createElement("span");
  score.className = "score";
  score.textContent = t("search.score", { score: Math.round(value * 100) / 100 });
  return score;
}

function pickButton(text, lon, lat) {
  const pick = document.createElement("button");
  pick.type = "button";
  pick.textContent = text;
  pick.setAttribute("aria-label", t("search.pick", { address: text }));
  pick.addEventListener("click", () => run(() => locatePoint(lon, lat, "wgs84")));
  return pick;
}

// named places (roads, communities, grids, facilities; pinyin and initials too), with a
// warning when the best one is a guess, lies outside the caller's divisions, or the best
// ones lie far apart; a place outside the caller's divisions says so (in words, not colour)
function placeList(places) {
  const box = document.createDocumentFragment();
  if (places.warning) {
    const warn = document.createElement("p");
    warn.id = "search-warning";
    warn.textContent = `⚠ ${t(`search.${places.warning}`)}`;
    box.append(warn);
  }
  const list = document.createElement("ol");
  list.id = "place-hits";
  for (const hit of places.hits) {
    const item = document.createElement("li");
    const kind = hit.kind === "facility" ? label("facility_type", hit.type) : t(`place.${hit.kind}`);
    item.append(pickButton(hit.name, hit.lon, hit.lat), ` ${kind} `, scoreBadge(hit.score));
    if (hit.inside_scope === false) {  // a public place elsewhere, ranked after the caller's
      item.classList.add("elsewhere");
      item.append(" ", el("span", "elsewhere-note", `⚠ ${t("place.elsewhere")}`));
    }
    list.append(item);
  }
  box.append(list);
  return box;
}

async function searchAddress(q) {
  const query = new URLSearchParams({ q, limit: 8 });
  const [hits, places] = await Promise.all([
    getJSON(`/api/search?${query}`),
    getJSON(`/api/places?${query}`).catch(() => null),  // households are the answer; places help
  ]);
  out.classList.remove("error");
  out.replaceChildren();
  const placed = places && places.hits.length;
  if (!hits.length && !placed) {
    out.textContent = t("search.none", { q });
    return;
  }
  if (placed) out.append(placeList(places));
  if (!hits.length) return;
  const list = document.createElement("ol");
  list.id = "search-hits";
  for (const hit of hits) {
    const item = document.createElement("li");
    item.append(pickButton(hit.address || hit.grid_code || "—", hit.lon, hit.lat), " ",
                scoreBadge(hit.score), ` ${hit.grid ? describe(hit) : t("search.outside")}`);
    list.append(item);
  }
  out.append(list);
}

// one request at a time through the box: "locating…" until it answers, then the answer or
// the reason it failed (never a stuck "locating…")
async function run(task) {
  showText(t("locate.busy"));
  out.dataset.busy = "true";
  try {
    await task();
  } catch (err) {
    showError(err);
    if (!(err instanceof RequestError)) console.error(err);
  } finally {
    delete out.dataset.busy;
  }
}

function locate(event) {
  event.preventDefault();
  const text = $("locate-xy").value.trim();
  const numbers = text.split(/[ ,，]+/).map(Number);
  if (numbers.length === 2 && numbers.every(Number.isFinite)) {
    run(() => locatePoint(numbers[0], numbers[1], $("locate-crs").value));
  } else if (text.length >= 2) {
    run(() => searchAddress(text));
  } else {
    showText(t("locate.help"));
  }
}
$("locate-form").addEventListener("submit", locate);

// the words first (a failure there leaves the page's built-in Chinese), then the map
map.on("load", () => i18n.ready.then(start));
