"""How well facilities serve the resident population: straight-line and along streets.

Distances are in metres, in a projected CRS (a local UTM zone when the input is lon/lat).
The hot path — is each household within *d* metres of a facility of a type? — runs in a
compiled kernel: the facilities are painted once onto a coarse raster whose cells are
*covered* (every point of the cell is within d of one facility), *uncovered* (no point of the
cell is within d of any) or *mixed*; only households in mixed cells are measured, against the
facilities of the 3x3 buckets of side d around them. The answer is exact: it equals
``cKDTree.query_ball_point`` on the same data (tests and bench/bench_coverage.py check it).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numba import njit
from numpy.typing import NDArray
from pyproj import CRS
from scipy.spatial import cKDTree

from gridmap.analysis.frames import is_dask, utm_crs
from gridmap.domain.layers import CARE_FLAGS
from gridmap.domain.lifecircle import FACILITY_TYPES

Metric = Literal["straight", "network"]
MAX_DISTANCE_M = 20_000.0
COVERED, UNCOVERED, MIXED = 1, 0, 2


# ----------------------------------------------------------------------------- the kernel
@njit(cache=True, nogil=True)
def _paint(fx: NDArray, fy: NDArray, d: float, x0: float, y0: float, cell: float,
           nx: int, ny: int) -> NDArray:
    raster = np.zeros((ny, nx), dtype=np.uint8)
    d2 = d * d
    for k in range(fx.size):
        ix0 = max(int(np.floor((fx[k] - d - x0) / cell)), 0)
        ix1 = min(int(np.floor((fx[k] + d - x0) / cell)), nx - 1)
        iy0 = max(int(np.floor((fy[k] - d - y0) / cell)), 0)
        iy1 = min(int(np.floor((fy[k] + d - y0) / cell)), ny - 1)
        for iy in range(iy0, iy1 + 1):
            cy0 = y0 + iy * cell
            cy1 = cy0 + cell
            dy_min = max(cy0 - fy[k], 0.0, fy[k] - cy1)
            dy_max = max(abs(fy[k] - cy0), abs(fy[k] - cy1))
            for ix in range(ix0, ix1 + 1):
                if raster[iy, ix] == COVERED:
                    continue
                cx0 = x0 + ix * cell
                cx1 = cx0 + cell
                dx_min = max(cx0 - fx[k], 0.0, fx[k] - cx1)
                dx_max = max(abs(fx[k] - cx0), abs(fx[k] - cx1))
                if dx_max * dx_max + dy_max * dy_max <= d2:
                    raster[iy, ix] = COVERED
                elif dx_min * dx_min + dy_min * dy_min <= d2:
                    raster[iy, ix] = MIXED
    return raster


@njit(cache=True, nogil=True)
def _buckets(fx: NDArray, fy: NDArray, bx0: float, by0: float, side: float, nbx: int,
             nby: int) -> tuple[NDArray, NDArray]:
    key = np.empty(fx.size, dtype=np.int64)
    for k in range(fx.size):
        bx = min(max(int((fx[k] - bx0) / side), 0), nbx - 1)
        by = min(max(int((fy[k] - by0) / side), 0), nby - 1)
        key[k] = by * nbx + bx
    order = np.argsort(key, kind="mergesort")
    start = np.zeros(nbx * nby + 1, dtype=np.int64)
    for k in range(fx.size):
        start[key[k] + 1] += 1
    for b in range(nbx * nby):
        start[b + 1] += start[b]
    return order, start


@njit(cache=True, nogil=True)
def _covered(hx: NDArray, hy: NDArray, raster: NDArray, x0: float, y0: float, cell: float,
             fx: NDArray, fy: NDArray, order: NDArray, start: NDArray, bx0: float, by0: float,
             side: float, nbx: int, nby: int, d: float, out: NDArray) -> None:
    ny, nx = raster.shape
    d2 = d * d
    inv = 1.0 / cell
    for i in range(hx.size):
        ix = int((hx[i] - x0) * inv)
        iy = int((hy[i] - y0) * inv)
        ix = min(max(ix, 0), nx - 1)
        iy = min(max(iy, 0), ny - 1)
        v = raster[iy, ix]
        if v != MIXED:
            out[i] = v == COVERED
            continue
        bx = min(max(int((hx[i] - bx0) / side), 0), nbx - 1)
        by = min(max(int((hy[i] - by0) / side), 0), nby - 1)
        hit = False
        for yy in range(max(by - 1, 0), min(by + 2, nby)):
            for xx in range(max(bx - 1, 0), min(bx + 2, nbx)):
                b = yy * nbx + xx
                for j in range(start[b], start[b + 1]):
                    f = order[j]
                    dx = hx[i] - fx[f]
                    dy = hy[i] - fy[f]
                    if dx * dx + dy * dy <= d2:
                        hit = True
                        break
                if hit:
                    break
            if hit:
                break
        out[i] = hit


@dataclass
class CoverageIndex:
    """The facilities of one type, prepared for one distance (keep it; it is cheap)."""

    distance: float
    raster: NDArray[np.uint8]
    x0: float
    y0: float
    cell: float
    fx: NDArray[np.float64]
    fy: NDArray[np.float64]
    order: NDArray[np.int64]
    start: NDArray[np.int64]
    bx0: float
    by0: float
    side: float
    nbx: int
    nby: int

    @classmethod
    def build(cls, fx: NDArray, fy: NDArray, distance: float,
              bounds: tuple[float, float, float, float], *, cells_per_distance: int = 8,
              max_cells: int = 4_000_000) -> CoverageIndex:
        check_distance(distance)
        fx = np.ascontiguousarray(fx, dtype=np.float64)
        fy = np.ascontiguousarray(fy, dtype=np.float64)
        xmin, ymin, xmax, ymax = bounds
        width, height = max(xmax - xmin, 1.0), max(ymax - ymin, 1.0)
        cell = max(distance / cells_per_distance, np.sqrt(width * height / max_cells))
        nx, ny = int(width // cell) + 1, int(height // cell) + 1
        raster = _paint(fx, fy, float(distance), xmin, ymin, cell, nx, ny)
        # buckets of at least the distance (the 3x3 search then sees every facility in
        # reach), and never more than about a million of them
        side = max(float(distance), float(np.sqrt(width * height / 1_000_000)))
        nbx = int(width // side) + 1
        nby = int(height // side) + 1
        order, start = _buckets(fx, fy, xmin, ymin, side, nbx, nby)
        return cls(float(distance), raster, xmin, ymin, cell, fx, fy, order, start,
                   xmin, ymin, side, nbx, nby)

    def covered(self, hx: NDArray, hy: NDArray) -> NDArray[np.bool_]:
        out = np.empty(len(hx), dtype=np.bool_)
        _covered(np.ascontiguousarray(hx, dtype=np.float64),
                 np.ascontiguousarray(hy, dtype=np.float64), self.raster, self.x0, self.y0,
                 self.cell, self.fx, self.fy, self.order, self.start, self.bx0, self.by0,
                 self.side, self.nbx, self.nby, self.distance, out)
        return out


def check_distance(distance: float) -> None:
    if not np.isfinite(distance) or distance <= 0:
        raise ValueError(f"a coverage distance must be a positive number of metres, not "
                         f"{distance}")
    if distance > MAX_DISTANCE_M:
        raise ValueError(f"{distance:.0f} m is not a walking distance: the life-circle levels "
                         f"are 300-1000 m and gridmap accepts at most {MAX_DISTANCE_M:.0f} m")


def covered_within(hx: NDArray, hy: NDArray, fx: NDArray, fy: NDArray, distance: float
                   ) -> NDArray[np.bool_]:
    """Is each household (hx, hy) within *distance* metres of any facility (fx, fy)?

    Examples
    --------
    >>> covered_within(np.array([0.0, 250.0, 301.0]), np.zeros(3),
    ...                np.array([0.0]), np.array([0.0]), 300.0).tolist()
    [True, True, False]
    """
    check_distance(distance)
    if not len(hx):
        return np.zeros(0, dtype=bool)
    if not len(fx):
        return np.zeros(len(hx), dtype=bool)
    bounds = (float(hx.min()), float(hy.min()), float(hx.max()), float(hy.max()))
    return CoverageIndex.build(fx, fy, distance, bounds).covered(hx, hy)


# ----------------------------------------------------------------------------- the frames
def thresholds_for(types: list[str] | None = None, distances: list[float] | None = None,
                   catalogue: dict[str, Any] | None = None) -> dict[str, list[float]]:
    """Which distances to test for which types: by default each type at its life-circle
    level's distance (GB 50180-2018)."""
    catalogue = catalogue or FACILITY_TYPES
    chosen = types or list(catalogue)
    unknown = [t for t in chosen if t not in catalogue]
    if unknown:
        raise ValueError(f"unknown facility type(s) {', '.join(unknown)}: choose from "
                         f"{', '.join(catalogue)}")
    out = {}
    for t in chosen:
        ds = distances or [catalogue[t].distance_m]
        for d in ds:
            check_distance(float(d))
        out[t] = [float(d) for d in ds]
    return out


