// gridmap home page: communities and grids of the district on a MapLibre map.
// Everything is served by gridmap itself (vector tiles included): no CDN, no glyphs.
"use strict";

// households per comprehensive grid against the deployment's standard (GET /api/standard)
const isRural = ["==", ["get", "urban_rural"], "rural"];

const map = new maplibregl.Map({
  container: "map",
  style: {
    version: 8,
    sources: {},
    layers: [{ id: "background", type: "background", paint: { "background-color": "#f4f1ea" } }],
  },
  center: [109.05, 34.2],
  zoom: 11,
  attributionControl: false,
});
map.addControl(new maplibregl.NavigationControl(), "top-right");
map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-right");

function bounds(fc) {
  const b = new maplibregl.LngLatBounds();
  const walk = (c) => (typeof c[0] === "number" ? b.extend(c) : c.forEach(walk));
  fc.features.forEach((f) => walk(f.geometry.coordinates));
  return b;
}

function popupHtml(props, fields) {
  const rows = fields
    .filter(([key]) => props[key] !== undefined && props[key] !== null)
    .map(([key, label]) => `<tr><td>${label}</td><td>${props[key]}</td></tr>`)
    .join("");
  return `<table>${rows}</table>`;
}

async function load() {
  const [summary, communities, standard] = await Promise.all(
    ["/api/summary", "/api/communities.geojson", "/api/standard"].map((u) =>
      fetch(u).then((r) => {
        if (!r.ok) throw new Error(`${u}: HTTP ${r.status}`);
        return r.json();
      })
    )
  );
  const low = ["case", isRural, standard.rural_households[0], standard.urban_households[0]];
  const high = ["case", isRural, standard.rural_households[1], standard.urban_households[1]];
  document.getElementById("band").textContent =
    `urban ${standard.urban_households.join("–")}, rural ${standard.rural_households.join("–")}`;
  document.getElementById("summary").textContent =
    `${summary.townships} townships · ${summary.communities} communities · ` +
    `${summary.grids} grids · ${summary.households.toLocaleString()} households`;

  const tiles = (layer) => ({
    type: "vector",
    tiles: [`${location.origin}/tiles/${layer}/{z}/{x}/{y}.mvt`],
    minzoom: 0,
    maxzoom: 22,
  });
  map.addSource("grids", tiles("grids"));
  map.addSource("communities", tiles("communities"));
  map.addSource("facilities", tiles("facilities"));
  map.addSource("incidents", tiles("incidents"));
  map.addLayer({
    id: "grids-fill",
    type: "fill",
    source: "grids",
    "source-layer": "grids",
    filter: ["==", ["get", "kind"], "comprehensive"],
    paint: {
      "fill-color": [
        "case",
        ["<", ["get", "households"], low], "#6baed6",
        [">", ["get", "households"], high], "#fb6a4a",
        "#74c476",
      ],
      "fill-opacity": 0.55,
    },
  });
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
  map.addLayer({
    id: "facilities", type: "circle", source: "facilities", "source-layer": "facilities",
    minzoom: 12,
    paint: { "circle-radius": 4, "circle-color": "#2171b5", "circle-stroke-color": "#fff",
             "circle-stroke-width": 1 },
  });
  map.addLayer({
    id: "incidents", type: "circle", source: "incidents", "source-layer": "incidents",
    minzoom: 12,
    filter: ["!", ["in", ["get", "status"], ["literal", ["closed", "evaluated", "cancelled"]]]],
    paint: { "circle-radius": 3, "circle-color": "#e6550d" },
  });
  map.fitBounds(bounds(communities), { padding: 20, animate: false });

  const fields = {
    facilities: [["name", "facility"], ["type", "type"], ["capacity", "capacity"]],
    incidents: [["category", "incident"], ["status", "status"], ["reported_at", "reported"]],
  };
  for (const layer of ["facilities", "incidents"]) {
    map.on("click", layer, (e) => {
      new maplibregl.Popup().setLngLat(e.lngLat)
        .setHTML(popupHtml(e.features[0].properties, fields[layer])).addTo(map);
      e.originalEvent.stopPropagation();
    });
  }
  for (const layer of ["exclusive-fill", "grids-fill"]) {
    map.on("click", layer, (e) => {
      const props = e.features[0].properties;
      new maplibregl.Popup()
        .setLngLat(e.lngLat)
        .setHTML(popupHtml(props, [
          ["name", "grid"], ["code", "code"], ["kind", "kind"], ["community", "community"],
          ["households", "households"], ["residents", "residents"], ["version", "version"],
        ]))
        .addTo(map);
      e.originalEvent.stopPropagation();
    });
    map.on("mouseenter", layer, () => (map.getCanvas().style.cursor = "pointer"));
    map.on("mouseleave", layer, () => (map.getCanvas().style.cursor = ""));
  }
  window.gridmapReady = true;
}

