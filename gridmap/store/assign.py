"""Grid assignment stored in the database: in PostGIS (SQL) or computed in Python by
:mod:`gridmap.analysis.assign` and written back. Both apply the same rule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import geopandas as gpd
import pandas as pd
import psycopg
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.engine import Connection

from gridmap.analysis.assign import GridIndex, build_grid_index, points_to_grids
from gridmap.store.sqlfiles import read_sql

POINT_TABLES = {"households": "household", "facilities": "facility", "incidents": "incident"}
Engine = Literal["python", "postgis"]


@dataclass
class AssignResult:
    layer: str
    rows: int
    inside: int
    changed: int

    def __str__(self) -> str:
        return (f"{self.layer}: {self.rows} rows, {self.inside} in a grid, "
                f"{self.rows - self.inside} outside every grid, {self.changed} changed")


def _raw(conn: Connection) -> psycopg.Connection:
    raw = conn.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    return raw


def _sql(name: str, **parts: sql.Composable) -> sql.Composed:
    return sql.SQL(read_sql(name)).format(**parts)


def join_query(table: str) -> sql.Composed:
    """The point-in-grid join of *table* by the rule (what EXPLAIN is asked about)."""
    return _sql("assign_join.sql", points=sql.Identifier(table))


def _stage_query(table: str) -> sql.Composed:
    return _sql("assign_points.sql", points=sql.Identifier(table), join=join_query(table))


def _store_queries(table: str) -> tuple[sql.Composed, sql.Composed]:
    points = sql.Identifier(table)
    return (_sql("store_assigned_set.sql", points=points),
            _sql("store_assigned_clear.sql", points=points))


def assign_query(table: str) -> sql.Composed:
    """The whole SQL script that re-assigns and stores every row of *table* in PostGIS."""
    return sql.SQL(";\n").join([_stage_query(table), *_store_queries(table)])


def read_grids(conn: Connection) -> gpd.GeoDataFrame:
    return gpd.read_postgis(
        text("SELECT code, name, kind, community_code, geom FROM grid ORDER BY code"),
        conn, geom_col="geom", crs=4326)


def grid_index(conn: Connection) -> GridIndex:
    return build_grid_index(read_grids(conn))


def _counts(conn: Connection, table: str) -> tuple[int, int]:
    row = _raw(conn).execute(sql.SQL(
        "SELECT count(*), count(grid_code) FROM {}").format(sql.Identifier(table))).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def assign_layer(conn: Connection, layer: str, *, engine: Engine = "python",
                 index: GridIndex | None = None) -> AssignResult:
    """Re-assign every point of *layer* (households, facilities, incidents) to its grid,
    in the caller's transaction."""
    if layer not in POINT_TABLES:
        raise ValueError(f"cannot assign {layer!r}: choose one of {', '.join(POINT_TABLES)}")
    table = POINT_TABLES[layer]
    raw = _raw(conn)
    if engine == "postgis":
        raw.execute(_stage_query(table))
    else:
        points = gpd.read_postgis(
            sql.SQL("SELECT id, geom FROM {}").format(sql.Identifier(table)).as_string(raw),
            conn, geom_col="geom", crs=4326)
        if index is None:
            index = grid_index(conn)
        codes = points_to_grids(points, index) if len(points) else pd.Series([], dtype=object)
        inside = codes.notna().to_numpy()
        raw.execute("CREATE TEMP TABLE gm_assigned (id text PRIMARY KEY, code char(15)) "
                    "ON COMMIT DROP")
        with raw.cursor() as cur, cur.copy("COPY gm_assigned (id, code) FROM STDIN") as copy:
            for pid, code in zip(points["id"].to_numpy()[inside].tolist(),
                                 codes[inside].astype(str).tolist(), strict=True):
                copy.write_row((pid, code))
    # the same two statements store either engine's answer; they touch only changed rows
    changed = sum(raw.execute(query).rowcount for query in _store_queries(table))
    raw.execute("DROP TABLE IF EXISTS gm_assigned")
    rows, inside = _counts(conn, table)
    if table == "household":
        raw.execute(read_sql("refresh_grid_load.sql"))
    if table == "incident":  # a case's community and township follow its grid
        raw.execute(read_sql("incident_divisions.sql"))
    return AssignResult(layer, rows, inside, changed)


def locate(conn: Connection, lon: float, lat: float) -> list[dict[str, str]]:
    """The grids containing a WGS84 point, the winner first (empty: outside every grid)."""
    rows = conn.execute(text(read_sql("locate_point.sql")),
                        {"lon": lon, "lat": lat}).mappings().all()
    return [dict(r) for r in rows]
