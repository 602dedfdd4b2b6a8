from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from tests.helpers import import_layer, run_cli


@pytest.mark.parametrize(("layer", "suffix"), [
    ("grids", "gpkg"), ("communities", "geojson"), ("households", "parquet"),
    ("facilities", "csv"), ("workers", "csv"), ("incidents", "geojson")])
def test_export_writes_what_the_database_holds(demo_db: str, tmp_path: Path, layer: str,
                                               suffix: str) -> None:
    path = tmp_path / f"{layer}.{suffix}"
    result = run_cli(demo_db, "export", layer, str(path))
    assert result.exit_code == 0, result.output
    n = int(result.output.split()[1])
    if suffix == "parquet":
        frame = gpd.read_parquet(path)
    elif suffix == "csv":
        frame = pd.read_csv(path)
    else:
        frame = gpd.read_file(path)
    assert len(frame) == n > 0
    if isinstance(frame, gpd.GeoDataFrame):
        assert frame.crs.to_epsg() == 4326 and frame.is_valid.all()


def test_export_round_trips_through_import(demo_db: str, fresh_db: str, tmp_path: Path) -> None:
    for layer in ("counties", "townships", "communities", "grids"):
        path = tmp_path / f"{layer}.gpkg"
        assert run_cli(demo_db, "export", layer, str(path)).exit_code == 0
        result = import_layer(fresh_db, layer, path)
        assert result.exit_code == 0, result.output


def test_export_to_an_unknown_format_is_refused(demo_db: str, tmp_path: Path) -> None:
    result = run_cli(demo_db, "export", "grids", str(tmp_path / "grids.xlsx"))
    assert result.exit_code != 0
    assert ".gpkg" in result.output
