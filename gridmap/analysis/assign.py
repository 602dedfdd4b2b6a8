"""Exact, very fast assignment of points to grids.

The rule (the same in PostGIS, see ``store/sql/assign_households.sql``): a point belongs to the
grids whose *closed* polygon contains it (interior or boundary, ``ST_Intersects``); among them
an exclusive grid wins over a comprehensive one, and then the lowest 15-digit code wins. So a
point on an edge shared by two grids, or on a vertex where several meet, goes to the lowest code.
A point in no grid is *outside* and is reported as such, never dropped.

How it is fast: the index rasterises the grids once into a fine label raster (scanline fill of
cell centres) and marks every cell that any polygon edge comes near (within an eighth of a
cell, conservatively) as a *boundary* cell. A cell that is not a boundary cell lies wholly in
one face of the grids' arrangement, so its label is exact for every point in it; only points in
boundary cells (about 1% of a city's area) are tested exactly, against prepared polygons
(GEOS, like PostGIS). The lookup for the other 99% is a handful of vectorised NumPy passes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import ArrayLike, NDArray
from pyproj import CRS

from gridmap.analysis.frames import is_dask
from gridmap.domain.codes import GRID_CODE

OUTSIDE = -1
BOUNDARY = -2
GridKindOrder = ("exclusive", "comprehensive", "micro")


class GridIndexError(ValueError):
    """The grids cannot be indexed as they are (overlaps, invalid geometry, no CRS…)."""


@dataclass
class GridIndex:
    """A built assignment index. Keep it while the grids do not change.

    ``codes[i]``, ``kinds[i]`` and ``geoms[i]`` describe grid *i* in rule order: position 0 wins
    any tie. ``labels`` holds, per raster cell, the winning grid, ``OUTSIDE`` or ``BOUNDARY``.
    """

    crs: CRS
    x0: float
    y0: float
    cell: float
    labels: NDArray[np.integer]
    codes: NDArray[np.str_]
    kinds: NDArray[np.str_]
    geoms: NDArray[np.object_]
    tree: shapely.STRtree = field(repr=False)

    @property
    def shape(self) -> tuple[int, int]:
        ny, nx = self.labels.shape
        return int(ny), int(nx)

    @cached_property
    def chain(self) -> dict[str, tuple[pd.CategoricalDtype, NDArray[np.signedinteger]]]:
        """Per output column (``grid_code``, ``grid_kind`` and, when every code is a
        15-digit grid code, ``community_code``, ``township_code``, ``county_code``): the
        categorical type and each grid's category, worked out once per grid, so that a
        point's whole chain is a look-up by its grid's position."""
        columns: dict[str, NDArray[np.str_]] = {"grid_code": self.codes,
                                                "grid_kind": self.kinds}
        if len(self.codes) and all(GRID_CODE.match(c) for c in self.codes):
            com = np.array([c[:12] for c in self.codes])
            columns["community_code"] = com
            columns["township_code"] = np.array([c[:9] + "000" for c in com])
            columns["county_code"] = np.array([c[:6] + "000000" for c in com])
        out = {}
        for name, values in columns.items():
            categories, per_grid = np.unique(values, return_inverse=True)
            # codes of the width pandas keeps them in, so none is converted per point
            width = np.int8 if len(categories) < 127 else np.int16 \
                if len(categories) < 32_767 else np.int32
            out[name] = (pd.CategoricalDtype(categories.astype(object)),
                         np.r_[per_grid, -1].astype(width))  # [-1]: outside
        return out

    @property
    def boundary_share(self) -> float:
        """Share of raster cells that need the exact test."""
        return float((self.labels == BOUNDARY).mean())

    def lookup(self, x: ArrayLike, y: ArrayLike) -> NDArray[np.int32]:
        """Position of each point's grid in ``codes`` (``OUTSIDE`` = -1), by the rule."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        return self._lookup_all(x, y)

    def lookup_one(self, x: float, y: float) -> int:
        """:meth:`lookup` of one point, with the same cell arithmetic but no arrays: what a
        request to locate one point needs (a few microseconds instead of a dozen NumPy
        calls on arrays of one).

        Examples
        --------
        >>> from shapely import box
        >>> grids = gpd.GeoDataFrame({"code": ["a", "b"]}, geometry=[box(0, 0, 1, 1),
        ...                          box(1, 0, 2, 1)], crs=4326)
        >>> index = build_grid_index(grids)
        >>> index.lookup_one(0.5, 0.5), index.lookup_one(1.5, 0.5), index.lookup_one(5, 5)
        (0, 1, -1)
        """
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError("a point with NaN or infinite coordinates cannot be assigned")
        ny, nx = self.labels.shape
        inv = 1.0 / self.cell
        ix = int(min(max((x - self.x0) * inv, 0.0), nx - 1))  # np.clip, then truncation
        iy = int(min(max((y - self.y0) * inv, 0.0), ny - 1))
        label = int(self.labels[iy, ix])
        if label == BOUNDARY:
            return int(self.exact(np.array([x]), np.array([y]))[0])
        return label

    def _lookup_all(self, x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.int32]:
        if x.shape != y.shape:
            raise ValueError("x and y differ in length")
        if x.size and not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise ValueError("points with NaN or infinite coordinates (empty geometries?) "
                             "cannot be assigned: drop or fix them first")
        out = np.empty(x.shape, dtype=np.int32)
        for start in range(0, x.size, self.CHUNK):  # bounded memory, cache-friendly
            part = slice(start, start + self.CHUNK)
            out[part] = self._lookup(x[part], y[part])
        return out

    CHUNK = 1 << 20

    def _lookup(self, x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.int32]:
        out = np.empty(x.shape, dtype=np.int32)
        _raster_lookup(x, y, self.labels, self.x0, self.y0, 1.0 / self.cell, out)
        hard = np.flatnonzero(out == BOUNDARY)
        if hard.size:
            out[hard] = self.exact(x[hard], y[hard])
        return out

    def exact(self, x: NDArray[np.floating], y: NDArray[np.floating]) -> NDArray[np.int32]:
        """The rule evaluated exactly (GEOS predicates on prepared polygons)."""
        pts = shapely.points(x, y)
        pi, gi = self.tree.query(pts)
        hit = shapely.intersects_xy(self.geoms[gi], x[pi], y[pi])
        pi, gi = pi[hit], gi[hit]
        best = np.full(len(x), np.iinfo(np.int32).max, dtype=np.int64)
        np.minimum.at(best, pi, gi)
        return np.where(best == np.iinfo(np.int32).max, OUTSIDE, best).astype(np.int32)


