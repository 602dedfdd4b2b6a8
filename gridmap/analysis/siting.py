"""Where should new facilities go? Maximal covering (k new sites, existing ones kept) and
set covering (the fewest new sites that reach everyone), both with capacity where given, as
sparse mixed-integer programs solved by HiGHS (highspy).

Without capacity only people not yet within reach of an existing facility shape the choice;
with it everyone does, since an existing site may be full. For maximal
covering they are summed per small H3 cell (resolution 10, ~65 m across) at their weighted
centre; set covering keeps every distinct household location, so that everyone is reached
exactly. Candidate sites are the centres of the resolution-9 H3 cells (~170 m across) where
people live. The reported coverage is always recounted household by household.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import geopandas as gpd
import h3
import highspy
import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely
from scipy.spatial import cKDTree

from gridmap.analysis.coverage import check_distance, covered_within, vulnerable_residents


@dataclass
class SitingResult:
    sites: gpd.GeoDataFrame      # the new sites chosen, with the residents each newly reaches
    covered_residents: int       # residents within reach with the existing and new sites
    total_residents: int
    model: Literal["mclp", "lscp"]
    optimal: bool
    served_residents: int | None = None  # with capacity: people served within it


def candidate_sites(households: gpd.GeoDataFrame, resolution: int = 9) -> gpd.GeoDataFrame:
    """Candidate sites: the centres of the H3 cells where people live."""
    ll = households.to_crs(4326)
    cells = sorted({h3.latlng_to_cell(y, x, resolution)
                    for x, y in zip(ll.geometry.x, ll.geometry.y, strict=True)})
    pts = [shapely.Point(lng, lat) for lat, lng in (h3.cell_to_latlng(c) for c in cells)]
    return gpd.GeoDataFrame({"h3_cell": cells}, geometry=pts, crs=4326).to_crs(households.crs)


def _demand(households: gpd.GeoDataFrame, weights: np.ndarray, metric: object,
            resolution: int | None) -> pd.DataFrame:
    """People per demand point: per H3 cell at its weighted centre, or (``resolution``
    None) per distinct household location, exactly."""
    pts = households.to_crs(metric)
    if resolution is None:
        cells = list(zip(pts.geometry.x.round(2), pts.geometry.y.round(2), strict=True))
    else:
        ll = households.to_crs(4326)
        cells = [h3.latlng_to_cell(y, x, resolution)
                 for x, y in zip(ll.geometry.x, ll.geometry.y, strict=True)]
    frame = pd.DataFrame({"cell": cells, "wx": pts.geometry.x.to_numpy() * weights,
                          "wy": pts.geometry.y.to_numpy() * weights, "w": weights})
    frame = frame[frame["w"] > 0].groupby("cell", as_index=False)[["wx", "wy", "w"]].sum()
    frame["x"], frame["y"] = frame["wx"] / frame["w"], frame["wy"] / frame["w"]
    return frame[["x", "y", "w"]].reset_index(drop=True)


def _solve(cost: np.ndarray, lower: np.ndarray, upper: np.ndarray, integer: np.ndarray,
           a: sp.csc_matrix, row_lower: np.ndarray, row_upper: np.ndarray, *, maximize: bool,
           time_limit: float) -> tuple[np.ndarray, bool]:
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit))
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = a.shape[1], a.shape[0]
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = cost, lower, upper
    lp.row_lower_, lp.row_upper_ = row_lower, row_upper
    lp.sense_ = highspy.ObjSense.kMaximize if maximize else highspy.ObjSense.kMinimize
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_ = a.indptr, a.indices
    lp.a_matrix_.value_ = a.data
    lp.integrality_ = [highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous
                       for i in integer]
    h.passModel(lp)
    h.run()
    status = h.getModelStatus()
    if status == highspy.HighsModelStatus.kInfeasible:
        raise ValueError("no choice of sites satisfies the constraints (capacity too small?)")
    return np.asarray(h.getSolution().col_value), status == highspy.HighsModelStatus.kOptimal


def _capacitated(rows: np.ndarray, cols: np.ndarray, w: np.ndarray, caps: np.ndarray,
                 n_dem: int) -> tuple[sp.csc_matrix, sp.csc_matrix]:
    """Constraint blocks over (x_j sites, z_p shares of demand i served by site j at pair p):
    the demand rows ``sum_p(i) z_p`` and the capacity and link rows
    ``sum_p(j) w_i z_p - cap_j x_j <= 0``, ``z_p - x_j <= 0``."""
    n_sites, n_p = len(caps), len(rows)
    assign = sp.csc_matrix((np.ones(n_p), (rows, np.arange(n_p))), shape=(n_dem, n_p))
    load = sp.csc_matrix((w[rows], (cols, np.arange(n_p))), shape=(n_sites, n_p))
    link = sp.csc_matrix((-np.ones(n_p), (np.arange(n_p), cols)), shape=(n_p, n_sites))
    demand = sp.hstack([sp.csr_matrix((n_dem, n_sites)), assign]).tocsc()
    limits = sp.vstack([sp.hstack([-sp.diags(caps), load]),
                        sp.hstack([link, sp.identity(n_p)])]).tocsc()
    return demand, limits


def site_facilities(households: gpd.GeoDataFrame, existing: gpd.GeoDataFrame, *,
                    distance: float, k: int | None = None,
                    candidates: gpd.GeoDataFrame | None = None,
                    weight: Literal["residents", "vulnerable"] = "residents",
                    capacity: float | None = None, demand_rate: float = 1.0,
                    time_limit: float = 60, demand_resolution: int = 10) -> SitingResult:
    """With *k*: where k new facilities reach the most people not yet within *distance* of
    an *existing* one (maximal covering). Without *k*: the fewest new sites that bring everyone
    within *distance* (set covering).

    With *capacity* (what one new site holds, in the unit of the facilities' ``capacity``
    column: places, beds…) every site serves at most its capacity — existing sites their own
    ``capacity`` where given, else *capacity* — and each person needs *demand_rate* of that
    unit (e.g. kindergarten places per resident; 1: capacity counts people). Maximal covering
    then maximises the people served within reach, set covering serves everyone; people may
    be split between sites. ``served_residents`` reports it.
    """
    check_distance(distance)
    if households.empty:
        raise ValueError("there are no households to site facilities for")
    if k is not None and k < 1:
        raise ValueError("k must be at least 1")
    if capacity is not None and not capacity > 0:
        raise ValueError("capacity must be a positive number of places")
    if not 0 < demand_rate <= 1000:
        raise ValueError("demand_rate is what one person needs of the capacity's unit: "
                         "a positive number (1 when capacity counts people)")
    if households.crs is None or existing.crs is None:
        raise ValueError("households and facilities need a CRS")
    metric = households.crs if households.crs.is_projected else households.estimate_utm_crs()
    hh = households.to_crs(metric)
    ex = existing.to_crs(metric)
    people = (vulnerable_residents(households) if weight == "vulnerable"
              else households["residents"].to_numpy()).astype(float)
    already = covered_within(hh.geometry.x.to_numpy(), hh.geometry.y.to_numpy(),
                             ex.geometry.x.to_numpy(), ex.geometry.y.to_numpy(), distance)
    base, total = int(people[already].sum()), int(people.sum())
    kind: Literal["mclp", "lscp"] = "mclp" if k else "lscp"
    todo = people > 0
    if capacity is None:  # only the people out of reach shape the choice
        todo &= ~already
    empty = gpd.GeoDataFrame({"reaches": []}, geometry=[], crs=households.crs)
    if not todo.any():
        return SitingResult(empty, base, total, kind, True)
    # set covering must reach every household exactly; maximal covering may aggregate
    demand = _demand(households.loc[todo], people[todo], metric,
                     demand_resolution if k is not None else None)
    cand = (candidates if candidates is not None
            else candidate_sites(households.loc[todo])).to_crs(metric)
    new_xy = np.column_stack([cand.geometry.x, cand.geometry.y])
    old_xy = np.column_stack([ex.geometry.x, ex.geometry.y]) if capacity else np.zeros((0, 2))
    sites = np.vstack([old_xy, new_xy])
    n_old, n_sites, n_dem = len(old_xy), len(sites), len(demand)
    pairs = cKDTree(sites).query_ball_point(demand[["x", "y"]].to_numpy(), r=distance)
    rows = np.repeat(np.arange(n_dem), [len(p) for p in pairs])
    cols = np.concatenate([np.asarray(p, dtype=np.int64) for p in pairs]) if len(rows) \
        else np.zeros(0, dtype=np.int64)
    w = demand["w"].to_numpy()
    served: float | None = None
    if capacity is not None:
        own = (pd.to_numeric(existing["capacity"], errors="coerce").to_numpy(dtype=float)
               if "capacity" in existing else np.full(n_old, np.nan))
        caps = np.r_[np.where(np.isnan(own) | (own <= 0), capacity, own),
                     np.full(n_sites - n_old, capacity)] / demand_rate  # in people
        fixed = np.zeros(n_sites)
        fixed[:n_old] = 1  # existing sites stay
        n_p = len(rows)
        demand_rows, limits = _capacitated(rows, cols, w, caps, n_dem)
    if k is not None and capacity is None:
        # variables: x_j (new sites, binary), y_i (demand reached, 0..1)
        # max sum w_i y_i  s.t.  y_i - sum_{j near i} x_j <= 0,  sum_j x_j = k
        reach = sp.csc_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_dem, n_sites))
        a = sp.vstack([sp.hstack([-reach, sp.identity(n_dem)]),
                       sp.hstack([sp.csr_matrix(np.ones((1, n_sites))),
                                  sp.csr_matrix((1, n_dem))])]).tocsc()
        sol, optimal = _solve(
            np.concatenate([np.zeros(n_sites), w]), np.zeros(n_sites + n_dem),
            np.ones(n_sites + n_dem), np.r_[np.ones(n_sites, bool), np.zeros(n_dem, bool)], a,
            np.r_[np.full(n_dem, -np.inf), float(k)], np.r_[np.zeros(n_dem), float(k)],
            maximize=True, time_limit=time_limit)
    elif k is not None:
        # max sum_p w_i z_p; sum_p(i) z_p <= 1; capacity and link rows; k new sites
        new_count = sp.csr_matrix(np.r_[np.zeros(n_old), np.ones(n_sites - n_old),
                                        np.zeros(n_p)][None, :])
        a = sp.vstack([demand_rows, limits, new_count]).tocsc()
        sol, optimal = _solve(
            np.r_[np.zeros(n_sites), w[rows]], np.r_[fixed, np.zeros(n_p)],
            np.ones(n_sites + n_p), np.r_[np.ones(n_sites, bool), np.zeros(n_p, bool)], a,
            np.r_[np.full(n_dem + n_sites + n_p, -np.inf), float(k)],
            np.r_[np.ones(n_dem), np.zeros(n_sites + n_p), float(k)], maximize=True,
            time_limit=time_limit)
        served = float(w[rows] @ sol[n_sites:])
    else:
        unreachable = np.setdiff1d(np.arange(n_dem), rows)
        if len(unreachable):
            raise ValueError(f"{len(unreachable)} places with residents have no candidate site "
                             f"within {distance:.0f} m: give more candidates")
        if capacity is None:
            # min sum x_j  s.t.  sum_{j near i} x_j >= 1
            a = sp.csc_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_dem, n_sites))
            sol, optimal = _solve(np.ones(n_sites), np.zeros(n_sites), np.ones(n_sites),
                                  np.ones(n_sites, bool), a, np.ones(n_dem),
                                  np.full(n_dem, np.inf), maximize=False,
                                  time_limit=time_limit)
        else:
            # min sum x_j; sum_p(i) z_p = 1; capacity and link rows
            a = sp.vstack([demand_rows, limits]).tocsc()
            sol, optimal = _solve(
                np.r_[np.ones(n_sites), np.zeros(n_p)], np.r_[fixed, np.zeros(n_p)],
                np.ones(n_sites + n_p), np.r_[np.ones(n_sites, bool), np.zeros(n_p, bool)], a,
                np.r_[np.ones(n_dem), np.full(n_sites + n_p, -np.inf)],
                np.r_[np.ones(n_dem), np.zeros(n_sites + n_p)], maximize=False,
                time_limit=time_limit)
            served = float(w[rows] @ sol[n_sites:])
    chosen = np.flatnonzero(sol[:n_sites] > 0.5)
    new = chosen[chosen >= n_old]
    near = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_dem, n_sites))
    gain = near[:, new].T @ w if len(new) else np.zeros(0)  # people within reach of each
    columns: dict[str, object] = {"reaches": gain.round().astype(int)}
    if served is not None:  # people each new site serves within its capacity
        load = sp.csr_matrix((sol[n_sites:], (cols, np.arange(len(rows)))),
                             shape=(n_sites, len(rows))) @ w[rows]
        columns["serves"] = np.asarray(load)[new].round().astype(int)
    out = gpd.GeoDataFrame(columns, geometry=gpd.points_from_xy(sites[new, 0], sites[new, 1]),
                           crs=metric).to_crs(households.crs)
    # the people within reach, counted exactly household by household
    all_x = np.r_[ex.geometry.x.to_numpy(), sites[new, 0]]
    all_y = np.r_[ex.geometry.y.to_numpy(), sites[new, 1]]
    reach_now = covered_within(hh.geometry.x.to_numpy(), hh.geometry.y.to_numpy(), all_x,
                               all_y, distance)
    return SitingResult(out, int(people[reach_now].sum()), total, kind, bool(optimal),
                        None if served is None else round(served))