// the dispatcher's locate box: a point (lon, lat) in WGS84 / GCJ-02 / BD-09, or an address
// (partial, typos allowed) → grid and workers
let marker = null;
const out = document.getElementById("locate-result");

function describe(body) {
  const workers = body.workers.map((w) => `${w.name} (${w.role}) ${w.phone}`).join("; ");
  return `${body.township.name} › ${body.community.name} › ${body.grid.name} ` +
    `(${body.grid.code}) — ${workers || "no workers on record"}`;
}

async function locatePoint(lon, lat, crs) {
  const res = await fetch(`/api/locate?lon=${lon}&lat=${lat}&crs=${crs}`);
  const body = await res.json();
  if (!res.ok) {
    out.textContent = `error: ${JSON.stringify(body.detail)}`;
    return;
  }
  if (marker) marker.remove();
  marker = new maplibregl.Marker().setLngLat([body.lon, body.lat]).addTo(map);
  map.easeTo({ center: [body.lon, body.lat], zoom: Math.max(map.getZoom(), 14) });
  if (!body.inside) {
    out.textContent = body.message;
    return;
  }
  const near = body.near_edge
    ? ` — ${body.edge_distance_m} m from an edge; also: ${body.candidates.map((c) => c.code).join(", ")}`
    : "";
  out.textContent = describe(body) + near;
}

async function searchAddress(q) {
  const res = await fetch(`/api/search?q=${encodeURIComponent(q)}&limit=8`);
  const hits = await res.json();
  if (!res.ok) {
    out.textContent = `error: ${JSON.stringify(hits.detail)}`;
    return;
  }
  out.replaceChildren();
  if (!hits.length) {
    out.textContent = `no address matches “${q}”`;
    return;
  }
  const list = document.createElement("ol");
  list.id = "search-hits";
  for (const hit of hits) {
    const item = document.createElement("li");
    const pick = document.createElement("button");
    pick.type = "button";
    pick.textContent = hit.address;
    pick.addEventListener("click", () => locatePoint(hit.lon, hit.lat, "wgs84"));
    item.append(pick, ` ${hit.grid ? describe(hit) : "outside every grid"}`);
    list.append(item);
  }
  out.append(list);
}

async function locate(event) {
  event.preventDefault();
  const text = document.getElementById("locate-xy").value.trim();
  const numbers = text.split(/[ ,，]+/).map(Number);
  if (numbers.length === 2 && numbers.every(Number.isFinite)) {
    await locatePoint(numbers[0], numbers[1], document.getElementById("locate-crs").value);
  } else if (text.length >= 2) {
    await searchAddress(text);
  } else {
    out.textContent = "type lon, lat or an address (two characters at least)";
  }
}
document.getElementById("locate-form").addEventListener("submit", locate);

map.on("load", () => {
  load().catch((err) => {
    const low = ["case", isRural, standard.rural_households[0], standard.urban_households[0]];
  const high = ["case", isRural, standard.rural_households[1], standard.urban_households[1]];
  document.getElementById("band").textContent =
    `urban ${standard.urban_households.join("–")}, rural ${standard.rural_households.join("–")}`;
  document.getElementById("summary").textContent = `error: ${err.message}`;
    console.error(err);
  });
});
