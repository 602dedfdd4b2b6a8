"""Grid assignment stored in the database: in PostGIS (SQL) or computed in Python by
:mod:`gridmap.analysis.assign` and written back. Both apply the same rule."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
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
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import PoolProxiedConnection

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
    return _driver(conn.connection)


def _driver(pooled: PoolProxiedConnection) -> psycopg.Connection:
    raw = pooled.driver_connection
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


NO_GRID = b" " * 15  # the stored grid of a point in none, as read (15 spaces)
_ARRAY = 20  # header of a one-dimensional binary array: dimensions, flags, type, length, base


def index_cells(points: int) -> int:
    """Cells of the grid raster for looking up *points* points: about four a point, at
    most 16M. A small job does not pay for painting a city's 16M cells (0.24 s for 268
    grids, against 0.06 s for 4M cells); more points in a cell's border only cost exact
    tests."""
    return int(min(16_000_000, max(250_000, 4 * points)))


def _fixed(data: bytes, dtype: str) -> np.ndarray:
    """The elements of a binary one-dimensional array of non-null fixed-width values: each is
    its length (4 bytes) then its bytes, so the whole is one strided view for numpy."""
    if len(data) < _ARRAY:  # no dimension: empty
        return np.zeros(0, dtype)
    return np.frombuffer(data, np.dtype([("length", ">i4"), ("value", dtype)]),
                         offset=_ARRAY)["value"]


@dataclass
class _Points:
    """The points to re-assign as numpy reads them: x, y, and the stored grid of each (a
    15-byte code, :data:`NO_GRID` for none); the ids as one byte string, NUL-separated (a
    text holds no NUL) in the connection's encoding, cut out only for the rows written."""

    x: np.ndarray
    y: np.ndarray
    grid_code: np.ndarray
    ids: bytes
    ends: np.ndarray  # where each id ends in *ids*
    encoding: str  # of the ids: the connection's (textsend sends the client encoding)

    @classmethod
    def of(cls, x: np.ndarray, y: np.ndarray, grid_code: np.ndarray, ids: bytes,
           encoding: str) -> _Points:
        ends = np.append(np.flatnonzero(np.frombuffer(ids, np.uint8) == 0), len(ids))
        assert len(ends) == len(x) or not len(x), "one id a point"
        return cls(x, y, grid_code, ids, ends[:len(x)], encoding)

    @classmethod
    def concat(cls, parts: list[_Points]) -> _Points:
        return cls.of(np.concatenate([p.x for p in parts]),
                      np.concatenate([p.y for p in parts]),
                      np.concatenate([p.grid_code for p in parts]),
                      b"\x00".join(p.ids for p in parts if len(p.x)), parts[0].encoding)

    def id_at(self, positions: np.ndarray) -> list[str]:
        starts = np.concatenate([[0], self.ends[:-1] + 1])
        return [self.ids[a:b].decode(self.encoding) for a, b in zip(
            starts[positions].tolist(), self.ends[positions].tolist(), strict=True)]


READ_PARTS = 2  # connections sharing a full pass's read (the server's work is most of it)
SPLIT_PAGES = 2_000  # below this many heap pages (16 MB) one connection reads alone
_LAST_BLOCK = 4_294_967_295  # beyond every page of a table


def _aggregate(query: sql.Composable) -> sql.Composed:
    """*query*'s (id, x, y, grid_code) rows as one row of four values numpy reads whole:
    the ids and stored grids as the bytes PostgreSQL sends them (``textsend``: the client
    encoding's; ``bpcharsend``: a code's 15 digits) — no conversion on the server, where
    ``convert_to`` and a ``char(15)[]`` cost 0.1 and 0.2 s a million — and x and y as
    float8 arrays."""
    return sql.SQL(
        "SELECT coalesce(string_agg(textsend(id), '\\x00'::bytea), ''::bytea), "
        "coalesce(array_agg(x), '{{}}'), coalesce(array_agg(y), '{{}}'), "
        "coalesce(string_agg(coalesce(bpcharsend(grid_code), %s), ''::bytea), ''::bytea) "
        "FROM ({}) AS q").format(query)


