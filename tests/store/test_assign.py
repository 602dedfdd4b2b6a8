"""Stored assignment: an import stores its points assigned, only the rows whose grid changes
are rewritten, and a publish looks only at the households its redraw can move — with every
count agreeing afterwards."""

from __future__ import annotations

import itertools
import threading
import time

import geopandas as gpd
import psycopg
import pytest
import shapely
from sqlalchemy import Connection, Engine, create_engine

from bench.city import make_city, make_points, merge_neighbours, store_city
from gridmap.analysis.assign import GridIndexError
from gridmap.store import assign
from gridmap.store.assign import assign_frame, assign_layer, cut_pages
from gridmap.store.load import BULK_MIN_ROWS, load_layer

LOAD = "SELECT grid_code, households, residents FROM grid_load ORDER BY 1"
RECOUNT = ("SELECT grid_code, count(*), sum(residents) FROM household "
           "WHERE grid_code IS NOT NULL GROUP BY 1 ORDER BY 1")


def test_a_publish_rewrites_only_the_households_that_change_grid(fresh_db: str) -> None:
    grids = make_city(16).to_crs(4326)
    grids["geometry"] = shapely.set_precision(grids.geometry.values, 0)
    engine = create_engine(fresh_db)
    try:
        store_city(engine, grids, make_points(grids, 4000))
        with engine.begin() as conn:  # the import stored each household's grid already
            raw = conn.connection.driver_connection
            assert raw.execute(LOAD).fetchall() == raw.execute(RECOUNT).fetchall()
            assert assign_layer(conn, "households").changed == 0
            raw.execute("UPDATE household SET grid_code = NULL")
            first = assign_layer(conn, "households")  # every row written
        assert first.changed == first.inside > 2000
        with engine.begin() as conn:
            assert assign_layer(conn, "households").changed == 0  # nothing to write
            raw = conn.connection.driver_connection
            before = dict(raw.execute("SELECT id, (xmin::text, grid_code) FROM household"))
        community, redrawn = merge_neighbours(grids)
        with engine.begin() as conn:
            result = load_layer(conn, "grids", redrawn, replace=True)
            raw = conn.connection.driver_connection
            after = dict(raw.execute("SELECT id, (xmin::text, grid_code) FROM household"))
            assert result.diff is not None and result.diff.codes("retired")
            moved = {i for i in after if after[i][1] != before[i][1]}
            rewritten = {i for i in after if after[i][0] != before[i][0]}
            assert moved and rewritten == moved
            assert result.diff.moved["households"] == len(moved)
            assert all(after[i][1][:12] == community for i in moved)
            assert raw.execute(LOAD).fetchall() == raw.execute(RECOUNT).fetchall()
            # the incremental answer is the full one: a full pass finds nothing to change
            assert assign_layer(conn, "households").changed == 0
            assert assign_layer(conn, "households", engine="postgis").changed == 0
    finally:
        engine.dispose()


