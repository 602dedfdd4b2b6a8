// What gridmap's pages share (loaded before each page's own script).
"use strict";

// the server's `detail`: a sentence, or FastAPI's list of validation errors
function detailText(body) {
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => (d && d.msg ? `${(d.loc || []).slice(1).join(".")}: ${d.msg}`
      : JSON.stringify(d))).join("; ");
  }
  return detail ? JSON.stringify(detail) : "";
}

// an answer: its status (0: the network failed, *error* says how), ok, JSON body (null when
// it has none or it is not JSON, such as a proxy's error page) and ETag
async function fetchAnswer(url, init = {}) {
  let res;
  let text;
  try {
    res = await fetch(url, { credentials: "same-origin", ...init });
    text = await res.text();
  } catch (err) {
    return { status: 0, ok: false, body: null, etag: null, error: err.message };
  }
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  return { status: res.status, ok: res.ok, body, etag: res.headers.get("ETag") };
}

// the district's map with no layers yet: gridmap's own tiles are added by each page
function baseMap() {
  return new maplibregl.Map({
    container: "map",
    style: {
      version: 8,
      sources: {},
      layers: [{ id: "background", type: "background",
                 paint: { "background-color": "#f4f1ea" } }],
    },
    center: [109.05, 34.2],
    zoom: 11,
    attributionControl: false,
    localIdeographFontFamily: LABEL_FONT.join(", "),
  });
}

// a vector tile source of one of gridmap's layers
function tileSource(layer) {
  return {
    type: "vector",
    tiles: [`${location.origin}/tiles/${layer}/{z}/{x}/{y}.mvt`],
    minzoom: 0,
    maxzoom: 22,
  };
}

// labels are drawn in the browser from the installed CJK font (no glyph files: the style has
// no `glyphs`, so MapLibre draws every character locally, Chinese and Latin alike)
const LABEL_FONT = ["Noto Sans CJK SC", "Noto Sans SC", "sans-serif"];

// the basemap from gridmap's store, under everything a page adds after it: streets (the
// walking network) and building footprints (from zoom 13)
function addBasemap(map) {
  if (map.getSource("streets")) return;
  map.addSource("streets", tileSource("streets"));
  map.addSource("buildings", tileSource("buildings"));
  map.addLayer({
    id: "buildings-fill", type: "fill", source: "buildings", "source-layer": "buildings",
    minzoom: 13,
    paint: { "fill-color": "#d9d0c1", "fill-outline-color": "#b9ab94" },
  });
  map.addLayer({
    id: "streets-casing", type: "line", source: "streets", "source-layer": "streets",
    layout: { "line-cap": "round", "line-join": "round" },
    paint: { "line-color": "#c9c1b3",
             "line-width": ["interpolate", ["exponential", 1.5], ["zoom"], 11, 2, 16, 12] },
  });
  map.addLayer({
    id: "streets-line", type: "line", source: "streets", "source-layer": "streets",
    layout: { "line-cap": "round", "line-join": "round" },
    paint: { "line-color": "#ffffff",
             "line-width": ["interpolate", ["exponential", 1.5], ["zoom"], 11, 1, 16, 9] },
  });
}

// the streets' names along their lines (from zoom 13; one merged line per street and tile in
// the `street_labels` layer), above what a page draws over the basemap so its fills do not
// dim them: a page calls this after its own layers, before its other labels (the labels
// added later win where they collide). Dark grey on a white halo, drawn from the local font.
function addStreetLabels(map) {
  if (map.getLayer("streets-label")) return;
  map.addLayer({
    id: "streets-label", type: "symbol", source: "streets", "source-layer": "street_labels",
    minzoom: 13,
    layout: {
      "symbol-placement": "line",
      "symbol-spacing": 320,
      "text-field": ["get", "name"],
      "text-font": LABEL_FONT,
      "text-size": ["interpolate", ["linear"], ["zoom"], 13, 12, 17, 16],
      "text-max-angle": 35,
      "text-padding": 2,
    },
    paint: { "text-color": "#3d3d3d", "text-halo-color": "#ffffff", "text-halo-width": 2 },
  });
}

// a new element with a class and a text (never HTML: text is text)
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

// a button that calls *onClick*
function button(text, onClick, className) {
  const b = el("button", className, text);
  b.type = "button";
  b.addEventListener("click", onClick);
  return b;
}

// a request that failed: the server's words (its `detail`), and the status (0: no answer)
class RequestError extends Error {
  constructor(url, status, detail) {
    super(detail || i18n.t("http.status", { url, status }));
    this.url = url;
    this.status = status;
  }
}

// the body and ETag of an answer; a RequestError with the server's words if it failed
async function request(url, init = {}) {
  const answer = await fetchAnswer(url, init);
  if (answer.status === 0) {
    throw new RequestError(url, 0, i18n.t("problem.network", { url, message: answer.error }));
  }
  if (!answer.ok) throw new RequestError(url, answer.status, detailText(answer.body));
  return { body: answer.body, etag: answer.etag };
}

const getJSON = async (url, init) => (await request(url, init)).body;

// the value of a cookie of this site ("" when absent)
function cookie(name) {
  const hit = document.cookie.split("; ").find((c) => c.startsWith(`${name}=`));
  return hit ? decodeURIComponent(hit.slice(name.length + 1)) : "";
}

// ---- incidents (the dispatcher's and the grid worker's pages) ---------------------------

// a step of a case's timeline: the action's name, or the intake's, a re-routing's, the
// overdue job's warning or escalation
function eventLabel(action) {
  if (action.startsWith("escalate_")) return i18n.t("event.escalate");
  if (action.startsWith("warn_")) return i18n.t("event.warn");
  if (action === "collect" || action === "route") return i18n.t(`event.${action}`);
  return i18n.label("action", action);
}

// the box around a GeoJSON FeatureCollection
function bounds(fc) {
  const b = new maplibregl.LngLatBounds();
  const walk = (c) => (typeof c[0] === "number" ? b.extend(c) : c.forEach(walk));
  fc.features.forEach((f) => f.geometry && walk(f.geometry.coordinates));
  return b;
}

// load told by pattern as well as colour: dots below the band, hatching above it
function patternImage(kind) {
  const size = 12;
  const data = new Uint8Array(size * size * 4);
  const ink = (x, y) => {
    const i = (y * size + x) * 4;
    data.set([31, 59, 87, 200], i);
  };
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      if (kind === "above" && (x + y) % 6 === 0) ink(x, y);
      if (kind === "below" && x % 6 < 2 && y % 6 < 2) ink(x, y);
    }
  }
  return { width: size, height: size, data };
}
