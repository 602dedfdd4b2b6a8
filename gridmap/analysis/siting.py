"""Where should new facilities go? Maximal covering (k new sites, existing ones kept) and
set covering (the fewest new sites that reach everyone), both with capacity where given, as
sparse mixed-integer programs solved by HiGHS (highspy).

The work falls into named steps, each its own function:

1. **demand** — people per demand point: for maximal covering, summed per small H3 cell
   (resolution 10, ~65 m across) at its weighted centre; for set covering (and with a cost
   matrix) every distinct household location, so that everyone is reached exactly;
2. **candidates** — by default the centres of the H3 cells (resolution 9, ~170 m) of *every*
   populated place, covered already or not (a site among covered people may be the one that
   reaches two uncovered groups); or the caller's own;
3. **reach** — which sites reach which demand points within the distance: straight-line
   (a k-d tree), along the walking network (Dijkstra from each site, cut off at the
   distance) or from a precomputed cost matrix (as spopt's ``from_cost_matrix``);
4. **model** — one builder per model (:func:`mclp`, :func:`lscp`, and their capacitated
   forms) returns a :class:`Program`;
5. **solve** — :func:`solve` runs HiGHS and reports its real status: optimal over the
   candidate set, or the time limit's best with its gap.

Without capacity only people not yet within reach of an existing facility shape the choice;
with it everyone does, since an existing site may be full. The reported coverage is always
recounted household by household, with the same metric.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import geopandas as gpd
import h3
import highspy
import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely
from numpy.typing import NDArray
from pyproj import CRS
from scipy.spatial import cKDTree

from gridmap.analysis.coverage import (
    check_distance,
    covered_within,
    residents_of,
    vulnerable_residents,
)
from gridmap.domain.layers import CARE_FLAGS

Model = Literal["mclp", "lscp"]
Metric = Literal["straight", "network"]

# What the solver proved, as whole sentences of the catalogue (the CLI says them in the
# deployment's language with gridmap.i18n; the sources they name are catalogue texts too).
WHERE = ("over the candidate set ({candidates} {candidate_source}; demand: {demand_points} "
         "{demand_source})")
STATUS_OPTIMAL = "optimal " + WHERE
STATUS_TIME_LIMIT = "time limit hit: the best found, gap {gap} " + WHERE
STATUS_TIME_LIMIT_MCLP = ("time limit hit: the best found, gap {gap}; the optimum reaches at "
                          "most {bound} of the people counted " + WHERE)
STATUS_TIME_LIMIT_LSCP = ("time limit hit: the best found, gap {gap}; the optimum needs at "
                          "least {bound} sites " + WHERE)
# HiGHS' model statuses, in words of the catalogue (context "solver_status"), not HiGHS' own
# English (modelStatusToString): what a run that found no solution says
SOLVER_STATUS: dict[str, str] = {  # by the status's name (kHighsInterrupt is not typed)
    "kNotset": "the solver did not run",
    "kLoadError": "the model could not be loaded",
    "kModelError": "the model is not valid",
    "kPresolveError": "presolve failed",
    "kSolveError": "the solve failed",
    "kPostsolveError": "postsolve failed",
    "kModelEmpty": "the model is empty",
    "kOptimal": "optimal",
    "kInfeasible": "infeasible",
    "kUnboundedOrInfeasible": "unbounded or infeasible",
    "kUnbounded": "unbounded",
    "kObjectiveBound": "the objective bound was reached",
    "kObjectiveTarget": "the objective target was reached",
    "kTimeLimit": "the time limit was reached",
    "kIterationLimit": "the iteration limit was reached",
    "kSolutionLimit": "the solution limit was reached",
    "kInterrupt": "interrupted",
    "kHighsInterrupt": "interrupted",
    "kMemoryLimit": "the memory limit was reached",
    "kUnknown": "unknown",
}


@dataclass
class SitingResult:
    sites: gpd.GeoDataFrame      # the new sites chosen, with the residents each newly reaches
    covered_residents: int       # people within reach with the existing and new sites
    total_residents: int
    model: Model
    optimal: bool                # optimal over the candidate set (False: time limit hit)
    served_residents: int | None = None  # with capacity: people served within it
    gap: float | None = None     # relative MIP gap when the time limit stopped the solver
    bound: float | None = None   # then: the most (mclp) / fewest (lscp) the optimum can be
    candidates: int = 0          # size of the candidate set
    candidate_source: str = ""   # how it was built
    demand_points: int = 0
    demand_source: str = ""
    metric: str = "straight"

    @property
    def status(self) -> str:
        """What the solver proved, in words."""
        template, values = self.status_message()
        return template.format(**values)

    def status_message(self) -> tuple[str, dict[str, str]]:
        """:attr:`status` as a catalogue message (one of the ``STATUS_*`` templates) and
        its values, for a caller that says it in another language."""
        values = {"candidates": f"{self.candidates:,}", "candidate_source":
                  self.candidate_source, "demand_points": f"{self.demand_points:,}",
                  "demand_source": self.demand_source}
        if self.optimal:
            return STATUS_OPTIMAL, values
        values["gap"] = "unknown" if self.gap is None else f"{self.gap:.2%}"
        if self.bound is None:
            return STATUS_TIME_LIMIT, values
        values["bound"] = f"{self.bound:,.0f}"
        return (STATUS_TIME_LIMIT_MCLP if self.model == "mclp" else STATUS_TIME_LIMIT_LSCP,
                values)


@dataclass
class Program:
    """A mixed-integer program in HiGHS' column-wise form. Columns ``0..n_sites-1`` are
    the sites (existing first, then candidates); the rest are the model's own."""

    model: Model
    n_sites: int
    cost: NDArray[np.float64]
    lower: NDArray[np.float64]
    upper: NDArray[np.float64]
    integer: NDArray[np.bool_]
    a: sp.csc_matrix
    row_lower: NDArray[np.float64]
    row_upper: NDArray[np.float64]
    maximize: bool
    capacitated: bool = False
    start: NDArray[np.float64] | None = None  # a feasible solution to begin from


