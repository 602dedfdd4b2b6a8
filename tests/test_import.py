"""``gridmap import``: every format, CRS handling, idempotence, versions, and bad input that
must leave the database exactly as it was."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from gridmap.demodata import DEMO_DIR, DEMO_FILES
from gridmap.domain import chinacrs
from tests.conftest import loaded_database
from tests.helpers import fingerprint, import_layer, run_cli

BOUNDARIES = ("counties", "townships", "communities", "grids")


@pytest.fixture(scope="module")
def district_db(server_url: str, template_db: str) -> Iterator[str]:
    """A database holding the demo district's boundaries and workers (module scope)."""
    yield from loaded_database(server_url, template_db, (*BOUNDARIES, "workers"))


@pytest.fixture(scope="module")
def households() -> gpd.GeoDataFrame:
    return gpd.read_parquet(DEMO_DIR / DEMO_FILES["households"]).iloc[:500].copy()


def scalar(url: str, sql: str) -> object:
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        value = conn.execute(text(sql)).scalar()
    engine.dispose()
    return value


# ---------------------------------------------------------------------------------- formats
@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "shp", "zip", "parquet", "csv"])
def test_every_format_loads_and_reimport_does_not_duplicate(
        fresh_db: str, households: gpd.GeoDataFrame, tmp_path: Path, fmt: str) -> None:
    frame = households.rename(columns={"left_behind_child": "lbc"})  # shapefile: ≤10 chars
    path = tmp_path / f"hh.{fmt}"
    if fmt == "geojson":
        frame.to_file(path, driver="GeoJSON")
    elif fmt == "gpkg":
        frame.to_file(path, driver="GPKG", layer="hh")
    elif fmt in ("shp", "zip"):
        shp = tmp_path / "hh.shp"
        frame.to_file(shp, driver="ESRI Shapefile", encoding="utf-8")
        if fmt == "zip":
            with zipfile.ZipFile(path, "w") as zf:
                for part in tmp_path.glob("hh.*"):
                    if part.suffix != ".zip":
                        zf.write(part, part.name)
        else:
            path = shp
    elif fmt == "parquet":
        frame.to_parquet(path)
    else:
        out = pd.DataFrame(frame.drop(columns="geometry"))
        out["lng"], out["lat"] = frame.geometry.x, frame.geometry.y
        out.to_csv(path, index=False)
    args = ["import", "households", str(path), "--map", "lbc=left_behind_child"]
    if fmt in ("shp", "zip"):  # the format cuts names to 10 characters
        args += ["--map", "elderly_al=elderly_alone"]
    if fmt == "csv":
        args += ["--crs", "EPSG:4326"]
    for layer in BOUNDARIES:
        assert import_layer(fresh_db, layer).exit_code == 0
    first = run_cli(fresh_db, *args)
    assert first.exit_code == 0, first.output
    assert "500 inserted" in first.output
    assert "columns not imported" not in first.output
    second = run_cli(fresh_db, *args)
    assert second.exit_code == 0, second.output
    assert "0 inserted, 0 updated, 500 unchanged" in second.output
    assert scalar(fresh_db, "SELECT count(*) FROM household") == 500
    got = scalar(fresh_db, "SELECT address || ':' || residents FROM household WHERE id = "
                 f"'{households['id'].iat[7]}'")
    assert got == f"{households['address'].iat[7]}:{households['residents'].iat[7]}"
    flags = scalar(fresh_db, "SELECT sum(elderly_alone::int) + sum(disabled::int) * 1000 "
                   "FROM household")
    assert flags == households["elderly_alone"].sum() + households["disabled"].sum() * 1000


def test_projected_crs_is_reprojected(district_db: str, households: gpd.GeoDataFrame,
                                      tmp_path: Path) -> None:
    path = tmp_path / "hh_utm.gpkg"
    households.iloc[:20].to_crs(32649).to_file(path)
    result = run_cli(district_db, "import", "households", str(path))
    assert result.exit_code == 0, result.output
    hid = households["id"].iat[3]
    x = scalar(district_db, f"SELECT ST_X(geom) FROM household WHERE id = '{hid}'")
    assert x == pytest.approx(households.geometry.iat[3].x, abs=1e-7)


