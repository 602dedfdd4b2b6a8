"""Reading files as other people make them: every problem reported in one pass, fractional
counts, polygons that reprojection breaks."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gridmap.io.errors import ImportRejected
from gridmap.io.read import read_layer


def _households(tmp_path: Path) -> Path:
    """Households with three kinds of problem: fractional residents (as a population
    estimate gives), an empty address, a missing geometry; 30 of the first kind."""
    n = 40
    residents = [2.5 if i < 30 else 3 for i in range(n)]
    frame = gpd.GeoDataFrame({
        "id": [f"h{i}" for i in range(n)],
        "address": ["" if i == 31 else f"Road {i}" for i in range(n)],
        "residents": residents},
        geometry=[None if i == 35 else shapely.Point(108.9 + i * 1e-4, 34.2)
                  for i in range(n)], crs=4326)
    path = tmp_path / "households.gpkg"
    frame.to_file(path)
    return path


def test_fractional_residents_are_reported_with_every_other_problem(tmp_path: Path) -> None:
    # regression: a fractional population column raised "TypeError: cannot safely cast
    # non-equivalent float64 to int64"; and problems came 20 at a time, one kind per run
    with pytest.raises(ImportRejected) as caught:
        read_layer(_households(tmp_path), "households")
    rejected = caught.value
    kinds = {p.kind for p in rejected.problems}
    assert kinds == {"residents not a whole number ≥ 0", "address empty",
                     "empty or missing geometry"}
    text = str(rejected)
    assert "residents not a whole number ≥ 0: 30 row(s)" in text
    assert "address empty: 1 row(s)" in text
    assert "empty or missing geometry: 1 row(s)" in text
    assert "feature 0 (h0): residents 2.5 is not a whole number" in text
    assert "… and 25 more" in text


def test_whole_numbers_stored_as_floats_are_accepted(tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame({"id": ["a", "b"], "address": ["x", "y"],
                              "residents": [2.0, 3.0]},
                             geometry=[shapely.Point(108.9, 34.2), shapely.Point(108.91, 34.2)],
                             crs=4326)
    path = tmp_path / "h.gpkg"
    frame.to_file(path)
    assert read_layer(path, "households").frame["residents"].tolist() == [2, 3]


def _county_in_feet(tmp_path: Path) -> Path:
    """A county valid in its source CRS (New York State Plane, US feet) with a hole so small
    that its points fall together in WGS84 — the database then refused the row with
    "division_geom_valid" and a hex dump."""
    x0, y0 = 990_000.0, 200_000.0
    outer = [(x0, y0), (x0 + 1000, y0), (x0 + 1000, y0 + 1000), (x0, y0 + 1000)]
    hole = [(x0 + 500, y0 + 500), (x0 + 500 + 1e-9, y0 + 500), (x0 + 500, y0 + 500 + 1e-9)]
    polygon = shapely.Polygon(outer, [hole])
    assert polygon.is_valid
    frame = gpd.GeoDataFrame({"code": ["610199000000"], "name": ["Kings"]},
                             geometry=[polygon], crs=2263)
    path = tmp_path / "county.gpkg"
    frame.to_file(path)
    return path


def test_validity_is_checked_after_reprojection(tmp_path: Path) -> None:
    result = read_layer(_county_in_feet(tmp_path), "counties")
    geom = result.frame.geometry.iat[0]
    assert geom.is_valid and result.frame.crs.to_epsg() == 4326
    assert len(result.repaired) == 1
    note = str(result.repaired[0])
    assert "610199000000" in note and "after reprojection to WGS84" in note
    assert "Too few points" in note


def test_osm_buildings_are_repaired_or_dropped_and_reported() -> None:
    # regression: a clipped extract's zero-area rings became phantom households of one
    # resident, and a self-intersecting footprint measured 0.5 m² instead of its real area
    from gridmap.domain.osm import OsmRules
    from gridmap.io.osm import households_from_buildings

    lon, lat = 24.94, 60.17
    m = 1 / 111_000  # about a metre in latitude
    mx = m / 0.5  # about a metre in longitude at 60°
    square = shapely.box(lon, lat, lon + 10 * mx, lat + 10 * m)  # 100 m²
    bowtie = shapely.Polygon([(lon, lat + 100 * m), (lon + 10 * mx, lat + 110 * m),
                              (lon + 10 * mx, lat + 100 * m), (lon, lat + 110 * m)])
    sliver = shapely.Polygon([(lon, lat + 200 * m), (lon + 10 * mx, lat + 200 * m),
                              (lon + 20 * mx, lat + 200 * m)])  # a zero-area ring
    buildings = gpd.GeoDataFrame({"id": [1, 2, 3], "building": "residential"},
                                 geometry=[square, bowtie, sliver], crs=4326)
    assert bowtie.area < 1e-12 and not bowtie.is_valid and not sliver.is_valid
    households, fixes = households_from_buildings(buildings, OsmRules())
    assert households["id"].tolist() == ["osm-b1", "osm-b2"]  # no phantom household
    square_m2, bowtie_m2 = households["footprint_m2"].tolist()
    assert square_m2 == pytest.approx(100, rel=0.02)
    assert bowtie_m2 == pytest.approx(50, rel=0.02)  # two triangles of 25 m²
    assert {(p.key, p.kind) for p in fixes} == {("osm way 2", "building repaired"),
                                               ("osm way 3", "building dropped (no area)")}
    assert "Self-intersection" in next(str(p) for p in fixes if p.key == "osm way 2")


def test_unknown_facility_type_is_refused_at_import(tmp_path: Path) -> None:
    # regression: 'school' was imported, and coverage then printed 0.000 for every type
    frame = gpd.GeoDataFrame({"id": ["f1", "f2"], "type": ["school", "kindergarten"],
                              "name": ["No. 3 School", "Sunflower"]},
                             geometry=[shapely.Point(108.9, 34.2), shapely.Point(108.91, 34.2)],
                             crs=4326)
    path = tmp_path / "facilities.gpkg"
    frame.to_file(path)
    with pytest.raises(ImportRejected, match=r"feature 0 \(f1\): type 'school' is not one of "
                       r"middle_school, .*primary_school"):
        read_layer(path, "facilities")


def test_every_row_of_a_repeated_key_is_reported(tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame({"id": ["h1", "h2", "h1", "h3", "h2"], "address": "Road",
                              "residents": 2},
                             geometry=[shapely.Point(108.9 + i * 1e-4, 34.2) for i in range(5)],
                             crs=4326)
    path = tmp_path / "households.parquet"
    frame.to_parquet(path)
    with pytest.raises(ImportRejected) as caught:
        read_layer(path, "households")
    assert [(p.row, p.key) for p in caught.value.problems] == [
        (0, "h1"), (1, "h2"), (2, "h1"), (4, "h2")]
    distinct = tmp_path / "distinct.parquet"
    frame.iloc[[0, 1, 3]].to_parquet(distinct)
    assert read_layer(distinct, "households").frame["id"].tolist() == ["h1", "h2", "h3"]


def _frames_for_the_point_reader() -> dict[str, gpd.GeoDataFrame]:
    rng = np.random.default_rng(3)
    n = 500
    base = gpd.GeoDataFrame({"id": [f"h{i}" for i in range(n)], "residents": rng.integers(
        1, 6, n), "address": ["长安路"] * n},
        geometry=gpd.points_from_xy(rng.uniform(108.9, 109.2, n), rng.uniform(34.1, 34.3, n)),
        crs=4326)
    moved = base[["id", "geometry", "residents"]].set_index("id")  # an index, geometry 1st
    return {"plain": base, "index": moved, "cgcs2000": base.set_crs(4490, allow_override=True),
            "utm": base.to_crs(32649), "no crs": base.set_crs(None, allow_override=True),
            "empty": base.iloc[:0]}


@pytest.mark.parametrize("case", [*_frames_for_the_point_reader(), "row groups"])
def test_points_from_geoparquet_read_as_geopandas_reads_them(
        tmp_path: Path, case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Points in little-endian 2D WKB are read from the column's bytes by numpy: the same
    frame as geopandas.read_parquet — columns in their order, index, CRS (declared,
    absent, projected), a column in several chunks."""
    from geopandas.testing import assert_geodataframe_equal

    from gridmap.io.read import _read_point_parquet

    frames = _frames_for_the_point_reader()
    frame = frames.get(case, frames["plain"])
    path = tmp_path / "points.parquet"
    frame.to_parquet(path, row_group_size=128 if case == "row groups" else None)
    theirs = gpd.read_parquet(path)

    def not_geopandas(*args: object, **kwargs: object) -> None:
        raise AssertionError("the points were read by geopandas")

    monkeypatch.setattr(gpd, "read_parquet", not_geopandas)
    ours = _read_point_parquet(path)
    assert_geodataframe_equal(ours, theirs)
    assert ours.crs == theirs.crs and list(ours.columns) == list(theirs.columns)


