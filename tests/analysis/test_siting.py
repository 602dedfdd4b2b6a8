"""Siting: the default candidates find the true optimum (checked by brute force) where
candidates from uncovered places only would lose it; along streets differs from straight
line as it should; a cost matrix is taken as given; k above the candidates, and a time
limit, are reported in words that say what happened."""

from __future__ import annotations

import itertools

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist

from gridmap.analysis.coverage import covered_within
from gridmap.analysis.network import WalkNetwork
from gridmap.analysis.siting import candidate_sites, site_facilities

CRS = 32650
X0, Y0 = 400_000.0, 3_500_000.0


def places(spec: list[tuple[float, float, int, int]]) -> gpd.GeoDataFrame:
    """Households from (x, y, how many, residents each), offsets in metres from X0, Y0."""
    xs, ys, res = [], [], []
    for x, y, n, r in spec:
        xs += [X0 + x + i for i in range(n)]
        ys += [Y0 + y] * n
        res += [r] * n
    return gpd.GeoDataFrame({"residents": res}, geometry=gpd.points_from_xy(xs, ys), crs=CRS)


def sites(xy: list[tuple[float, float]], **columns: list) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(columns, geometry=gpd.points_from_xy(
        [X0 + x for x, _ in xy], [Y0 + y for _, y in xy]), crs=CRS)


def xy(frame: gpd.GeoDataFrame) -> np.ndarray:
    return np.column_stack([frame.geometry.x, frame.geometry.y])


def brute_force(homes: gpd.GeoDataFrame, existing: gpd.GeoDataFrame,
                candidates: gpd.GeoDataFrame, k: int, distance: float) -> int:
    """The most residents any k of the candidates reach together with the existing sites."""
    h, e, c = xy(homes), xy(existing), xy(candidates)
    people = homes["residents"].to_numpy()
    best = 0
    for pick in itertools.combinations(range(len(c)), k):
        s = np.vstack([e, c[list(pick)]])
        best = max(best, int(people[covered_within(h[:, 0], h[:, 1], s[:, 0], s[:, 1],
                                                   distance)].sum()))
    return best


def covered_and_not() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """A (5 residents a house) is within 1 km of the kindergarten 900 m north of it; B and C,
    800 m west and east of A, are not, and are 1.6 km apart: one site at A reaches both,
    a site at B or at C only its own. D, 3 km south, is alone."""
    homes = places([(0, 0, 3, 5), (-800, 0, 4, 10), (800, 0, 4, 10), (0, -3000, 2, 10)])
    return homes, sites([(0, 900)], type=["kindergarten"])


@pytest.mark.parametrize("k", [1, 2])
def test_default_candidates_find_the_optimum_that_uncovered_only_loses(k: int) -> None:
    homes, existing = covered_and_not()
    plan = site_facilities(homes, existing, distance=1000, k=k)
    every = candidate_sites(homes)
    assert plan.candidates == len(every) and "where people live" in plan.candidate_source
    truth = brute_force(homes, existing, every, k, 1000)
    assert plan.optimal and plan.covered_residents == truth == 15 + 80 + 20 * (k - 1)
    # the old way: candidates only where people are not yet within reach
    out_of_reach = ~covered_within(*xy(homes).T, *xy(existing).T, 1000)
    restricted = candidate_sites(homes[out_of_reach])
    worse = site_facilities(homes, existing, distance=1000, k=k, candidates=restricted)
    assert worse.covered_residents == brute_force(homes, existing, restricted, k, 1000)
    assert worse.covered_residents < truth


def test_k_above_the_candidates_says_so_without_blaming_capacity() -> None:
    homes, existing = covered_and_not()
    with pytest.raises(ValueError, match=r"k=9 new sites asked for, but there are only 4 "
                                         r"candidate sites") as caught:
        site_facilities(homes, existing, distance=1000, k=9)
    assert "capacity" not in str(caught.value)


def test_a_time_limit_reports_the_best_found_with_its_gap() -> None:
    rng = np.random.default_rng(1)
    n = 6000
    homes = gpd.GeoDataFrame({"residents": rng.integers(1, 6, n)}, geometry=gpd.points_from_xy(
        X0 + rng.uniform(0, 15_000, n), Y0 + rng.uniform(0, 15_000, n)), crs=CRS)
    cand = sites([tuple(p) for p in rng.uniform(0, 15_000, (400, 2))])
    plan = site_facilities(homes, homes.iloc[:0], distance=800, k=30, candidates=cand,
                           time_limit=0.02)
    assert not plan.optimal and len(plan.sites) == 30
    assert plan.status.startswith("time limit hit: the best found, gap ")
    if plan.bound is None:  # stopped before the relaxation gave a bound
        assert "gap unknown" in plan.status
    else:
        assert plan.bound >= plan.covered_residents and "reaches at most" in plan.status
    assert "400 sites given by the caller" in plan.status
    # started from a greedy choice, the best found is a real answer (30 discs of 800 m
    # cover at most 27 % of the area; the greedy one reaches about a third of the people)
    assert plan.covered_residents > 0.25 * homes["residents"].sum()