def _metric_xy(frame: gpd.GeoDataFrame, crs: CRS) -> tuple[NDArray, NDArray]:
    pts = frame.geometry.to_crs(crs) if not CRS.from_user_input(frame.crs).equals(crs) \
        else frame.geometry
    return pts.x.to_numpy(), pts.y.to_numpy()


def metric_crs(households: gpd.GeoDataFrame) -> CRS:
    """The households' CRS if projected, else the UTM zone of their total bounds (computed
    over all partitions for a dask frame, so every partition measures in the same CRS)."""
    crs = CRS.from_user_input(households.crs)
    if crs.is_projected:
        return crs
    bounds = households.total_bounds
    if is_dask(households):
        bounds = bounds.compute()
    return utm_crs(gpd.GeoSeries([shapely.box(*bounds)], crs=crs))


def _check_frames(households: gpd.GeoDataFrame, facilities: gpd.GeoDataFrame) -> None:
    if households.crs is None or facilities.crs is None:
        raise ValueError("households and facilities need a CRS")
    if not CRS.from_user_input(households.crs).equals(CRS.from_user_input(facilities.crs)):
        raise ValueError(f"facilities are in {CRS.from_user_input(facilities.crs).name}, "
                         f"households in {CRS.from_user_input(households.crs).name}: reproject "
                         "one of them first")
    if "type" not in facilities:
        raise ValueError("facilities need a 'type' column")
    if not is_dask(households) and households.empty:
        raise ValueError("there are no households to measure coverage for")


