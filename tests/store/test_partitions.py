"""Households partitioned by county (migration 0015): the migration moves every row both ways,
an import routes rows to their county's partition (made on demand, in its transaction), a
county filter reads one partition, and the bulk path builds every partition's indexes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from gridmap.analysis.counties import points_to_counties
from gridmap.io.errors import ImportRejected
from gridmap.store.load import build_deferred_indexes, load_layer
from tests.helpers import database_at, migrate

# two counties side by side (west 610112, east 610113) sharing the edge x = 109.1
WEST = "MULTIPOLYGON(((109 34, 109.1 34, 109.1 34.1, 109 34.1, 109 34)))"
EAST = "MULTIPOLYGON(((109.1 34, 109.2 34, 109.2 34.1, 109.1 34.1, 109.1 34)))"
COMMUNITY = "MULTIPOLYGON(((109 34, 109.05 34, 109.05 34.05, 109 34.05, 109 34)))"
ROWS = "SELECT id, address, residents, elderly_alone, disabled, left_behind_child, " \
       "low_income, grid_code, ST_AsEWKT(geom), head_name, phone FROM household ORDER BY id"


def _counties(conn: Connection) -> None:
    conn.execute(text(
        "INSERT INTO division (code, name, level, parent_code, geom) VALUES "
        "('610112000000', 'west', 'county', NULL, ST_GeomFromText(:w, 4326)),"
        "('610113000000', 'east', 'county', NULL, ST_GeomFromText(:e, 4326))"),
        {"w": WEST, "e": EAST})


def _partitions(conn: Connection) -> dict[str, int]:
    """Rows per (non-empty) partition of household."""
    return dict(conn.execute(text(
        "SELECT tableoid::regclass::text, count(*) FROM household GROUP BY 1")).all())


@pytest.fixture
def db_at_0014(server_url: str) -> Iterator[str]:
    """A database of its own migrated to 0014 (before households were partitioned)."""
    with database_at(server_url, "0014", "gridmap_part") as db:
        yield db



def _rows(url: str, query: str = ROWS) -> list[Any]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(query))]
    finally:
        engine.dispose()


def test_the_migration_moves_every_household_both_ways(db_at_0014: str) -> None:
    engine = create_engine(db_at_0014, poolclass=NullPool)
    with engine.begin() as conn:
        _counties(conn)
        conn.execute(text(
            "INSERT INTO division (code, name, level, parent_code, geom) VALUES "
            "('610112001000', 't', 'township', '610112000000', ST_GeomFromText(:c, 4326)),"
            "('610112001001', 'c', 'community', '610112001000', ST_GeomFromText(:c, 4326))"),
            {"c": COMMUNITY})
        conn.execute(text(
            "INSERT INTO grid (code, name, kind, community_code, geom) VALUES "
            "('610112001001001', 'g', 'comprehensive', '610112001001', "
            "ST_GeomFromText(:c, 4326))"), {"c": COMMUNITY})
        conn.execute(text(
            "INSERT INTO household (id, address, residents, elderly_alone, disabled, "
            "left_behind_child, low_income, grid_code, geom, head_name, phone) VALUES "
            "('w1', '西1号', 3, true, false, false, true, '610112001001001', "
            " ST_SetSRID(ST_Point(109.01, 34.01), 4326), '张三', '13800000001'),"
            "('w2', 'west 2', 1, false, true, false, false, NULL, "
            " ST_SetSRID(ST_Point(109.09, 34.09), 4326), NULL, NULL),"
            "('e1', '东1号', 2, false, false, true, false, NULL, "
            " ST_SetSRID(ST_Point(109.15, 34.05), 4326), '李四', '+86 139 0000 0002'),"
            "('e2', 'east 2', 0, false, false, false, false, NULL, "
            " ST_SetSRID(ST_Point(109.19, 34.01), 4326), NULL, '13900000003'),"
            "('edge', 'on the shared edge', 4, false, false, false, false, NULL, "
            " ST_SetSRID(ST_Point(109.1, 34.05), 4326), NULL, NULL),"
            "('out', 'in no county', 1, false, false, false, false, NULL, "
            " ST_SetSRID(ST_Point(110, 35), 4326), NULL, NULL)"))
    engine.dispose()
    before = _rows(db_at_0014)
    assert len(before) == 6

    migrate(db_at_0014, "upgrade", "0015")
    assert _rows(db_at_0014) == before
    counties = dict(_rows(db_at_0014, "SELECT id, county_code FROM household"))
    assert counties == {"w1": "610112", "w2": "610112", "edge": "610112",  # the lowest code
                        "e1": "610113", "e2": "610113", "out": "000000"}
    engine = create_engine(db_at_0014, poolclass=NullPool)
    with engine.connect() as conn:
        assert _partitions(conn) == {"household_610112": 3, "household_610113": 2,
                                     "household_000000": 1}
        key = conn.execute(text("SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                                "WHERE conname = 'household_pkey'")).scalar()
        assert key == "PRIMARY KEY (id, county_code)"
        # the grid's foreign key holds on the partitions too
        assert conn.execute(text("SELECT grid_code FROM household_610112 WHERE id = 'w1'")
                            ).scalar() == "610112001001001"
    engine.dispose()

    migrate(db_at_0014, "downgrade", "0014")
    assert _rows(db_at_0014) == before
    assert _rows(db_at_0014, "SELECT relkind::text FROM pg_class WHERE relname = "
                             "'household'") == [("r",)]
    assert _rows(db_at_0014, "SELECT count(*) FROM pg_class WHERE relname LIKE "
                             "'household\\_0%' OR relname LIKE 'household\\_6%'") == [(0,)]
    migrate(db_at_0014, "upgrade", "head")
    assert _rows(db_at_0014) == before


def test_a_county_filter_reads_one_partition(conn: Connection) -> None:
    conn.execute(text("SELECT gridmap_household_partitions(ARRAY['610112', '610113'])"))
    conn.execute(text(
        "INSERT INTO household (id, address, residents, geom, county_code) "
        "SELECT 'h' || i, 'a', 1, ST_SetSRID(ST_Point(109 + i * 1e-5, 34), 4326), "
        "CASE WHEN i % 2 = 0 THEN '610112' ELSE '610113' END FROM generate_series(1, 200) i"))
    plan = conn.execute(text("EXPLAIN (FORMAT JSON) SELECT count(*), sum(residents) "
                             "FROM household WHERE county_code = '610113'")).scalar()
    assert _relations(plan) == {"household_610113"}
    whole = conn.execute(text("EXPLAIN (FORMAT JSON) SELECT count(*) FROM household")).scalar()
    assert {"household_610112", "household_610113", "household_000000"} <= _relations(whole)
    assert conn.execute(text("SELECT count(*) FROM household WHERE county_code = '610113'")
                        ).scalar() == 100


def _relations(plan: Any) -> set[str]:
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "Relation Name" in node:
                found.add(node["Relation Name"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(plan)
    return found


def _households(ids: list[str], xs: list[float], ys: list[float]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"id": ids, "address": [f"addr {i}" for i in ids],
                             "residents": np.ones(len(ids), dtype=np.int16)},
                            geometry=gpd.points_from_xy(xs, ys), crs=4326)


def test_an_import_routes_households_to_their_counties(conn: Connection) -> None:
    _counties(conn)
    frame = _households(["a", "b", "c", "d"], [109.05, 109.15, 109.1, 111], [34.05] * 4)
    first = load_layer(conn, "households", frame)
    assert (first.inserted, first.updated) == (4, 0)
    assert dict(conn.execute(text("SELECT id, county_code FROM household")).all()) \
        == {"a": "610112", "b": "610113", "c": "610112", "d": "000000"}
    again = load_layer(conn, "households", frame)
    assert (again.inserted, again.updated) == (0, 0)
    # a household that moves to the other county is moved, never duplicated
    moved = frame.copy()
    moved.loc[0, "geometry"] = shapely.Point(109.18, 34.02)
    result = load_layer(conn, "households", moved)
    assert (result.inserted, result.updated) == (0, 1)
    assert conn.execute(text("SELECT count(*), min(county_code) FROM household "
                             "WHERE id = 'a'")).one() == (1, "610113")
    assert _partitions(conn)["household_610113"] == 2


def test_a_refused_import_leaves_no_partition_behind(conn: Connection) -> None:
    conn.execute(text(
        "INSERT INTO division (code, name, level, parent_code, geom) VALUES "
        "('610199000000', 'far', 'county', NULL, ST_GeomFromText(:g, 4326))"),
        {"g": "MULTIPOLYGON(((120 30, 121 30, 121 31, 120 31, 120 30)))"})
    frame = _households(["x", "y"], [120.5, 120.6], [30.5, 30.5])
    frame["residents"] = np.array([1, -1], dtype=np.int16)  # the table refuses -1
    with pytest.raises(ImportRejected), conn.begin_nested():
        load_layer(conn, "households", frame)
    assert conn.execute(text("SELECT to_regclass('household_610199')")).scalar() is None
    assert conn.execute(text("SELECT count(*) FROM household")).scalar() == 0


def test_households_imported_before_their_county_join_it(conn: Connection) -> None:
    frame = _households(["p", "q"], [109.05, 109.15], [34.05, 34.05])
    load_layer(conn, "households", frame)
    assert set(conn.execute(text("SELECT county_code FROM household")).scalars()) == {"000000"}
    counties = gpd.GeoDataFrame({"code": ["610112000000", "610113000000"],
                                 "name": ["west", "east"]},
                                geometry=gpd.GeoSeries.from_wkt([WEST, EAST]), crs=4326)
    load_layer(conn, "counties", counties)
    assert dict(conn.execute(text("SELECT id, county_code FROM household")).all()) \
        == {"p": "610112", "q": "610113"}


def test_points_to_counties_agrees_with_the_store(conn: Connection) -> None:
    _counties(conn)
    rng = np.random.default_rng(15)
    x = np.r_[rng.uniform(108.95, 109.25, 2000), 109.1, 109.1, 109.0, 109.2]
    y = np.r_[rng.uniform(33.95, 34.15, 2000), 34.05, 34.1, 34.0, 34.1]
    counties = gpd.read_postgis("SELECT code, geom FROM division WHERE level = 'county'",
                                conn, geom_col="geom", crs=4326)
    python = points_to_counties(counties, x, y)
    store = conn.execute(text(
        "SELECT gridmap_county_of(ST_SetSRID(ST_Point(x, y), 4326)) "
        "FROM unnest(CAST(:x AS float8[]), CAST(:y AS float8[])) WITH ORDINALITY AS p(x, y, n) "
        "ORDER BY n"), {"x": x.tolist(), "y": y.tolist()}).scalars().all()
    assert python.tolist() == store


def test_a_bulk_load_indexes_every_partition(fresh_db: str) -> None:
    """The bulk path (empty table, ≥ 50,000 rows) COPYs each county's rows, frozen, into a
    table made for them and attaches it, then builds the key and indexes on every
    partition; the deferred search index is built concurrently partition by partition and
    attached, so the parent's is valid. The rows read back as sent, and importing the same
    file again changes nothing."""
    engine = create_engine(fresh_db, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            _counties(conn)
        n = 60_000
        rng = np.random.default_rng(1)
        frame = _households([f"H{i:06d}" for i in range(n)], rng.uniform(109.0, 109.2, n),
                            rng.uniform(34.0, 34.1, n))
        with engine.begin() as conn:
            result = load_layer(conn, "households", frame, defer_search_index=True)
        assert result.phases and result.deferred  # the bulk path
        # an import stopped here, after its commit, left its search index to build: it is
        # on record, and the next import's build (here without a result of its own) makes it
        with engine.connect() as conn:
            assert conn.execute(text("SELECT name FROM pending_index")).scalars().all() == \
                ["household_address_trgm_idx"]
            assert not conn.execute(text(
                "SELECT count(*) FROM pg_indexes WHERE indexname = "
                "'household_address_trgm_idx'")).scalar()
        build_deferred_indexes(engine)
        with engine.connect() as conn:
            parts = _partitions(conn)
            assert parts["household_610112"] + parts["household_610113"] == n
            assert parts["household_610112"] > 20_000 and parts["household_610113"] > 20_000
            indexes = conn.execute(text(
                "SELECT c.relname, count(*) FILTER (WHERE x.indisvalid) FROM pg_index x "
                "JOIN pg_class c ON c.oid = x.indrelid WHERE c.relname LIKE 'household%' "
                "GROUP BY 1")).all()
            assert dict(indexes) == {"household": 4, "household_000000": 4,
                                     "household_610112": 4, "household_610113": 4}
            assert not conn.execute(text("SELECT count(*) FROM pending_index")).scalar()
            hits = conn.execute(text("SELECT count(*) FROM household WHERE address % "
                                     "'addr H000123'")).scalar()
            assert hits and hits >= 1
            # written frozen: every page all-visible, no reader rewrites them for hint bits
            assert conn.execute(text(
                "SELECT bool_and(relallvisible = relpages AND relpages > 0) FROM pg_class "
                "WHERE relname IN ('household_610112', 'household_610113')")).scalar()
            stored = pd.read_sql("SELECT id, address, residents, ST_X(geom) AS x, "
                                 "ST_Y(geom) AS y FROM household ORDER BY id", conn)
            assert stored["id"].tolist() == frame["id"].tolist()
            assert stored["address"].tolist() == frame["address"].tolist()
            assert (stored["residents"].to_numpy() == 1).all()
            assert np.array_equal(stored["x"].to_numpy(), frame.geometry.x.to_numpy())
            assert np.array_equal(stored["y"].to_numpy(), frame.geometry.y.to_numpy())
        with engine.begin() as conn:
            again = load_layer(conn, "households", frame)
        assert not again.phases and (again.inserted, again.updated) == (0, 0)
        with engine.connect() as conn:
            assert _partitions(conn) == parts
    finally:
        engine.dispose()


def test_a_refused_bulk_load_leaves_every_partition_as_it_was(conn: Connection) -> None:
    """A row the database refuses (a phone its check does not accept) in the last county's
    rows: the partitions replaced and the one made for a new county go with the import's
    transaction, the old ones and their indexes are back, and the refusal names the row."""
    _counties(conn)
    layout = ("SELECT c.relname, (SELECT string_agg(x.indexrelid::regclass::text, ',' "
              "ORDER BY 1) FROM pg_index x WHERE x.indrelid = c.oid) FROM pg_inherits i "
              "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = "
              "'household'::regclass ORDER BY 1")
    load_layer(conn, "households", _households(["w"], [109.05], [34.05]))
    conn.execute(text("DELETE FROM household"))  # household_610112 exists, and is empty
    before = conn.execute(text(layout)).all()
    n = 60_000
    rng = np.random.default_rng(3)
    xs = np.r_[111.0, rng.uniform(109.0, 109.2, n - 2), 109.15]  # the first in no county
    frame = _households([f"R{i:06d}" for i in range(n)], xs, rng.uniform(34.0, 34.1, n))
    frame["phone"] = None
    frame.loc[n - 1, "phone"] = "call me"
    with pytest.raises(ImportRejected) as refused, conn.begin_nested():
        load_layer(conn, "households", frame)
    assert "household_phone_check" in str(refused.value)
    assert f"R{n - 1:06d}" in str(refused.value)
    assert conn.execute(text("SELECT to_regclass('household_610113')")).scalar() is None
    assert conn.execute(text(layout)).all() == before
    assert conn.execute(text("SELECT count(*) FROM household")).scalar() == 0


def test_points_that_are_not_longitude_latitude_are_refused_every_one(
        conn: Connection) -> None:
    """Refused before anything is sent, each bad row named by its number and key: out of
    range, not a number, empty."""
    frame = _households(["ok", "far", "nan", "empty"], [109.05, 200.0, np.nan, 0.0],
                        [34.05, 34.0, 34.0, 0.0])
    frame.loc[3, "geometry"] = shapely.Point()
    with pytest.raises(ImportRejected) as refused:
        load_layer(conn, "households", frame)
    assert [(p.row, p.key) for p in refused.value.problems] == \
        [(1, "far"), (2, "nan"), (3, "empty")]
    assert "is not a longitude/latitude" in str(refused.value)
    assert conn.execute(text("SELECT count(*) FROM household")).scalar() == 0