def _city(fresh_db: str, points: int) -> tuple[Engine, gpd.GeoDataFrame, gpd.GeoSeries]:
    grids = make_city(16).to_crs(4326)
    grids["geometry"] = shapely.set_precision(grids.geometry.values, 0)
    return create_engine(fresh_db), grids, make_points(grids, points,
                                                       on_edges=min(2000, points // 4))


def _stored(conn: Connection) -> dict[str, str | None]:
    raw = conn.connection.driver_connection
    return dict(raw.execute("SELECT id, rtrim(grid_code) FROM household"))


@pytest.mark.parametrize("points", [4000, BULK_MIN_ROWS + 1000])
def test_an_import_stores_the_grid_postgis_finds(fresh_db: str, points: int) -> None:
    """Both import paths (an upsert through a stage, the bulk COPY into empty partitions)
    store each household's grid by the rule — the same answer as the join in PostGIS, on
    points exactly on vertices and shared edges too — and the per-grid counts with it."""
    engine, grids, hh = _city(fresh_db, points)
    try:
        store_city(engine, grids, hh)
        with engine.begin() as conn:
            imported = _stored(conn)
            assert sum(c is not None for c in imported.values()) > points // 4
            raw = conn.connection.driver_connection
            assert raw.execute(LOAD).fetchall() == raw.execute(RECOUNT).fetchall()
            assert assign_layer(conn, "households", engine="postgis").changed == 0
            assert _stored(conn) == imported
            conn.rollback()
    finally:
        engine.dispose()


def test_grids_the_index_refuses_still_get_their_points_assigned(fresh_db: str) -> None:
    """Stored grids the index cannot take (two comprehensive grids overlapping, written past
    the import's checks): the import assigns its points in PostGIS instead, by the same rule
    (a full pass finds nothing to change)."""
    engine, grids, hh = _city(fresh_db, 600)
    try:
        store_city(engine, grids, hh.iloc[:0])
        with engine.begin() as conn:
            raw = conn.connection.driver_connection
            a, b = raw.execute("SELECT code FROM grid WHERE kind = 'comprehensive' "
                               "ORDER BY code LIMIT 2").fetchall()
            raw.execute("UPDATE grid SET geom = ST_Multi(ST_Union(geom, (SELECT geom FROM grid "
                        "WHERE code = %s))) WHERE code = %s", (a[0], b[0]))
        households = gpd.GeoDataFrame(
            {"id": [f"h{i}" for i in range(len(hh))], "address": "", "residents": 1},
            geometry=hh.values, crs=hh.crs)
        with engine.begin() as conn, pytest.raises(GridIndexError, match="overlap"):
            assign_frame(conn, households.geometry)
        with engine.begin() as conn:
            load_layer(conn, "households", households)
            raw = conn.connection.driver_connection
            stored = _stored(conn)
            assert assign_layer(conn, "households", engine="postgis").changed == 0
            assert raw.execute(LOAD).fetchall() == raw.execute(RECOUNT).fetchall()
        assert sum(c is not None for c in stored.values()) > 150
        assert a[0].rstrip() in set(stored.values())  # the lower code keeps the overlap
    finally:
        engine.dispose()


@pytest.mark.parametrize("encoding", ["UTF8", "GBK"])
def test_a_full_pass_reads_any_id(fresh_db: str, encoding: str) -> None:
    """The full pass reads ids as NUL-separated bytes of the client encoding and grids as
    fixed-width bytes: ids with tabs, newlines, backslashes, quotes, commas and Chinese,
    left unassigned, are written back by id — the same grids as the PostGIS join — whether
    the connection speaks UTF-8 or GBK."""
    _, grids, hh = _city(fresh_db, 600)
    engine = create_engine(fresh_db, connect_args={"options": f"-c client_encoding={encoding}"})
    odd = ["户\t1", "a\\b", 'q"uote', "line\nbreak", "逗,号", " 空格 ", "x" * 200]
    try:
        store_city(engine, grids, hh)
        with engine.begin() as conn:
            raw = conn.connection.driver_connection
            inside = [r[0] for r in raw.execute(
                "SELECT id FROM household WHERE grid_code IS NOT NULL ORDER BY id LIMIT %s",
                (len(odd),))]
            for old, new in zip(inside, odd, strict=True):
                raw.execute("UPDATE household SET id = %s, grid_code = NULL WHERE id = %s",
                            (new, old))
            expected = _stored(conn)
            result = assign_layer(conn, "households")
            assert result.changed == len(odd)
            got = _stored(conn)
            assert all(got[i] is not None for i in odd)
            assert {i: c for i, c in got.items() if i not in odd} == \
                {i: c for i, c in expected.items() if i not in odd}
            assert assign_layer(conn, "households", engine="postgis").changed == 0
            assert raw.execute(LOAD).fetchall() == raw.execute(RECOUNT).fetchall()
    finally:
        engine.dispose()


@pytest.mark.parametrize("parts", [2, 3])
def test_a_full_pass_read_by_several_connections_reads_every_point_once(
        fresh_db: str, parts: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full pass of a big table is read by several connections, each a run of its pages
    (here forced on a small one: runs cut inside a county's partition and across
    partitions): every household is read once — counted once, stored the grid the PostGIS
    join finds — and the counts per grid agree."""
    monkeypatch.setattr(assign, "SPLIT_PAGES", 1)
    monkeypatch.setattr(assign, "READ_PARTS", parts)
    engine, grids, hh = _city(fresh_db, 3000)
    try:
        store_city(engine, grids, hh)
        with engine.begin() as conn:
            raw = conn.connection.driver_connection
            pages = raw.execute("SELECT count(*), sum(pg_relation_size(relid)) / 8192 FROM "
                                "pg_partition_tree('household') WHERE isleaf AND "
                                "pg_relation_size(relid) > 0").fetchone()
            assert pages[0] >= 2 and pages[1] >= parts  # two counties' pages to share out
            assert len(assign._page_ranges(raw, "household", parts)) == parts
            expected = _stored(conn)
            raw.execute("UPDATE household SET grid_code = NULL WHERE id::int % 3 = 0")
        with engine.begin() as conn:  # a transaction that wrote nothing: read in parts
            result = assign_layer(conn, "households")
            assert (result.rows, result.changed) == (3000, sum(
                int(i) % 3 == 0 and c is not None for i, c in expected.items()))
            assert result.inside == sum(c is not None for c in expected.values())
            assert _stored(conn) == expected
            raw = conn.connection.driver_connection
            assert raw.execute(LOAD).fetchall() == raw.execute(RECOUNT).fetchall()
            assert assign_layer(conn, "households", engine="postgis").changed == 0
    finally:
        engine.dispose()


def test_pages_are_cut_into_runs_that_cover_each_page_once() -> None:
    tables = [("a", 7), ("b", 0), ("c", 30), ("d", 1), ("e", 12)]
    for parts in range(1, 8):
        runs = cut_pages(tables, parts)
        assert 1 <= len(runs) <= parts
        sizes = []
        for name, _ in tables:
            pieces = sorted((first, last) for run in runs for t, first, last in run if t == name)
            assert pieces[0][0] == 0 and pieces[-1][1] == assign._LAST_BLOCK  # past the end
            assert all(a[1] == b[0] for a, b in itertools.pairwise(pieces))  # no gap, no overlap
        for run in runs:
            sizes.append(sum(min(last, dict(tables)[t]) - first for t, first, last in run))
        assert sum(sizes) == 50 and max(sizes) - min(sizes) <= 50 // parts + 1


def test_a_helper_that_would_wait_for_a_lock_leaves_its_run_to_the_caller(
        fresh_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A helper connection asks for its lock behind any request queued before it: with an
    ACCESS EXCLUSIVE request waiting on the pass's own lock, the helper would wait for the
    request, the request for the pass and the pass for the helper — a wait PostgreSQL cannot
    see. The helper gives up after a moment and the caller reads its run itself."""
    monkeypatch.setattr(assign, "SPLIT_PAGES", 1)
    engine, grids, hh = _city(fresh_db, 3000)
    store_city(engine, grids, hh)
    with engine.begin() as conn:
        expected = _stored(conn)
        conn.connection.driver_connection.execute(
            "UPDATE household SET grid_code = NULL WHERE id::int % 2 = 0")
    blocker = psycopg.connect(fresh_db.replace("+psycopg", ""))
    ranges, helped, waiting = assign._page_ranges, [], []

    def queue_a_lock_then_cut(raw: psycopg.Connection, table: str, parts: int
                              ) -> list[list[tuple[str, int, int]]]:
        runs = ranges(raw, table, parts)
        last = runs[-1][-1][0]  # a partition the helper reads
        waiting.append(threading.Thread(target=lambda: blocker.execute(
            f"LOCK TABLE {last} IN ACCESS EXCLUSIVE MODE")))
        waiting[0].start()
        while not raw.execute("SELECT count(*) FROM pg_locks WHERE NOT granted AND "
                              "mode = 'AccessExclusiveLock'").fetchone()[0]:
            time.sleep(0.01)
        return runs

    def help_read(*args: object) -> object:
        helped.append(read(*args))
        return helped[-1]

    read = assign._help_read
    monkeypatch.setattr(assign, "_page_ranges", queue_a_lock_then_cut)
    monkeypatch.setattr(assign, "_help_read", help_read)
    try:
        with engine.begin() as conn:
            result = assign_layer(conn, "households")
            assert helped == [None]  # the helper gave up; the caller read its run
            assert result.rows == 3000 and _stored(conn) == expected
    finally:
        for thread in waiting:  # it gets its lock once the pass has ended
            thread.join(30)
        blocker.rollback()
        blocker.close()
        engine.dispose()
