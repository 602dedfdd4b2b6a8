"""The suggested partition on generated communities: the grids partition the area exactly,
each grid is one piece, the band is met where it can be, locked grids are left alone, an
infeasible band is explained, bad input is refused."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from bench.community import METRIC, make_community
from gridmap.analysis.partition import check_partition
from gridmap.analysis.suggest import SuggestError, suggest_partition

BAND = (300, 500)


@pytest.fixture(scope="module")
def community() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    return make_community(2_000, seed=3, size=1_100)


def coded(grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    out = grids.copy()
    out["code"] = [f"610199001001{i:03d}" for i in out["label"]]
    return out


def households_per_grid(grids: gpd.GeoDataFrame, households: gpd.GeoDataFrame) -> np.ndarray:
    """Counted independently of the suggestion: points within each grid (edge points once)."""
    tree = shapely.STRtree(grids.to_crs(METRIC).geometry.values)
    pt, grid = tree.query(households.to_crs(METRIC).geometry.values, predicate="intersects")
    first = np.unique(pt, return_index=True)[1]
    return np.bincount(grid[first], minlength=len(grids))


def test_grids_partition_the_community_in_band(community):
    com, hh = community
    s = suggest_partition(com, hh, band=BAND)
    assert check_partition(com, coded(s.grids)).empty
    assert (s.grids["pieces"] == 1).all() and s.report.max_pieces == 1
    assert s.report.feasible and s.report.all_in_band, s.report.lines()
    assert s.grids["households"].between(*BAND).all()
    assert s.grids["households"].sum() == len(hh) == s.report.households
    assert households_per_grid(s.grids, hh).tolist() == s.grids["households"].tolist()
    assert s.grids["residents"].sum() == hh["residents"].sum()
    assert s.grids.crs == com.crs
    assert s.report.min_compactness > 0.2
    dev = (s.grids["households"] - 400).abs().max()
    assert abs(s.report.largest_deviation) == dev


def test_same_seed_same_grids_and_the_global_generator_is_left_alone(community):
    com, hh = community
    np.random.seed(123)
    a = suggest_partition(com, hh, band=BAND, seed=5)
    after = np.random.random()
    np.random.seed(123)
    assert np.random.random() == after
    b = suggest_partition(com, hh, band=BAND, seed=5)
    assert a.grids["households"].tolist() == b.grids["households"].tolist()
    assert a.grids.geometry.geom_equals_exact(b.grids.geometry, 1e-9).all()


def test_locked_grids_are_left_out_and_untouched(community):
    com, hh = community
    boundary = com.to_crs(METRIC).geometry.iat[0]
    x0, y0, x1, y1 = boundary.bounds
    west = boundary.intersection(shapely.box(x0, y0, x0 + (x1 - x0) * 0.3, y1))
    locked = gpd.GeoDataFrame({"code": ["610199001001001"]}, geometry=[west],
                              crs=METRIC).to_crs(com.crs)
    s = suggest_partition(com, hh, band=BAND, locked=locked)
    grids = s.grids.to_crs(METRIC)
    union = shapely.union_all(grids.geometry.values)
    # nothing wider than 10 cm (the 1 cm snapping leaves millimetre seams, as check_partition)
    assert union.intersection(west).buffer(-0.05).is_empty
    assert union.symmetric_difference(boundary.difference(west)).buffer(-0.05).is_empty
    outside_lock = ~shapely.intersects(west, hh.to_crs(METRIC).geometry.values)
    assert s.report.households == int(outside_lock.sum())
    whole = coded(s.grids)
    everything = gpd.GeoDataFrame(
        {"code": [*whole["code"], "610199001001999"]},
        geometry=[*whole.geometry, locked.geometry.iat[0]], crs=com.crs)
    assert check_partition(com, everything).empty
    assert s.report.all_in_band and s.report.max_pieces == 1


def test_a_lock_cutting_the_area_in_two_solves_each_piece(community):
    com, hh = community
    boundary = com.to_crs(METRIC).geometry.iat[0]
    x0, y0, x1, y1 = boundary.bounds
    mid = x0 + (x1 - x0) * 0.45
    strip = boundary.intersection(shapely.box(mid, y0 - 10, mid + 60, y1 + 10))
    locked = gpd.GeoDataFrame(geometry=[strip], crs=METRIC)
    s = suggest_partition(com, hh, band=(150, 300), locked=locked)
    grids = s.grids.to_crs(METRIC)
    assert (grids["pieces"] == 1).all()
    west = grids.geometry.centroid.x < mid
    assert west.any() and (~west).any()
    assert not grids.geometry.intersects(shapely.box(mid + 1, y0, mid + 59, y1)).any()


def test_an_infeasible_band_is_reported_with_the_reason():
    com, hh = make_community(550, seed=4, size=500)
    s = suggest_partition(com, hh, band=BAND)
    assert not s.report.feasible
    assert not s.report.all_in_band
    assert any("550 households" in r and "2 need at least 600" in r for r in s.report.reasons)
    assert s.grids["households"].sum() == 550
    assert check_partition(com, coded(s.grids)).empty


def test_too_few_households_make_one_grid_below_the_band():
    com, hh = make_community(120, seed=5, size=400)
    s = suggest_partition(com, hh, band=BAND)
    assert len(s.grids) == 1 and s.grids["status"].iat[0] == "below"
    assert not s.report.feasible
    assert "fewer than the band's minimum 300" in s.report.reasons[0]
    assert check_partition(com, coded(s.grids)).empty


def test_given_blocks_are_never_cut(community):
    com, hh = community
    boundary = com.to_crs(METRIC).geometry.iat[0]
    x0, y0, x1, y1 = boundary.bounds
    streets = [shapely.box(x, y, x + 120, y + 90) for x in np.arange(x0, x1, 120)
               for y in np.arange(y0, y1, 90)]
    blocks = gpd.GeoDataFrame(geometry=streets, crs=METRIC)
    s = suggest_partition(com, hh, band=BAND, blocks=blocks)
    assert s.report.resolution is None
    grids = s.grids.to_crs(METRIC)
    for block in blocks.geometry.intersection(boundary):
        if block.area < 1:
            continue
        shares = grids.geometry.intersection(block).area.to_numpy()
        assert shares.max() > block.area - 1.0  # wholly inside one grid
    assert check_partition(com, coded(s.grids)).empty


def test_a_selection_of_grids_is_partitioned_as_one_area(community):
    com, hh = community
    boundary = com.to_crs(METRIC).geometry.iat[0]
    x0, y0, x1, y1 = boundary.bounds
    mid = (x0 + x1) / 2
    two = gpd.GeoDataFrame(geometry=[boundary.intersection(shapely.box(x0, y0, mid, y1)),
                                     boundary.intersection(shapely.box(mid, y0, x1, y1))],
                           crs=METRIC)
    s = suggest_partition(two, hh.to_crs(METRIC), band=BAND)
    union = shapely.union_all(s.grids.geometry.values)
    assert union.symmetric_difference(boundary).buffer(-0.05).is_empty
    assert s.report.all_in_band


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"band": (500, 300)}, "minimum (500) is above its maximum (300)"),
    ({"band": (0, 300)}, "positive"),
    ({"resolution": 16}, "resolution must be 0..15"),
])
def test_bad_parameters_are_refused(community, kwargs, message):
    com, hh = community
    with pytest.raises(SuggestError, match=message.replace("(", r"\(").replace(")", r"\)")):
        suggest_partition(com, hh, **{"band": BAND, **kwargs})


def test_bad_frames_are_refused(community):
    com, hh = community
    with pytest.raises(SuggestError, match="no households"):
        suggest_partition(com, hh.iloc[:0], band=BAND)
    with pytest.raises(SuggestError, match="no CRS"):
        suggest_partition(com, hh.set_crs(None, allow_override=True), band=BAND)
    with pytest.raises(SuggestError, match="nothing is left"):
        suggest_partition(com, hh, band=BAND, locked=com)
    with pytest.raises(SuggestError, match="empty"):
        suggest_partition(com.iloc[:0], hh, band=BAND)
    with pytest.raises(SuggestError, match="points"):
        suggest_partition(com, com, band=BAND)
