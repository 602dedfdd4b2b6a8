// gridmap, indicators and hotspots (GET /stats): the KPIs of GET /api/incidents/kpis per grid,
// worker, community, township or category as totals, a bar chart (plain SVG) and a table;
// the hotspots of GET /api/incidents/hotspots (grids or H3 cells, GeoJSON) on a map, the
// flagged ones red and listed. Only the caller's cases count (the API scopes them).
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function fail(box, what, err) {
  box.className = "error";
  box.textContent = `${what}: ${err.message}`;
  if (err.status === 401) $("login").hidden = false;
}

// a rate as the page shows it: one decimal of a percent, "—" when there is none
const pct = (r) => (r === null || r === undefined ? "—" : `${(100 * r).toFixed(1)}%`);
const num = (n) => (n === null || n === undefined ? "—" : String(n));

// ---- indicators -----------------------------------------------------------------------

function kpiQuery() {
  const q = new URLSearchParams({ by: $("kpi-by").value });
  if ($("kpi-since").value) q.set("since", `${$("kpi-since").value}T00:00:00`);
  if ($("kpi-until").value) q.set("until", `${$("kpi-until").value}T00:00:00`);
  return q;
}

async function loadKpis() {
  const status = $("kpi-status");
  status.className = "";
  status.textContent = i18n.t("loading");
  const q = kpiQuery();
  $("kpi-csv").href = `/api/incidents/kpis?${q}&format=csv`;
  try {
    const rows = await getJSON(`/api/incidents/kpis?${q}`);
    window.kpiRows = rows;
    renderTotals(rows);
    renderChart(rows);
    renderTable(rows);
    status.textContent = rows.length ? "" : i18n.t("stats.none");
  } catch (err) {
    fail(status, i18n.t("stats.kpis.failed"), err);
  }
}

function renderTotals(rows) {
  const sum = (k) => rows.reduce((s, r) => s + (r[k] || 0), 0);
  const cases = sum("cases");
  const open = cases - sum("cancelled");
  const withDeadline = sum("closed_with_deadline");
  const totals = [
    ["cases", i18n.t("stats.cases"), num(cases)],
    ["closure", i18n.t("stats.closure"), pct(open ? sum("closed") / open : null)],
    ["on-time", i18n.t("stats.on.time"),
     pct(withDeadline ? sum("closed_on_time") / withDeadline : null)],
    ["overdue", i18n.t("case.overdue"), num(sum("overdue"))],
    ["returned", i18n.t("stats.returned"), num(sum("returned"))],
  ];
  $("kpi-totals").replaceChildren(...totals.map(([key, label, value]) => {
    const box = el("div");
    box.dataset.total = key;
    box.append(el("span", null, label), el("strong", null, value));
    return box;
  }));
}

const unitLabel = (r) => (r.name ? `${r.name} (${r.unit})` : r.unit || i18n.t("stats.unit.none"));

