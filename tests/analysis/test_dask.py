"""The assignment, aggregation and coverage functions on a real dask.distributed cluster give
the same answer as the in-memory path."""

from __future__ import annotations

from collections.abc import Iterator

import dask_geopandas
import pandas as pd
import pytest
from distributed import Client, LocalCluster

from gridmap.analysis.aggregate import aggregate_by_division, aggregate_h3
from gridmap.analysis.assign import assign_to_grids, build_grid_index
from gridmap.analysis.coverage import (
    compliance,
    coverage_by,
    household_coverage,
    thresholds_for,
    uncovered,
)
from gridmap.demodata import generate


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def demo() -> dict:
    return generate().layers


def test_assignment_on_a_cluster_equals_in_memory(client: Client, demo: dict) -> None:
    hh = demo["households"]
    index = build_grid_index(demo["grids"])
    local = assign_to_grids(hh, index)
    ddf = dask_geopandas.from_geopandas(hh, npartitions=6)
    remote = assign_to_grids(ddf, index)
    assert isinstance(remote, dask_geopandas.GeoDataFrame)
    got = remote.compute()
    pd.testing.assert_series_equal(got["grid_code"], local["grid_code"])
    pd.testing.assert_series_equal(got["township_code"], local["township_code"])
    assert client.run(lambda: 1)  # the work ran on the cluster's workers


def test_aggregation_on_a_cluster_equals_in_memory(client: Client, demo: dict) -> None:
    hh = demo["households"]
    ddf = dask_geopandas.from_geopandas(hh, npartitions=5)
    local = aggregate_h3(hh, 9, values=["residents"])
    remote = aggregate_h3(ddf, 9, values=["residents"])
    pd.testing.assert_frame_equal(local.drop(columns="geometry").reset_index(drop=True),
                                  remote.drop(columns="geometry").reset_index(drop=True),
                                  check_dtype=False)
    assigned = assign_to_grids(ddf, demo["grids"])
    by_com = aggregate_by_division(assigned, "community", demo["communities"],
                                   values=["residents"])
    local_com = aggregate_by_division(assign_to_grids(hh, demo["grids"]), "community",
                                      demo["communities"], values=["residents"])
    assert by_com["residents"].tolist() == local_com["residents"].tolist()


def test_coverage_on_a_cluster_equals_in_memory(client: Client, demo: dict) -> None:
    hh = assign_to_grids(demo["households"], demo["grids"])
    fac = demo["facilities"]
    thresholds = thresholds_for(["kindergarten", "elderly_daycare"], [300, 500])
    local = household_coverage(hh, fac, thresholds=thresholds)
    ddf = dask_geopandas.from_geopandas(hh, npartitions=4)
    remote = household_coverage(ddf, fac, thresholds=thresholds)
    assert type(remote).__module__.startswith("dask")
    pd.testing.assert_frame_equal(remote.compute(), local)
    # the per-unit shares: counted per partition, summed — the same table
    for level in ("grid", "township", "all"):
        pd.testing.assert_frame_equal(coverage_by(ddf, remote, level=level),
                                      coverage_by(hh, local, level=level), check_dtype=False)
    pd.testing.assert_frame_equal(compliance(ddf, remote), compliance(hh, local),
                                  check_dtype=False)
    out = uncovered(ddf, remote, "kindergarten@300", vulnerable_only=True)
    expected = uncovered(hh, local, "kindergarten@300", vulnerable_only=True)
    assert len(expected) > 0
    pd.testing.assert_frame_equal(out.compute(), expected, check_dtype=False)  # dask: str dtype
