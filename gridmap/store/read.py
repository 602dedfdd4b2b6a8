"""Read layers out of the store as GeoDataFrames (what analysts load in notebooks)."""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import pandas as pd
from sqlalchemy import Select, func, select
from sqlalchemy.engine import Connection

from gridmap.domain.access import EVERYTHING, Scope
from gridmap.domain.layers import LAYERS
from gridmap.store import tables
from gridmap.store.scope import in_scope

_TABLES = {
    "division": tables.division,
    "grid": tables.grid,
    "household": tables.household,
    "facility": tables.facility,
    "incident": tables.incident,
    "grid_worker": tables.grid_worker,
}


def layer_query(layer_name: str) -> Select:
    """The SELECT of one layer, without generated columns or the households' partition key
    (the store's own, not the layer's)."""
    spec = LAYERS[layer_name]
    table = _TABLES[spec.table]
    cols = [c for c in table.columns if c.name not in ("geom_3857", "county_code")]
    query = select(*cols)
    if spec.division_level:
        query = query.where(table.c.level == spec.division_level)
    return query.order_by(table.c[spec.key])


def scope_column(table_name: str) -> Any:
    """The code that places a row of *table_name* in a caller's scope."""
    table = _TABLES[table_name]
    if table_name in ("division", "grid"):
        return table.c.code
    if table_name == "grid_worker":
        return func.coalesce(table.c.grid_code, table.c.division_code)
    if table_name == "incident":  # outside every grid: the township it was registered to
        return func.coalesce(table.c.grid_code, table.c.township_code)
    return table.c.grid_code


def read_layer(conn: Connection, layer_name: str, *, community: str | None = None,
               scope: Scope = EVERYTHING) -> gpd.GeoDataFrame | pd.DataFrame:
    """One layer as a GeoDataFrame in EPSG:4326 (workers: a DataFrame).

    With *community* (a 12-digit code), only what belongs to it: the community itself, its
    grids and their workers, and the points inside its boundary. With *scope*, only the rows
    whose division or grid code it covers.
    """
    spec = LAYERS[layer_name]
    query = _of(layer_query(layer_name), layer_name, community=community, scope=scope)
    if spec.geometry == "none":
        return pd.read_sql(query, conn)
    return gpd.read_postgis(query, conn, geom_col="geom", crs=4326)


def _of(query: Select, layer_name: str, *, community: str | None, scope: Scope) -> Select:
    """*query* on *layer_name*'s table, kept to the rows of *community* within *scope*."""
    spec = LAYERS[layer_name]
    query = query.where(in_scope(scope_column(spec.table), scope))
    if community is None:
        return query
    table = _TABLES[spec.table]
    if spec.table == "division":
        return query.where(table.c.code == community)
    if spec.table == "grid":
        return query.where(table.c.community_code == community)
    if spec.table == "grid_worker":
        return query.where(func.left(table.c.grid_code, 12) == community)
    boundary = select(tables.division.c.geom).where(
        tables.division.c.code == community).scalar_subquery()
    return query.where(func.ST_Intersects(table.c.geom, boundary))


def read_household_points(conn: Connection, *, community: str | None = None,
                          scope: Scope = EVERYTHING) -> gpd.GeoDataFrame:
    """Households as points with their ``residents`` and nothing else (what a balance
    needs), of one community or all, within *scope*. The coordinates come as two numbers
    and become points at once: no per-row parsing of WKB, so the whole district's 100,000
    households take a fraction of what :func:`read_layer` takes."""
    table = tables.household
    query = _of(select(func.ST_X(table.c.geom).label("x"), func.ST_Y(table.c.geom).label("y"),
                       table.c.residents).order_by(table.c.id),
                "households", community=community, scope=scope)
    frame = pd.read_sql(query, conn)
    return gpd.GeoDataFrame(frame[["residents"]],
                            geometry=gpd.points_from_xy(frame["x"], frame["y"]), crs=4326)


def division_exists(conn: Connection, code: str, level: str | None = None) -> bool:
    query = select(tables.division.c.code).where(tables.division.c.code == code)
    if level:
        query = query.where(tables.division.c.level == level)
    return conn.execute(query).first() is not None


def read_check_inputs(conn: Connection, *, community: str | None = None,
                      scope: Scope = EVERYTHING) -> dict[str, gpd.GeoDataFrame | pd.DataFrame]:
    """What a check report needs: communities, grids, households and workers (of one
    community, or all; within *scope*)."""
    frames = {name: read_layer(conn, name, community=community, scope=scope)
              for name in ("communities", "grids", "workers")}
    frames["households"] = read_household_points(conn, community=community, scope=scope)
    return frames


def read_coverage_inputs(conn: Connection, *, division: str | None = None,
                         scope: Scope = EVERYTHING
                         ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Households (with their stored grid) inside a division (any level), or all of them,
    within *scope*, and all facilities (those just across the boundary serve the division's
    residents too).
    Raises ValueError for an unknown division or one with no households."""
    if division is not None:
        if not division_exists(conn, division):
            raise ValueError(f"no division with code {division!r} in the store")
        boundary = select(tables.division.c.geom).where(
            tables.division.c.code == division).scalar_subquery()
    frames = []
    for name in ("households", "facilities"):
        table = _TABLES[LAYERS[name].table]
        query = layer_query(name)
        if name == "households":
            query = query.where(in_scope(table.c.grid_code, scope))
            if division is not None:
                query = query.where(func.ST_Intersects(table.c.geom, boundary))
        frames.append(gpd.read_postgis(query, conn, geom_col="geom", crs=4326))
    if frames[0].empty:
        where = f"in {division}" if division else "in the store"
        raise ValueError(f"there are no households {where}: import some first")
    return frames[0], frames[1]
