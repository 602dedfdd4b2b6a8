"""Everyone inside an area, per grid, from PostGIS (``sql/emergency_area.sql``): one query
over the GiST index on ``household.geom``. The use case is :mod:`gridmap.emergency`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from gridmap.domain.access import Scope
from gridmap.store.scope import scope_param
from gridmap.store.sqlfiles import read_sql


def read_area_by_grid(conn: Connection, scope: Scope, *, polygon_wkb: bytes | None = None,
                      center: tuple[float, float] | None = None,
                      radius_m: float | None = None, with_list: bool = False,
                      with_shapes: bool = False) -> list[dict[str, Any]]:
    """One row per grid holding households of *scope* inside the area — a WGS84 polygon
    (*polygon_wkb*) or the circle of *radius_m* metres around *center* (lon, lat) — with its
    counts (``households``, ``residents``, ``vulnerable_households``,
    ``vulnerable_residents``, ``<flag>_households``, ``<flag>_residents``), name, kind,
    community and ``workers`` (unmasked: the caller masks them). *with_list*: the vulnerable
    households as ``vulnerable_list``; *with_shapes*: the grid's outline as ``shape``
    (GeoJSON). Households outside every grid make a row with ``grid_code`` None (a scope
    of everything only)."""
    if (polygon_wkb is None) == (center is None):
        raise ValueError("give either a polygon or a center and a radius")
    if center is not None and radius_m is None:
        raise ValueError("a center needs a radius")
    lon, lat = center if center is not None else (None, None)
    rows = conn.execute(text(read_sql("emergency_area.sql")), {
        "wkb": polygon_wkb, "lon": lon, "lat": lat,
        "radius_m": radius_m if center is not None else None,
        "scope": scope_param(scope), "list": with_list, "shapes": with_shapes}).mappings()
    return [dict(r) for r in rows]