def _fetch_points(raw: psycopg.Connection, query: sql.Composable) -> _Points:
    """The points *query* selects, read by numpy without a Python object per point."""
    with raw.cursor(binary=True) as cur:
        types = cur.adapters.types
        for oid in (types["float8"].array_oid, types["bytea"].oid):
            cur.adapters.register_loader(oid, _Raw)
        row = cur.execute(_aggregate(query), (NO_GRID,)).fetchone()
    assert row is not None
    ids, xs, ys, codes = row
    x, y = _fixed(xs, ">f8").astype(np.float64), _fixed(ys, ">f8").astype(np.float64)
    # a grid code is 15 digits, and the foreign key to grid holds only codes
    assert len(codes) == 15 * len(x), "a stored grid of 15 bytes a point"
    return _Points.of(x, y, np.frombuffer(codes, "S15"), ids, raw.info.encoding)


def cut_pages(pages: list[tuple[str, int]], parts: int) -> list[list[tuple[str, int, int]]]:
    """The heap pages of tables (name, pages) cut into at most *parts* runs of about the same
    number of pages, each run a list of (table, first page, page after its last); a table's
    last piece reaches past its end, an empty table's is its whole.

    >>> cut_pages([("a", 3), ("b", 5)], 2)
    [[('a', 0, 4294967295), ('b', 0, 1)], [('b', 1, 4294967295)]]
    """
    total = sum(size for _, size in pages)
    per = max(1, -(-total // parts))
    runs: list[list[tuple[str, int, int]]] = [[] for _ in range(parts)]
    at = 0  # pages handed out so far
    for name, size in pages:
        first = 0
        while True:
            k = min(at // per, parts - 1)
            last = min(size, first + (k + 1) * per - at)
            runs[k].append((name, first, _LAST_BLOCK if last == size else last))
            at += last - first
            if last == size:
                break
            first = last
    return [run for run in runs if run]


def _page_ranges(raw: psycopg.Connection, table: str, parts: int
                 ) -> list[list[tuple[str, int, int]]]:
    """*table*'s heap pages (of each partition) cut into *parts* runs (:func:`cut_pages`);
    one run when the table has fewer than :data:`SPLIT_PAGES` pages."""
    pages = [(str(name), int(size)) for name, size in raw.execute(
        "SELECT c.oid::regclass::text, pg_relation_size(c.oid) / "
        "current_setting('block_size')::bigint FROM pg_class AS c "
        "WHERE c.oid IN (SELECT relid FROM pg_partition_tree(%s::regclass) WHERE isleaf) "
        "OR (c.oid = %s::regclass AND c.relkind <> 'p') ORDER BY c.oid", (table, table))]
    return cut_pages(pages, parts if sum(n for _, n in pages) >= SPLIT_PAGES else 1)


def _run_query(run: list[tuple[str, int, int]]) -> sql.Composed:
    return sql.SQL(" UNION ALL ").join(
        _sql("assign_read_blocks.sql", points=sql.SQL(name),
             first=sql.Literal(f"({first},0)"), last=sql.Literal(f"({last},0)"))
        for name, first, last in run)


HELPER_LOCK_WAIT = "100ms"  # a helper that cannot read at once leaves its run to the caller


def _read_points(conn: Connection, table: str, *, area: bool) -> _Points:
    """The points to re-assign (:class:`_Points`). A full pass of a big table is read by
    :data:`READ_PARTS` connections at once, each a run of the table's pages: building the
    arrays is the server's work (0.4 s a million on one core). Safe because the pass holds
    a lock no writer passes (``SHARE ROW EXCLUSIVE``, taken by the caller) and its own
    transaction has written nothing yet: every connection sees the same rows. Otherwise —
    and for any run a helper connection cannot read (none to be had, or a lock it would
    wait for: a waiting helper would hold the caller up where PostgreSQL sees no deadlock)
    — the caller's connection reads."""
    raw = _raw(conn)
    if area:
        return _fetch_points(raw, _sql("assign_read_area.sql", points=sql.Identifier(table)))
    row = raw.execute("SELECT pg_current_xact_id_if_assigned() IS NULL").fetchone()
    runs = _page_ranges(raw, table, READ_PARTS if row is not None and row[0] else 1)
    if len(runs) == 1:
        return _fetch_points(raw, _sql("assign_read_all.sql", points=sql.Identifier(table)))
    helpers: list[PoolProxiedConnection] = []
    try:
        for _ in runs[1:]:
            try:
                helpers.append(conn.engine.raw_connection())
            except (DBAPIError, TimeoutError):  # no connection to spare: fewer helpers
                break
        with ThreadPoolExecutor(max(1, len(helpers))) as pool:
            reads = {k: pool.submit(_help_read, _driver(helper), _run_query(runs[k]))
                     for k, helper in enumerate(helpers, start=1)}
            parts = [_fetch_points(raw, _run_query(runs[0]))]
            for k in range(1, len(runs)):
                got = reads[k].result() if k in reads else None
                parts.append(got if got is not None else _fetch_points(raw, _run_query(runs[k])))
            return _Points.concat(parts)
    finally:
        for helper in helpers:
            helper.close()  # the pool rolls it back


def _help_read(helper: psycopg.Connection, query: sql.Composed) -> _Points | None:
    """*query*'s points read on a helper connection, or None if it would wait for a lock."""
    try:
        helper.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(
            sql.Literal(HELPER_LOCK_WAIT)))
        return _fetch_points(helper, query)
    except psycopg.errors.LockNotAvailable:
        return None


def _assign_in_python(conn: Connection, table: str, index: GridIndex | None, *, area: bool
                      ) -> tuple[int, list[str], tuple[int, int]]:
    """Look the points up in *index* (built from the stored grids, sized to the points
    read, when None) and write only those whose grid changed; returns (rows written, the
    grids they left or joined, (points read, of which in a grid))."""
    from gridmap.store.load import copy_into

    raw = _raw(conn)
    if not area:
        # no redraw may change the grids, and no writer a point, between the read and the
        # write; the grids first, as an import and a publish take them (no deadlock)
        raw.execute("LOCK TABLE grid IN SHARE MODE")
        raw.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(
            sql.Identifier(table)))
    points = _read_points(conn, table, area=area)
    if index is None:
        index = grid_index(conn, max_cells=index_cells(len(points.x)))
    pos = index.lookup(points.x, points.y) if len(points.x) else np.zeros(0, dtype=np.int32)
    stored = np.array([*(c.encode() for c in index.codes), NO_GRID], dtype="S15")
    old = points.grid_code
    changed = np.flatnonzero(stored[pos] != old)  # position -1: in no grid
    names = np.array([*index.codes, None], dtype=object)
    new = names[pos[changed]]
    left = [c.decode() for c in old[changed] if c != NO_GRID]
    moved = pd.DataFrame({"id": points.id_at(changed), "code": new})
    if len(moved):  # (no table made for none: the transaction writes nothing then)
        raw.execute("CREATE TEMP TABLE gm_assigned (id text, code char(15)) ON COMMIT DROP")
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


def store_counted_load(conn: Connection, grids: pd.Series, residents: pd.Series) -> None:
    """``grid_load`` from the households just written into an empty table — their grids
    (None: in no grid) and residents — counted here instead of recounted by a scan of the
    table (0.3–0.45 s a million): the same rows :func:`follow_assignment` would store."""
    inside = grids.notna().to_numpy()
    counted = pd.DataFrame({"code": grids.to_numpy()[inside],
                            "residents": residents.to_numpy(np.int64)[inside]}
                           ).groupby("code")["residents"].agg(["size", "sum"])
    raw = _raw(conn)
    codes = [str(c) for c in counted.index]
    raw.execute(read_sql("grid_load_counted.sql"), {
        "codes": codes, "households": counted["size"].tolist(),
        "residents": counted["sum"].tolist()})
    raw.execute("DELETE FROM grid_load WHERE grid_code <> ALL(%s::text[])", (codes,))


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
    index = grid_index(conn, max_cells=index_cells(len(points)))
    return points_to_grids(points, index).to_numpy(dtype=object, na_value=None)


def locate(conn: Connection, lon: float, lat: float) -> list[dict[str, str]]:
    """The grids containing a WGS84 point, the winner first (empty: outside every grid)."""
    rows = conn.execute(text(read_sql("locate_point.sql")),
                        {"lon": lon, "lat": lat}).mappings().all()
    return [dict(r) for r in rows]
