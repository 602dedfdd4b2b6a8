"""Grid assignment stored in the database: in PostGIS (SQL) or computed in Python by
:mod:`gridmap.analysis.assign` and written back. Both apply the same rule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
from psycopg import pq, sql
from psycopg.abc import Buffer
from psycopg.adapt import Loader
from sqlalchemy import text
from sqlalchemy.engine import Connection

from gridmap.analysis.assign import GridIndex, build_grid_index, points_to_grids
from gridmap.i18n import _, label
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
        return _("{layer}: {rows} rows, {inside} in a grid, {outside} outside every grid, "
                 "{changed} changed", layer=label("resource", self.layer), rows=self.rows,
                 inside=self.inside, outside=self.rows - self.inside, changed=self.changed)


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


def grid_index(conn: Connection, *, max_cells: int = 16_000_000) -> GridIndex:
    return build_grid_index(read_grids(conn), max_cells=max_cells)


def _counts(conn: Connection, table: str) -> tuple[int, int]:
    row = _raw(conn).execute(sql.SQL(
        "SELECT count(*), count(grid_code) FROM {}").format(sql.Identifier(table))).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


class _Raw(Loader):
    """A binary value as PostgreSQL sent it, for numpy to read."""

    format = pq.Format.BINARY

    def load(self, data: Buffer) -> bytes:
        return bytes(data)


NO_GRID = b" " * 15  # the stored grid of a point in none, as read (a char(15) of spaces)
_ARRAY = 20  # header of a one-dimensional binary array: dimensions, flags, type, length, base


def _fixed(data: bytes, dtype: str) -> np.ndarray:
    """The elements of a binary one-dimensional array of non-null fixed-width values: each is
    its length (4 bytes) then its bytes, so the whole is one strided view for numpy."""
    if len(data) < _ARRAY:  # no dimension: empty
        return np.zeros(0, dtype)
    return np.frombuffer(data, np.dtype([("length", ">i4"), ("value", dtype)]),
                         offset=_ARRAY)["value"]


def _read_points(raw: psycopg.Connection, table: str, *, area: bool
                 ) -> dict[str, np.ndarray]:
    """(id, x, y, grid_code) of the points to re-assign, each column fetched whole in one
    row and read by numpy without a Python object per point: x and y as float8 arrays, the
    stored grids as a char(15) array (:data:`NO_GRID` for none), the ids as one byte string
    of NUL-separated UTF-8 (a text holds no NUL) — ``id`` is a list of their bytes, decoded
    only for the rows written. Parsing the arrays into Python values took half the read
    (0.55 of 1.0 s a million)."""
    query = _sql("assign_read_area.sql" if area else "assign_read_all.sql",
                 points=sql.Identifier(table))
    whole = sql.SQL(
        "SELECT coalesce(string_agg(convert_to(id, 'UTF8'), '\\x00'::bytea), ''::bytea), "
        "coalesce(array_agg(x), '{{}}'), coalesce(array_agg(y), '{{}}'), "
        "coalesce(array_agg(coalesce(grid_code, %s)::char(15)), '{{}}') "
        "FROM ({}) AS q").format(query)
    with raw.cursor(binary=True) as cur:
        types = cur.adapters.types
        for oid in (types["float8"].array_oid, types["bpchar"].array_oid, types["bytea"].oid):
            cur.adapters.register_loader(oid, _Raw)
        row = cur.execute(whole, (NO_GRID.decode(),)).fetchone()
    assert row is not None
    ids, xs, ys, codes = row
    x, y = _fixed(xs, ">f8").astype(np.float64), _fixed(ys, ">f8").astype(np.float64)
    split = ids.split(b"\x00") if len(x) else []
    assert len(split) == len(x), "one id a point"
    return {"id": np.array(split, dtype=object), "x": x, "y": y,
            "grid_code": _fixed(codes, "S15")}


def _assign_in_python(conn: Connection, table: str, index: GridIndex, *, area: bool
                      ) -> tuple[int, list[str], tuple[int, int]]:
    """Look the points up in *index* and write only those whose grid changed; returns
    (rows written, the grids they left or joined, (points read, of which in a grid))."""
    from gridmap.store.load import copy_into

    raw = _raw(conn)
    points = _read_points(raw, table, area=area)
    x, y = points["x"], points["y"]
    pos = index.lookup(x, y) if len(x) else np.zeros(0, dtype=np.int32)
    stored = np.array([*(c.encode() for c in index.codes), NO_GRID], dtype="S15")
    old = points["grid_code"]
    changed = np.flatnonzero(stored[pos] != old)  # position -1: in no grid
    names = np.array([*index.codes, None], dtype=object)
    new = names[pos[changed]]
    left = [c.decode() for c in old[changed] if c != NO_GRID]
    raw.execute("CREATE TEMP TABLE gm_assigned (id text, code char(15)) ON COMMIT DROP")
    moved = pd.DataFrame({"id": [i.decode() for i in points["id"][changed]], "code": new})
    if len(moved):
        copy_into(conn, "gm_assigned", moved, ["id", "code"])
        raw.execute("ANALYZE gm_assigned")
    written = raw.execute(_sql("store_assigned_changed.sql", points=sql.Identifier(table))
                          ).rowcount if len(moved) else 0
    touched = {c for c in new if c is not None} | set(left)
    return written, sorted(touched), (len(pos), int((pos >= 0).sum()))


def assign_layer(conn: Connection, layer: str, *, engine: Engine = "python",
                 index: GridIndex | None = None, area: bool = False) -> AssignResult:
    """Re-assign the points of *layer* (households, facilities, incidents) to their grids,
    in the caller's transaction, writing only the rows whose grid changes.

    With *area* (python engine), only the points a redraw can move are looked at: those
    near the old or new shape of a grid in the temporary table ``gm_area`` (code, geom), as
    a publish fills it (``assign_area.sql``), those stored in such a grid, and those in no
    grid yet. Every other point lies in the same grids as before and keeps its grid.
    """
    if layer not in POINT_TABLES:
        raise ValueError(f"cannot assign {layer!r}: choose one of {', '.join(POINT_TABLES)}")
    table = POINT_TABLES[layer]
    raw = _raw(conn)
    touched: list[str] | None = None
    counted: tuple[int, int] | None = None
    if engine == "postgis":
        raw.execute(_stage_query(table))
        # the same two statements as ever: they touch only changed rows
        changed = sum(raw.execute(query).rowcount for query in _store_queries(table))
    else:
        if index is None:
            index = grid_index(conn)
        changed, touched, counted = _assign_in_python(conn, table, index, area=area)
    raw.execute("DROP TABLE IF EXISTS gm_assigned")
    # a full pass read every point: its counts are the table's
    rows, inside = counted if counted is not None and not area else _counts(conn, table)
    follow_assignment(conn, table, touched)
    return AssignResult(layer, rows, inside, changed)


def follow_assignment(conn: Connection, table: str, touched: list[str] | None = None) -> None:
    """What follows the grids stored for *table*'s points: the households and residents
    counted per grid (of the *touched* grids only, when given) and a case's community and
    township, which follow its grid."""
    raw = _raw(conn)
    if table == "household" and touched is None:
        raw.execute(read_sql("refresh_grid_load.sql"))
    elif table == "household" and touched:
        raw.execute("CREATE TEMP TABLE gm_touched ON COMMIT DROP AS "
                    "SELECT unnest(%s::text[])::char(15) AS code", (touched,))
        raw.execute("ANALYZE gm_touched")  # else a guess of its size plans a scan of them all
        raw.execute(read_sql("refresh_grid_load_touched.sql"))
        raw.execute("DROP TABLE gm_touched")
    if table == "incident":
        raw.execute(read_sql("incident_divisions.sql"))


def assign_frame(conn: Connection, points: gpd.GeoSeries) -> np.ndarray | None:
    """The grid code (None: in no grid) of each WGS84 point of *points* by gridmap's rule,
    from the grids stored now, for rows about to be written — so an import stores its
    points already assigned instead of rewriting every row after. None when no grid is
    stored yet (every point in no grid). Takes a ``SHARE`` lock on ``grid`` until the
    commit (readers go on; a redraw waits), so no publish can change the grids between this
    answer and the rows' commit: take it before writing to the point table.

    Raises
    ------
    GridIndexError
        when the stored grids cannot be indexed (e.g. two that overlap): assign the written
        points in PostGIS instead (:func:`assign_layer` with ``engine="postgis"``).
    """
    raw = _raw(conn)
    raw.execute("LOCK TABLE grid IN SHARE MODE")
    row = raw.execute("SELECT EXISTS (SELECT 1 FROM grid "
                      "WHERE kind IN ('exclusive', 'comprehensive'))").fetchone()
    if row is None or not row[0]:
        return None
    # a raster of about four cells a point (at most 16M): a small import does not pay for
    # painting a city's 16M cells; more points in a cell's border only cost exact tests
    index = grid_index(conn, max_cells=int(min(16_000_000, max(250_000, 4 * len(points)))))
    return points_to_grids(points, index).to_numpy(dtype=object, na_value=None)


def locate(conn: Connection, lon: float, lat: float) -> list[dict[str, str]]:
    """The grids containing a WGS84 point, the winner first (empty: outside every grid)."""
    rows = conn.execute(text(read_sql("locate_point.sql")),
                        {"lon": lon, "lat": lat}).mappings().all()
    return [dict(r) for r in rows]
