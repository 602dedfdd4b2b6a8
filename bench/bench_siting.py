"""Siting speed and agreement: gridmap's ``site_facilities`` beside spopt's MCLP and LSCP
(``from_cost_matrix``, solved by HiGHS — and with ``--cbc`` by CBC — through PuLP) on the
same generated problem, straight-line and along streets; the optimum objectives must agree.

Run: .venv/bin/python bench/bench_siting.py [--households 1000] [--k 8] [--distance 400] [--cbc]

The town: households scattered over 4 x 4 km around a street lattice (100 m blocks) cut by a
river that only two bridges cross; candidate sites are the centres of the populated H3
resolution-9 cells (gridmap's default). gridmap is timed end to end (reach, model, solve,
recount); spopt is given the cost matrix (its time to build it — a distance matrix for
straight line, Dijkstra for the network — is printed separately) and timed for model and
solve. Demand for both is every household (gridmap: ``demand_resolution=15``, cells
of half a metre).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import geopandas as gpd
import numpy as np
import pandas as pd
import pulp
from scipy.spatial.distance import cdist
from spopt.locate import LSCP, MCLP

from gridmap.analysis.network import WalkNetwork
from gridmap.analysis.siting import candidate_sites, site_facilities

CRS = 32650
X0, Y0 = 400_000.0, 3_500_000.0
SIZE, BLOCK, RIVER = 4000.0, 100.0, 2050.0  # the river runs east-west at y = 2,050 m


def town(n: int, seed: int = 7) -> tuple[gpd.GeoDataFrame, WalkNetwork]:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, SIZE, (n, 2))
    xy[:, 1] = np.where(np.abs(xy[:, 1] - RIVER) < 40, xy[:, 1] + 80, xy[:, 1])  # no one in it
    homes = gpd.GeoDataFrame({"residents": rng.integers(1, 6, n)},
                             geometry=gpd.points_from_xy(X0 + xy[:, 0], Y0 + xy[:, 1]), crs=CRS)
    side = int(SIZE / BLOCK) + 1
    ids, nx_, ny_, edges = [], [], [], []
    for j in range(side):
        for i in range(side):
            nid = j * side + i
            ids.append(nid)
            nx_.append(X0 + i * BLOCK)
            ny_.append(Y0 + j * BLOCK)
            if i:
                edges.append((nid - 1, nid, BLOCK))
            crosses = (j - 1) * BLOCK < RIVER < j * BLOCK
            if j and (not crosses or i in (5, 35)):  # two bridges
                edges.append((nid - side, nid, BLOCK))
    nodes = gpd.GeoDataFrame({"id": ids}, geometry=gpd.points_from_xy(nx_, ny_), crs=CRS)
    return homes, WalkNetwork.from_frames(nodes, pd.DataFrame(edges, columns=["u", "v",
                                                                                  "length"]))


def network_costs(net: WalkNetwork, homes: np.ndarray, sites: np.ndarray, cutoff: float
                  ) -> np.ndarray:
    """Household x site walking distances (hop + path + hop; inf beyond *cutoff*)."""
    h_hop, h_pos = net.snap(homes[:, 0], homes[:, 1], CRS)
    s_hop, s_pos = net.snap(sites[:, 0], sites[:, 1], CRS)
    paths = net.distances_from(s_pos, cutoff=cutoff).toarray()  # site x node
    paths[paths == 0] = np.inf
    return h_hop[:, None] + paths[:, h_pos].T + s_hop[None, :]


def timed(fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def spopt_mclp(cost: np.ndarray, weights: np.ndarray, distance: float, k: int,
               solver: pulp.LpSolver) -> tuple[float, float]:
    def run() -> float:
        model = MCLP.from_cost_matrix(cost, weights, distance, p_facilities=k)
        model.solve(solver, results=False)
        return float(pulp.value(model.problem.objective))
    return timed(run)


def spopt_lscp(cost: np.ndarray, distance: float, solver: pulp.LpSolver
               ) -> tuple[float, float]:
    def run() -> float:
        model = LSCP.from_cost_matrix(cost, distance)
        model.solve(solver, results=False)
        return float(pulp.value(model.problem.objective))
    return timed(run)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--households", type=int, default=1000)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--distance", type=float, default=400.0)
    ap.add_argument("--cbc", action="store_true", help="also spopt with CBC (slow)")
    args = ap.parse_args()
    homes, net = town(args.households)
    cand = candidate_sites(homes)
    none = homes.iloc[:0]
    w = homes["residents"].to_numpy(dtype=float)
    hxy = np.column_stack([homes.geometry.x, homes.geometry.y])
    cxy = np.column_stack([cand.geometry.x, cand.geometry.y])
    d, k = args.distance, args.k
    print(f"{len(homes):,} households ({int(w.sum()):,} residents), {len(cand)} candidate "
          f"sites, {d:g} m; street lattice of {len(net.node_ids):,} nodes, a river with two "
          "bridges")
    solvers: dict[str, pulp.LpSolver] = {"HiGHS": pulp.HiGHS(msg=False)}
    if args.cbc:
        solvers["CBC"] = pulp.PULP_CBC_CMD(msg=False)
    print(f"{'problem':<22}{'gridmap s':>10}{'objective':>11}   "
          + "".join(f"{'spopt+' + s + ' s':>15}{'objective':>11}" for s in solvers)
          + f"{'matrix s':>10}")
    for metric in ("straight", "network"):
        kw = {"metric": metric, "network": net} if metric == "network" else {}
        build, cost = timed(lambda m=metric: cdist(hxy, cxy) if m == "straight"  # type: ignore[misc]
                            else network_costs(net, hxy, cxy, d))
        for model in ("mclp", "lscp"):
            if model == "mclp":
                t, plan = timed(lambda kw=kw: site_facilities(
                    homes, none, distance=d, k=k, candidates=cand, demand_resolution=15,
                    **kw))
                ours = plan.covered_residents
                theirs = {s: spopt_mclp(cost, w, d, k, v) for s, v in solvers.items()}
            else:
                # set covering needs every household within reach of some candidate: both
                # solvers cover the households that are (along streets, a few are not)
                reach = (cost <= d).any(axis=1)
                t, plan = timed(lambda kw=kw, r=reach: site_facilities(
                    homes[r], none, distance=d, candidates=cand, **kw))
                if not reach.all():
                    print(f"  ({int((~reach).sum())} households beyond {d:g} m of every "
                          f"candidate {'along streets' if metric == 'network' else ''} left "
                          "out of set covering, for both)")
                cost = cost[reach]
                ours = len(plan.sites)
                theirs = {s: spopt_lscp(cost, d, v) for s, v in solvers.items()}
            agree = all(round(obj) == ours for _, obj in theirs.values())
            label = f"{metric} {model}" + (f" k={k}" if model == "mclp" else "")
            print(f"{label:<22}{t:>10.2f}{ours:>11,}   "
                  + "".join(f"{ts:>15.2f}{round(obj):>11,}" for ts, obj in theirs.values())
                  + f"{build:>10.2f}   {'agree' if agree else 'DISAGREE'}")
            assert plan.optimal, plan.status
            assert agree, (ours, theirs)


if __name__ == "__main__":
    main()