class CoverageWarning(UserWarning):
    """A coverage figure that is likely not what the caller meant (facility types no
    threshold measures, a network in disconnected pieces)."""


def residents_of(households: pd.DataFrame) -> NDArray[np.int64]:
    """The ``residents`` column as whole numbers, or a ValueError that says what to do."""
    if "residents" not in households:
        raise ValueError("households need a 'residents' column (people per household); "
                         "if you only have locations, add one: households.assign(residents=1)")
    values = pd.to_numeric(households["residents"], errors="coerce")
    if values.isna().any() or (values < 0).any():
        bad = int((values.isna() | (values < 0)).sum())
        raise ValueError(f"{bad} household(s) have a 'residents' value that is not a number "
                         "≥ 0: fix or drop them")
    return np.round(values.to_numpy(dtype=float)).astype(np.int64)


def _check_types(facilities: pd.DataFrame, thresholds: dict[str, list[float]],
                 defaulted: bool) -> None:
    """Facilities of types no threshold measures would silently count for nothing."""
    present = pd.unique(facilities["type"].dropna().astype(str))
    # a known type left out of explicit thresholds is the caller's choice; an unknown one
    # is a type nothing would ever measure
    unmeasured = sorted(set(present) - set(thresholds) - set(FACILITY_TYPES))
    if not unmeasured:
        return
    how = ("give their distances, e.g. thresholds={" + f"'{unmeasured[0]}': [500.0]" + "}"
           if defaulted else "add them to thresholds")
    if defaulted and not set(present) & set(thresholds):
        raise ValueError(f"none of the facilities' types ({', '.join(unmeasured[:10])}) is a "
                         f"life-circle type ({', '.join(FACILITY_TYPES)}): every household "
                         f"would count as uncovered. Rename the types, or {how}")
    warnings.warn(f"facilities of type(s) {', '.join(unmeasured[:10])} are not measured "
                  f"(no distance for them): {how}", CoverageWarning, stacklevel=3)