def _raster_lookup(x: NDArray, y: NDArray, labels: NDArray, x0: float, y0: float,
                   inv: float, out: NDArray) -> None:
    """Each point's raster label (points off the raster read its edge cells, which are
    OUTSIDE: the raster has a margin). Plain NumPy: a compiled loop was no faster here, and
    its first call in a process paid seconds of JIT start-up."""
    ny, nx = labels.shape
    ix = np.clip((x - x0) * inv, 0, nx - 1).astype(np.intp)
    iy = np.clip((y - y0) * inv, 0, ny - 1).astype(np.intp)
    iy *= nx
    iy += ix
    out[...] = labels.reshape(-1)[iy]


def _rule_order(grids: gpd.GeoDataFrame, kinds: tuple[str, ...]) -> gpd.GeoDataFrame:
    kind = grids["kind"] if "kind" in grids else pd.Series("comprehensive", index=grids.index)
    keep = kind.isin(kinds)
    rank = kind.map({k: i for i, k in enumerate(GridKindOrder)})
    ordered = grids.loc[keep].assign(_rank=rank[keep]).sort_values(["_rank", "code"])
    return ordered.drop(columns="_rank").reset_index(drop=True)


def _segments(geoms: NDArray[np.object_]) -> tuple[NDArray, NDArray, NDArray, NDArray, NDArray]:
    """All ring segments as (x1, y1, x2, y2, polygon position)."""
    parts, part_of = shapely.get_parts(geoms, return_index=True)
    rings, ring_of = shapely.get_rings(parts, return_index=True)
    coords, idx = shapely.get_coordinates(rings, return_index=True)
    same = idx[1:] == idx[:-1]
    x1, y1 = coords[:-1, 0][same], coords[:-1, 1][same]
    x2, y2 = coords[1:, 0][same], coords[1:, 1][same]
    owner = part_of[ring_of[idx[:-1][same]]]
    return x1, y1, x2, y2, owner


