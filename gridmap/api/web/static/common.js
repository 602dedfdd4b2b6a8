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
