"""Migration 0019: points an older gridmap stored in no grid although one holds them are
assigned by the rule (so a publish can look at its redrawn area alone), with the per-grid
counts and a case's divisions; points outside every grid stay in none."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from tests.conftest import loaded_database
from tests.helpers import migrate

LOAD = "SELECT grid_code, households, residents FROM grid_load ORDER BY 1"
RECOUNT = ("SELECT grid_code, count(*), sum(residents) FROM household "
           "WHERE grid_code IS NOT NULL GROUP BY 1 ORDER BY 1")
STORED = "SELECT id, grid_code FROM {} ORDER BY id"


@pytest.fixture
def db_before(server_url: str, template_db: str) -> Iterator[str]:
    """The demo's layers imported (a copy of the session's template), at revision 0018."""
    for url in loaded_database(server_url, template_db, (
            "counties", "townships", "communities", "grids", "workers", "households",
            "facilities", "incidents")):
        migrate(url, "downgrade", "0018")
        yield url


def test_unassigned_points_are_assigned_once(db_before: str) -> None:
    engine = create_engine(db_before, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            raw = conn.connection.driver_connection
            assigned = {t: raw.execute(STORED.format(t)).fetchall()
                        for t in ("household", "facility", "incident")}
            divisions = raw.execute("SELECT id, community_code, township_code FROM incident "
                                    "ORDER BY id").fetchall()
            outside = raw.execute("SELECT count(*) FROM household WHERE grid_code IS NULL"
                                  ).fetchone()[0]
            # as an older gridmap left them: imported, never assigned
            for t in assigned:
                raw.execute(f"UPDATE {t} SET grid_code = NULL")
            raw.execute("UPDATE incident SET community_code = NULL")
            raw.execute("DELETE FROM grid_load")
        migrate(db_before, "upgrade", "0019")
        with engine.begin() as conn:
            raw = conn.connection.driver_connection
            for t, rows in assigned.items():
                assert raw.execute(STORED.format(t)).fetchall() == rows, t
            assert raw.execute("SELECT id, community_code, township_code FROM incident "
                               "ORDER BY id").fetchall() == divisions
            assert raw.execute(LOAD).fetchall() == raw.execute(RECOUNT).fetchall()
            assert raw.execute("SELECT count(*) FROM household WHERE grid_code IS NULL"
                               ).fetchone()[0] == outside
        migrate(db_before, "downgrade", "0018")  # keeps the assignment
        with engine.begin() as conn:
            raw = conn.connection.driver_connection
            assert raw.execute(STORED.format("household")).fetchall() == assigned["household"]
        migrate(db_before, "upgrade", "head")
        with engine.begin() as conn:
            raw = conn.connection.driver_connection
            assert raw.execute(STORED.format("household")).fetchall() == assigned["household"]
    finally:
        engine.dispose()