@pytest.mark.parametrize("system", ["gcj02", "bd09"])
def test_chinese_web_map_coordinates_are_converted(district_db: str, households: gpd.GeoDataFrame,
                                                   tmp_path: Path, system: str) -> None:
    frame = households.iloc[20:30].copy()
    lon, lat = frame.geometry.x.to_numpy(), frame.geometry.y.to_numpy()
    shifted = (chinacrs.wgs84_to_gcj02 if system == "gcj02" else chinacrs.wgs84_to_bd09)(lon, lat)
    out = pd.DataFrame(frame.drop(columns="geometry"))
    out["lon"], out["lat"] = shifted
    path = tmp_path / "hh.csv"
    out.to_csv(path, index=False)
    result = run_cli(district_db, "import", "households", str(path), "--crs", system)
    assert result.exit_code == 0, result.output
    x, y = map(float, str(scalar(
        district_db, f"SELECT ST_X(geom) || ' ' || ST_Y(geom) FROM household "
        f"WHERE id = '{frame['id'].iat[0]}'")).split())
    assert (x, y) == pytest.approx((lon[0], lat[0]), abs=1e-8)


# ----------------------------------------------------------------------------- grid versions
def test_redraw_publishes_a_new_version_and_keeps_history(fresh_db: str, tmp_path: Path) -> None:
    for layer in BOUNDARIES:
        assert import_layer(fresh_db, layer).exit_code == 0
    grids = gpd.read_file(DEMO_DIR / DEMO_FILES["grids"])
    community = grids["code"].str[:12].value_counts().index[0]
    mine = grids[(grids["code"].str[:12] == community) & (grids["kind"] == "comprehensive")]
    a, b = mine.index[:2]
    if not shapely.touches(mine.geometry[a], mine.geometry[b]):
        b = next(i for i in mine.index[1:] if shapely.touches(mine.geometry[a], mine.geometry[i]))
    # merge grid b into grid a: b's code is retired
    merged = grids.drop(index=b)
    merged.loc[a, "geometry"] = shapely.MultiPolygon(shapely.get_parts(
        shapely.coverage_union_all([mine.geometry[a], mine.geometry[b]])))
    merged.loc[merged["parent_grid_code"] == grids.loc[b, "code"], "parent_grid_code"] = \
        grids.loc[a, "code"]
    path = tmp_path / "grids_v2.geojson"
    merged.to_file(path)
    # without --replace, grid b (left out of the file) would stay and overlap the merged a
    before = fingerprint(fresh_db)
    kept = import_layer(fresh_db, "grids", path)
    assert kept.exit_code == 2 and "overlap" in kept.output and "--replace" in kept.output
    assert fingerprint(fresh_db) == before
    result = import_layer(fresh_db, "grids", path, "--replace")
    assert result.exit_code == 0, result.output
    assert f"retired: {grids.loc[b, 'code']}" in result.output
    assert "1 draft(s) published: 1 community version(s)" in result.output
    assert scalar(fresh_db, f"SELECT max(version) FROM grid_version WHERE community_code = "
                  f"'{community}'") == 2
    assert scalar(fresh_db, f"SELECT count(*) FROM grid_version WHERE community_code = "
                  f"'{community}' AND valid_to IS NULL") == 1
    old = grids.loc[b, "code"]
    assert scalar(fresh_db, f"SELECT count(*) FROM grid WHERE code = '{old}'") == 0
    assert scalar(fresh_db, f"SELECT count(*) FROM grid_history WHERE code = '{old}'") == 1
    # the grid a point was in on the first version's dates is still answerable
    pt = mine.geometry[b].representative_point()
    assert scalar(fresh_db, (
        "SELECT h.code FROM grid_history h JOIN grid_version v ON v.id = h.version_id "
        f"WHERE v.community_code = '{community}' AND v.version = 1 AND h.kind = 'comprehensive' "
        f"AND ST_Intersects(h.geom, ST_SetSRID(ST_Point({pt.x}, {pt.y}), 4326))")) == old
    # the retired code cannot come back
    before = fingerprint(fresh_db)
    result = import_layer(fresh_db, "grids")
    assert result.exit_code != 0
    assert "retired" in result.output and old in result.output
    assert fingerprint(fresh_db) == before


# -------------------------------------------------------------------------------- bad input
def _bad_polygon_file(tmp_path: Path, geometry: dict[str, object] | None) -> Path:
    grids = json.loads((DEMO_DIR / DEMO_FILES["grids"]).read_text())
    grids["features"][3]["geometry"] = geometry
    path = tmp_path / "bad_grids.geojson"
    path.write_text(json.dumps(grids))
    return path


def _bowtie() -> dict[str, object]:
    return {"type": "Polygon", "coordinates": [[[109.0, 34.2], [109.01, 34.21], [109.01, 34.2],
                                                [109.0, 34.21], [109.0, 34.2]]]}


