"""Read an OpenStreetMap .pbf extract (pyrosm): building footprints (kept for the basemap
and the place search) and households estimated from them, POIs → facilities, and the
walking network."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.domain.layers import CARE_FLAGS
from gridmap.domain.osm import OsmRules
from gridmap.io.errors import ImportRejected, Problem

# a footprint smaller than this after repair is no building (a collapsed ring)
MIN_FOOTPRINT_M2 = 1.0


@dataclass
class OsmLayers:
    households: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame
    nodes: gpd.GeoDataFrame
    edges: gpd.GeoDataFrame      # u, v, length, name (the way's name tag), lines
    buildings: gpd.GeoDataFrame  # footprints: id, name, address, polygons
    fixes: list[Problem] = field(default_factory=list)  # buildings repaired or dropped


def _osm(path: Path):
    from pyrosm import OSM

    if not path.exists():
        raise ImportRejected(str(path), "no such file")
    try:
        return OSM(str(path))
    except Exception as exc:  # pyrosm raises bare exceptions on unreadable files
        raise ImportRejected(str(path), f"cannot be read as an OSM .pbf extract ({exc})") from exc


def repair_buildings(buildings: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, list[Problem]]:
    """The import rules for polygons, applied to OSM footprints: an invalid footprint
    (self-intersecting, clipped by the extract) is repaired with ``make_valid``; one whose
    rings collapse to nothing (zero area) is dropped. Each is reported by its OSM id."""
    geoms = np.asarray(buildings.geometry.values, dtype=object)
    fixes: list[Problem] = []
    keep = np.ones(len(geoms), dtype=bool)
    ids = buildings["id"].astype("int64").astype(str).to_numpy() if "id" in buildings \
        else np.arange(len(geoms)).astype(str)
    invalid = np.flatnonzero(~shapely.is_valid(geoms) & ~shapely.is_missing(geoms))
    for i in invalid:
        reason = shapely.is_valid_reason(geoms[i])
        parts = shapely.get_parts(shapely.make_valid(geoms[i], method="structure",
                                                     keep_collapsed=False))
        polys = [p for p in parts if p.geom_type in ("Polygon", "MultiPolygon")]
        geoms[i] = shapely.union_all(polys) if polys else shapely.Polygon()
        if geoms[i].is_empty:
            keep[i] = False
            fixes.append(Problem(int(i), f"osm way {ids[i]}", f"dropped: {reason}, no area "
                                 "left after repair", "building dropped (no area)"))
        else:
            fixes.append(Problem(int(i), f"osm way {ids[i]}", f"repaired: {reason}",
                                 "building repaired"))
    out = buildings.set_geometry(gpd.GeoSeries(geoms, index=buildings.index,
                                               crs=buildings.crs))
    if len(out):
        metric = out.geometry.to_crs(out.estimate_utm_crs()) if keep.any() else out.geometry
        tiny = keep & (metric.area.to_numpy() < MIN_FOOTPRINT_M2)
        for i in np.flatnonzero(tiny):
            fixes.append(Problem(int(i), f"osm way {ids[i]}", "dropped: a footprint of "
                                 f"{metric.area.iat[i]:.2f} m² (a collapsed ring)",
                                 "building dropped (no area)"))
        keep &= ~tiny
    return out[keep], fixes


def households_from_buildings(buildings: gpd.GeoDataFrame, rules: OsmRules
                              ) -> tuple[gpd.GeoDataFrame, list[Problem]]:
    """One household record per residential building, residents estimated by the rules;
    and the footprints repaired or dropped on the way (:func:`repair_buildings`)."""
    kind = buildings["building"].fillna("yes").astype(str)
    res = buildings[kind.isin(rules.residential)]
    res = res[res.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    res, fixes = repair_buildings(res)
    metric = res.to_crs(res.estimate_utm_crs()) if len(res) else res
    levels = pd.to_numeric(res.get("building:levels"), errors="coerce") \
        if "building:levels" in res else pd.Series(np.nan, index=res.index)
    levels = levels.where(levels > 0, rules.default_levels).fillna(rules.default_levels)
    area = metric.geometry.area.to_numpy() if len(res) else np.zeros(0)
    residents = np.maximum(np.round(area * levels.to_numpy() * rules.net_share
                                    / rules.m2_per_person), 1).astype(int)
    street = res.get("addr:street", pd.Series(None, index=res.index, dtype=object))
    number = res.get("addr:housenumber", pd.Series(None, index=res.index, dtype=object))
    ids = res["id"].astype("int64").astype(str)
    address = np.where(street.notna(), street.fillna("") + " " + number.fillna(""),
                       "OSM building " + ids)
    out = gpd.GeoDataFrame({
        "id": "osm-b" + ids, "address": address, "residents": residents,
        "footprint_m2": area, **dict.fromkeys(CARE_FLAGS, False)},
        geometry=res.geometry.representative_point().to_numpy(), crs=res.crs)
    return out.reset_index(drop=True), fixes


def _address(frame: gpd.GeoDataFrame) -> pd.Series:
    """``addr:street addr:housenumber`` of each building; None without a street."""
    street = frame.get("addr:street", pd.Series(None, index=frame.index, dtype=object))
    number = frame.get("addr:housenumber", pd.Series(None, index=frame.index, dtype=object))
    joined = (street.fillna("") + " " + number.fillna("")).str.strip()
    return joined.where(street.notna(), None)


def footprints_from_buildings(buildings: gpd.GeoDataFrame
                              ) -> tuple[gpd.GeoDataFrame, list[Problem]]:
    """Every building's footprint (residential or not) for the basemap, repaired as
    :func:`repair_buildings` does, with its OSM name and address where tagged."""
    polys = buildings[buildings.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    polys, fixes = repair_buildings(polys)
    name = polys.get("name", pd.Series(None, index=polys.index, dtype=object))
    out = gpd.GeoDataFrame({
        "id": "osm-b" + polys["id"].astype("int64").astype(str),
        "name": name.where(name.notna(), None), "address": _address(polys)},
        geometry=polys.geometry.to_numpy(), crs=polys.crs)
    return out.drop_duplicates("id").reset_index(drop=True), fixes


def facilities_from_pois(pois: gpd.GeoDataFrame, rules: OsmRules) -> gpd.GeoDataFrame:
    rows = []
    for rule, ftype in rules.poi_types.items():
        key, _, value = rule.partition("=")
        if key not in pois:
            continue
        match = pois[pois[key].astype(str) == value]
        for row in match.itertuples():
            rows.append({"id": f"osm-{row.osm_type[0]}{int(row.id)}", "type": ftype,
                         "name": row.name if isinstance(getattr(row, "name", None), str)
                         else f"{value} {int(row.id)}",
                         "capacity": None, "geometry": row.geometry.representative_point()})
    frame = gpd.GeoDataFrame(rows, columns=["id", "type", "name", "capacity", "geometry"],
                             geometry="geometry", crs=pois.crs if len(pois) else 4326)
    return frame.drop_duplicates("id").reset_index(drop=True)


def _edges(edges: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The walking network's edges: their ends, length and line, and the way's ``name`` tag
    (the street's name on the basemap and in the place search; None where untagged)."""
    name = edges["name"] if "name" in edges else pd.Series(None, index=edges.index,
                                                           dtype=object)
    out = edges[["u", "v", "length", "geometry"]].copy()
    out.insert(3, "name", name.where(name.notna(), None).astype(object))
    return out


