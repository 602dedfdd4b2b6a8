"""A suggested partition: cut a community (or a selection of grids) into contiguous, compact
grids whose household counts fall in the standard's band, leaving the grids a planner
locked as they are.

The building blocks are H3 cells clipped to the area (or the blocks a caller passes, such as
buildings' plots or street blocks), each carrying the households inside it. Blocks are
neighbours when they share an edge (rook contiguity, ``libpysal``). The regions come from
``spopt.region``:

1. **max-p** (:class:`spopt.region.MaxPHeuristic`) with the band's minimum as the floor: as
   many contiguous regions as possible, each holding at least the minimum; its objective (the
   within-region spread of the blocks' centroids) keeps regions compact.
2. **re-split** of any region above the band's maximum: the region (or, when it cannot be
   split alone, the region joined with a neighbour, smallest first) is cut into the fewest
   ``k`` regions the band allows with spopt's contiguous k-means
   (:class:`spopt.region.RegionKMeansHeuristic`, a few seeds). A re-split is kept only when
   it lowers the total distance to the band.

Each connected piece of the area (locked grids may cut it apart) is solved on its own. The
regions are dissolved into grid polygons, which partition the area exactly because the
clipped blocks do.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS

from gridmap.analysis.aggregate import h3_to_polygons, polygon_to_h3

SNAP_M = 0.01  # blocks are snapped to a 1 cm grid so that neighbours share exact edges
BLOCKS_PER_GRID = 12  # the automatic H3 resolution aims at about this many blocks per grid
MAX_BLOCKS = 600
RESPLIT_SEEDS = 4  # contiguous k-means starts tried per re-split
CONSTRUCTION = 5  # max-p construction rounds (spopt's default 99 costs minutes)
ATTEMPTS = 4  # draws of the regions (seeds) when one misses a band that can be met


class SuggestError(ValueError):
    """The inputs cannot be partitioned as asked; the message says what to fix."""


@dataclass
class SuggestReport:
    """How good a suggested partition is."""

    band: tuple[int, int]
    target: float  # the band's midpoint
    households: int  # in the area suggested (locked grids excluded)
    grids: int
    in_band: int  # grids whose households fall within the band
    largest_deviation: float  # the largest |households - target| over the grids
    min_compactness: float  # Polsby-Popper (4πA/P², 1 = a circle)
    mean_compactness: float
    max_pieces: int  # 1 when every grid is contiguous
    feasible: bool  # whether the band can be met at all with these blocks
    reasons: list[str] = field(default_factory=list)  # why not, or what the heuristic missed
    blocks: int = 0
    resolution: int | None = None  # H3 resolution of the blocks (None: blocks given)
    resplit: int = 0  # regions re-split because they were above the band
    seconds: float = 0.0

    @property
    def all_in_band(self) -> bool:
        return self.in_band == self.grids

    def lines(self) -> list[str]:
        """The report as short human-readable lines."""
        low, high = self.band
        unit = (f"H3 resolution {self.resolution}" if self.resolution is not None
                else "the given blocks")
        out = [f"{self.households:,} households → {self.grids} grids from {self.blocks} blocks "
               f"({unit}) in {self.seconds:.1f} s",
               f"band {low}–{high} (target {self.target:g}): {self.in_band} of {self.grids} "
               f"grids within it; largest deviation from target {self.largest_deviation:+g}",
               f"compactness (Polsby-Popper) min {self.min_compactness:.2f}, mean "
               f"{self.mean_compactness:.2f}; pieces per grid at most {self.max_pieces}"]
        if self.resplit:
            out.append(f"{self.resplit} region(s) above the band re-split")
        if not self.feasible:
            out.append("the band cannot be met:")
        out += [f"  - {r}" for r in self.reasons]
        return out


@dataclass
class Suggestion:
    grids: gpd.GeoDataFrame  # label, households, residents, status, deviation, compactness,
    #                          pieces, geometry (in the area's CRS)
    report: SuggestReport


def suggest_partition(area: gpd.GeoDataFrame, households: gpd.GeoDataFrame, *,
                      band: tuple[int, int], locked: gpd.GeoDataFrame | None = None,
                      blocks: gpd.GeoDataFrame | None = None, resolution: int | None = None,
                      seed: int = 0, attempts: int = ATTEMPTS) -> Suggestion:
    """Propose grids for *area* with between ``band[0]`` and ``band[1]`` households each.

    Parameters
    ----------
    area : the community (or the grids selected for redrawing): the union of its geometries
        is what gets partitioned
    households : points, one per household; ``residents`` is summed when present
    band : (min, max) households per grid, e.g. ``GridStandard().band("urban")``
    locked : grids kept as they are; their area and the households in them are left out
    blocks : polygons to build grids from (buildings' plots, street blocks); H3 cells when
        absent. They are clipped to the area; whatever of the area they miss becomes part of
        a neighbouring block's grid only if covered, so pass blocks that cover the area.
    resolution : H3 resolution of the cells; chosen from the area and households when absent
    seed : the heuristics are randomised; the same seed gives the same suggestion
    attempts : when a grid is out of a band that can be met, the regions are drawn again
        with the next seeds, up to this many times in all; the best draw is kept (fewest
        grids out of band, then the smallest total distance to the band)

    Returns
    -------
    Suggestion: ``grids`` (one row per proposed grid) and ``report``.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> com = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1000, 600)], crs=32650)
    >>> hh = gpd.GeoDataFrame(geometry=gpd.points_from_xy(
    ...     rng.uniform(0, 1000, 1200), rng.uniform(0, 600, 1200)), crs=32650)
    >>> s = suggest_partition(com, hh, band=(300, 500))
    >>> s.report.all_in_band, s.report.max_pieces, int(s.grids["households"].sum())
    (True, 1, 1200)
    """
    started = time.perf_counter()
    low, high = _check(area, households, band, locked, blocks)
    metric = _metric_crs(area)
    region = _region(area, locked, metric)
    points = households.to_crs(metric)
    units, res = _blocks(region, points, blocks, metric, band=(low, high),
                         resolution=resolution)
    labels, reasons, resplit, feasible = _best_of(units, (low, high), seed, attempts)
    grids = _dissolve(units, labels, metric)
    grids = _measure(grids, (low, high)).to_crs(area.crs)
    report = _report(grids, (low, high), reasons, feasible, len(units), res, resplit,
                     time.perf_counter() - started)
    return Suggestion(grids, report)


# --- inputs -------------------------------------------------------------------------------

def _check(area: gpd.GeoDataFrame, households: gpd.GeoDataFrame, band: tuple[int, int],
           locked: gpd.GeoDataFrame | None, blocks: gpd.GeoDataFrame | None) -> tuple[int, int]:
    low, high = (int(b) for b in band)
    if low < 1 or high < 1:
        raise SuggestError(f"the band must be positive household counts, not {low}–{high}")
    if low > high:
        raise SuggestError(f"the band's minimum ({low}) is above its maximum ({high})")
    frames = {"area": area, "households": households, "locked grids": locked, "blocks": blocks}
    for name, frame in frames.items():
        if frame is not None and frame.crs is None:
            raise SuggestError(f"the {name} have no CRS: set one first")
    if area.empty or area.geometry.is_empty.all():
        raise SuggestError("the area to partition is empty")
    if households.empty:
        raise SuggestError("there are no households in the area: nothing to balance")
    if not households.geom_type.eq("Point").all():
        raise SuggestError("households must be points")
    return low, high


def _metric_crs(area: gpd.GeoDataFrame) -> CRS:
    if area.crs.is_projected:
        return CRS.from_user_input(area.crs)
    return CRS.from_user_input(area.estimate_utm_crs())


def _region(area: gpd.GeoDataFrame, locked: gpd.GeoDataFrame | None, metric: CRS
            ) -> shapely.Geometry:
    """The area in metres, valid, minus the locked grids."""
    geom = shapely.make_valid(shapely.union_all(area.to_crs(metric).geometry.values))
    if locked is not None and len(locked):
        geom = shapely.difference(geom, shapely.union_all(
            shapely.make_valid(locked.to_crs(metric).geometry.values)), grid_size=SNAP_M)
    geom = shapely.set_precision(geom, SNAP_M)
    polys = [g for g in shapely.get_parts(geom) if g.geom_type == "Polygon"]
    if not polys or sum(p.area for p in polys) < 1.0:
        raise SuggestError("nothing is left to partition once the locked grids are taken out")
    return shapely.MultiPolygon(polys) if len(polys) > 1 else polys[0]


def _auto_resolution(region: shapely.Geometry, households: int, band: tuple[int, int]) -> int:
    """The finest H3 resolution giving at most ~2.5 × BLOCKS_PER_GRID cells per grid (and no
    more than MAX_BLOCKS): finer blocks fit the band more closely, but max-p's time grows
    with the square of their number."""
    import h3

    grids = max(1.0, households / (sum(band) / 2))
    cap = min(MAX_BLOCKS, max(40.0, 2.5 * BLOCKS_PER_GRID * grids))
    area = float(region.area)
    fits = [r for r in range(5, 14) if area / h3.average_hexagon_area(r, unit="m^2") <= cap]
    return max(fits, default=5)


def _blocks(region: shapely.Geometry, points: gpd.GeoDataFrame,
            blocks: gpd.GeoDataFrame | None, metric: CRS, *, band: tuple[int, int],
            resolution: int | None) -> tuple[gpd.GeoDataFrame, int | None]:
    """Blocks clipped to the region (one row per contiguous piece) with their households."""
    inside = points[shapely.intersects(region, points.geometry.values)]
    if blocks is None:
        res = resolution if resolution is not None else _auto_resolution(
            region, len(inside), band)
        if not 0 <= res <= 15:
            raise SuggestError(f"H3 resolution must be 0..15, not {res}")
        wgs = gpd.GeoSeries([region], crs=metric).to_crs(4326).iloc[0]
        cells = polygon_to_h3(wgs, res)
        if len(cells) > 2 * MAX_BLOCKS:
            raise SuggestError(f"H3 resolution {res} gives {len(cells):,} cells: choose a "
                               "coarser one")
        raw = gpd.GeoSeries(h3_to_polygons(np.array(cells, dtype=object)),
                            crs=4326).to_crs(metric).values
    else:
        res = None
        raw = blocks.to_crs(metric).geometry.values
    clipped = shapely.intersection(shapely.set_precision(np.asarray(raw, dtype=object), SNAP_M),
                                   region, grid_size=SNAP_M)
    # cells a boundary cuts in two become two blocks; a block covering a single block's gap
    # (the area minus all blocks) is not made up here
    parts = [p for g in clipped for p in shapely.get_parts(g)
             if p.geom_type == "Polygon" and p.area > 0]
    if blocks is not None:
        missing = shapely.difference(region, shapely.union_all(parts), grid_size=SNAP_M)
        parts += [p for p in shapely.get_parts(missing) if p.geom_type == "Polygon"
                  and p.area > 1.0]
    units = gpd.GeoDataFrame(geometry=parts, crs=metric)
    units["households"], units["residents"] = _count(units, inside)
    cent = units.geometry.representative_point()
    units["x"], units["y"] = cent.x.to_numpy(), cent.y.to_numpy()
    return units.reset_index(drop=True), res


def _count(units: gpd.GeoDataFrame, points: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Households and residents per block; a point on a shared edge goes to the first block."""
    n = len(units)
    tree = shapely.STRtree(units.geometry.values)
    pt_idx, unit_idx = tree.query(points.geometry.values, predicate="intersects")
    first = np.unique(pt_idx, return_index=True)[1]
    pt_idx, unit_idx = pt_idx[first], unit_idx[first]
    households = np.bincount(unit_idx, minlength=n)
    residents = (np.bincount(unit_idx, weights=points["residents"].to_numpy()[pt_idx],
                             minlength=n) if "residents" in points else households)
    return households.astype(int), np.asarray(residents).astype(int)