def household_coverage(households: gpd.GeoDataFrame, facilities: gpd.GeoDataFrame, *,
                       thresholds: dict[str, list[float]] | None = None,
                       metric: Metric = "straight", network: Any | None = None
                       ) -> pd.DataFrame:
    """Per household: distance (m) to the nearest facility of each type (``dist_<type>``,
    ``inf`` when none within 20 km) and covered or not at each threshold
    (``<type>@<metres>``).

    ``metric="network"`` measures along a walking network (``network``: a
    :class:`gridmap.analysis.network.WalkNetwork`).

    *households* may be a dask-geopandas GeoDataFrame: the result is then a dask DataFrame
    with the same partitions, computed partition by partition (the facilities, and the
    network, travel once with the graph).
    """
    _check_frames(households, facilities)
    defaulted = thresholds is None
    thresholds = thresholds or thresholds_for()
    _check_types(facilities, thresholds, defaulted)
    crs = metric_crs(households)
    if is_dask(households):
        meta = _coverage(households._meta, facilities, thresholds, metric, network, crs)
        return households.map_partitions(_coverage, facilities, thresholds, metric, network,
                                         crs, meta=meta)
    return _coverage(households, facilities, thresholds, metric, network, crs)


def _coverage(households: gpd.GeoDataFrame, facilities: gpd.GeoDataFrame,
              thresholds: dict[str, list[float]], metric: Metric, network: Any | None,
              crs: CRS) -> pd.DataFrame:
    hx, hy = _metric_xy(households, crs)
    fx_all, fy_all = _metric_xy(facilities, crs) if len(facilities) else (np.zeros(0),) * 2
    out = pd.DataFrame(index=households.index)
    types = facilities["type"].to_numpy()
    for ftype, distances in thresholds.items():
        mine = types == ftype
        fx, fy = fx_all[mine], fy_all[mine]
        if metric == "network":
            if network is None:
                raise ValueError("network coverage needs a walking network (import one from "
                                 "OpenStreetMap: gridmap import osm FILE.osm.pbf)")
            dist = network.distances(hx, hy, fx, fy, crs=crs, cutoff=max(distances))
            _warn_disconnected(network, ftype, hx, hy, fx, fy, max(distances), crs)
        elif len(fx):
            dist, _ = cKDTree(np.column_stack([fx, fy])).query(
                np.column_stack([hx, hy]), k=1, distance_upper_bound=MAX_DISTANCE_M)
        else:
            dist = np.full(len(hx), np.inf)
        out[f"dist_{ftype}"] = dist
        for d in distances:
            if metric == "network":
                out[f"{ftype}@{d:g}"] = dist <= d
            else:
                out[f"{ftype}@{d:g}"] = covered_within(hx, hy, fx, fy, d)
    return out