def read_osm(path: str | Path, *, rules: OsmRules | None = None) -> OsmLayers:
    """Households, facilities, building footprints and the walking network of an OSM
    extract."""
    rules = rules or OsmRules()
    path = Path(path)
    osm = _osm(path)
    network = osm.get_network(network_type="walking", nodes=True)
    if network is None or network[1] is None or len(network[1]) == 0:
        raise ImportRejected(str(path), "the extract has no walkable street network "
                             "(no highway=* ways for walking); coverage along streets "
                             "needs one")
    nodes, edges = network
    buildings = osm.get_buildings()
    if buildings is None or buildings.empty:
        raise ImportRejected(str(path), "the extract has no buildings to estimate households")
    keys = {rule.partition("=")[0] for rule in rules.poi_types}
    pois = osm.get_pois(custom_filter={k: True for k in keys})
    if pois is None:
        pois = gpd.GeoDataFrame(columns=["id", "osm_type", "geometry"], geometry="geometry",
                                crs=4326)
    footprints, fixes = footprints_from_buildings(buildings)
    households, _ = households_from_buildings(buildings, rules)  # the same repairs
    return OsmLayers(households, facilities_from_pois(pois, rules),
                     nodes[["id", "geometry"]], _edges(edges),
                     footprints, fixes)
