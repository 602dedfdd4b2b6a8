"""Binary COPY built from whole columns reads back exactly as sent, in a real PostGIS."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

from gridmap.io.errors import ImportRejected
from gridmap.store.load import copy_into, load_layer


def test_every_encoded_type_reads_back_as_sent(conn: Connection) -> None:
    raw = conn.connection.driver_connection
    raw.execute("CREATE TEMP TABLE gm_roundtrip (id text, code char(15), n smallint, "
                "cap integer, big bigint, flag boolean, share double precision, "
                "at timestamptz, geom geometry(Geometry, 4326))")
    hole = shapely.Polygon([(0, 0), (4, 0), (4, 4), (0, 4)], [[(1, 1), (2, 1), (2, 2)]])
    frame = gpd.GeoDataFrame({
        "id": pd.array(['a "quoted", comma', "换行\nline", "", None], dtype="string"),
        "code": ["610102001001001", None, "610102001001002", "610102001001003"],
        "n": pd.array([1, None, -32768, 32767], dtype="Int64"),
        "cap": [0, 2_147_483_647, -5, 7],
        "big": [2**40, 0, -1, 3],
        "flag": [True, False, True, False],
        "share": [0.1, np.nan, -2.5e300, 3.0],
        "at": pd.to_datetime(["2024-01-02T03:04:05.123456Z", None, "1999-12-31T23:59:59Z",
                              "2000-01-01T00:00:00Z"], utc=True, format="ISO8601"),
    }, geometry=[shapely.Point(108.9, 34.2), hole, None,
                 shapely.MultiPolygon([shapely.box(0, 0, 1, 1)])], crs=4326)
    columns = ["id", "code", "n", "cap", "big", "flag", "share", "at", "geom"]
    copy_into(conn, "gm_roundtrip", frame, columns)
    rows = raw.execute("SELECT id, code, n, cap, big, flag, share, at, ST_AsText(geom), "
                       "ST_SRID(geom) FROM gm_roundtrip").fetchall()
    assert [r[0] for r in rows] == ['a "quoted", comma', "换行\nline", "", None]
    assert [r[1] for r in rows] == ["610102001001001", None, "610102001001002",
                                    "610102001001003"]
    assert [r[2] for r in rows] == [1, None, -32768, 32767]
    assert [r[3] for r in rows] == [0, 2_147_483_647, -5, 7]
    assert [r[4] for r in rows] == [2**40, 0, -1, 3]
    assert [r[5] for r in rows] == [True, False, True, False]
    assert rows[0][6] == 0.1 and rows[1][6] is None and rows[2][6] == -2.5e300
    assert [None if r[7] is None else pd.Timestamp(r[7]) for r in rows] == [
        None if pd.isna(t) else t for t in frame["at"]]
    assert [r[8] for r in rows] == [
        "POINT(108.9 34.2)", hole.wkt.replace(" (", "(").replace(", ", ","), None,
        "MULTIPOLYGON(((1 0,1 1,0 1,0 0,1 0)))"]
    assert {r[9] for r in rows if r[9] is not None} == {4326}


def test_points_travel_as_ewkb_built_from_coordinates(conn: Connection) -> None:
    raw = conn.connection.driver_connection
    raw.execute("CREATE TEMP TABLE gm_points (id text, geom geometry(Point, 4326))")
    xs = np.random.default_rng(3).uniform(73, 135, 1000)
    frame = gpd.GeoDataFrame({"id": np.arange(1000).astype(str)},
                             geometry=gpd.points_from_xy(xs, xs / 3), crs=4326)
    copy_into(conn, "gm_points", frame, ["id", "geom"], batch_rows=300)
    back = dict(raw.execute("SELECT id, ST_X(geom) FROM gm_points").fetchall())
    assert len(back) == 1000 and all(back[str(i)] == xs[i] for i in range(1000))


def test_geometry_into_a_text_column_travels_as_hex_ewkb(conn: Connection) -> None:
    """A stage table with a text ``geom`` (decoded in SQL) gets what the CSV path sends."""
    raw = conn.connection.driver_connection
    raw.execute("CREATE TEMP TABLE gm_footprints (id text, geom text)")
    squares = [shapely.box(109 + i / 100, 34, 109.005 + i / 100, 34.005) for i in range(3)]
    frame = gpd.GeoDataFrame({"id": ["a", "b", "c"]}, geometry=squares, crs=4326)
    copy_into(conn, "gm_footprints", frame, ["id", "geom"])
    back = raw.execute("SELECT id, ST_AsText(ST_GeomFromEWKB(decode(geom, 'hex'))), "
                       "ST_SRID(ST_GeomFromEWKB(decode(geom, 'hex'))) FROM gm_footprints "
                       "ORDER BY id").fetchall()
    assert [(i, shapely.from_wkt(w).equals(g), srid) for (i, w, srid), g
            in zip(back, squares, strict=True)] == [("a", True, 4326), ("b", True, 4326),
                                                     ("c", True, 4326)]


def test_a_value_too_large_for_its_column_is_refused_not_wrapped(conn: Connection) -> None:
    frame = gpd.GeoDataFrame({"id": ["h1", "h2", "h3"], "address": "x",
                              "residents": [1, 70_000, 40_000]},
                             geometry=gpd.points_from_xy([108.9] * 3, [34.2] * 3), crs=4326)
    with pytest.raises(ImportRejected) as refused:
        load_layer(conn, "households", frame)
    assert "out of range for smallint" in str(refused.value)
    assert [p.key for p in refused.value.problems] == ["h2", "h3"]


def test_text_travels_whatever_encoding_the_connection_speaks(fresh_db: str) -> None:
    """The bytes COPY sends are UTF-8 (Arrow's strings, its CSV): a connection speaking GBK
    speaks UTF-8 for the COPY, binary or CSV, and GBK again after it."""
    engine = create_engine(fresh_db, connect_args={"options": "-c client_encoding=GBK"})
    try:
        with engine.begin() as conn:
            raw = conn.connection.driver_connection
            assert raw.info.parameter_status("client_encoding") == "GBK"
            raw.execute("CREATE TEMP TABLE gm_words (id text, note text, day date)")
            words = pd.DataFrame({"id": ["王曲村", "户\t1"], "note": ["长安路 1 号", None]})
            copy_into(conn, "gm_words", words, ["id", "note"])  # binary
            dated = words.assign(id=["杜陵镇", "逗,号"], day=["2026-11-22", None])
            copy_into(conn, "gm_words", dated, ["id", "note", "day"])  # a date: CSV
            assert raw.info.parameter_status("client_encoding") == "GBK"
            rows = raw.execute("SELECT id, note, day::text FROM gm_words").fetchall()
        assert sorted(rows, key=str) == sorted([
            ("王曲村", "长安路 1 号", None), ("户\t1", None, None),
            ("杜陵镇", "长安路 1 号", "2026-11-22"), ("逗,号", None, None)], key=str)
    finally:
        engine.dispose()
