from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gridmap.analysis.aggregate import aggregate_by_division, aggregate_h3
from gridmap.analysis.assign import assign_to_grids
from gridmap.analysis.balance import grid_balance
from gridmap.analysis.codes import assign_grid_codes
from gridmap.demodata import generate
from gridmap.domain.standards import GridStandard

COM = "610199001001"


@pytest.fixture(scope="module")
def demo() -> dict:
    layers = generate().layers
    layers["assigned"] = assign_to_grids(layers["households"], layers["grids"])
    return layers


def test_balance_flags_grids_outside_their_band_with_the_amount(demo: dict) -> None:
    grids = demo["grids"][demo["grids"]["kind"] == "comprehensive"]
    strict = GridStandard(urban_households=(350, 450), rural_households=(250, 300))
    out = grid_balance(grids, demo["assigned"], communities=demo["communities"],
                       workers=demo["workers"], standard=strict)
    assert out["households"].sum() == (~demo["assigned"]["outside"]).sum() - \
        demo["assigned"]["grid_kind"].eq("exclusive").sum()
    above = out[out["status"] == "above"]
    assert len(above) and (above["excess"] == above["households"] - above["band_high"]).all()
    below = out[out["status"] == "below"]
    assert len(below) and (below["excess"] == below["households"] - below["band_low"]).all()
    within = out[out["status"] == "within"]
    assert within["households"].between(within["band_low"], within["band_high"]).all()
    assert (out["workers"] >= 1).all()
    assert out["compactness"].between(0.1, 1).all()
    default = grid_balance(grids, demo["assigned"], communities=demo["communities"])
    assert (default["status"] == "within").all()


def test_balance_needs_assigned_households(demo: dict) -> None:
    with pytest.raises(ValueError, match="grid_code"):
        grid_balance(demo["grids"], demo["households"])


def test_codes_are_stable_for_reshaped_grids_and_retired_codes_never_return() -> None:
    cells = [shapely.box(x, y, x + 100, y + 100) for y in (100, 0) for x in (0, 100, 200)]
    first = gpd.GeoDataFrame(geometry=cells, crs=32650)
    first["code"] = assign_grid_codes(first, COM)
    assert first["code"].str[12:].tolist() == ["001", "002", "003", "004", "005", "006"]
    # redraw: 001 grows a little, 002+003 merge, 004-006 unchanged
    redrawn = gpd.GeoDataFrame(geometry=[
        shapely.box(0, 100, 110, 200), shapely.box(110, 100, 300, 200),
        *cells[3:]], crs=32650)
    codes = assign_grid_codes(redrawn, COM, previous=first, retired=[COM + "007"])
    assert codes.iloc[0] == COM + "001"  # reshaped, kept
    assert codes.iloc[1] == COM + "008"  # merged grid: next free after the retired 007
    assert codes.iloc[2:].tolist() == first["code"].iloc[3:].tolist()


def test_h3_aggregation_conserves_counts_and_sums(demo: dict) -> None:
    hh = demo["households"]
    cells = aggregate_h3(hh, 8, values=["residents"])
    assert cells["count"].sum() == len(hh)
    assert cells["residents"].sum() == hh["residents"].sum()
    assert cells.geometry.is_valid.all() and cells.crs.to_epsg() == 4326
    with pytest.raises(ValueError, match="resolution"):
        aggregate_h3(hh, 16)
    with pytest.raises(ValueError, match="WGS84"):
        aggregate_h3(hh.to_crs(32649), 8)


@pytest.mark.parametrize("level", ["grid", "community", "township"])
def test_division_aggregation_conserves_population(demo: dict, level: str) -> None:
    shapes = {"grid": demo["grids"], "community": demo["communities"],
              "township": demo["townships"]}[level]
    out = aggregate_by_division(demo["assigned"], level, shapes, values=["residents"])
    assert out["residents"].sum() + 0 == demo["households"]["residents"].sum()
    assert out.attrs["outside"] == 0
    assert len(out) == len(shapes)


def test_demo_households_all_inside_a_grid(demo: dict) -> None:
    assert not demo["assigned"]["outside"].any()
    assert np.all(demo["assigned"]["community_code"].str.len() == 12)
    per = demo["assigned"].groupby("grid_code").size()
    assert isinstance(per, pd.Series) and len(per) >= 280


def test_codes_for_a_frame_that_already_has_some() -> None:
    # regression: a frame with a code column crashed (assignment destination is read-only)
    cells = [shapely.box(x, 0, x + 100, 100) for x in (0, 100, 200)]
    new = gpd.GeoDataFrame({"code": [COM + "001", None, None]}, geometry=cells, crs=32650)
    previous = gpd.GeoDataFrame({"code": [COM + "001", COM + "002"]},
                                geometry=[cells[0], shapely.box(100, 0, 300, 100)], crs=32650)
    codes = assign_grid_codes(new, COM, previous=previous).tolist()
    assert codes == [COM + "001", COM + "003", COM + "004"]  # a split grid is two new grids
    assert new["code"].iloc[0] == COM + "001" and new["code"].iloc[1:].isna().all()  # untouched