@pytest.mark.parametrize("odd", ["3d", "empty", "null", "big-endian", "polygon"])
def test_points_the_fast_reader_cannot_take_go_to_geopandas(tmp_path: Path, odd: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from gridmap.io.read import _read_point_parquet

    points = [shapely.Point(109.0, 34.2), shapely.Point(109.1, 34.25)]
    if odd == "3d":
        points[1] = shapely.Point(109.1, 34.25, 400)
    elif odd == "empty":
        points[1] = shapely.Point()
    elif odd == "null":
        points[1] = None
    elif odd == "polygon":
        points[1] = shapely.box(109, 34, 109.1, 34.1)
    frame = gpd.GeoDataFrame({"id": ["a", "b"]}, geometry=points, crs=4326)
    path = tmp_path / "odd.parquet"
    frame.to_parquet(path)
    if odd == "big-endian":
        table = pq.read_table(path)
        wkb = pa.array(shapely.to_wkb(frame.geometry.values, byte_order=0), pa.binary())
        pq.write_table(table.set_column(table.column_names.index("geometry"), "geometry",
                                        wkb), path)
    read = _read_point_parquet(path)
    expected = gpd.read_parquet(path)
    assert list(shapely.to_wkt(read.geometry.values)) == \
        list(shapely.to_wkt(expected.geometry.values))
    assert read.crs == expected.crs