# --- regions ------------------------------------------------------------------------------

@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """spopt's heuristics draw from numpy's global generator: seed it, then put it back."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def _neighbours_of(units: gpd.GeoDataFrame) -> list[np.ndarray]:
    """For each block, the blocks it shares an edge with (rook contiguity, libpysal)."""
    from libpysal.graph import Graph

    graph = Graph.build_contiguity(units.geometry.reset_index(drop=True), rook=True,
                                   strict=True)
    adj = graph.adjacency.reset_index()
    adj = adj[adj["weight"] > 0]
    focal, neighbor = adj["focal"].to_numpy(), adj["neighbor"].to_numpy()
    order = np.argsort(focal, kind="stable")
    starts = np.searchsorted(focal[order], np.arange(len(units) + 1))
    return [neighbor[order][starts[i]:starts[i + 1]] for i in range(len(units))]


def _weights(neighbours: list[np.ndarray], idx: np.ndarray) -> object:
    """A libpysal W over the blocks *idx*, numbered 0..len(idx)-1."""
    from libpysal.weights import W

    pos = {int(b): i for i, b in enumerate(idx)}
    links = {i: [pos[int(j)] for j in neighbours[b] if int(j) in pos]
             for i, b in enumerate(idx)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # islands are solved apart (see _components)
        return W(links, silence_warnings=True)


def _maxp(units: gpd.GeoDataFrame, neighbours: list[np.ndarray], idx: np.ndarray,
          floor: float) -> np.ndarray:
    """spopt max-p on the blocks *idx* (connected): region labels 0..p-1."""
    from spopt.region import MaxPHeuristic

    if len(idx) == 1:
        return np.zeros(1, dtype=int)
    sub = units.iloc[idx].reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MaxPHeuristic(sub, _weights(neighbours, idx), ["x", "y"], "households",
                              floor, top_n=2, max_iterations_construction=CONSTRUCTION,
                              max_iterations_sa=1)
        model.solve()
    return np.unique(np.asarray(model.labels_), return_inverse=True)[1]


def _components(neighbours: list[np.ndarray]) -> np.ndarray:
    from scipy.sparse import coo_array
    from scipy.sparse.csgraph import connected_components

    n = len(neighbours)
    rows = np.repeat(np.arange(n), [len(nb) for nb in neighbours])
    cols = np.concatenate([*neighbours, np.empty(0, dtype=int)]).astype(int)
    graph = coo_array((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _excess(households: np.ndarray, band: tuple[int, int]) -> int:
    low, high = band
    return int(np.maximum(households - high, 0).sum() + np.maximum(low - households, 0).sum())


def _fewest(total: int, band: tuple[int, int]) -> int | None:
    """The fewest grids whose band holds *total* households, None if no count does."""
    low, high = band
    k = max(1, math.ceil(total / high))
    return k if k * low <= total else None


def _regionalise(units: gpd.GeoDataFrame, band: tuple[int, int], seed: int
                 ) -> tuple[np.ndarray, list[str], int, bool]:
    """Region labels for the blocks, the reasons the band is missed, re-splits, feasible."""
    low, high = band
    labels = np.full(len(units), -1, dtype=int)
    reasons: list[str] = []
    feasible = True
    hh = units["households"].to_numpy()
    neighbours = _neighbours_of(units)
    comp = _components(neighbours)
    with _seeded(seed):
        for c in np.unique(comp):
            idx = np.flatnonzero(comp == c)
            total = int(hh[idx].sum())
            if _fewest(total, band) is None:
                feasible = False
                where = ("the area" if comp.max() == 0
                         else f"a separate piece of the area (around {_where(units, idx)})")
                if total < low:
                    reasons.append(f"{where} holds {total} households, fewer than the "
                                   f"band's minimum {low}: it stays one grid")
                else:
                    k = total // high
                    reasons.append(f"{where} holds {total} households: {k} grid(s) hold at "
                                   f"most {k * high}, {k + 1} need at least {(k + 1) * low}")
            # max-p can only find one region below twice the floor (and spopt's annealing
            # then never ends: it has no second region to move blocks to)
            local = (_maxp(units, neighbours, idx, low) if total >= 2 * low
                     else np.zeros(len(idx), dtype=int))
            labels[idx] = local + labels.max() + 1
        labels, resplit = _repair(units, neighbours, labels, band)
    big = np.flatnonzero(hh > high)
    if len(big):
        feasible = False
        reasons.append(f"{len(big)} block(s) hold more than {high} households on their own "
                       f"(up to {int(hh[big].max())}): use smaller blocks")
    return labels, reasons, resplit, feasible


def _best_of(units: gpd.GeoDataFrame, band: tuple[int, int], seed: int, attempts: int
             ) -> tuple[np.ndarray, list[str], int, bool]:
    """:func:`_regionalise` with seeds *seed*, *seed* + 1, … until every region is in the
    band (or the band cannot be met, or *attempts* are spent); the best result."""
    best: tuple[tuple[int, int], tuple[np.ndarray, list[str], int, bool]] | None = None
    hh = units["households"].to_numpy()
    for attempt in range(max(1, attempts)):
        result = _regionalise(units, band, seed + attempt)
        sums = np.bincount(result[0], weights=hh).astype(int)
        score = (int(((sums < band[0]) | (sums > band[1])).sum()), _excess(sums, band))
        if best is None or score < best[0]:
            best = (score, result)
        if score[0] == 0 or not result[3]:
            break
    assert best is not None
    return best[1]


def _where(units: gpd.GeoDataFrame, idx: np.ndarray) -> str:
    p = shapely.union_all(units.geometry.values[idx]).representative_point()
    lonlat = gpd.GeoSeries([p], crs=units.crs).to_crs(4326).iloc[0]
    return f"{lonlat.x:.5f}, {lonlat.y:.5f}"


def _region_sums(units: gpd.GeoDataFrame, labels: np.ndarray) -> np.ndarray:
    return np.bincount(labels, weights=units["households"].to_numpy()).astype(int)


def _repair(units: gpd.GeoDataFrame, neighbours: list[np.ndarray], labels: np.ndarray,
            band: tuple[int, int], rounds: int = 40) -> tuple[np.ndarray, int]:
    """Re-split regions above the band (see the module docstring); labels 0..p-1."""
    _, high = band
    done = 0
    tried: set[frozenset[int]] = set()
    for _ in range(rounds):
        sums = _region_sums(units, labels)
        improved = False
        for r in (r for r in np.argsort(-sums) if sums[r] > high):
            for group in _candidates(neighbours, labels, int(r), sums, band):
                idx = np.flatnonzero(np.isin(labels, group))
                key = frozenset(idx.tolist())
                if key in tried:
                    continue
                tried.add(key)
                new = _resplit(units, neighbours, labels, idx, band)
                if new is not None:
                    labels, improved = new, True
                    done += 1
                    break
            if improved:
                break
        if not improved:
            break
    return np.unique(labels, return_inverse=True)[1], done


def _candidates(neighbours: list[np.ndarray], labels: np.ndarray, region: int,
                sums: np.ndarray, band: tuple[int, int]) -> list[list[int]]:
    """Region groups to re-split: the region alone, then with each neighbour, smallest first."""
    groups = [[region]] if _fewest(int(sums[region]), band) else []
    near = {int(labels[j]) for i in np.flatnonzero(labels == region) for j in neighbours[i]}
    near.discard(region)
    groups += [[region, n] for n in sorted(near, key=lambda r: sums[r])]
    return groups


def _resplit(units: gpd.GeoDataFrame, neighbours: list[np.ndarray], labels: np.ndarray,
             idx: np.ndarray, band: tuple[int, int]) -> np.ndarray | None:
    """The blocks *idx* cut into the fewest regions *k* the band allows, with spopt's
    contiguous k-means (:class:`spopt.region.RegionKMeansHeuristic`) on the blocks'
    centroids, over a few seeds; the new labels if that lowers the distance to the band,
    else None. (max-p again would balance better, but its annealing recomputes every
    block's connectivity after each move when there are only two or three regions, which
    takes minutes.)"""
    from spopt.region import RegionKMeansHeuristic

    hh = units["households"].to_numpy()
    total = int(hh[idx].sum())
    k = _fewest(total, band)
    if k is None or k < 2 or len(idx) < k:
        return None
    before = _excess(_region_sums(units, labels)[np.unique(labels[idx])], band)
    xy = units[["x", "y"]].to_numpy()[idx]
    w = _weights(neighbours, idx)
    best: tuple[int, np.ndarray] | None = None
    for seed in range(RESPLIT_SEEDS):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = RegionKMeansHeuristic(xy, k, w, seed=seed)
            model.solve()
        local = np.unique(np.asarray(model.labels_), return_inverse=True)[1]
        after = _excess(np.bincount(local, weights=hh[idx]).astype(int), band)
        if after < before and (best is None or after < best[0]):
            best = (after, local)
    if best is None:
        return None
    out = labels.copy()
    out[idx] = best[1] + labels.max() + 1
    return out


# --- grids --------------------------------------------------------------------------------

def _dissolve(units: gpd.GeoDataFrame, labels: np.ndarray, metric: CRS) -> gpd.GeoDataFrame:
    frame = units[["households", "residents"]].copy()
    frame["label"] = labels
    geoms = [shapely.union_all(units.geometry.values[labels == r], grid_size=SNAP_M)
             for r in np.unique(labels)]
    sums = frame.groupby("label")[["households", "residents"]].sum()
    out = gpd.GeoDataFrame(sums.reset_index(), geometry=geoms, crs=metric)
    return _reading_order(out)


def _reading_order(grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Number grids north→south, west→east (as codes are), from 1."""
    from gridmap.domain.codes import reading_order

    cent = grids.geometry.centroid
    band = 0.5 * float(np.median(np.sqrt(grids.geometry.area.to_numpy())))
    order = reading_order(cent.x.tolist(), cent.y.tolist(), band=band)
    out = grids.iloc[list(order)].reset_index(drop=True)
    out["label"] = np.arange(1, len(out) + 1)
    return out


