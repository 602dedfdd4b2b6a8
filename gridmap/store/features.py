"""Feature collections for maps, built in PostGIS (``store/sql/*.sql``)."""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

from sqlalchemy import TextClause, text
from sqlalchemy.engine import Connection

from gridmap.domain.access import Scope
from gridmap.store.scope import scope_param
from gridmap.store.sqlfiles import read_sql


@cache
def _query(name: str) -> TextClause:
    return text(read_sql(f"{name}.sql"))


def divisions_geojson(conn: Connection, level: Literal["county", "township", "community"],
                      *, scope: Scope) -> dict[str, Any]:
    """The divisions of *level* in *scope* as a GeoJSON FeatureCollection."""
    return conn.execute(_query("divisions_geojson"),
                        {"level": level, "scope": scope_param(scope)}).scalar_one()


def grids_geojson(conn: Connection, *, scope: Scope, community: str | None = None,
                  counts: bool = True) -> dict[str, Any]:
    """Current grids in *scope* (optionally of one community), with household and resident
    counts unless *counts* is false."""
    return conn.execute(_query("grids_with_counts"), {
        "community": community, "scope": scope_param(scope), "counts": counts}).scalar_one()


def summary(conn: Connection, *, scope: Scope) -> dict[str, int]:
    """How many rows each layer holds within *scope*."""
    return dict(conn.execute(_query("summary"), {"scope": scope_param(scope)}).mappings().one())
