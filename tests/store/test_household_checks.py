"""Migration 0017: the household checks a bulk load pays for on every row are cheaper and let
nothing more in than those of 0015 did, the id sorts byte by byte, and the migration goes
both ways."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from tests.helpers import database_at, migrate

OLD = ("NOT ST_IsEmpty(g) AND ST_X(g) BETWEEN -180 AND 180 AND ST_Y(g) BETWEEN -90 AND 90")
# on and just past each limit, just inside the box the new check answers by, NaN, infinity
EDGES = [("180", "90"), ("-180", "-90"), ("180.00001", "0"), ("-180.00001", "0"),
         ("0", "90.00001"), ("0", "-90.000001"), ("179.9995", "89.9995"), ("179.999", "0"),
         ("179.99999", "-89.99999"), ("0", "0"), ("'NaN'", "0"), ("0", "'NaN'"),
         ("'Infinity'", "0"), ("109", "'-Infinity'"), ("1e300", "0")]


def _accepted(conn: Connection, geom: str) -> bool:
    try:
        with conn.begin_nested():
            conn.execute(text(
                "INSERT INTO household (id, address, residents, geom) "
                f"VALUES ('e', 'edge', 1, {geom})"))
        return True
    except DBAPIError as exc:
        assert "household_geom_lonlat" in str(exc)
        return False


@pytest.mark.parametrize(("x", "y"), EDGES)
def test_the_lonlat_check_refuses_what_it_refused(conn: Connection, x: str, y: str) -> None:
    geom = f"ST_SetSRID(ST_MakePoint({x}::float8, {y}::float8), 4326)"
    before = conn.execute(text(f"SELECT ({OLD}) IS TRUE FROM (SELECT {geom} AS g) AS p")
                          ).scalar()
    assert _accepted(conn, geom) == before


def test_an_empty_point_is_refused(conn: Connection) -> None:
    assert not _accepted(conn, "'SRID=4326;POINT EMPTY'::geometry")


@pytest.fixture
def db_at_0015(server_url: str) -> Iterator[str]:
    with database_at(server_url, "0015", "gridmap_checks") as db:
        yield db



def _checks(url: str) -> dict[str, str | None]:
    """household's checks by name, and the id's collation (None: the database's)."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            checks: dict[str, str | None] = dict(conn.execute(text(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE "
                "conrelid = 'household'::regclass AND contype = 'c'")).all())
            checks["id collation"] = conn.execute(text(
                "SELECT collation_name FROM information_schema.columns WHERE table_name = "
                "'household' AND column_name = 'id'")).scalar()
            return checks
    finally:
        engine.dispose()


def test_the_migration_goes_both_ways(db_at_0015: str) -> None:
    before = _checks(db_at_0015)
    assert "household_county_code_check" in before and before["id collation"] is None
    migrate(db_at_0015, "upgrade", "0017")
    after = _checks(db_at_0015)
    assert "household_county_code_check" not in after
    assert "&&" in str(after["household_geom_lonlat"])
    assert after["id collation"] == "C"
    migrate(db_at_0015, "downgrade", "0015")
    assert _checks(db_at_0015) == before