def _csv(tmp_path: Path, households: gpd.GeoDataFrame, *, x: list[float] | None = None,
         y: list[float] | None = None, drop: str | None = None) -> Path:
    out = pd.DataFrame(households.iloc[:50].drop(columns="geometry"))
    out["lon"] = x if x is not None else households.geometry.x.iloc[:50].to_numpy()
    out["lat"] = y if y is not None else households.geometry.y.iloc[:50].to_numpy()
    if drop:
        out = out.drop(columns=drop)
    path = tmp_path / "hh.csv"
    out.to_csv(path, index=False)
    return path


def _case(name: str, tmp_path: Path, households: gpd.GeoDataFrame) -> tuple[list[str], str]:
    """(CLI arguments, a phrase the message must contain) for each bad input."""
    hh = households
    if name == "self_intersecting":
        return ["grids", str(_bad_polygon_file(tmp_path, _bowtie()))], "cannot be repaired"
    if name == "empty_geometry":
        path = _bad_polygon_file(tmp_path, {"type": "Polygon", "coordinates": []})
        return ["grids", str(path)], "empty"
    if name == "no_crs":
        return ["households", str(_csv(tmp_path, hh))], "no CRS"
    if name == "lying_prj":
        path = tmp_path / "lying.gpkg"
        utm = hh.iloc[:30].to_crs(32649)
        utm.set_crs(4326, allow_override=True).to_file(path)
        return ["households", str(path)], "look like projected"
    if name == "swapped_lonlat":
        path = _csv(tmp_path, hh, x=list(hh.geometry.y.iloc[:50]), y=list(hh.geometry.x.iloc[:50]))
        return ["households", str(path), "--crs", "EPSG:4326"], "(latitude, longitude)"
    if name == "us_feet_mixed_with_lonlat":
        feet = hh.iloc[:40].copy()
        feet["geometry"] = gpd.points_from_xy(
            [980_000.0 + 10 * i for i in range(40)], [190_000.0 + 10 * i for i in range(40)])
        feet.loc[feet.index[:5], "geometry"] = hh.geometry.iloc[:5].to_numpy()  # lon/lat
        path = tmp_path / "ny_feet.gpkg"
        feet.set_crs(2263, allow_override=True).to_file(path)
        return ["households", str(path)], "outside the area"
    if name == "missing_column":
        return ["households", str(_csv(tmp_path, hh, drop="residents")), "--crs", "4326"], \
            "missing required column"
    if name == "misnamed_column":
        path = tmp_path / "hh.gpkg"
        hh.iloc[:10].rename(columns={"address": "addres"}).to_file(path)
        return ["households", str(path)], "--map addres=address"
    if name == "unknown_community":
        grids = json.loads((DEMO_DIR / DEMO_FILES["grids"]).read_text())
        grids["features"][5]["properties"]["code"] = "610199009901001"
        path = tmp_path / "grids.geojson"
        path.write_text(json.dumps(grids))
        return ["grids", str(path)], "610199009901"
    if name == "truncated":
        text_ = (DEMO_DIR / DEMO_FILES["grids"]).read_text()
        path = tmp_path / "truncated.geojson"
        path.write_text(text_[: len(text_) // 2])
        return ["grids", str(path)], "truncated"
    if name == "truncated_parquet":
        data = (DEMO_DIR / DEMO_FILES["households"]).read_bytes()
        path = tmp_path / "truncated.parquet"
        path.write_bytes(data[: len(data) // 2])
        return ["households", str(path)], "truncated"
    if name == "bad_values":
        path = _csv(tmp_path, hh)
        frame = pd.read_csv(path, dtype=str)
        frame.loc[3, "residents"] = "many"
        frame.to_csv(path, index=False)
        return ["households", str(path), "--crs", "EPSG:4326"], "whole number"
    raise AssertionError(name)


BAD = ["self_intersecting", "empty_geometry", "no_crs", "lying_prj", "swapped_lonlat",
       "us_feet_mixed_with_lonlat", "missing_column", "misnamed_column", "unknown_community",
       "truncated", "truncated_parquet", "bad_values"]


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_refused_and_changes_nothing(
        district_db: str, households: gpd.GeoDataFrame, tmp_path: Path, case: str) -> None:
    args, phrase = _case(case, tmp_path, households)
    before = fingerprint(district_db)
    result = run_cli(district_db, "import", *args)
    assert result.exit_code != 0, result.output
    assert phrase in result.output, result.output
    assert fingerprint(district_db) == before


def test_a_later_bad_row_rolls_back_the_whole_file(district_db: str, households: gpd.GeoDataFrame,
                                                   tmp_path: Path) -> None:
    """The database refuses row 400 (a worker of a grid that does not exist): rows 1..399 of
    the same file must not stay behind."""
    workers = pd.read_csv(DEMO_DIR / DEMO_FILES["workers"], dtype=str, keep_default_na=False)
    workers["id"] = "N" + workers["id"]
    workers.loc[400, "grid_code"] = "610199001001999"
    path = tmp_path / "workers.csv"
    workers.to_csv(path, index=False)
    before = fingerprint(district_db)
    result = run_cli(district_db, "import", "workers", str(path))
    assert result.exit_code != 0
    assert "610199001001999" in result.output
    assert fingerprint(district_db) == before


def test_repairable_polygon_is_repaired_and_reported(fresh_db: str, tmp_path: Path) -> None:
    for layer in ("counties", "townships"):
        assert import_layer(fresh_db, layer).exit_code == 0
    communities = json.loads((DEMO_DIR / DEMO_FILES["communities"]).read_text())
    ring = communities["features"][0]["geometry"]["coordinates"][0][0]
    ring.insert(2, ring[1])  # a repeated vertex is fine; add a zero-width spike instead
    ring.insert(2, [ring[1][0] + 1e-9, ring[1][1]])
    ring.insert(3, ring[1])
    path = tmp_path / "communities.geojson"
    path.write_text(json.dumps(communities))
    result = run_cli(fresh_db, "import", "communities", str(path))
    assert result.exit_code == 0, result.output
    assert "repaired" in result.output
    assert scalar(fresh_db, "SELECT bool_and(ST_IsValid(geom)) FROM division") is True


def test_a_refused_bulk_load_leaves_table_and_indexes_as_they_were(
        fresh_db: str, tmp_path: Path) -> None:
    """The fast path for a large load into an empty table drops and rebuilds indexes; when
    the database refuses a row at the end, all of that is rolled back."""
    frame = gpd.read_parquet(DEMO_DIR / DEMO_FILES["households"])
    frame["residents"] = frame["residents"].astype("int64")
    frame.loc[frame.index[-1], "residents"] = 40_000  # beyond the column's smallint range
    path = tmp_path / "hh.parquet"
    frame.to_parquet(path)
    indexes = "SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes " \
              "WHERE tablename = 'household'"
    before_idx = scalar(fresh_db, indexes)
    before = fingerprint(fresh_db)
    result = run_cli(fresh_db, "import", "households", str(path))
    assert result.exit_code != 0
    assert "refused" in result.output and "out of range" in result.output
    assert fingerprint(fresh_db) == before
    assert scalar(fresh_db, indexes) == before_idx
    assert "household_geom_idx" in str(before_idx) and "household_pkey" in str(before_idx)


def test_a_bulk_load_that_does_not_defer_builds_the_search_index_too(fresh_db: str) -> None:
    """Only a caller that builds the deferred indexes afterwards (``gridmap import``) may
    defer them; any other bulk load (``load-demo``, library use) commits them all."""
    from gridmap.io.read import read_layer
    from gridmap.store.load import load_layer

    frame = read_layer(DEMO_DIR / DEMO_FILES["households"], "households").frame
    engine = create_engine(fresh_db, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            loaded = load_layer(conn, "households", frame)
    finally:
        engine.dispose()
    assert loaded.phases and not loaded.deferred  # the bulk path, nothing left over
    assert scalar(fresh_db, "SELECT count(*) FROM pg_indexes WHERE indexname = "
                            "'household_address_trgm_idx'") == 1


def test_large_load_into_an_empty_table_keeps_its_indexes(fresh_db: str) -> None:
    result = run_cli(fresh_db, "import", "households",
                     str(DEMO_DIR / DEMO_FILES["households"]))
    assert result.exit_code == 0, result.output
    assert scalar(fresh_db, "SELECT count(*) FROM household") > 100_000
    names = str(scalar(fresh_db, "SELECT string_agg(indexname, ',' ORDER BY indexname) "
                             "FROM pg_indexes WHERE tablename = 'household'")).split(",")
    assert names == ["household_address_trgm_idx", "household_geom_idx", "household_grid_idx",
                     "household_pkey"]
    again = run_cli(fresh_db, "import", "households", str(DEMO_DIR / DEMO_FILES["households"]))
    assert "0 inserted, 0 updated" in again.output