def _measure(grids: gpd.GeoDataFrame, band: tuple[int, int]) -> gpd.GeoDataFrame:
    low, high = band
    hh = grids["households"].to_numpy()
    grids["status"] = np.select([hh < low, hh > high], ["below", "above"], "within")
    grids["deviation"] = hh - (low + high) / 2
    area = grids.geometry.area.to_numpy()
    perimeter = grids.geometry.length.to_numpy()
    grids["compactness"] = np.where(perimeter > 0, 4 * np.pi * area / perimeter**2, 0.0)
    grids["pieces"] = [sum(1 for p in shapely.get_parts(g) if p.area > 1.0)
                       for g in grids.geometry.values]
    return grids


def _report(grids: gpd.GeoDataFrame, band: tuple[int, int], reasons: list[str],
            feasible: bool, blocks: int, resolution: int | None, resplit: int,
            seconds: float) -> SuggestReport:
    in_band = int((grids["status"] == "within").sum())
    if feasible and in_band < len(grids):
        reasons = [*reasons, f"{len(grids) - in_band} grid(s) outside the band although it "
                   "can be met: try another --seed or a finer resolution"]
    dev = grids["deviation"].to_numpy()
    return SuggestReport(
        band=band, target=sum(band) / 2, households=int(grids["households"].sum()),
        grids=len(grids), in_band=in_band,
        largest_deviation=float(dev[np.argmax(np.abs(dev))]),
        min_compactness=float(grids["compactness"].min()),
        mean_compactness=float(grids["compactness"].mean()),
        max_pieces=int(grids["pieces"].max()), feasible=feasible, reasons=reasons,
        blocks=blocks, resolution=resolution, resplit=resplit, seconds=seconds)
