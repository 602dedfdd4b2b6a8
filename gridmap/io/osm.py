"""Read an OpenStreetMap .pbf extract (pyrosm): buildings → households, POIs → facilities,
and the walking network."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from gridmap.domain.layers import CARE_FLAGS
from gridmap.domain.osm import OsmRules
from gridmap.io.errors import ImportRejected


@dataclass
class OsmLayers:
    households: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame
    nodes: gpd.GeoDataFrame
    edges: gpd.GeoDataFrame


def _osm(path: Path):
    from pyrosm import OSM

    if not path.exists():
        raise ImportRejected(str(path), "no such file")
    try:
        return OSM(str(path))
    except Exception as exc:  # pyrosm raises bare exceptions on unreadable files
        raise ImportRejected(str(path), f"cannot be read as an OSM .pbf extract ({exc})") from exc


def households_from_buildings(buildings: gpd.GeoDataFrame, rules: OsmRules) -> gpd.GeoDataFrame:
    """One household record per residential building, residents estimated by the rules."""
    kind = buildings["building"].fillna("yes").astype(str)
    res = buildings[kind.isin(rules.residential)]
    res = res[res.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    metric = res.to_crs(res.estimate_utm_crs()) if len(res) else res
    levels = pd.to_numeric(res.get("building:levels"), errors="coerce") \
        if "building:levels" in res else pd.Series(np.nan, index=res.index)
    levels = levels.where(levels > 0, rules.default_levels).fillna(rules.default_levels)
    area = metric.geometry.area.to_numpy() if len(res) else np.zeros(0)
    residents = np.maximum(np.round(area * levels.to_numpy() * rules.net_share
                                    / rules.m2_per_person), 1).astype(int)
    street = res.get("addr:street", pd.Series(None, index=res.index))
    number = res.get("addr:housenumber", pd.Series(None, index=res.index))
    ids = res["id"].astype("int64").astype(str)
    address = np.where(street.notna(), street.fillna("") + " " + number.fillna(""),
                       "OSM building " + ids)
    out = gpd.GeoDataFrame({
        "id": "osm-b" + ids, "address": address, "residents": residents,
        **dict.fromkeys(CARE_FLAGS, False)},
        geometry=res.geometry.representative_point().to_numpy(), crs=res.crs)
    return out.reset_index(drop=True)


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


def read_osm(path: str | Path, *, rules: OsmRules | None = None) -> OsmLayers:
    """Households, facilities and the walking network of an OSM extract."""
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
    return OsmLayers(households_from_buildings(buildings, rules),
                     facilities_from_pois(pois, rules),
                     nodes[["id", "geometry"]], edges[["u", "v", "length", "geometry"]])