def two_streets() -> WalkNetwork:
    """Two east-west streets 200 m apart (nodes every 50 m, 1 km long), joined only at
    their east end: a river between them with one bridge."""
    ids, xs, ys, edges = [], [], [], []
    for row, y in enumerate((0.0, 200.0)):
        for i in range(21):
            nid = row * 100 + i
            ids.append(nid)
            xs.append(X0 + 50 * i)
            ys.append(Y0 + y)
            if i:
                edges.append((nid - 1, nid, 50.0))
    edges.append((20, 120, 200.0))
    nodes = gpd.GeoDataFrame({"id": ids}, geometry=gpd.points_from_xy(xs, ys), crs=CRS)
    return WalkNetwork.from_frames(nodes, pd.DataFrame(edges, columns=["u", "v", "length"]))


def test_along_streets_differs_from_straight_line_as_it_should() -> None:
    net = two_streets()
    homes = places([(0, 0, 10, 1), (0, 200, 10, 2)])  # south bank 10, north bank 20
    cand = sites([(50, 0), (50, 90), (50, 200)])      # south, mid-river (nearer south), north
    none = homes.iloc[:0]
    line = site_facilities(homes, none, distance=300, k=1, candidates=cand)
    street = site_facilities(homes, none, distance=300, k=1, candidates=cand,
                             metric="network", network=net)
    # in a straight line one site reaches both banks; along streets nothing
    # crosses the river within 300 m, so the best one site reaches the north bank
    assert line.covered_residents == 30
    assert street.covered_residents == 20 and xy(street.sites).tolist() == [[X0 + 50, Y0 + 200]]
    assert street.metric == "network" and street.optimal
    # the fewest sites for everyone: one in a straight line, one per bank along streets
    assert len(site_facilities(homes, none, distance=300, candidates=cand).sites) == 1
    assert len(site_facilities(homes, none, distance=300, candidates=cand,
                               metric="network", network=net).sites) == 2


def test_a_cost_matrix_is_taken_as_given() -> None:
    homes, existing = covered_and_not()
    cand = candidate_sites(homes)
    metres = cdist(xy(homes), np.vstack([xy(existing), xy(cand)]))
    same = site_facilities(homes, existing, distance=1000, k=1, candidates=cand,
                           cost_matrix=metres)
    line = site_facilities(homes, existing, distance=1000, k=1, candidates=cand)
    assert same.covered_residents == line.covered_residents == 95
    assert xy(same.sites).round(3).tolist() == xy(line.sites).round(3).tolist()
    assert "sites given by the caller" in same.status
    assert "distinct household locations" in same.status
    # minutes instead of metres, and B cut off from the candidate at A (NaN: unreachable)
    minutes = metres / 80
    at_a = 1 + int(np.argmin(cdist(xy(cand), [[X0, Y0]])))
    minutes[3:7, at_a] = np.nan
    cut = site_facilities(homes, existing, distance=12.5, k=1, candidates=cand,
                          cost_matrix=minutes)
    assert cut.covered_residents == 15 + 40
    with pytest.raises(ValueError, match=r"the cost matrix is \(13, 2\)"):
        site_facilities(homes, existing, distance=1000, k=1, candidates=cand,
                        cost_matrix=metres[:, :2])


def test_status_says_what_was_proved() -> None:
    homes, existing = covered_and_not()
    plan = site_facilities(homes, existing, distance=1000, k=1)
    assert plan.status == (
        "optimal over the candidate set (4 centres of the H3 resolution-9 cells where "
        "people live; demand: 3 H3 resolution-10 cells)")
    assert plan.gap is None and plan.bound is None
    cover = site_facilities(homes, existing, distance=1000)
    assert cover.status.startswith("optimal over the candidate set (4 centres")
    assert "distinct household locations" in cover.status and cover.covered_residents == 115


def test_a_solve_without_a_solution_says_why_in_catalogue_words() -> None:
    """An unbounded program (nothing keeps the one column down): the error names HiGHS'
    status in gridmap's words (which the catalogue translates), not HiGHS' own text."""
    import scipy.sparse as sp

    from gridmap.analysis.siting import SOLVER_STATUS, Program, solve

    program = Program("mclp", 1, cost=np.array([1.0]), lower=np.array([0.0]),
                      upper=np.array([np.inf]), integer=np.array([False]),
                      a=sp.csc_matrix((0, 1)), row_lower=np.zeros(0), row_upper=np.zeros(0),
                      maximize=True)
    with pytest.raises(ValueError) as caught:
        solve(program)
    said = str(caught.value)
    assert said in {f"the solver stopped without a solution ({s})"
                    for s in SOLVER_STATUS.values()}, said
    assert "unbounded" in said
    import highspy  # every status this HiGHS can report has gridmap's words

    assert set(SOLVER_STATUS) == {s for s in dir(highspy.HighsModelStatus) if s.startswith("k")}
