"""Published versions of a community's grids: the history, the difference between two
versions, and the grid of a point at a past moment (tables grid_version, grid_history)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import text
from sqlalchemy.engine import Connection

from gridmap.store.sqlfiles import read_sql


def versions(conn: Connection, community: str) -> list[dict[str, Any]]:
    rows = conn.execute(text(read_sql("grid_versions.sql")), {"community": community})
    return [dict(r) for r in rows.mappings()]


def current_version(conn: Connection, community: str) -> int | None:
    return conn.execute(text("SELECT max(version) FROM grid_version WHERE community_code = "
                             ":c AND valid_to IS NULL"), {"c": community}).scalar()


def grid_changes(conn: Connection, community: str, a: int, b: int) -> list[tuple[str, str]]:
    rows = conn.execute(text(read_sql("version_diff_grids.sql")),
                        {"community": community, "a": a, "b": b})
    return [(str(code).strip(), str(change)) for code, change in rows]


def moved_points(conn: Connection, community: str, a: int, b: int,
                 layer: Literal["household", "incident"]) -> list[tuple[str, str | None,
                                                                      str | None]]:
    """(id, grid in version a, grid in version b) of the points whose grid differs."""
    if layer not in ("household", "incident"):
        raise ValueError(f"no points table {layer!r}")
    table = conn.dialect.identifier_preparer.quote(layer)  # from the allowlist above
    rows = conn.execute(text(read_sql("version_diff_points.sql").replace("{points}", table)),
                        {"community": community, "a": a, "b": b})
    return [(str(i), f.strip() if f else None, t.strip() if t else None)
            for i, f, t in rows if (f or None) != (t or None)]


def locate_at(conn: Connection, lon: float, lat: float, at: datetime) -> list[dict[str, Any]]:
    rows = conn.execute(text(read_sql("locate_at.sql")), {"lon": lon, "lat": lat, "at": at})
    return [{k: (v.strip() if isinstance(v, str) else v) for k, v in r.items()}
            for r in rows.mappings()]
