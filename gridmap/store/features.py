"""Feature collections for maps, built in PostGIS (``store/sql/*.sql``)."""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

from sqlalchemy import TextClause, text
from sqlalchemy.engine import Connection

from gridmap.store.sqlfiles import read_sql


@cache
def _query(name: str) -> TextClause:
    return text(read_sql(f"{name}.sql"))


def divisions_geojson(conn: Connection, level: Literal["county", "township", "community"]
                      ) -> dict[str, Any]:
    """All divisions of *level* as a GeoJSON FeatureCollection."""
    return conn.execute(_query("divisions_geojson"), {"level": level}).scalar_one()


def grids_geojson(conn: Connection, *, community: str | None = None) -> dict[str, Any]:
    """Current grids (optionally of one community) with household and resident counts."""
    return conn.execute(_query("grids_with_counts"), {"community": community}).scalar_one()


def summary(conn: Connection) -> dict[str, int]:
    """How many rows each layer holds."""
    row = conn.execute(text(
        "SELECT (SELECT count(*) FROM division WHERE level = 'township') AS townships,"
        " (SELECT count(*) FROM division WHERE level = 'community') AS communities,"
        " (SELECT count(*) FROM grid) AS grids,"
        " (SELECT count(*) FROM household) AS households,"
        " (SELECT count(*) FROM facility) AS facilities,"
        " (SELECT count(*) FROM incident) AS incidents,"
        " (SELECT count(*) FROM grid_worker) AS workers")).mappings().one()
    return dict(row)
