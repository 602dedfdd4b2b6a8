"""Folium maps that work offline: Leaflet comes from the npm registry at set-up and is served
by gridmap (``assets="server"``) or embedded in the HTML (``assets="inline"``, for notebooks
and files), never fetched from a CDN. No base-map tiles either: these machines are offline,
so the maps draw the district's own boundaries on a plain background."""

from __future__ import annotations

import base64
from functools import cache
from typing import Literal

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from branca.element import Element, Figure

from gridmap.settings import PROJECT_ROOT

LEAFLET = PROJECT_ROOT / "web" / "node_modules" / "leaflet"
Assets = Literal["server", "inline"]
SERVER_PREFIX = "/static/vendor/leaflet"
# red (nobody reached) → yellow → green (everybody reached)
PALETTE = ["#d73027", "#fc8d59", "#fee08b", "#d9ef8b", "#91cf60", "#1a9850"]


@cache
def _data_uri(name: str, mime: str) -> str:
    path = LEAFLET / "dist" / name
    if not path.exists():
        raise RuntimeError(f"Leaflet is missing ({path}): run `make setup`")
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode()


def base_map(bounds: tuple[float, float, float, float], *, assets: Assets = "inline"
             ) -> folium.Map:
    """An empty map fitted to lon/lat *bounds*, with local Leaflet and no tiles."""
    m = folium.Map(tiles=None, control_scale=True, prefer_canvas=True)
    if assets == "server":
        m.default_js = [("leaflet", f"{SERVER_PREFIX}/leaflet.js")]
        m.default_css = [("leaflet_css", f"{SERVER_PREFIX}/leaflet.css")]
    else:
        m.default_js = [("leaflet", _data_uri("leaflet.js", "text/javascript"))]
        m.default_css = [("leaflet_css", _data_uri("leaflet.css", "text/css"))]
    root = m.get_root()
    assert isinstance(root, Figure)
    root.header.add_child(Element("<style>.leaflet-container{background:#f4f1ea}</style>"))
    minx, miny, maxx, maxy = bounds
    m.fit_bounds([[miny, minx], [maxy, maxx]])
    return m


def share_colour(share: float | None) -> str:
    if share is None or not np.isfinite(share):
        return "#cccccc"
    return PALETTE[min(int(share * len(PALETTE)), len(PALETTE) - 1)]


def _legend(title: str) -> Element:
    steps = "".join(
        f'<div><i style="background:{c};width:12px;height:12px;display:inline-block"></i> '
        f"{i * 100 // len(PALETTE)}–{(i + 1) * 100 // len(PALETTE)}%</div>"
        for i, c in enumerate(PALETTE))
    return Element(
        '<div style="position:fixed;bottom:24px;right:12px;z-index:1000;background:#fff;'
        f'padding:6px 10px;font:12px sans-serif;border-radius:4px"><b>{title}</b>{steps}</div>')


def coverage_map(units: gpd.GeoDataFrame, *, share: str = "residents_share",
                 uncovered: gpd.GeoDataFrame | None = None, sites: gpd.GeoDataFrame | None = None,
                 title: str = "Residents within reach", assets: Assets = "inline"
                 ) -> folium.Map:
    """A choropleth of *share* per unit (grid, community…), the households out of reach as
    dots, and suggested *sites* as rings."""
    units = units.to_crs(4326)
    minx, miny, maxx, maxy = (float(v) for v in units.total_bounds)
    m = base_map((minx, miny, maxx, maxy), assets=assets)
    shown = units[[c for c in units.columns if c != units.geometry.name]].copy()
    for col in shown.columns:
        if pd.api.types.is_float_dtype(shown[col]):
            shown[col] = shown[col].round(3)
    layer = gpd.GeoDataFrame(shown.astype(object).where(shown.notna(), None),
                             geometry=units.geometry, crs=4326)
    fields = [c for c in ("unit", "name", share, "residents", "vulnerable_share")
              if c in layer.columns]
    folium.GeoJson(
        layer.to_json(drop_id=True), name=title,
        style_function=lambda f: {"fillColor": share_colour(f["properties"].get(share)),
                                  "color": "#ffffff", "weight": 0.8, "fillOpacity": 0.75},
        tooltip=folium.GeoJsonTooltip(fields=fields),
    ).add_to(m)
    if uncovered is not None and len(uncovered):
        pts = uncovered.to_crs(4326)
        dots = gpd.GeoDataFrame({"address": pts.get("address", "").astype(str)},
                                geometry=pts.geometry.values, crs=4326)
        folium.GeoJson(
            dots.to_json(drop_id=True), name=f"out of reach ({len(dots):,})",
            marker=folium.CircleMarker(radius=2, color="#67001f", weight=0, fill=True,
                                       fill_opacity=0.8),
            tooltip=folium.GeoJsonTooltip(fields=["address"])).add_to(m)
    if sites is not None and len(sites):
        pts = sites.to_crs(4326)
        group = folium.FeatureGroup(name="suggested sites")
        for x, y in zip(pts.geometry.x, pts.geometry.y, strict=True):
            folium.CircleMarker([y, x], radius=9, color="#08306b", weight=3,
                                fill=False).add_to(group)
        group.add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    root = m.get_root()
    assert isinstance(root, Figure)
    root.html.add_child(_legend(title))
    return m


