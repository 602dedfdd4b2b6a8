"""The walking network in the store."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import shapely
from sqlalchemy import text
from sqlalchemy.engine import Connection

from gridmap.analysis.network import WalkNetwork


def save_network(conn: Connection, nodes: gpd.GeoDataFrame, edges: gpd.GeoDataFrame) -> int:
    """Replace the stored walking network (one transaction with the caller's); an edge's
    ``name``, where the frame has the column, is its street's name (the basemap's label)."""
    raw = conn.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    raw.execute("TRUNCATE street_edge, street_node")
    nodes = nodes.to_crs(4326)
    edges = edges.to_crs(4326)
    with raw.cursor() as cur, cur.copy("COPY street_node (id, geom) FROM STDIN") as copy:
        wkb = shapely.to_wkb(shapely.set_srid(nodes.geometry.values, 4326), hex=True,
                             include_srid=True)
        for nid, g in zip(nodes["id"].astype(np.int64).tolist(), wkb, strict=True):
            copy.write_row((nid, g))
    lines = shapely.line_merge(edges.geometry.values)
    lines = np.array([g if g.geom_type == "LineString" else None for g in lines], dtype=object)
    wkb = [None if g is None else shapely.to_wkb(shapely.set_srid(g, 4326), hex=True,
                                                  include_srid=True) for g in lines]
    names = street_names(edges)
    with raw.cursor() as cur, cur.copy(
            "COPY street_edge (u, v, length_m, geom, name) FROM STDIN") as copy:
        for u, v, length, g, name in zip(edges["u"].astype(np.int64).tolist(),
                                         edges["v"].astype(np.int64).tolist(),
                                         edges["length"].astype(float).tolist(), wkb, names,
                                         strict=True):
            copy.write_row((u, v, length, g, name))
    return len(edges)


def street_names(edges: pd.DataFrame) -> list[str | None]:
    """Each edge's street name (its ``name`` column: OSM's ``name`` tag, the demo's
    generated names), None where it has none (no column, a missing or blank value).

    >>> street_names(pd.DataFrame({"name": ["翠华路", None, float("nan"), " ", 7]}))
    ['翠华路', None, None, None, None]
    """
    if "name" not in edges:
        return [None] * len(edges)
    return [value.strip() if isinstance(value, str) and value.strip() else None
            for value in edges["name"].tolist()]


def read_network(conn: Connection) -> WalkNetwork:
    nodes = gpd.read_postgis(text("SELECT id, geom FROM street_node"), conn, geom_col="geom",
                             crs=4326)
    edges = pd.read_sql(text("SELECT u, v, length_m AS length FROM street_edge"), conn)
    if edges.empty:
        raise ValueError("no walking network in the store: import one from OpenStreetMap "
                         "(gridmap import osm FILE.osm.pbf)")
    return WalkNetwork.from_frames(nodes, edges)