def _spans(segs: tuple, polys: NDArray[np.intp], x0: float, y0: float, cell: float
           ) -> tuple[NDArray, NDArray, NDArray, NDArray]:
    """Scanline fill as spans (row, polygon, first column, end column) of the cells whose
    centre lies inside each polygon (even-odd rule per polygon, so holes and multipolygon
    parts come out right). Small: a few per polygon and raster row."""
    x1, y1, x2, y2, owner = segs
    sel = np.isin(owner, polys) & (y1 != y2)
    x1, y1, x2, y2, owner = x1[sel], y1[sel], x2[sel], y2[sel], owner[sel]
    ymin, ymax = np.minimum(y1, y2), np.maximum(y1, y2)
    r0 = np.ceil((ymin - y0) / cell - 0.5).astype(np.int64)
    r1 = np.ceil((ymax - y0) / cell - 0.5).astype(np.int64)
    n = np.maximum(r1 - r0, 0)
    empty = np.zeros(0, dtype=np.int64)
    if not n.sum():
        return empty, empty, empty, empty
    seg = np.repeat(np.arange(len(n)), n)
    row = r0[seg] + (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n))
    yc = y0 + (row + 0.5) * cell
    xc = x1[seg] + (yc - y1[seg]) * (x2[seg] - x1[seg]) / (y2[seg] - y1[seg])
    poly = owner[seg]
    del seg, yc
    order = np.lexsort((xc, row, poly))
    poly, row, xc = poly[order], row[order], xc[order]
    start, end = xc[0::2], xc[1::2]
    prow, ppoly = row[0::2], poly[0::2]
    c0 = np.ceil((start - x0) / cell - 0.5).astype(np.int64)
    c1 = np.ceil((end - x0) / cell - 0.5).astype(np.int64)
    ok = c1 > c0
    return prow[ok], ppoly[ok], c0[ok], c1[ok]


def _paint_partition(labels: NDArray, spans: tuple, *, strip_rows: int = 256
                     ) -> NDArray[np.int64]:
    """Paint a partition's spans (disjoint where the grids do not overlap), a strip of rows
    at a time so that the temporaries stay small; returns the flat positions of cells whose
    centre more than one polygon claims."""
    prow, ppoly, c0, c1 = spans
    ny, nx = labels.shape
    overlaps = [np.zeros(0, dtype=np.int64)]
    order = np.argsort(prow, kind="stable")
    prow, ppoly, c0, c1 = prow[order], ppoly[order], c0[order], c1[order]
    bounds = np.searchsorted(prow, np.arange(0, ny + strip_rows, strip_rows))
    for k, top in enumerate(range(0, ny, strip_rows)):
        a, b = bounds[k], bounds[k + 1]
        if a == b:
            continue
        rows = min(strip_rows, ny - top)
        r = prow[a:b] - top
        diff = np.zeros((rows, nx + 1), dtype=np.int32)
        np.add.at(diff, (r, c0[a:b]), ppoly[a:b] + 1)
        np.add.at(diff, (r, c1[a:b]), -(ppoly[a:b] + 1))
        painted = np.cumsum(diff[:, :-1], axis=1, dtype=np.int32)
        diff[:] = 0
        np.add.at(diff, (r, c0[a:b]), 1)
        np.add.at(diff, (r, c1[a:b]), -1)
        counts = np.cumsum(diff[:, :-1], axis=1, dtype=np.int32)
        del diff
        inside = counts == 1
        strip = labels[top:top + rows]
        strip[inside] = painted[inside] - 1
        many = np.flatnonzero(counts > 1)
        if many.size:
            overlaps.append(many + top * nx)
    return np.concatenate(overlaps)