def _warn_disconnected(network: Any, ftype: str, hx: NDArray, hy: NDArray, fx: NDArray,
                       fy: NDArray, distance: float, crs: CRS, *, share: float = 0.01) -> None:
    """Warn when households within *distance* of a facility in a straight line sit on a
    piece of the network that no facility of the type is attached to: coverage along
    streets is then limited by the network's disconnection, not by distance."""
    if not len(fx) or not len(hx):
        return
    pieces = network.pieces
    _, h_pos = network.snap(hx, hy, crs)
    _, f_pos = network.snap(fx, fy, crs)
    served = np.zeros(int(pieces.max()) + 1, dtype=bool)
    served[pieces[f_pos]] = True
    near, _ = cKDTree(np.column_stack([fx, fy])).query(np.column_stack([hx, hy]), k=1,
                                                       distance_upper_bound=distance)
    cut = ~served[pieces[h_pos]] & np.isfinite(near)
    if cut.sum() < max(1, share * len(hx)):
        return
    sizes = np.bincount(pieces)
    held = ", ".join(f"{int(sizes[p]):,}" for p in np.unique(pieces[f_pos])[:5])
    warnings.warn(
        f"{ftype}: {int(cut.sum()):,} households ({cut.mean():.1%}) within {distance:g} m of a "
        f"{ftype} in a straight line are on pieces of the walking network that no {ftype} is "
        f"attached to (the network has {len(sizes)} connected pieces; the {ftype} sites sit "
        f"on pieces of {held} nodes): coverage along streets is limited by the network's "
        "disconnection. Check the extract (clipped at its edge?) or compare with "
        "metric='straight'; network_report() lists the pieces", CoverageWarning, stacklevel=4)


def coverage_columns(cov: pd.DataFrame) -> list[str]:
    return [c for c in cov.columns if "@" in c]


def vulnerable_residents(households: pd.DataFrame) -> NDArray[np.int64]:
    """Residents of households with any care flag (elderly living alone, disabled,
    left-behind child, low income): the vulnerable population the reports single out."""
    flags = [f for f in CARE_FLAGS if f in households]
    if not flags:
        return np.zeros(len(households), dtype=np.int64)
    any_flag = households[flags].fillna(False).astype(bool).any(axis=1).to_numpy()
    return np.where(any_flag, residents_of(households), 0).astype(np.int64)


def coverage_by(households: pd.DataFrame, cov: pd.DataFrame, *,
                level: Literal["grid", "community", "township", "all"] = "grid"
                ) -> pd.DataFrame:
    """Share of residents, households and vulnerable residents covered, per unit
    (``grid_code`` prefix) and per type@distance. Long format: one row per unit and column.
    The totals per unit add up to the total population (nothing is lost or double counted).

    With dask frames (*households* and the *cov* that :func:`household_coverage` made from
    them), each partition is counted where it lies and only the counts are brought together.
    """
    if level != "all" and "grid_code" not in households.columns:
        raise ValueError("households need a 'grid_code' column: assign them to grids first")
    if is_dask(households):
        meta = _counts(households._meta, cov._meta, level)
        parts = households.map_partitions(_counts, cov, level, meta=meta,
                                          align_dataframes=False).compute()
        counts = parts.groupby(["unit", "type", "distance_m"], as_index=False).sum()
        rank = {c: i for i, c in enumerate(coverage_columns(cov))}  # the in-memory order
        column = counts["type"] + "@" + counts["distance_m"].map("{:g}".format)
        counts = counts.assign(_rank=column.map(rank)).sort_values(
            ["_rank", "unit"], kind="stable").drop(columns="_rank").reset_index(drop=True)
    else:
        counts = _counts(households, cov, level)
    return with_shares(counts)


def with_shares(counts: pd.DataFrame) -> pd.DataFrame:
    """*counts* (residents, households, vulnerable: in all and ``_covered``) with the share
    covered of each (NaN where a unit has none); counts from partitions add up first."""
    for what in ("residents", "households", "vulnerable"):
        counts[f"{what}_share"] = np.where(
            counts[what] > 0, counts[f"{what}_covered"] / counts[what].clip(lower=1), np.nan)
    return counts