STATUS_COLOURS = {"below": "#6baed6", "within": "#74c476", "above": "#fb6a4a",
                  "over_residents": "#cb181d"}


def community_map(balance: gpd.GeoDataFrame, *, defects: gpd.GeoDataFrame | None = None,
                  facilities: gpd.GeoDataFrame | None = None, title: str = "",
                  assets: Assets = "inline") -> folium.Map:
    """A community's grids coloured by their load against the standard band (below, within,
    above, over the resident limit), partition defects in black, facilities as dots."""
    grids = balance.to_crs(4326)
    minx, miny, maxx, maxy = (float(v) for v in grids.total_bounds)
    m = base_map((minx, miny, maxx, maxy), assets=assets)
    cols = [c for c in ("code", "households", "residents", "band_low", "band_high", "status",
                        "excess") if c in grids]
    layer = gpd.GeoDataFrame(grids[cols].astype(object).where(grids[cols].notna(), None),
                             geometry=grids.geometry, crs=4326)
    folium.GeoJson(
        layer.to_json(drop_id=True), name="grids",
        style_function=lambda f: {
            "fillColor": STATUS_COLOURS.get(f["properties"].get("status"), "#cccccc"),
            "color": "#ffffff", "weight": 1, "fillOpacity": 0.7},
        tooltip=folium.GeoJsonTooltip(fields=cols)).add_to(m)
    if defects is not None and len(defects):
        bad = defects.to_crs(4326)
        folium.GeoJson(
            gpd.GeoDataFrame({"defect": bad["defect"].astype(str),
                              "area_m2": bad["area_m2"].astype(float)},
                             geometry=bad.geometry, crs=4326).to_json(drop_id=True),
            name=f"defects ({len(bad)})",
            style_function=lambda f: {"color": "#000000", "weight": 3, "fillOpacity": 0.4},
            tooltip=folium.GeoJsonTooltip(fields=["defect", "area_m2"])).add_to(m)
    if facilities is not None and len(facilities):
        fac = facilities.to_crs(4326)
        folium.GeoJson(
            gpd.GeoDataFrame({"name": fac["name"].astype(str), "type": fac["type"].astype(str)},
                             geometry=fac.geometry, crs=4326).to_json(drop_id=True),
            name="facilities",
            marker=folium.CircleMarker(radius=4, color="#08306b", fill=True, fill_opacity=0.9),
            tooltip=folium.GeoJsonTooltip(fields=["name", "type"])).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    legend = "".join(f'<div><i style="background:{c};width:12px;height:12px;'
                     f'display:inline-block"></i> {s.replace("_", " ")}</div>'
                     for s, c in STATUS_COLOURS.items())
    root = m.get_root()
    assert isinstance(root, Figure)
    root.html.add_child(Element(
        '<div style="position:fixed;bottom:24px;right:12px;z-index:1000;background:#fff;'
        f'padding:6px 10px;font:12px sans-serif;border-radius:4px"><b>{title}</b>{legend}'
        "</div>"))
    return m