def _paint_bands(labels: NDArray, geoms: NDArray[np.object_], exclusive: NDArray[np.bool_],
                 x0: float, y0: float, cell: float, *, band_grids: int) -> NDArray[np.int64]:
    """Paint the grids and mark the boundary cells a band of raster rows at a time, from
    the ring segments of the grids whose bounds reach the band (with a cell to spare);
    returns the flat positions of cells that more than one comprehensive grid claims."""
    ny = labels.shape[0]
    bounds = shapely.bounds(geoms)
    band_rows = max(64, ny * band_grids // max(len(geoms), 1))
    overlaps = [np.zeros(0, dtype=np.int64)]
    for first in range(0, ny, band_rows):
        rows = (first, min(first + band_rows, ny))
        low, high = y0 + (rows[0] - 1) * cell, y0 + (rows[1] + 1) * cell
        near = np.flatnonzero((bounds[:, 3] >= low) & (bounds[:, 1] <= high))
        if not near.size:
            continue
        *ends, owner = _segments(geoms[near])
        segs = (*ends, near[owner])
        base, top = near[~exclusive[near]], near[exclusive[near]]
        overlaps.append(_paint_partition(labels, _in_rows(_spans(segs, base, x0, y0, cell),
                                                          rows)))
        if top.size:
            # exclusive grids, lowest priority first so that the winner is painted last
            _paint_over(labels, _in_rows(_spans(segs, top[::-1], x0, y0, cell), rows))
        _mark_edges(labels, segs, x0, y0, cell, rows=rows)
    return np.concatenate(overlaps)


def _in_rows(spans: tuple, rows: tuple[int, int]) -> tuple:
    keep = (spans[0] >= rows[0]) & (spans[0] < rows[1])
    return tuple(a[keep] for a in spans)


def _paint_over(labels: NDArray, spans: tuple) -> None:
    """Paint spans one after the other, the last painted winning (few polygons)."""
    prow, ppoly, c0, c1 = spans
    for r, p, a, b in zip(prow.tolist(), ppoly.tolist(), c0.tolist(), c1.tolist(),
                          strict=True):
        labels[r, a:b] = p


def _mark_edges(labels: NDArray, segs: tuple, x0: float, y0: float, cell: float, *,
                rows: tuple[int, int], chunk: int = 1 << 20) -> None:
    """Mark as BOUNDARY every cell of *rows* (first, end) that comes within cell/8 of any
    edge (conservative), sampling the edges every quarter cell, about *chunk* samples at a
    time."""
    x1, y1, x2, y2, _ = segs
    length = np.hypot(x2 - x1, y2 - y1)
    n = np.ceil(length / (cell / 4)).astype(np.int64) + 1
    ends = np.cumsum(n)
    ny, nx = labels.shape
    eps = cell / 8
    first = 0
    while first < len(n):
        last = int(np.searchsorted(ends, ends[first] - n[first] + chunk, side="right"))
        last = max(last, first + 1)
        part = slice(first, last)
        m = n[part]
        seg = np.repeat(np.arange(first, last), m)
        t = (np.arange(m.sum()) - np.repeat(np.cumsum(m) - m, m)) / np.maximum(n[seg] - 1, 1)
        sx = x1[seg] + t * (x2[seg] - x1[seg])
        sy = y1[seg] + t * (y2[seg] - y1[seg])
        del seg, t
        for dx in (-eps, eps):
            ix = np.clip(((sx + dx - x0) / cell).astype(np.int64), 0, nx - 1)
            for dy in (-eps, eps):
                iy = np.clip(((sy + dy - y0) / cell).astype(np.int64), 0, ny - 1)
                mine = (iy >= rows[0]) & (iy < rows[1])
                labels[iy[mine], ix[mine]] = BOUNDARY
        first = last


def _repairable(ordered: gpd.GeoDataFrame, geoms: NDArray[np.object_], repair: bool
                ) -> NDArray[np.object_]:
    """Refuse empty, non-polygon and (unless *repair*) invalid grids, each named with the
    reason; with *repair*, invalid ones are made valid (their polygonal part)."""
    codes = ordered["code"].to_numpy().astype(str)
    bad = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    bad |= ~np.isin(shapely.get_type_id(geoms), [3, 6])
    if bad.any():
        names = ", ".join(codes[bad][:10])
        raise GridIndexError(f"{int(bad.sum())} grid(s) with empty or non-polygon geometry "
                             f"cannot be indexed: {names}; drop them or give them polygons")
    invalid = np.flatnonzero(~shapely.is_valid(geoms))
    if not len(invalid):
        return geoms
    if not repair:
        named = "; ".join(f"{codes[i]} ({shapely.is_valid_reason(geoms[i])})"
                          for i in invalid[:10])
        raise GridIndexError(
            f"{len(invalid)} grid(s) with invalid geometry cannot be indexed: {named}. Repair "
            "them first — grids.geometry = shapely.make_valid(grids.geometry.values) — or "
            "let the index do it: build_grid_index(grids, repair=True)")
    geoms = geoms.copy()
    for i in invalid:
        parts = shapely.get_parts(shapely.make_valid(geoms[i], method="structure",
                                                     keep_collapsed=False))
        polys = [p for p in parts if p.geom_type in ("Polygon", "MultiPolygon")]
        if not polys:
            raise GridIndexError(f"grid {codes[i]} has no area left once made valid "
                                 f"({shapely.is_valid_reason(geoms[i])}): redraw it")
        geoms[i] = shapely.union_all(polys)
    return geoms


def build_grid_index(grids: gpd.GeoDataFrame, *, max_cells: int = 16_000_000,
                     kinds: tuple[str, ...] = ("exclusive", "comprehensive"),
                     repair: bool = False, band_grids: int = 100_000) -> GridIndex:
    """Build the assignment index of *grids* (columns ``code``, ``kind``, geometry).

    The raster has up to *max_cells* cells (2 bytes each, 4 from 32,000 grids) and is
    painted a band of rows at a time, each band from the edges of the (about *band_grids*)
    grids that reach it: 16 million cells take 32 MiB, and the build's temporaries stay in
    proportion to *band_grids*, not to the number of grids (a country's 2 M grids build in
    bands of 100,000).
    With *repair*, invalid polygons are made valid (``shapely.make_valid``) first.

    Raises
    ------
    GridIndexError
        for grids without a CRS, empty or invalid geometry, or comprehensive grids that
        overlap (a partition must not): each named.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> grids = gpd.GeoDataFrame({"code": ["a", "b"], "kind": "comprehensive"},
    ...     geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)], crs=32650)
    >>> index = build_grid_index(grids, max_cells=10_000)
    >>> index.codes[index.lookup([0.5, 1.0, 1.5, 3.0], [0.5, 0.5, 0.5, 0.5])].tolist()
    ['a', 'a', 'b', 'b']
    >>> index.lookup([3.0], [0.5]).tolist()  # outside every grid
    [-1]
    """
    if grids.crs is None:
        raise GridIndexError("the grids have no CRS: set one (grids.set_crs(...))")
    if "code" not in grids:
        raise GridIndexError("the grids need a 'code' column")
    ordered = _rule_order(grids, kinds)
    if ordered.empty:
        raise GridIndexError(f"no grids of kind {', '.join(kinds)} to index")
    geoms = _repairable(ordered, np.asarray(ordered.geometry.values, dtype=object), repair)
    xmin, ymin, xmax, ymax = shapely.total_bounds(geoms)
    width, height = max(xmax - xmin, 1e-9), max(ymax - ymin, 1e-9)
    cell = float(np.sqrt(width * height / max_cells))
    cell = max(cell, width / 60_000, height / 60_000)
    margin = 2 * cell
    x0, y0 = xmin - margin, ymin - margin
    nx = int(np.ceil((width + 2 * margin) / cell)) + 1
    ny = int(np.ceil((height + 2 * margin) / cell)) + 1
    dtype = np.int16 if len(geoms) < 32_000 else np.int32
    labels = np.full((ny, nx), OUTSIDE, dtype=dtype)
    kinds_arr = ordered["kind"].to_numpy().astype(str) if "kind" in ordered else np.full(
        len(ordered), "comprehensive")
    overlap = _paint_bands(labels, geoms, kinds_arr == "exclusive", x0, y0, cell,
                           band_grids=band_grids)
    overlap = overlap[labels.ravel()[overlap] != BOUNDARY]
    tree = shapely.STRtree(geoms)
    shapely.prepare(geoms)
    index = GridIndex(CRS.from_user_input(grids.crs), x0, y0, cell, labels,
                      ordered["code"].to_numpy().astype(str), kinds_arr, geoms, tree)
    if overlap.size:
        r, c = divmod(int(overlap[0]), nx)
        x, y = x0 + (c + 0.5) * cell, y0 + (r + 0.5) * cell
        _, gi = tree.query(shapely.points([x], [y]), predicate="intersects")
        raise GridIndexError(
            f"grids overlap ({overlap.size} raster cells), e.g. "
            f"{' and '.join(index.codes[gi])} at ({x:.7g}, {y:.7g}): a partition must not; "
            "fix the boundaries (see `gridmap check`)")
    return index


def _xy(points: gpd.GeoSeries | gpd.GeoDataFrame) -> tuple[NDArray, NDArray]:
    geoms = np.asarray(points.geometry.values if isinstance(points, gpd.GeoDataFrame)
                       else points.values)
    try:  # the fast path: two GEOS calls; NaN (or an error) flags what is not a point
        x, y = shapely.get_x(geoms), shapely.get_y(geoms)
        if not np.isnan(x).any():
            return x, y
    except shapely.errors.GEOSException:
        pass
    types = shapely.get_type_id(geoms)
    if len(geoms) and not (types == 0).all():
        bad = int((types != 0).sum())
        raise ValueError(f"{bad} geometries are not points (or are missing): assign points only")
    empty = shapely.is_empty(geoms)
    if empty.any():
        raise ValueError(f"{int(empty.sum())} empty point(s) cannot be assigned: drop or fix them")
    return shapely.get_x(geoms), shapely.get_y(geoms)


def points_to_grids(points: gpd.GeoDataFrame | gpd.GeoSeries,
                    grids: gpd.GeoDataFrame | GridIndex, *,
                    how: Literal["codes", "positions"] = "codes") -> pd.Series:
    """The grid code of each point (categorical; missing outside every grid), by the rule
    above.

    *grids* may be a GeoDataFrame (indexed on the fly) or a built :class:`GridIndex`.
    Points in another CRS than the grids are refused, not silently transformed.
    """
    index = grids if isinstance(grids, GridIndex) else build_grid_index(grids)
    if is_dask(points):
        meta = points_to_grids(points._meta, index, how=how)
        return points.map_partitions(points_to_grids, index, how=how, meta=meta)
    if points.crs is None:
        raise ValueError("the points have no CRS: set one (points.set_crs(...))")
    if not CRS.from_user_input(points.crs).equals(index.crs):
        raise ValueError(f"points are in {CRS.from_user_input(points.crs).name} but the grids in "
                         f"{index.crs.name}: reproject one of them (points.to_crs(grids.crs))")
    x, y = _xy(points)
    pos = index.lookup(x, y)
    if how == "positions":
        return pd.Series(pos, index=points.index, name="grid_position")
    dtype, per_grid = index.chain["grid_code"]
    return pd.Series(pd.Categorical.from_codes(per_grid[pos], dtype=dtype, validate=False),
                     index=points.index, name="grid_code")


def assign_to_grids(points: gpd.GeoDataFrame, grids: gpd.GeoDataFrame | GridIndex
                    ) -> gpd.GeoDataFrame:
    """*points* with their grid added: ``grid_code``, ``grid_kind``, and — when the grids
    carry 15-digit Chinese grid codes — the chain ``community_code``, ``township_code``,
    ``county_code`` (derived once per grid, not per point); then ``outside`` (True where no
    grid contains the point). The code columns are categorical (missing outside every grid).

    *points* may be a dask-geopandas GeoDataFrame: the result is then one too, computed
    partition by partition (on a dask.distributed cluster when a client is active).

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> grids = gpd.GeoDataFrame({"code": ["610199001001001", "610199001002001"]},
    ...     geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)], crs=32650)
    >>> points = gpd.GeoDataFrame(geometry=gpd.points_from_xy([0.5, 1.5, 5], [0.5] * 3),
    ...                           crs=32650)
    >>> out = assign_to_grids(points, build_grid_index(grids, max_cells=10_000))
    >>> out["community_code"].tolist(), out["outside"].tolist()
    (['610199001001', '610199001002', nan], [False, False, True])
    """
    index = grids if isinstance(grids, GridIndex) else build_grid_index(grids)
    if is_dask(points):  # one task per partition; the index travels once with the graph
        meta = assign_to_grids(points._meta, index)
        return points.map_partitions(assign_to_grids, index, meta=meta)
    pos = points_to_grids(points, index, how="positions").to_numpy()
    columns = {name: pd.Categorical.from_codes(per_grid[pos], dtype=dtype, validate=False)
               for name, (dtype, per_grid) in index.chain.items()}
    columns["outside"] = pos < 0
    return points.assign(**columns)