@dataclass
class Solution:
    values: NDArray[np.float64]
    optimal: bool
    gap: float | None
    objective: float = 0.0
    bound: float | None = None  # the best the optimum can be, when stopped early


@dataclass
class Reach:
    """Pairs (demand point ``rows[p]``, site ``cols[p]``) within the distance."""

    rows: NDArray[np.int64]
    cols: NDArray[np.int64]
    n_demand: int
    n_sites: int

    def matrix(self) -> sp.csr_matrix:
        return sp.csr_matrix((np.ones(len(self.rows)), (self.rows, self.cols)),
                             shape=(self.n_demand, self.n_sites))


# ----------------------------------------------------------------------------- step 1-3
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
    None) per distinct household location, exactly. ``members`` lists the households'
    positions in each point (for a cost matrix, whose rows are households)."""
    pts = households.to_crs(metric)
    if resolution is None:
        cells = list(zip(pts.geometry.x.round(2), pts.geometry.y.round(2), strict=True))
    else:
        ll = households.to_crs(4326)
        cells = [h3.latlng_to_cell(y, x, resolution)
                 for x, y in zip(ll.geometry.x, ll.geometry.y, strict=True)]
    frame = pd.DataFrame({"cell": cells, "wx": pts.geometry.x.to_numpy() * weights,
                          "wy": pts.geometry.y.to_numpy() * weights, "w": weights,
                          "member": np.arange(len(pts))})
    frame = frame[frame["w"] > 0].groupby("cell", as_index=False, sort=True).agg(
        wx=("wx", "sum"), wy=("wy", "sum"), w=("w", "sum"), first=("member", "first"))
    frame["x"], frame["y"] = frame["wx"] / frame["w"], frame["wy"] / frame["w"]
    return frame[["x", "y", "w", "first"]].reset_index(drop=True)


def straight_reach(demand_xy: NDArray, site_xy: NDArray, distance: float) -> Reach:
    """Sites within *distance* metres in a straight line."""
    pairs = cKDTree(site_xy).query_ball_point(demand_xy, r=distance) if len(site_xy) \
        else [[] for _ in range(len(demand_xy))]
    rows = np.repeat(np.arange(len(demand_xy)), [len(p) for p in pairs])
    cols = np.concatenate([np.asarray(p, dtype=np.int64) for p in pairs]) if len(rows) \
        else np.zeros(0, dtype=np.int64)
    return Reach(rows.astype(np.int64), cols, len(demand_xy), len(site_xy))


def network_reach(network: Any, demand_xy: NDArray, site_xy: NDArray, distance: float,
                  crs: CRS) -> Reach:
    """Sites within *distance* metres along the walking network: the hop from each point
    to its nearest node, the shortest path, the hop to the site (as coverage measures)."""
    if not len(site_xy) or not len(demand_xy):
        return Reach(np.zeros(0, np.int64), np.zeros(0, np.int64), len(demand_xy),
                     len(site_xy))
    d_hop, d_pos = network.snap(demand_xy[:, 0], demand_xy[:, 1], crs)
    s_hop, s_pos = network.snap(site_xy[:, 0], site_xy[:, 1], crs)
    nodes, which = np.unique(s_pos, return_inverse=True)
    paths = network.distances_from(nodes, cutoff=distance).tocsc()[:, d_pos]  # node × demand
    pairs = paths.tocsr()[which].tocoo()  # site × demand
    total = pairs.data + d_hop[pairs.col] + s_hop[pairs.row]
    keep = total <= distance
    return Reach(pairs.col[keep].astype(np.int64), pairs.row[keep].astype(np.int64),
                 len(demand_xy), len(site_xy))


def matrix_reach(cost: NDArray, distance: float) -> Reach:
    """Pairs whose precomputed cost (metres, or minutes: the unit of *distance*) is within
    *distance*; NaN and inf are unreachable."""
    with np.errstate(invalid="ignore"):
        rows, cols = np.nonzero(np.nan_to_num(cost, nan=np.inf) <= distance)
    return Reach(rows.astype(np.int64), cols.astype(np.int64), cost.shape[0], cost.shape[1])


# ----------------------------------------------------------------------------- step 4
def mclp(reach: Reach, weights: NDArray, k: int) -> Program:
    """Maximal covering: variables x_j (sites, binary), y_i (demand reached, 0..1);
    max Σ w_i y_i  s.t.  y_i − Σ_{j reaches i} x_j ≤ 0,  Σ_j x_j = k."""
    n_s, n_d = reach.n_sites, reach.n_demand
    near = reach.matrix()
    a = sp.vstack([sp.hstack([-near, sp.identity(n_d)]),
                   sp.hstack([sp.csr_matrix(np.ones((1, n_s))), sp.csr_matrix((1, n_d))])]
                  ).tocsc()
    return Program("mclp", n_s, np.r_[np.zeros(n_s), weights], np.zeros(n_s + n_d),
                   np.ones(n_s + n_d), np.r_[np.ones(n_s, bool), np.zeros(n_d, bool)], a,
                   np.r_[np.full(n_d, -np.inf), float(k)], np.r_[np.zeros(n_d), float(k)],
                   maximize=True, start=_greedy_start(near.tocsc(), weights, k))


def _greedy_start(near: sp.csc_matrix, weights: NDArray, k: int) -> NDArray[np.float64]:
    """A feasible start for maximal covering: k sites, each reaching the most people
    not reached by those before it — so a time limit always leaves an answer."""
    n_s = near.shape[1]
    left = weights.astype(float).copy()
    x = np.zeros(n_s)
    for _ in range(k):
        gain = near.T @ left
        gain[x > 0] = -1.0
        j = int(np.argmax(gain))
        x[j] = 1.0
        left[near.indices[near.indptr[j]:near.indptr[j + 1]]] = 0.0
    return np.r_[x, (weights > 0) & (left == 0)].astype(float)


def lscp(reach: Reach) -> Program:
    """Set covering: min Σ x_j  s.t.  Σ_{j reaches i} x_j ≥ 1 for every demand point."""
    n_s = reach.n_sites
    return Program("lscp", n_s, np.ones(n_s), np.zeros(n_s), np.ones(n_s),
                   np.ones(n_s, bool), reach.matrix().tocsc(), np.ones(reach.n_demand),
                   np.full(reach.n_demand, np.inf), maximize=False)


def _capacity_blocks(reach: Reach, w: NDArray, caps: NDArray
                     ) -> tuple[sp.csc_matrix, sp.csc_matrix]:
    """Constraint blocks over (x_j sites, z_p shares of demand i served by site j at pair p):
    the demand rows ``Σ_p(i) z_p`` and the capacity and link rows
    ``Σ_p(j) w_i z_p − cap_j x_j ≤ 0``, ``z_p − x_j ≤ 0``."""
    rows, cols = reach.rows, reach.cols
    n_sites, n_p, n_dem = reach.n_sites, len(rows), reach.n_demand
    assign = sp.csc_matrix((np.ones(n_p), (rows, np.arange(n_p))), shape=(n_dem, n_p))
    load = sp.csc_matrix((w[rows], (cols, np.arange(n_p))), shape=(n_sites, n_p))
    link = sp.csc_matrix((-np.ones(n_p), (np.arange(n_p), cols)), shape=(n_p, n_sites))
    demand = sp.hstack([sp.csr_matrix((n_dem, n_sites)), assign]).tocsc()
    limits = sp.vstack([sp.hstack([-sp.diags(caps), load]),
                        sp.hstack([link, sp.identity(n_p)])]).tocsc()
    return demand, limits


def mclp_capacitated(reach: Reach, weights: NDArray, caps: NDArray, n_existing: int,
                     k: int) -> Program:
    """Maximal covering within capacity: max Σ_p w_i z_p; Σ_p(i) z_p ≤ 1; capacity and
    link rows; the existing sites open, k new ones."""
    n_s, n_p, n_d = reach.n_sites, len(reach.rows), reach.n_demand
    demand, limits = _capacity_blocks(reach, weights, caps)
    new_count = sp.csr_matrix(np.r_[np.zeros(n_existing), np.ones(n_s - n_existing),
                                    np.zeros(n_p)][None, :])
    fixed = np.r_[np.ones(n_existing), np.zeros(n_s - n_existing)]
    return Program("mclp", n_s, np.r_[np.zeros(n_s), weights[reach.rows]],
                   np.r_[fixed, np.zeros(n_p)], np.ones(n_s + n_p),
                   np.r_[np.ones(n_s, bool), np.zeros(n_p, bool)],
                   sp.vstack([demand, limits, new_count]).tocsc(),
                   np.r_[np.full(n_d + n_s + n_p, -np.inf), float(k)],
                   np.r_[np.ones(n_d), np.zeros(n_s + n_p), float(k)], maximize=True,
                   capacitated=True)


def lscp_capacitated(reach: Reach, weights: NDArray, caps: NDArray, n_existing: int
                     ) -> Program:
    """Set covering within capacity: min Σ x_j; Σ_p(i) z_p = 1; capacity and link rows;
    the existing sites open."""
    n_s, n_p, n_d = reach.n_sites, len(reach.rows), reach.n_demand
    demand, limits = _capacity_blocks(reach, weights, caps)
    fixed = np.r_[np.ones(n_existing), np.zeros(n_s - n_existing)]
    return Program("lscp", n_s, np.r_[np.ones(n_s), np.zeros(n_p)],
                   np.r_[fixed, np.zeros(n_p)], np.ones(n_s + n_p),
                   np.r_[np.ones(n_s, bool), np.zeros(n_p, bool)],
                   sp.vstack([demand, limits]).tocsc(),
                   np.r_[np.ones(n_d), np.full(n_s + n_p, -np.inf)],
                   np.r_[np.ones(n_d), np.zeros(n_s + n_p)], maximize=False,
                   capacitated=True)


# ----------------------------------------------------------------------------- step 5
def solve(program: Program, *, time_limit: float = 60) -> Solution:
    """Run HiGHS. Optimal means optimal over the program's candidate sites; when the time
    limit stops it first, the best solution found comes back with its relative gap."""
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit))
    lp = highspy.HighsLp()
    a = program.a
    lp.num_col_, lp.num_row_ = a.shape[1], a.shape[0]
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = program.cost, program.lower, program.upper
    lp.row_lower_, lp.row_upper_ = program.row_lower, program.row_upper
    lp.sense_ = highspy.ObjSense.kMaximize if program.maximize else highspy.ObjSense.kMinimize
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_ = a.indptr, a.indices
    lp.a_matrix_.value_ = a.data
    lp.integrality_ = [highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous
                       for i in program.integer]
    h.passModel(lp)
    if program.start is not None:
        start = highspy.HighsSolution()
        start.col_value = list(program.start)
        start.value_valid = True
        h.setSolution(start)
    h.run()
    status = h.getModelStatus()
    info = h.getInfo()
    if status == highspy.HighsModelStatus.kInfeasible:
        raise ValueError("the capacity of the sites cannot serve everyone within reach: give "
                         "more capacity (or allow more sites)" if program.capacitated else
                         "no choice of the candidate sites satisfies the model: give more "
                         "candidates")
    if status == highspy.HighsModelStatus.kOptimal:
        return Solution(np.asarray(h.getSolution().col_value), True, 0.0,
                        float(info.objective_function_value))
    feasible = info.primal_solution_status == 2  # kSolutionStatusFeasible
    if status == highspy.HighsModelStatus.kTimeLimit and feasible:
        bound, gap = float(info.mip_dual_bound), float(info.mip_gap)
        return Solution(np.asarray(h.getSolution().col_value), False,
                        gap if np.isfinite(gap) else None, float(info.objective_function_value),
                        bound if np.isfinite(bound) else None)
    if status == highspy.HighsModelStatus.kTimeLimit:
        raise ValueError(f"no solution found within the time limit of {time_limit:g} s: "
                         "give the solver more time, or fewer candidates")
    said = SOLVER_STATUS.get(status.name, h.modelStatusToString(status))
    raise ValueError(f"the solver stopped without a solution ({said})")


# ----------------------------------------------------------------------------- the call
def _weights(households: gpd.GeoDataFrame, weight: str) -> NDArray[np.float64]:
    if weight == "vulnerable":
        if not any(f in households for f in CARE_FLAGS):
            raise ValueError("weight='vulnerable' needs the care flags (one or more of "
                             f"{', '.join(CARE_FLAGS)}) as columns of the households; they "
                             "have none, so nobody would count — use weight='residents'")
        return vulnerable_residents(households).astype(float)
    if weight != "residents":
        raise ValueError("weight is 'residents' or 'vulnerable'")
    return residents_of(households).astype(float)


def _check(households: gpd.GeoDataFrame, existing: gpd.GeoDataFrame, k: int | None,
           capacity: float | None, demand_rate: float, metric: str, network: Any,
           cost_matrix: Any, candidates: gpd.GeoDataFrame | None) -> None:
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
    if metric not in ("straight", "network"):
        raise ValueError("metric is 'straight' or 'network'")
    if metric == "network" and network is None and cost_matrix is None:
        raise ValueError("siting along streets needs a walking network (import one from "
                         "OpenStreetMap: gridmap import osm FILE.osm.pbf)")
    if cost_matrix is not None:
        if candidates is None:
            raise ValueError("a cost matrix needs the candidate sites it was computed for "
                             "(candidates=…, in the order of its columns after the existing "
                             "sites)")
        want = (len(households), len(existing) + len(candidates))
        if np.shape(cost_matrix) != want:
            raise ValueError(f"the cost matrix is {np.shape(cost_matrix)}, but needs one row "
                             "per household and one column per existing site then per "
                             f"candidate: {want}")


def site_facilities(households: gpd.GeoDataFrame, existing: gpd.GeoDataFrame, *,
                    distance: float, k: int | None = None,
                    candidates: gpd.GeoDataFrame | None = None,
                    weight: Literal["residents", "vulnerable"] = "residents",
                    capacity: float | None = None, demand_rate: float = 1.0,
                    metric: Metric = "straight", network: Any | None = None,
                    cost_matrix: NDArray[np.float64] | None = None,
                    time_limit: float = 60, demand_resolution: int = 10,
                    candidate_resolution: int = 9) -> SitingResult:
    """With *k*: where k new facilities reach the most people not yet within *distance* of
    an *existing* one (maximal covering). Without *k*: the fewest new sites that bring everyone
    within *distance* (set covering).

    *metric* ``"network"`` measures along *network* (a
    :class:`gridmap.analysis.network.WalkNetwork`). Or give *cost_matrix*: one row per
    household, one column per existing site and then per candidate (in *candidates*' order),
    holding the cost to reach it in *distance*'s unit (metres, minutes…); NaN or inf where
    unreachable.

    *candidates*: where new sites may go; by default the centres of the H3 cells (at
    *candidate_resolution*) of every populated place.

    With *capacity* (what one new site holds, in the unit of the facilities' ``capacity``
    column: places, beds…) every site serves at most its capacity — existing sites their own
    ``capacity`` where given, else *capacity* — and each person needs *demand_rate* of that
    unit (e.g. kindergarten places per resident; 1: capacity counts people). Maximal covering
    then maximises the people served within reach, set covering serves everyone; people may
    be split between sites. ``served_residents`` reports it.

    ``optimal`` is optimal over the candidate set (``status`` says which set, and the gap
    when *time_limit* seconds stop the solver first).
    """
    if cost_matrix is None:
        check_distance(distance)
    elif not (np.isfinite(distance) and distance > 0):
        raise ValueError("distance must be a positive number in the cost matrix's unit")
    _check(households, existing, k, capacity, demand_rate, metric, network, cost_matrix,
           candidates)
    crs = households.crs if households.crs.is_projected else households.estimate_utm_crs()
    hh = households.to_crs(crs)
    ex = existing.to_crs(crs)
    hx, hy = hh.geometry.x.to_numpy(), hh.geometry.y.to_numpy()
    people = _weights(households, weight)
    n_ex = len(ex)
    ex_xy = np.column_stack([ex.geometry.x, ex.geometry.y]) if n_ex else np.zeros((0, 2))
    cost = None if cost_matrix is None else np.asarray(cost_matrix, dtype=float)

    def reached(site_xy: NDArray, cost_cols: NDArray | None) -> NDArray[np.bool_]:
        """Households within reach of the given sites, household by household."""
        if cost is not None:
            assert cost_cols is not None  # columns of the cost matrix go with it
            sub = cost[:, cost_cols] if len(cost_cols) else np.full((len(hx), 0), np.inf)
            with np.errstate(invalid="ignore"):
                return (np.nan_to_num(sub, nan=np.inf) <= distance).any(axis=1)
        if not len(site_xy):
            return np.zeros(len(hx), dtype=bool)
        if metric == "network":
            assert network is not None  # checked when the problem was built
            return network.distances(hx, hy, site_xy[:, 0], site_xy[:, 1], crs=crs,
                                     cutoff=distance) <= distance
        return covered_within(hx, hy, site_xy[:, 0], site_xy[:, 1], distance)

    already = reached(ex_xy, np.arange(n_ex))
    base, total = int(people[already].sum()), int(people.sum())
    kind: Model = "mclp" if k else "lscp"
    todo = people > 0
    if capacity is None:  # only the people out of reach shape the choice
        todo &= ~already
    empty = gpd.GeoDataFrame({"reaches": []}, geometry=[], crs=households.crs)
    if not todo.any():
        return SitingResult(empty, base, total, kind, True, metric=metric)

    # step 1: demand
    exact = k is None or cost is not None
    demand = _demand(households.loc[todo], people[todo], crs,
                     None if exact else demand_resolution)
    demand_source = ("distinct household locations" if exact
                     else f"H3 resolution-{demand_resolution} cells")
    # step 2: candidates (every populated place, not only the uncovered ones)
    if candidates is None:
        cand = candidate_sites(households.loc[people > 0], candidate_resolution).to_crs(crs)
        source = (f"centres of the H3 resolution-{candidate_resolution} cells where people "
                  "live")
    else:
        cand = candidates.to_crs(crs)
        source = "sites given by the caller"
    new_xy = np.column_stack([cand.geometry.x, cand.geometry.y]) if len(cand) \
        else np.zeros((0, 2))
    if k is not None and k > len(new_xy):
        raise ValueError(f"k={k} new sites asked for, but there are only {len(new_xy)} "
                         "candidate sites: ask for fewer, or pass more candidates")
    keep_old = capacity is not None  # existing sites are columns only when they may fill
    sites = np.vstack([ex_xy, new_xy]) if keep_old else new_xy
    n_old = n_ex if keep_old else 0
    # step 3: reach
    dxy = demand[["x", "y"]].to_numpy()
    if cost is not None:
        members = np.flatnonzero(todo)[demand["first"].to_numpy()]
        cols = np.r_[np.arange(n_ex), n_ex + np.arange(len(new_xy))] if keep_old \
            else n_ex + np.arange(len(new_xy))
        reach = matrix_reach(cost[np.ix_(members, cols)], distance)
    elif metric == "network":
        reach = network_reach(network, dxy, sites, distance, crs)
    else:
        reach = straight_reach(dxy, sites, distance)
    w = demand["w"].to_numpy()
    if k is None:
        unreachable = np.setdiff1d(np.arange(reach.n_demand), reach.rows)
        if len(unreachable):
            raise ValueError(f"{len(unreachable)} places with residents have no candidate site "
                             f"within {distance:g} ({metric if cost is None else 'cost'}): "
                             "give more candidates")
    # step 4: model
    if capacity is not None:
        own = (pd.to_numeric(existing["capacity"], errors="coerce").to_numpy(dtype=float)
               if "capacity" in existing else np.full(n_old, np.nan))
        caps = np.r_[np.where(np.isnan(own) | (own <= 0), capacity, own),
                     np.full(len(new_xy), capacity)] / demand_rate  # in people
        program = (mclp_capacitated(reach, w, caps, n_old, k) if k is not None
                   else lscp_capacitated(reach, w, caps, n_old))
    else:
        program = mclp(reach, w, k) if k is not None else lscp(reach)
    # step 5: solve
    solution = solve(program, time_limit=time_limit)
    return _result(solution, program, reach, w, sites, n_old, ex_xy, crs, households, people,
                   reached, kind, total, metric, len(new_xy), source, demand, demand_source)


def _result(solution: Solution, program: Program, reach: Reach, w: NDArray, sites: NDArray,
            n_old: int, ex_xy: NDArray, crs: Any, households: gpd.GeoDataFrame,
            people: NDArray, reached: Any, kind: Model, total: int, metric: str,
            n_cand: int, source: str, demand: pd.DataFrame, demand_source: str
            ) -> SitingResult:
    """The chosen sites, what each reaches (and serves), and everyone recounted."""
    sol, n_sites = solution.values, program.n_sites
    chosen = np.flatnonzero(sol[:n_sites] > 0.5)
    new = chosen[chosen >= n_old]
    near = reach.matrix()
    gain = near[:, new].T @ w if len(new) else np.zeros(0)  # people within reach of each
    columns: dict[str, object] = {"reaches": np.asarray(gain).round().astype(int)}
    served = None
    if program.capacitated:  # people each new site serves within its capacity
        z = sol[n_sites:]
        served = round(float(w[reach.rows] @ z))
        load = sp.csr_matrix((z, (reach.cols, np.arange(len(reach.rows)))),
                             shape=(n_sites, len(reach.rows))) @ w[reach.rows]
        columns["serves"] = np.asarray(load)[new].round().astype(int)
    out = gpd.GeoDataFrame(columns, geometry=gpd.points_from_xy(sites[new, 0], sites[new, 1]),
                           crs=crs).to_crs(households.crs)
    n_ex = len(ex_xy)
    # everyone recounted with the existing and the new sites (cost-matrix columns: the
    # existing ones, then the chosen candidates)
    now = reached(np.vstack([ex_xy, sites[new]]), np.r_[np.arange(n_ex), n_ex + new - n_old])
    return SitingResult(out, int(people[now].sum()), total, kind, solution.optimal, served,
                        None if solution.optimal else solution.gap,
                        None if solution.optimal else solution.bound, n_cand, source,
                        len(demand), demand_source, metric)
