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
