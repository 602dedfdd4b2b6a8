"""The generated province and its county-by-county run on a dask.distributed cluster: the same
per-grid totals and coverage counts as the in-memory path, on a tiny version of the province."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from distributed import Client, LocalCluster
from typer.testing import CliRunner

from gridmap.analysis.assign import assign_to_grids, build_grid_index
from gridmap.analysis.coverage import thresholds_for
from gridmap.cli import app
from gridmap.domain.codes import division_level
from gridmap.province import (
    choose_counties,
    generate_county,
    generate_province,
    province_counties,
    read_layer,
    run_in_memory,
    run_province,
)

THRESHOLDS = thresholds_for(["kindergarten", "primary_school", "health_centre"])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Prefecture 3901 (8 neighbouring counties, borders shared) at 1% of the grids."""
    folder = tmp_path_factory.mktemp("province")
    written = generate_province(folder, full=["3901"], scale=0.01)
    assert [w.county for w in written] == [f"3901{i:02d}" for i in range(1, 9)]
    return folder


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as c:
        yield c


def test_the_layout_follows_the_code_rules() -> None:
    counties = province_counties()
    assert len(counties) == 88
    assert len({c.prefecture for c in counties}) == 11
    assert all(division_level(c.division_code) == "county" for c in counties)
    # the counties tile the province's extent
    total = sum(c.geometry.area for c in counties)
    assert total == pytest.approx(330_000 * 320_000, rel=1e-9)
    data = generate_county(counties[0], scale=0.05)
    codes = data.grids["code"]
    assert codes.str.fullmatch(r"390101\d{9}").all() and codes.is_unique
    assert {division_level(c[:12]) for c in codes} == {"community"}
    # comprehensive grids partition the county; exclusive ones sit inside one
    comp = data.grids[data.grids["kind"] == "comprehensive"]
    assert comp.area.sum() == pytest.approx(counties[0].geometry.area, rel=1e-9)
    excl = data.grids[data.grids["kind"] == "exclusive"]
    hosts = comp.set_index("code").loc[excl["parent_grid_code"], "geometry"].to_numpy()
    assert len(excl) and shapely.within(excl.geometry.to_numpy(), hosts).all()
    # every household lies in a grid, 300-420 to a comprehensive grid
    assigned = assign_to_grids(data.households, build_grid_index(data.grids, max_cells=200_000))
    assert not assigned["outside"].any()
    assert data.households["id"].is_unique
    assert set(data.facilities["type"]) <= set(THRESHOLDS) | {
        "middle_school", "elderly_home", "service_centre", "food_market", "nursery",
        "elderly_daycare", "service_station", "health_station"}


def test_a_county_is_the_same_alone_or_in_the_province(tmp_path: Path) -> None:
    counties = province_counties()
    chosen = choose_counties(counties, full=["3902"], sample=1)
    assert sum(c.prefecture == "3902" for c in chosen) == 8 and len(chosen) == 18
    again = generate_county(counties[9], scale=0.01)
    alone = generate_county(counties[9], scale=0.01)
    pd.testing.assert_frame_equal(again.households, alone.households)
    generate_province(tmp_path, full=["3902"], scale=0.01)
    written = gpd.read_parquet(tmp_path / "grids" / "county=390202" / "0.parquet")
    assert counties[9].code == "390202"
    pd.testing.assert_frame_equal(written, alone.grids)
    with pytest.raises(ValueError, match="no prefecture 3999"):
        choose_counties(counties, full=["3999"])


def test_the_cluster_run_equals_the_in_memory_path(tiny: Path, client: Client) -> None:
    totals, coverage, _ = run_in_memory(tiny, thresholds=THRESHOLDS, index_cells=400_000)
    seen: list[str] = []
    run = run_province(tiny, client, thresholds=THRESHOLDS, index_cells=100_000,
                       on_partition=lambda f: seen.append(f.county))
    pd.testing.assert_frame_equal(run.totals, totals)
    pd.testing.assert_frame_equal(run.coverage, coverage)
    # one partition per county, each counted once, on both workers
    assert sorted(seen) == [f.county for f in run.figures] == [f"3901{i:02d}" for i in
                                                                 range(1, 9)]
    households = read_layer(tiny, "households")
    assert run.households == len(households) == int(totals["households"].sum())
    assert "outside" not in totals.index
    assert len({f.worker for f in run.figures}) == 2
    per_worker = run.per_worker()
    assert per_worker["households"].sum() == len(households)
    assert (per_worker["busy_s"] > 0).all()
    # a county's index took in its neighbours' grids along the border (exact there too)
    grids = read_layer(tiny, "grids")
    first = run.figures[0]
    assert first.grids_indexed > (grids["code"].str[:6] == first.county).sum()
    # coverage counts are shares of the totals
    kg = coverage[coverage["type"] == "kindergarten"].set_index("unit")
    assert (kg["households"] == totals.loc[kg.index, "households"]).all()
    assert ((kg["households_covered"] >= 0) & (kg["households_covered"] <= kg["households"])
            ).all()
    assert 0 < kg["households_covered"].sum() < kg["households"].sum()
    assert np.allclose(kg["residents_share"], kg["residents_covered"] / kg["residents"])


def test_the_cli_says_what_to_fix(tmp_path: Path) -> None:
    runner = CliRunner()
    empty = runner.invoke(app, ["province", "run", str(tmp_path)])
    assert empty.exit_code != 0 and "province generate" in empty.output
    wrong = runner.invoke(app, ["province", "generate", str(tmp_path), "--prefecture", "3999"])
    assert wrong.exit_code != 0 and "no prefecture 3999" in wrong.output
    unknown = runner.invoke(app, ["province", "run", str(tmp_path), "--type", "casino"])
    assert unknown.exit_code != 0 and "unknown facility type" in unknown.output
