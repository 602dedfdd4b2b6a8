// gridmap home page: communities and grids of the district on a MapLibre map.
// Everything is served by gridmap itself: no CDN, no tile server, no glyphs.
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
  const [summary, communities, grids, standard] = await Promise.all(
    ["/api/summary", "/api/communities.geojson", "/api/grids.geojson", "/api/standard"].map((u) =>
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

  map.addSource("grids", { type: "geojson", data: grids });
  map.addSource("communities", { type: "geojson", data: communities });
  map.addLayer({
    id: "grids-fill",
    type: "fill",
    source: "grids",
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
    id: "grids-line", type: "line", source: "grids",
    filter: ["==", ["get", "kind"], "comprehensive"],
    paint: { "line-color": "#ffffff", "line-width": 0.8 },
  });
  map.addLayer({
    id: "exclusive-fill", type: "fill", source: "grids",
    filter: ["!=", ["get", "kind"], "comprehensive"],
    paint: { "fill-color": "#9e6ac8", "fill-opacity": 0.8 },
  });
  map.addLayer({
    id: "communities-line", type: "line", source: "communities",
    paint: { "line-color": "#1f3b57", "line-width": 2 },
  });
  map.fitBounds(bounds(communities), { padding: 20, animate: false });

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
