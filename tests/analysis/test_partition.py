"""`check_partition` finds every planted defect, and none in the demo district."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from gridmap.analysis.partition import check_partition
from gridmap.demodata import DEMO_DIR, DEMO_FILES

C1, C2 = "610199001001", "610199001002"


def planted() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Two 1 km communities side by side, metres (UTM 49N), with one of each defect."""
    x0, y0 = 500_000.0, 3_780_000.0
    com = gpd.GeoDataFrame({"code": [C1, C2]}, geometry=[
        shapely.box(x0, y0, x0 + 1000, y0 + 1000),
        shapely.box(x0 + 1000, y0, x0 + 2000, y0 + 1000)], crs=32649)
    g = {
        # community 1: a gap of 20 m between 001 and 002; 002 and 003 overlap by 10 m
        C1 + "001": shapely.box(x0, y0, x0 + 480, y0 + 1000),
        C1 + "002": shapely.box(x0 + 500, y0, x0 + 760, y0 + 1000),
        C1 + "003": shapely.box(x0 + 750, y0, x0 + 1000, y0 + 600),
        # 004 spills 30 m into community 2 and overlaps its grid 101 there
        C1 + "004": shapely.box(x0 + 760, y0 + 600, x0 + 1030, y0 + 1000),
        # community 2: a grid in two pieces, and a sliver
        C2 + "101": shapely.MultiPolygon([
            shapely.box(x0 + 1000, y0 + 500, x0 + 2000, y0 + 1000),
            shapely.box(x0 + 1000, y0, x0 + 1400, y0 + 300)]),
        C2 + "102": shapely.box(x0 + 1400, y0, x0 + 2000, y0 + 498),
        C2 + "103": shapely.box(x0 + 1000, y0 + 300, x0 + 1400, y0 + 498),
        C2 + "104": shapely.box(x0 + 1000, y0 + 498, x0 + 2000, y0 + 500),
    }
    grids = gpd.GeoDataFrame({"code": list(g)}, geometry=list(g.values()), crs=32649)
    return com, grids


def test_every_planted_defect_is_found_and_located() -> None:
    com, grids = planted()
    report = check_partition(com, grids)
    found = {(r.defect, r.grid_code, r.other_code) for r in report.itertuples()}
    assert ("gap", None, None) in found
    assert ("overlap", C1 + "002", C1 + "003") in found
    assert ("overlap", C1 + "004", C2 + "101") in found
    assert ("outside", C1 + "004", None) in found
    assert ("multipart", C2 + "101", None) in found
    assert ("sliver", C2 + "104", None) in found
    gap = report[report["defect"] == "gap"].iloc[0]
    assert gap["area_m2"] == 20_000.0
    assert gap.geometry.equals(shapely.box(500_480.0, 3_780_000, 500_500, 3_781_000))
    spill = report[report["defect"] == "outside"].iloc[0]
    assert spill["area_m2"] == 30 * 400
    kinds = report["defect"].value_counts().to_dict()
    assert kinds == {"gap": 1, "overlap": 2, "outside": 1, "multipart": 1, "sliver": 1}


def test_centimetre_noise_is_not_a_defect() -> None:
    com, _ = planted()
    clean = gpd.GeoDataFrame({"code": [C1 + "001", C1 + "002"]}, geometry=[
        shapely.box(500_000, 3_780_000, 500_500.02, 3_781_000),   # 2 cm overlap
        shapely.box(500_500, 3_780_000, 501_000.01, 3_781_000.01)], crs=32649)  # 1 cm spill
    report = check_partition(com.iloc[:1], clean)
    assert report.empty, report


def test_invalid_grid_is_reported_not_crashed_on() -> None:
    com, grids = planted()
    grids.loc[0, "geometry"] = shapely.Polygon(
        [(500_000, 3_780_000), (500_480, 3_781_000), (500_480, 3_780_000), (500_000, 3_781_000)])
    report = check_partition(com, grids)
    assert "invalid" in set(report["defect"])
    assert report.loc[report["defect"] == "invalid", "detail"].iat[0].startswith("Self-inter")


def test_the_demo_district_has_no_defect() -> None:
    communities = gpd.read_file(DEMO_DIR / DEMO_FILES["communities"])
    grids = gpd.read_file(DEMO_DIR / DEMO_FILES["grids"])
    report = check_partition(communities, grids)
    assert report.empty, report[["defect", "grid_code", "area_m2"]].head()


def test_report_is_in_the_input_crs() -> None:
    com, grids = planted()
    report = check_partition(com.to_crs(4326), grids.to_crs(4326))
    assert report.crs.to_epsg() == 4326
    assert np.isclose(report.loc[report["defect"] == "gap", "area_m2"].iat[0], 20_000, rtol=1e-3)
