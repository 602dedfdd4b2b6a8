"""`gridmap assign` and `gridmap check` against a real database."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import shapely
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from gridmap.demodata import DEMO_DIR, DEMO_FILES
from tests.helpers import import_layer, run_cli
from tests.test_import import scalar


def _load(url: str, *layers: str) -> None:
    for layer in layers:
        result = import_layer(url, layer)
        assert result.exit_code == 0, result.output


def test_assign_both_engines_agree(fresh_db: str) -> None:
    _load(fresh_db, "counties", "townships", "communities", "grids", "households",
          "facilities")
    first = run_cli(fresh_db, "assign", "households", "facilities", "--engine", "postgis")
    assert first.exit_code == 0, first.output
    assert "0 outside every grid" in first.output
    snapshot = scalar(fresh_db, "SELECT md5(string_agg(id || grid_code, ',' ORDER BY id)) "
                      "FROM household")
    second = run_cli(fresh_db, "assign", "households", "facilities")
    assert second.exit_code == 0, second.output
    assert "0 changed" in second.output
    assert scalar(fresh_db, "SELECT md5(string_agg(id || grid_code, ',' ORDER BY id)) "
                  "FROM household") == snapshot


def test_assign_refuses_unknown_layers(fresh_db: str) -> None:
    result = run_cli(fresh_db, "assign", "parcels")
    assert result.exit_code != 0 and "households" in result.output


def test_check_finds_planted_defects_and_exits_1(fresh_db: str, tmp_path: Path) -> None:
    _load(fresh_db, "counties", "townships", "communities", "grids")
    clean = run_cli(fresh_db, "check")
    assert clean.exit_code == 0, clean.output
    assert "0 partition defect" in clean.output
    grids = gpd.read_file(DEMO_DIR / DEMO_FILES["grids"])
    com = "610199001001"
    mine = grids[(grids["code"].str[:12] == com) & (grids["kind"] == "comprehensive")]
    victim = mine.index[0]
    shrunk = gpd.GeoSeries([grids.geometry[victim]], crs=4326).to_crs(32649).buffer(-30)
    grids.loc[victim, "geometry"] = shapely.MultiPolygon(shapely.get_parts(
        shrunk.to_crs(4326).iat[0]))  # opens a 30 m gap around it
    path = tmp_path / "grids.geojson"
    grids.to_file(path)
    refused = import_layer(fresh_db, "grids", path)  # import refuses a gap …
    assert refused.exit_code == 2 and "gap" in refused.output
    engine = create_engine(fresh_db, poolclass=NullPool)
    with engine.begin() as conn:  # … but another tool writing to the store may leave one
        conn.execute(text("UPDATE grid SET geom = ST_GeomFromText(:wkt, 4326) WHERE code = "
                          ":code"), {"wkt": grids.geometry[victim].wkt,
                                     "code": grids.loc[victim, "code"]})
    engine.dispose()
    bad = run_cli(fresh_db, "check", "--community", com)
    assert bad.exit_code == 1
    assert "gap" in bad.output and com in bad.output
    out = tmp_path / "defects.geojson"
    geo = run_cli(fresh_db, "check", "--community", com, "--format", "geojson",
                  "--output", str(out))
    assert geo.exit_code == 1
    features = json.loads(out.read_text())["features"]
    assert {f["properties"]["defect"] for f in features} == {"gap"}
    assert features[0]["properties"]["area_m2"] > 1000


def test_check_unknown_community(fresh_db: str) -> None:
    result = run_cli(fresh_db, "check", "--community", "610199009999")
    assert result.exit_code == 2 and "no village/community" in result.output


def test_assigned_incidents_take_their_grid_s_community_and_township(fresh_db: str) -> None:
    _load(fresh_db, "counties", "townships", "communities", "grids", "incidents")
    assert run_cli(fresh_db, "assign", "incidents").exit_code == 0
    assert scalar(fresh_db, "SELECT count(*) FROM incident WHERE grid_code IS NOT NULL AND "
                  "(community_code <> left(grid_code, 12) OR township_code <> "
                  "left(grid_code, 9) || '000' OR township_code IS NULL)") == 0
    assert scalar(fresh_db, "SELECT count(*) FROM incident WHERE township_code IS NULL") == 0
