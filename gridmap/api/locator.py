"""The dispatcher's lookup: a point → township, community, grid, workers, in-process.

The grid index (:mod:`gridmap.analysis.assign`) and the names and workers live in memory;
a request reads no table. The API polls the database's change notices (``store.listen``) on
every request — a non-blocking socket read — and a change to grids, divisions or workers
rebuilds the index before the request is answered, so the first request after a redraw
already sees it.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import shapely
from sqlalchemy import Engine, text

from gridmap.analysis.assign import GridIndex, build_grid_index
from gridmap.domain import chinacrs
from gridmap.store.assign import read_grids
from gridmap.store.listen import Change
from gridmap.store.sqlfiles import read_sql

M_PER_DEG_LAT = 110_574.0
M_PER_DEG_LON_EQ = 111_320.0
WATCHED = {"grid", "division", "grid_worker"}


def to_wgs84(lon: float, lat: float, crs: str) -> tuple[float, float]:
    """(lon, lat) in WGS84 from wgs84 / cgcs2000 (the same to centimetres) / gcj02 / bd09."""
    if crs in ("wgs84", "cgcs2000"):
        return lon, lat
    convert = chinacrs.gcj02_to_wgs84 if crs == "gcj02" else chinacrs.bd09_to_wgs84
    x, y = convert(lon, lat)
    return float(x), float(y)


class Locator:
    def __init__(self, engine: Engine, *, margin_m: float = 10.0) -> None:
        self.engine = engine
        self.margin_m = margin_m
        self._lock = threading.Lock()
        self.index: GridIndex | None = None
        self.context: dict[str, dict[str, Any]] = {}
        self.reload()

    def reload(self) -> None:
        with self.engine.connect() as conn:
            grids = read_grids(conn)
            rows = conn.execute(text(read_sql("locate_context.sql"))).mappings().all()
        index = build_grid_index(grids) if len(grids) else None
        context = {r["code"]: dict(r) for r in rows}
        with self._lock:
            self.index, self.context = index, context

    def apply(self, changes: list[Change]) -> None:
        """Rebuild when grids, divisions or workers changed (a ChangeHub subscriber)."""
        if any(change.table in WATCHED for change in changes):
            self.reload()

    def locate(self, lon: float, lat: float, crs: str = "wgs84") -> dict[str, Any]:
        x, y = to_wgs84(lon, lat, crs)
        index = self.index
        answer: dict[str, Any] = {"lon": x, "lat": y, "crs": crs}
        if index is None:
            return {**answer, "inside": False, "message": "no grids are loaded"}
        pos = int(index.lookup(np.array([x]), np.array([y]))[0])
        kx = M_PER_DEG_LON_EQ * np.cos(np.radians(y))

        def metres(geom: shapely.Geometry) -> shapely.Geometry:
            return shapely.transform(geom, lambda c: np.column_stack(
                [(c[:, 0] - x) * kx, (c[:, 1] - y) * M_PER_DEG_LAT]))

        origin = shapely.Point(0, 0)
        pad = self.margin_m / min(kx, M_PER_DEG_LAT)
        near = index.tree.query(shapely.box(x - pad, y - pad, x + pad, y + pad))
        candidates = []
        for j in sorted(near.tolist()):
            if j == pos:
                continue
            d = float(shapely.distance(metres(index.geoms[j]), origin))
            if d <= self.margin_m:
                candidates.append({**self._grid(index, j), "distance_m": round(d, 2)})
        if pos < 0:
            return {**answer, "inside": False, "candidates": candidates,
                    "message": "the point is outside every grid of the district"}
        edge = float(shapely.distance(metres(index.geoms[pos].boundary), origin))
        return {
            **answer, "inside": True, **self.describe(str(index.codes[pos])),
            "edge_distance_m": round(edge, 2),
            "near_edge": edge < self.margin_m, "candidates": candidates,
        }

    def describe(self, grid_code: str | None) -> dict[str, Any]:
        """Township, community, grid and workers of a grid (from memory); all empty for
        None (outside every grid)."""
        if grid_code is None:
            return {"township": None, "community": None, "grid": None, "workers": []}
        ctx = self.context.get(grid_code, {})
        return {
            "township": {"code": ctx.get("township_code"), "name": ctx.get("township_name")},
            "community": {"code": ctx.get("community_code"), "name": ctx.get("community_name")},
            "grid": {"code": grid_code, "name": ctx.get("name"), "kind": ctx.get("kind")},
            "workers": ctx.get("workers", []),
        }

    def _grid(self, index: GridIndex, j: int) -> dict[str, Any]:
        code = str(index.codes[j])
        ctx = self.context.get(code, {})
        return {"code": code, "name": ctx.get("name"), "kind": str(index.kinds[j])}

