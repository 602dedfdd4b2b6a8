"""The walking network's connected pieces, and the warning when they limit coverage."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gridmap.analysis.coverage import CoverageWarning, household_coverage
from gridmap.analysis.network import WalkNetwork, network_report

CRS = 32650
X0, Y0 = 400_000.0, 3_500_000.0


def lattice(nx_: int, ny_: int, *, x0: float, y0: float, step: float, first_id: int
            ) -> tuple[list[tuple[int, float, float]], list[tuple[int, int, float]]]:
    nodes, edges = [], []
    for j in range(ny_):
        for i in range(nx_):
            nid = first_id + j * nx_ + i
            nodes.append((nid, x0 + i * step, y0 + j * step))
            if i:
                edges.append((nid - 1, nid, step))
            if j:
                edges.append((nid - nx_, nid, step))
    return nodes, edges


def two_pieces() -> WalkNetwork:
    """A 20x20 street lattice (100 m blocks) and, 150 m east of it, a separate 3x3 one: an
    extract clipped so that a corner of town lost its connecting street."""
    big_nodes, big_edges = lattice(20, 20, x0=X0, y0=Y0, step=100, first_id=0)
    small_nodes, small_edges = lattice(3, 3, x0=X0 + 2050, y0=Y0, step=100, first_id=1000)
    nodes = big_nodes + small_nodes
    frame = gpd.GeoDataFrame({"id": [n[0] for n in nodes]},
                             geometry=gpd.points_from_xy([n[1] for n in nodes],
                                                         [n[2] for n in nodes]), crs=CRS)
    edges = pd.DataFrame(big_edges + small_edges, columns=["u", "v", "length"])
    return WalkNetwork.from_frames(frame, edges)


def households() -> gpd.GeoDataFrame:
    rng = np.random.default_rng(3)
    xy = rng.uniform([X0, Y0], [X0 + 2250, Y0 + 1900], size=(2000, 2))
    return gpd.GeoDataFrame({"residents": np.full(len(xy), 2)},
                            geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]),
                             crs=CRS)


def test_pieces_and_who_hangs_on_them() -> None:
    net = two_pieces()
    hh = households()
    school = gpd.GeoDataFrame({"type": ["primary_school"]},
                              geometry=[shapely.Point(X0 + 2150, Y0 + 100)], crs=CRS)
    report = network_report(net, hh, school, crs=net_crs())
    assert report.n_pieces == 2
    assert report.table["nodes"].tolist() == [400, 9]
    assert report.table["facilities"].tolist() == [0, 1]
    # each household joins its nearest node: the small piece's are those nearest one of its
    from scipy.spatial import cKDTree

    node_xy = np.array([(x, y) for x in range(20) for y in range(20)] + [
        (20.5 + i, j) for i in range(3) for j in range(3)]) * 100 + [X0, Y0]
    _, nearest = cKDTree(node_xy).query(np.column_stack([hh.geometry.x, hh.geometry.y]))
    assert report.table["households"].tolist() == [int((nearest < 400).sum()),
                                                   int((nearest >= 400).sum())]
    assert report.table["residents"].iloc[1] == 2 * int((nearest >= 400).sum())
    assert report.share_off_main("facilities") == 1.0
    assert "2 connected piece(s)" in str(report)


def net_crs():  # the metric CRS the tests measure in
    from pyproj import CRS as ProjCRS

    return ProjCRS.from_epsg(CRS)


def test_coverage_limited_by_disconnection_warns() -> None:
    # regression: a school attached to a small piece reached a sliver of the residents along
    # streets and many more straight-line, with no word of why
    net = two_pieces()
    hh = households()
    school = gpd.GeoDataFrame({"type": ["primary_school"]},
                              geometry=[shapely.Point(X0 + 2150, Y0 + 100)], crs=CRS)
    thresholds = {"primary_school": [500.0]}
    with pytest.warns(CoverageWarning, match="disconnection") as caught:
        cov = household_coverage(hh, school, thresholds=thresholds, metric="network",
                                 network=net)
    assert "2 connected pieces" in str(caught[0].message)
    straight = household_coverage(hh, school, thresholds=thresholds)
    assert cov["primary_school@500"].sum() < straight["primary_school@500"].sum()
    # the same school on the large piece: no warning
    on_main = school.set_geometry([shapely.Point(X0 + 1000, Y0 + 1000)], crs=CRS)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CoverageWarning)
        household_coverage(hh, on_main, thresholds=thresholds, metric="network", network=net)