// horizontal bars: per unit the closure rate (dark) and the on-time rate (light), with the
// numbers written beside them (never colour alone)
function renderChart(rows) {
  const top = [...rows].sort((a, b) => b.cases - a.cases).slice(0, 15);
  const box = $("kpi-chart");
  if (!top.length) {
    box.replaceChildren();
    return;
  }
  // drawn at the box's own width, so that its text stays 16 px; on a phone each unit's
  // name goes above its bars
  const width = Math.max(300, Math.round(box.clientWidth || 720));
  const narrow = width < 560;
  const labelW = narrow ? 0 : 250;
  const barW = width - labelW - 110;
  const top0 = narrow ? 24 : 4;  // where the bars start within a row
  const rowH = top0 + 46;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${top.length * rowH + 10}`,
                             role: "img", "aria-labelledby": "kpi-chart-title" });
  chart.append(svg("title", { id: "kpi-chart-title" }, i18n.t("stats.chart")));
  const most = narrow ? Math.floor(width / 9) : 24;
  top.forEach((r, i) => {
    const y = i * rowH;
    const g = svg("g", { "data-unit": r.unit || "" });
    const label = unitLabel(r);
    g.append(svg("text", { x: 0, y: narrow ? y + 17 : y + 30 },
                 label.length > most ? `${label.slice(0, most - 1)}…` : label));
    const bars = [["closure_rate", "#1f3b57", 0, i18n.t("stats.bar.closed")],
                  ["on_time_rate", "#6baed6", 21, i18n.t("stats.bar.on.time")]];
    for (const [key, colour, dy, name] of bars) {
      const v = r[key];
      const w = v === null ? 0 : Math.max(1, v * barW);
      g.append(svg("rect", { x: labelW, y: y + top0 + dy, width: w, height: 18, fill: colour,
                             "data-key": key }));
      g.append(svg("text", { x: labelW + w + 6, y: y + top0 + dy + 15 }, `${name} ${pct(v)}`));
    }
    chart.append(g);
  });
  chart.append(svg("line", { x1: labelW, x2: labelW, y1: 0, y2: top.length * rowH,
                             stroke: "#4a5a6a" }));
  box.replaceChildren(chart);
}

function renderTable(rows) {
  const body = $("kpi-table").querySelector("tbody");
  body.replaceChildren(...rows.map((r) => {
    const tr = el("tr");
    tr.dataset.unit = r.unit || "";
    const handling = r.median_hours && r.median_hours.handling;
    const cells = [unitLabel(r), num(r.cases), num(r.closed), pct(r.closure_rate),
                   pct(r.on_time_rate), num(r.overdue), num(r.returned),
                   handling === undefined ? "—" : handling.toFixed(1)];
    const keys = ["unit", "cases", "closed", "closure_rate", "on_time_rate", "overdue",
                  "returned", "handling"];
    cells.forEach((c, i) => {
      const td = el(i ? "td" : "th", null, c);
      if (!i) td.scope = "row";
      td.dataset.key = keys[i];
      tr.append(td);
    });
    return tr;
  }));
}

$("kpi-form").addEventListener("submit", (e) => {
  e.preventDefault();
  loadKpis();
});

// ---- hotspots -------------------------------------------------------------------------

const map = baseMap();
map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");

async function loadHotspots() {
  const status = $("hot-status");
  status.className = "";
  status.textContent = i18n.t("loading");
  const q = new URLSearchParams({ unit: $("hot-unit").value, days: $("hot-days").value || "7",
                                  format: "geojson" });
  try {
    const fc = await getJSON(`/api/incidents/hotspots?${q}`);
    window.hotspots = fc;
    const data = { type: "FeatureCollection",
                   features: fc.features.filter((f) => f.geometry) };
    if (map.getSource("hot")) {
      map.getSource("hot").setData(data);
    } else {
      map.addSource("hot", { type: "geojson", data });
      map.addLayer({ id: "hot-fill", type: "fill", source: "hot", paint: {
        "fill-color": ["case", ["get", "flagged"], "#d7191c", "#c6d4e1"],
        "fill-opacity": ["case", ["get", "flagged"], 0.75, 0.45] } });
      map.addLayer({ id: "hot-line", type: "line", source: "hot", paint: {
        "line-color": ["case", ["get", "flagged"], "#111", "#6b7f93"],
        "line-width": ["case", ["get", "flagged"], 3, 1] } });
    }
    const b = new maplibregl.LngLatBounds();
    const walk = (c) => (typeof c[0] === "number" ? b.extend(c) : c.forEach(walk));
    data.features.forEach((f) => walk(f.geometry.coordinates));
    if (!b.isEmpty()) map.fitBounds(b, { padding: 30, animate: false, maxZoom: 15 });
    $("hot-rule").textContent = i18n.t("stats.rule", { rule: fc.rule, days: fc.days,
                                                   history: fc.history });
    const flagged = fc.features.filter((f) => f.properties.flagged);
    const list = $("hot-list");
    list.replaceChildren(...flagged.map((f) => {
      const p = f.properties;
      const li = el("li", "flagged",
        `⚠ ${i18n.t("stats.flagged.unit", {
          unit: p.name ? `${p.name} (${p.unit})` : p.unit, current: p.current,
          baseline: p.baseline_mean.toFixed(2), threshold: p.threshold })}`);
      li.dataset.unit = p.unit;
      return li;
    }));
    status.textContent = i18n.t("stats.flagged", { n: flagged.length, of: fc.features.length });
  } catch (err) {
    fail(status, i18n.t("stats.hotspots.failed"), err);
  }
}

$("hot-form").addEventListener("submit", (e) => {
  e.preventDefault();
  loadHotspots();
});

// ---- start ----------------------------------------------------------------------------

async function start() {
  const me = await getJSON("/auth/me");
  if (!me.name || !me.reads.includes("incidents")) {
    $("problem").hidden = false;
    $("problem-text").textContent = me.name
      ? i18n.t("case.forbidden") : i18n.t("stats.signin");
    $("login").hidden = Boolean(me.name);
    window.statsReady = true;
    return;
  }
  await Promise.all([loadKpis(), loadHotspots()]);
  window.statsReady = true;
}

map.on("load", () => i18n.ready.then(start).catch((err) => {
  $("problem").hidden = false;
  $("problem-text").textContent = i18n.t("problem.unexpected", { message: err.message });
  window.statsError = err.message;
}));
