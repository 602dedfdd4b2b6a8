"""The schema comes from the migrations and enforces integrity in the database itself."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from gridmap.store import tables
from gridmap.store.db import current_revision

SQUARE = "MULTIPOLYGON(((109 34, 109.01 34, 109.01 34.01, 109 34.01, 109 34)))"


def _divisions(conn: Connection) -> None:
    conn.execute(text(
        "INSERT INTO division (code, name, level, parent_code, geom) VALUES "
        "('610199000000', 'd', 'county', NULL, ST_GeomFromText(:g, 4326)),"
        "('610199001000', 't', 'township', '610199000000', ST_GeomFromText(:g, 4326)),"
        "('610199001001', 'c', 'community', '610199001000', ST_GeomFromText(:g, 4326))"),
        {"g": SQUARE})


def test_migrated_to_head(conn: Connection) -> None:
    assert current_revision(conn) == "0020"


def test_tables_module_matches_the_migrated_schema(conn: Connection) -> None:
    inspector = inspect(conn)
    for table in tables.metadata.sorted_tables:
        db_cols = {c["name"] for c in inspector.get_columns(table.name)}
        assert db_cols == {c.name for c in table.columns}, table.name


def test_spatial_indexes_exist(conn: Connection) -> None:
    rows = conn.execute(text(
        "SELECT tablename FROM pg_indexes WHERE indexdef LIKE '%USING gist (geom)%'")).scalars()
    assert {"division", "grid", "household", "facility", "incident", "building",
            "street_edge"} <= set(rows)


@pytest.mark.parametrize(("sql", "params"), [
    # a grid whose community does not exist
    ("INSERT INTO grid (code, name, kind, community_code, geom) VALUES "
     "('610199001002001', 'g', 'comprehensive', '610199001002', ST_GeomFromText(:g, 4326))", {}),
    # a grid whose code is not under its community
    ("INSERT INTO grid (code, name, kind, community_code, geom) VALUES "
     "('610199001009001', 'g', 'comprehensive', '610199001001', ST_GeomFromText(:g, 4326))", {}),
    # a grid attached to a township instead of a community
    ("INSERT INTO grid (code, name, kind, community_code, geom) VALUES "
     "('610199001000001', 'g', 'comprehensive', '610199001000', ST_GeomFromText(:g, 4326))", {}),
    # wrong SRID
    ("INSERT INTO grid (code, name, kind, community_code, geom) VALUES "
     "('610199001001001', 'g', 'comprehensive', '610199001001', ST_GeomFromText(:g, 3857))", {}),
    # self-intersecting polygon
    ("INSERT INTO grid (code, name, kind, community_code, geom) VALUES "
     "('610199001001001', 'g', 'comprehensive', '610199001001', ST_GeomFromText("
     "'MULTIPOLYGON(((109 34, 109.01 34.01, 109.01 34, 109 34.01, 109 34)))', 4326))", {}),
    # empty geometry
    ("INSERT INTO grid (code, name, kind, community_code, geom) VALUES "
     "('610199001001001', 'g', 'comprehensive', '610199001001', "
     "ST_GeomFromText('MULTIPOLYGON EMPTY', 4326))", {}),
    # a township code at community level
    ("INSERT INTO division (code, name, level, parent_code, geom) VALUES "
     "('610199002000', 'x', 'community', '610199002000', ST_GeomFromText(:g, 4326))", {}),
    # a household with projected numbers as lon/lat
    ("INSERT INTO household (id, address, residents, geom) VALUES "
     "('h', 'a', 1, ST_SetSRID(ST_Point(500000, 3780000), 4326))", {}),
    # duplicate grid code
    ("INSERT INTO grid (code, name, kind, community_code, geom) VALUES "
     "('610199001001001', 'g', 'comprehensive', '610199001001', ST_GeomFromText(:g, 4326)),"
     "('610199001001001', 'h', 'comprehensive', '610199001001', ST_GeomFromText(:g, 4326))", {}),
])
def test_database_refuses_bad_rows(conn: Connection, sql: str, params: dict) -> None:
    _divisions(conn)
    with pytest.raises(DBAPIError), conn.begin_nested():
        conn.execute(text(sql), {"g": SQUARE, **params})


def test_a_good_grid_is_accepted(conn: Connection) -> None:
    _divisions(conn)
    conn.execute(text(
        "INSERT INTO grid (code, name, kind, community_code, geom) VALUES "
        "('610199001001001', 'g', 'comprehensive', '610199001001', ST_GeomFromText(:g, 4326))"),
        {"g": SQUARE})
    area = conn.execute(text("SELECT ST_Area(geom_3857) FROM grid")).scalar()
    assert area and area > 1_000_000  # the Web-Mercator copy is kept up to date
