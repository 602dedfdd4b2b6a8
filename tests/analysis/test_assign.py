"""Exactness of assignment on the awkward points, agreement with PostGIS, and bad input."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from sqlalchemy import text
from sqlalchemy.engine import Connection

from bench.city import make_city, make_points
from gridmap.analysis.assign import (
    GridIndexError,
    assign_to_grids,
    build_grid_index,
    points_to_grids,
)
from gridmap.store.assign import assign_layer, assign_query, join_query

X0, Y0 = 109.0, 34.0
U = 1 / 256  # a unit that is exact in binary floating point


def box(x1: float, y1: float, x2: float, y2: float) -> shapely.Polygon:
    return shapely.box(X0 + x1 * U, Y0 + y1 * U, X0 + x2 * U, Y0 + y2 * U)


def P(x: float, y: float) -> tuple[float, float]:
    return X0 + x * U, Y0 + y * U


COM = "610199001001"


def awkward_grids() -> gpd.GeoDataFrame:
    """A 2x2 block (001-004), a ring grid with a hole (005) filled by 006, a two-part grid
    (007) with 008 between its parts, and an exclusive grid (901) inside 004 touching its
    edge."""
    ring = box(4, 0, 8, 4).difference(box(5, 1, 7, 3))
    rows = [
        ("001", "comprehensive", box(0, 2, 2, 4)), ("002", "comprehensive", box(2, 2, 4, 4)),
        ("003", "comprehensive", box(0, 0, 2, 2)), ("004", "comprehensive", box(2, 0, 4, 2)),
        ("005", "comprehensive", ring), ("006", "comprehensive", box(5, 1, 7, 3)),
        ("007", "comprehensive", shapely.MultiPolygon([box(0, 4, 4, 6), box(5, 4, 8, 6)])),
        ("008", "comprehensive", box(4, 4, 5, 6)),
        ("901", "exclusive", box(3, 0.5, 4, 1.5)),
    ]
    geoms = [g if g.geom_type == "MultiPolygon" else shapely.MultiPolygon([g])
             for _, _, g in rows]
    return gpd.GeoDataFrame({"code": [COM + c for c, _, _ in rows],
                             "kind": [k for _, k, _ in rows]}, geometry=geoms, crs=4326)


# point → expected grid suffix (None: outside)
CASES = {
    "interior": (P(1, 3), "001"),
    "shared edge 001|002": (P(2, 3), "001"),
    "shared edge 003|004": (P(2, 1), "003"),
    "vertex of four grids": (P(2, 2), "001"),
    "outer edge": (P(0, 1), "003"),
    "outer corner": (P(0, 0), "003"),
    "in the hole": (P(6, 2), "006"),
    "on the hole's edge": (P(5, 2), "005"),
    "ring interior": (P(4.5, 0.5), "005"),
    "edge 004|005": (P(4, 0.25), "004"),
    "multipolygon part 1": (P(1, 5), "007"),
    "multipolygon part 2": (P(7, 5), "007"),
    "between parts of 007": (P(4.5, 5), "008"),
    "edge 007|008": (P(5, 5), "007"),
    "edge 002|007": (P(3, 4), "002"),
    "exclusive interior": (P(3.5, 1), "901"),
    "exclusive edge inside 004": (P(3, 1), "901"),
    "exclusive edge on 004|005": (P(4, 1.25), "901"),
    "outside": (P(9, 9), None),
    "just outside": (P(8 + 1 / 1024, 2), None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_awkward_points(case: str) -> None:
    (x, y), expected = CASES[case]
    grids = awkward_grids()
    pts = gpd.GeoSeries(gpd.points_from_xy([x], [y]), crs=4326)
    got = points_to_grids(pts, build_grid_index(grids, max_cells=50_000)).iat[0]
    assert (pd.isna(got) if expected is None else got == COM + expected)


def test_index_agrees_with_brute_force_on_a_city() -> None:
    grids = make_city(150, size=8000)
    pts = make_points(grids, 60_000, on_edges=6_000)
    index = build_grid_index(grids, max_cells=2_000_000)
    got = index.lookup(shapely.get_x(pts.values), shapely.get_y(pts.values))
    want = index.exact(shapely.get_x(pts.values), shapely.get_y(pts.values))
    assert (got == want).all()
    assert (want >= 0).mean() > 0.5  # most points are in the city


def test_one_point_at_a_time_answers_as_the_arrays_do() -> None:
    # locate's path for one point: the same cells, the same exact test on boundary cells
    grids = make_city(40, size=4000)
    pts = make_points(grids, 4000, on_edges=1000)
    x, y = shapely.get_x(pts.values), shapely.get_y(pts.values)
    x, y = np.r_[x, x.min() - 1, x.max() + 1], np.r_[y, y.min() - 1, y.max() + 1]  # off it
    index = build_grid_index(grids, max_cells=200_000)
    one = [index.lookup_one(a, b) for a, b in zip(x.tolist(), y.tolist(), strict=True)]
    assert one == index.lookup(x, y).tolist()
    assert one[-2:] == [-1, -1] and (np.array(one) >= 0).mean() > 0.5
    with pytest.raises(ValueError, match="NaN or infinite"):
        index.lookup_one(float("nan"), y[0])


def test_every_point_in_a_community_gets_exactly_one_grid() -> None:
    grids = make_city(150, size=8000)
    pts = make_points(grids, 20_000, on_edges=4_000)
    assigned = assign_to_grids(gpd.GeoDataFrame(geometry=pts), grids)
    covered = shapely.intersects_xy(shapely.union_all(grids.geometry.values),
                                    shapely.get_x(pts.values), shapely.get_y(pts.values))
    assert (assigned["grid_code"].notna().to_numpy() == covered).all()
    assert (assigned["outside"].to_numpy() == ~covered).all()
    inside = assigned[~assigned["outside"]]
    assert (inside["community_code"] == inside["grid_code"].str[:12]).all()
    assert (inside["township_code"] == inside["grid_code"].str[:9] + "000").all()


def test_h3_alone_would_be_wrong_near_edges() -> None:
    """Why the index is exact and not an H3 approximation: at resolution 11 a cell-centre
    answer puts points near edges in the wrong grid."""
    import h3

    grids = make_city(150, size=8000).to_crs(4326)
    pts = make_points(grids.to_crs(32650), 20_000, on_edges=0).to_crs(4326)
    lon, lat = shapely.get_x(pts.values), shapely.get_y(pts.values)
    index = build_grid_index(grids)
    exact = index.lookup(lon, lat)
    cells = [h3.latlng_to_cell(la, lo, 11) for lo, la in zip(lon, lat, strict=True)]
    centres = np.array([h3.cell_to_latlng(c) for c in cells])
    approx = index.lookup(centres[:, 1], centres[:, 0])
    inside = exact >= 0
    assert (approx[inside] != exact[inside]).mean() > 0.005


# ------------------------------------------------------------------------------ bad input
def test_points_in_another_crs_are_refused() -> None:
    grids = awkward_grids()
    pts = gpd.GeoSeries(gpd.points_from_xy([500_000], [3_760_000]), crs=32649)
    with pytest.raises(ValueError, match="reproject"):
        points_to_grids(pts, grids)


def test_empty_points_give_an_empty_answer() -> None:
    out = points_to_grids(gpd.GeoSeries([], crs=4326), awkward_grids())
    assert out.empty


def test_empty_point_geometry_is_refused() -> None:
    pts = gpd.GeoSeries([shapely.Point(*P(1, 1)), shapely.Point()], crs=4326)
    with pytest.raises(ValueError, match=r"NaN|empty"):
        points_to_grids(pts, awkward_grids())


def test_index_memory_on_a_city_of_real_size() -> None:
    # regression: a 262-polygon city took a 297 MiB peak to index (a 4k x 4k raster painted
    # with three full-size int32 temporaries); now it is painted a strip at a time
    import tracemalloc

    grids = make_city(260).to_crs(4326)
    tracemalloc.start()
    try:
        index = build_grid_index(grids)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert index.labels.size > 15_000_000  # the full resolution, not a coarser raster
    assert peak < 100 * 2**20, f"{peak / 2**20:.0f} MiB"
    pts = make_points(grids, 50_000, on_edges=5_000)
    x, y = shapely.get_x(pts.values), shapely.get_y(pts.values)
    assert (index.lookup(x, y) == index.exact(x, y)).all()


def test_the_chain_is_categorical_and_derived_per_grid() -> None:
    grids = make_city(40, size=4000)
    pts = gpd.GeoDataFrame({"n": np.arange(5000)},
                           geometry=make_points(grids, 5000, on_edges=500))
    out = assign_to_grids(pts, grids)
    for col in ("grid_code", "grid_kind", "community_code", "township_code", "county_code"):
        assert isinstance(out[col].dtype, pd.CategoricalDtype), col
    inside = ~out["outside"]
    codes = out.loc[inside, "grid_code"].astype(str)
    assert (out.loc[inside, "community_code"].astype(str) == codes.str[:12]).all()
    assert (out.loc[inside, "county_code"].astype(str) == codes.str[:6] + "000000").all()
    assert out.loc[~inside, ["grid_code", "community_code"]].isna().all().all()
    assert out["n"].tolist() == list(range(5000))  # the points' own columns, in order


def test_codes_that_are_not_chinese_get_no_junk_columns() -> None:
    # regression: three per-point str.slice calls built community/township/county codes
    # from any code — junk for codes of another country's layout
    grids = gpd.GeoDataFrame({"code": ["Ward 1", "Ward 2"]},
                             geometry=[shapely.box(0, 0, 10, 10), shapely.box(10, 0, 20, 10)],
                             crs=32650)
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy([5, 15, 30], [5, 5, 5]), crs=32650)
    out = assign_to_grids(pts, grids)
    assert "community_code" not in out and "township_code" not in out
    assert out["grid_code"].tolist()[:2] == ["Ward 1", "Ward 2"]
    assert out["outside"].tolist() == [False, False, True]


def test_invalid_grids_get_advice_or_repair() -> None:
    # regression: two invalid polygons were refused with "run `gridmap check`", a store
    # command, to someone analysing their own file
    grids = awkward_grids()
    bowtie = shapely.Polygon([P(0, 0), P(2, 2), P(2, 0), P(0, 2)])
    grids.loc[2, "geometry"] = bowtie
    with pytest.raises(GridIndexError, match=r"610199001001003 \(Self-intersection.*"
                       r"shapely.make_valid.*repair=True"):
        build_grid_index(grids, max_cells=50_000)
    index = build_grid_index(grids, max_cells=50_000, repair=True)
    got = points_to_grids(gpd.GeoSeries(gpd.points_from_xy(*zip(P(0.5, 1), P(1.5, 1), strict=True)),
                                        crs=4326), index)
    assert got.tolist() == [COM + "003", COM + "003"]  # both triangles of the bowtie


def test_invalid_grid_geometry_is_refused() -> None:
    grids = awkward_grids()
    bowtie = shapely.Polygon([P(0, 0), P(1, 1), P(1, 0), P(0, 1)])
    grids.loc[0, "geometry"] = shapely.MultiPolygon([bowtie])
    with pytest.raises(GridIndexError, match="invalid"):
        build_grid_index(grids)


def test_overlapping_grids_of_two_communities_are_refused() -> None:
    grids = awkward_grids()
    other = gpd.GeoDataFrame({"code": ["610199001002001"], "kind": ["comprehensive"]},
                             geometry=[shapely.MultiPolygon([box(1, 1, 3, 3)])], crs=4326)
    with pytest.raises(GridIndexError, match=r"overlap.*610199001002001"):
        build_grid_index(gpd.GeoDataFrame(
            [*grids.to_dict("records"), *other.to_dict("records")], crs=4326))


def test_grids_without_crs_are_refused() -> None:
    with pytest.raises(GridIndexError, match="CRS"):
        build_grid_index(awkward_grids().set_crs(None, allow_override=True))


# --------------------------------------------------------------------- PostGIS agreement
def _load_awkward(conn: Connection) -> gpd.GeoDataFrame:
    grids = awkward_grids()
    world = shapely.box(X0 - U, Y0 - U, X0 + 10 * U, Y0 + 10 * U).wkt
    conn.execute(text(
        "INSERT INTO division (code, name, level, parent_code, geom) VALUES "
        "('610199000000', 'd', 'county', NULL, ST_Multi(ST_GeomFromText(:w, 4326))),"
        "('610199001000', 't', 'township', '610199000000', ST_Multi(ST_GeomFromText(:w, 4326))),"
        "('610199001001', 'c', 'community', '610199001000', ST_Multi(ST_GeomFromText(:w, 4326)))"
    ), {"w": world})
    for row in grids.sort_values("kind").itertuples():
        parent = f"{COM}004" if row.kind == "exclusive" else None
        conn.execute(text(
            "INSERT INTO grid (code, name, kind, community_code, parent_grid_code, geom) VALUES "
            "(:c, :n, :k, :com, :p, ST_GeomFromText(:g, 4326))"),
            {"c": row.code, "n": row.code, "k": row.kind, "com": COM, "p": parent,
             "g": row.geometry.wkt})
    for i, ((x, y), _) in enumerate(CASES.values()):
        conn.execute(text("INSERT INTO household (id, address, residents, geom) VALUES "
                          "(:i, 'a', 1, ST_SetSRID(ST_MakePoint(:x, :y), 4326))"),
                     {"i": f"h{i:02d}", "x": x, "y": y})
    return grids


@pytest.mark.parametrize("how", ["postgis", "python"])
def test_store_and_analysis_agree_on_the_awkward_points(conn: Connection, how: str) -> None:
    _load_awkward(conn)
    result = assign_layer(conn, "households", engine=how)  # type: ignore[arg-type]
    assert result.rows == len(CASES)
    stored = dict(conn.execute(text("SELECT id, grid_code FROM household")).all())
    for i, (case, (_, expected)) in enumerate(CASES.items()):
        assert stored[f"h{i:02d}"] == (None if expected is None else COM + expected), case


def test_reassignment_plan_keeps_grids_outer_and_no_parallel_gather(demo_db: str) -> None:
    import json

    from sqlalchemy import create_engine

    engine = create_engine(demo_db)
    with engine.begin() as c:
        raw = c.connection.driver_connection
        raw.execute("ANALYZE grid; ANALYZE household")
        raw.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        assert "max_parallel_workers_per_gather = 0" in assign_query("household").as_string(raw)
        select = join_query("household").as_string(raw)
        plan = raw.execute("EXPLAIN (FORMAT JSON) " + select).fetchone()[0]  # type: ignore[index]
        held = {r[0] for r in raw.execute(
            "SELECT tableoid::regclass::text FROM household GROUP BY 1").fetchall()}
    engine.dispose()
    text_plan = json.dumps(plan)
    assert "Gather" not in text_plan
    node = plan[0]["Plan"]
    while node["Node Type"] not in ("Nested Loop",):
        node = node["Plans"][0]
    outer, inner = node["Plans"]
    assert outer.get("Relation Name") == "grid"
    # households are partitioned by county: the inner side probes the index of every
    # partition that holds rows (an empty one may be read as it is)
    scans = inner["Plans"] if inner["Node Type"] == "Append" else [inner]
    probed = {s.get("Relation Name") for s in scans if "Index" in s["Node Type"]}
    assert held and held <= probed


@pytest.mark.parametrize("grids", [awkward_grids, lambda: make_city(300, exclusive=6)])
def test_a_build_in_bands_paints_the_raster_of_a_build_in_one(grids) -> None:
    frame = grids()
    whole = build_grid_index(frame, max_cells=400_000, band_grids=10**9)
    bands = build_grid_index(frame, max_cells=400_000, band_grids=4)
    assert whole.shape[0] > 64 * 3  # several bands of at least 64 rows
    assert np.array_equal(whole.labels, bands.labels)
    assert (bands.labels >= 0).any() and (bands.labels == -2).any()
