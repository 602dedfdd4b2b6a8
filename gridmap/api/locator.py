"""The dispatcher's lookup: a point → township, community, grid, workers, in-process.

The grid index (:mod:`gridmap.analysis.assign`) and the names and workers live in memory;
a request reads no table. The API polls the database's change notices (``store.listen``) on
every request — a non-blocking socket read — and a change to grids, divisions or workers
rebuilds the index before the request is answered, so the first request after a redraw
already sees it.

Stored grids that cannot be indexed (two comprehensive grids that overlap) do not stop the
server: the grids at fault are left out, the rest is located, and the problem is reported
(``/readyz``, the log, and the answer for a point in a grid left out) until the data is fixed.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import NDArray
from sqlalchemy import Engine, text

from gridmap.analysis.assign import GridIndex, GridIndexError, build_grid_index
from gridmap.domain import chinacrs
from gridmap.store.assign import read_grids
from gridmap.store.listen import Change
from gridmap.store.sqlfiles import read_sql

M_PER_DEG_LAT = 110_574.0
M_PER_DEG_LON_EQ = 111_320.0
WATCHED = {"grid", "division", "grid_worker"}
ORIGIN = shapely.Point(0, 0)
log = logging.getLogger("gridmap")


def to_wgs84(lon: float, lat: float, crs: str) -> tuple[float, float]:
    """(lon, lat) in WGS84 from wgs84 / cgcs2000 (the same to centimetres) / gcj02 / bd09."""
    if crs in ("wgs84", "cgcs2000"):
        return lon, lat
    convert = chinacrs.gcj02_to_wgs84 if crs == "gcj02" else chinacrs.bd09_to_wgs84
    x, y = convert(lon, lat)
    return float(x), float(y)


@dataclass(frozen=True)
class Built:
    """What could be indexed of the stored grids."""

    index: GridIndex | None
    left_out: list[tuple[str, shapely.Geometry]]  # grids that cannot be indexed
    problem: str | None


def _unindexable(grids: gpd.GeoDataFrame) -> NDArray[np.bool_]:
    """The grids to leave out so that the rest can be indexed: empty or invalid ones, and of
    comprehensive grids whose interiors overlap, the one overlapping most others, repeatedly
    (a grid drawn over several others goes; of a pair, neither can be trusted: both go)."""
    geoms = np.asarray(grids.geometry.values, dtype=object)
    bad = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    bad |= ~np.isin(shapely.get_type_id(geoms), [3, 6])
    bad[~bad] |= ~shapely.is_valid(geoms[~bad])
    base = np.flatnonzero((grids["kind"].to_numpy() == "comprehensive") & ~bad)
    a, b = shapely.STRtree(geoms[base]).query(geoms[base], predicate="intersects")
    a, b = a[a < b], b[a < b]
    inner = shapely.relate_pattern(geoms[base][a], geoms[base][b], "2********")
    partners: dict[int, set[int]] = {}
    for i, j in zip(base[a[inner]].tolist(), base[b[inner]].tolist(), strict=True):
        partners.setdefault(i, set()).add(j)
        partners.setdefault(j, set()).add(i)
    while partners:
        worst = max(partners, key=lambda k: (len(partners[k]), k))
        if len(partners[worst]) == 1:  # only pairs are left
            bad[list(partners)] = True
            break
        bad[worst] = True
        for other in partners.pop(worst):
            partners[other].discard(worst)
            if not partners[other]:
                del partners[other]
    return bad


def index_what_can_be(grids: gpd.GeoDataFrame, *, band_grids: int = 100_000) -> Built:
    """The index of *grids*, or, when they cannot all be indexed, of those that can, with
    the problem and the grids left out (*band_grids*: see :func:`build_grid_index`)."""
    if not len(grids):
        return Built(None, [], None)
    try:
        return Built(build_grid_index(grids, band_grids=band_grids), [], None)
    except GridIndexError as exc:
        problem = str(exc)
    bad = _unindexable(grids)
    rest = grids[~bad]
    try:
        index = build_grid_index(rest, band_grids=band_grids) if bad.any() and len(rest) \
            else None
    except GridIndexError as exc:
        return Built(None, [], f"{problem}; without the grids at fault: {exc}")
    if index is None:
        return Built(None, [], problem)
    left = grids[bad]
    codes = [str(c) for c in left["code"]]
    named = ", ".join(codes[:10]) + (f" and {len(codes) - 10} more" if len(codes) > 10 else "")
    return Built(index, list(zip(codes, left.geometry, strict=True)),
                 f"{problem}. Locate leaves out {len(codes)} grid(s) until this is fixed: "
                 f"{named}")


@dataclass(frozen=True)
class LocatorStatus:
    loaded: bool  # an index answers (or there are no grids to index)
    grids: int  # grids indexed
    problem: str | None  # why some or all stored grids are not indexed
    loaded_at: float | None  # time.time() of the last successful reload


class Locator:
    def __init__(self, engine: Engine, *, margin_m: float = 10.0) -> None:
        self.engine = engine
        self.margin_m = margin_m
        self._lock = threading.Lock()
        self.index: GridIndex | None = None
        self.context: dict[str, dict[str, Any]] = {}
        self.left_out: list[tuple[str, shapely.Geometry]] = []
        self.problem: str | None = None
        self.stored = 0  # grids in the database at the last reload
        self.loaded_at: float | None = None
        self.reload()

    def reload(self) -> None:
        """Read the grids, names and workers and index what can be indexed. A database error
        propagates (the change hub gives the change again later) and the current index stays;
        grids that cannot be indexed are left out and named in :attr:`problem`."""
        with self.engine.connect() as conn:
            grids = read_grids(conn)
            rows = conn.execute(text(read_sql("locate_context.sql"))).mappings().all()
        built = index_what_can_be(grids)
        context = {r["code"]: dict(r) for r in rows}
        problem = built.problem
        with self._lock:
            if built.index is None and len(grids) and self.index is not None:
                problem = f"{problem}; locate answers from the grids as they were before"
            else:
                self.index, self.context, self.left_out = built.index, context, built.left_out
            self.stored, self.loaded_at = len(grids), time.time()
            previous, self.problem = self.problem, problem
        if problem and problem != previous:
            log.warning("locate index: %s", problem)
        elif previous and not problem:
            log.warning("locate index: every grid is indexed again")

    def status(self) -> LocatorStatus:
        index = self.index
        grids = 0 if index is None else len(index.codes)
        return LocatorStatus(index is not None or self.stored == 0, grids, self.problem,
                             self.loaded_at)

    def apply(self, changes: list[Change]) -> None:
        """Rebuild when grids, divisions or workers changed (a ChangeHub subscriber)."""
        if any(change.table in WATCHED for change in changes):
            self.reload()

    def _left_out_at(self, x: float, y: float) -> list[str]:
        return [code for code, geom in self.left_out if shapely.intersects_xy(geom, x, y)]

    def locate(self, lon: float, lat: float, crs: str = "wgs84") -> dict[str, Any]:
        x, y = to_wgs84(lon, lat, crs)
        index = self.index
        answer: dict[str, Any] = {"lon": x, "lat": y, "crs": crs}
        if index is None:
            why = f": {self.problem}" if self.problem else ""
            return {**answer, "inside": False, "candidates": [],
                    "message": f"no grids are indexed{why}"}
        pos = index.lookup_one(x, y)
        kx = M_PER_DEG_LON_EQ * math.cos(math.radians(y))
        shift, scale = np.array((x, y)), np.array((kx, M_PER_DEG_LAT))

        def metres(geom: shapely.Geometry) -> shapely.Geometry:
            return shapely.transform(geom, lambda c: (c - shift) * scale)

        # grids whose box comes within pad degrees: a superset of those within the margin in
        # metres (a degree is at least min(kx, M_PER_DEG_LAT) metres either way), told apart
        # exactly below; most points have none but their own
        pad = self.margin_m / min(kx, M_PER_DEG_LAT)
        # (an array of one box: a scalar costs the tree's expand_dims, ~3.5 µs a request)
        near = index.tree.query(np.array([shapely.box(x - pad, y - pad, x + pad, y + pad)]))[1]
        near = near[near != pos]
        if near.size:  # of those, the ones within pad degrees, in one call: a superset still
            near = near[shapely.dwithin(index.geoms[near], shapely.points((x, y)),
                                        pad * (1 + 1e-9))]
        candidates = []
        for j in sorted(near.tolist()):
            d = float(shapely.distance(metres(index.geoms[j]), ORIGIN))
            if d <= self.margin_m:
                candidates.append({**self._grid(index, j), "distance_m": round(d, 2)})
        if pos < 0:
            left_out = self._left_out_at(x, y)
            message = (f"the point is in grid(s) {', '.join(left_out)}, left out of the locate "
                       "index until their boundaries are fixed (they overlap or are invalid: "
                       "see `gridmap check`)") if left_out else (
                       "the point is outside every grid of the district")
            return {**answer, "inside": False, "candidates": candidates, "message": message}
        edge = float(shapely.distance(metres(index.geoms[pos].boundary), ORIGIN))
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