def _counts(households: pd.DataFrame, cov: pd.DataFrame, level: str) -> pd.DataFrame:
    """Residents, households and vulnerable residents, in all and covered, per unit and
    coverage column (the additive part of :func:`coverage_by`)."""
    if level == "all":
        unit = pd.Series("all", index=households.index)
    else:
        width = {"grid": 15, "community": 12, "township": 9}[level]
        unit = households["grid_code"].astype("string").str.slice(0, width)
        if level == "township":
            unit = unit + "000"
        unit = unit.fillna("outside")
    residents = residents_of(households)
    vulnerable = vulnerable_residents(households)
    codes, pos = _factorize_sorted(unit)
    total_res = np.bincount(pos, weights=residents, minlength=len(codes))
    total_hh = np.bincount(pos, minlength=len(codes))
    total_vul = np.bincount(pos, weights=vulnerable, minlength=len(codes))
    rows = []
    for col in coverage_columns(cov):
        ok = cov[col].to_numpy().astype(bool)
        res = np.bincount(pos, weights=residents * ok, minlength=len(codes))
        hh = np.bincount(pos, weights=ok, minlength=len(codes))
        vul = np.bincount(pos, weights=vulnerable * ok, minlength=len(codes))
        ftype, dist = col.split("@")
        rows.append(pd.DataFrame({
            "unit": codes.astype(object), "type": ftype, "distance_m": float(dist),
            "residents": total_res.astype(np.int64), "residents_covered": res.astype(np.int64),
            "households": total_hh.astype(np.int64), "households_covered": hh.astype(np.int64),
            "vulnerable": total_vul.astype(np.int64),
            "vulnerable_covered": vul.astype(np.int64)}))
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in _COUNT_COLUMNS.items()})
    return pd.concat(rows, ignore_index=True)


def _factorize_sorted(unit: pd.Series) -> tuple[NDArray[np.str_], NDArray[np.intp]]:
    """The distinct units in sorted order and each row's position among them (as
    ``np.unique(..., return_inverse=True)``, hashing instead of sorting every row)."""
    pos, uniques = pd.factorize(unit, sort=True)
    return np.asarray(uniques, dtype=str), pos


_COUNT_COLUMNS = {"unit": object, "type": object, "distance_m": float, "residents": np.int64,
                  "residents_covered": np.int64, "households": np.int64,
                  "households_covered": np.int64, "vulnerable": np.int64,
                  "vulnerable_covered": np.int64}


def compliance(households: pd.DataFrame, cov: pd.DataFrame, *, required_share: float = 1.0,
               catalogue: dict[str, Any] | None = None) -> pd.DataFrame:
    """Per community and facility type, at the type's life-circle level: the share of
    residents within reach, the residents left out, and ``missing`` (nobody within reach),
    ``partial`` (below *required_share*) or ``ok``."""
    catalogue = catalogue or FACILITY_TYPES
    table = coverage_by(households, cov, level="community")
    wanted = [(t, catalogue[t].distance_m, catalogue[t].level) for t in catalogue]
    keep = pd.DataFrame(wanted, columns=["type", "distance_m", "level"])
    table = table.merge(keep, on=["type", "distance_m"], how="inner")
    table = table[table["unit"] != "outside"]
    table["uncovered_residents"] = table["residents"] - table["residents_covered"]
    share = table["residents_share"].fillna(0)
    table["status"] = np.select([table["residents_covered"] == 0, share < required_share],
                                ["missing", "partial"], "ok")
    cols = ["unit", "type", "level", "distance_m", "residents", "residents_share",
            "uncovered_residents", "vulnerable", "vulnerable_share", "status"]
    return table[cols].rename(columns={"unit": "community_code"}).sort_values(
        ["community_code", "level", "type"]).reset_index(drop=True)


def uncovered(households: gpd.GeoDataFrame, cov: pd.DataFrame, column: str, *,
              vulnerable_only: bool = False) -> gpd.GeoDataFrame:
    """The households outside reach for one ``type@distance`` column, as a layer to map
    (a dask-geopandas frame for dask input, filtered partition by partition)."""
    if column not in cov.columns:
        raise ValueError(f"no coverage column {column!r}: have {', '.join(coverage_columns(cov))}")
    if is_dask(households):
        meta = uncovered(households._meta, cov._meta, column, vulnerable_only=vulnerable_only)
        return households.map_partitions(uncovered, cov, column,
                                         vulnerable_only=vulnerable_only, meta=meta,
                                         align_dataframes=False)
    out = households.loc[~cov[column].to_numpy()].copy()
    ftype = column.split("@")[0]
    out[f"dist_{ftype}"] = cov.loc[out.index, f"dist_{ftype}"]
    if vulnerable_only:
        out = out[vulnerable_residents(out) > 0]
    return out

