"""The emergency view (POST /api/emergency) on the demo district: the totals equal an
independent count (geopandas over the demo's households file, a direct SQL count for a
scope), the grids sum to the totals, a radius query, scope, masking, exports and bad
input."""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterator
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Geod
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from gridmap.api.app import create_app
from gridmap.api.routes_emergency import EmergencyPublic
from gridmap.demodata import DEMO_DIR, DEMO_FILES
from gridmap.domain.chinacrs import wgs84_to_gcj02
from gridmap.domain.layers import CARE_FLAGS
from gridmap.io.write import rows_to_csv
from gridmap.settings import Settings
from tests.helpers import bearer, token_for

TOWNSHIP, OTHER_TOWNSHIP = "610199001000", "610199002000"
GRID = "610199001001001"
DIVISIONS = {"admin": (), "planner": (TOWNSHIP,), "dispatcher": (TOWNSHIP,),
             "grid_worker": (GRID,), "analyst": (TOWNSHIP,)}
MASKED_PHONE = re.compile(r"^\d{3}\*{4}\d{4}$")


@pytest.fixture(scope="module")
def client(demo_db: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=demo_db))) as c:
        yield c


@pytest.fixture(scope="module")
def headers(demo_db: str) -> dict[str, dict[str, str]]:
    out = {role: bearer(token_for(demo_db, f"emergency-{role}", role, codes))
           for role, codes in DIVISIONS.items()}
    return {**out, "public": {}}


@pytest.fixture(scope="module")
def households() -> gpd.GeoDataFrame:
    return gpd.read_parquet(DEMO_DIR / DEMO_FILES["households"])


@pytest.fixture(scope="module")
def county() -> shapely.Geometry:
    return gpd.read_file(DEMO_DIR / DEMO_FILES["counties"]).geometry.iloc[0]


@pytest.fixture(scope="module")
def across() -> shapely.Geometry:
    """A box of about 1.6 km around a point of the edge between two townships."""
    towns = gpd.read_file(DEMO_DIR / DEMO_FILES["townships"]).set_index("code").geometry
    edge = towns[TOWNSHIP].boundary.intersection(towns[OTHER_TOWNSHIP].boundary)
    point = edge.interpolate(0.5, normalized=True)
    return shapely.box(point.x - 0.008, point.y - 0.008, point.x + 0.008, point.y + 0.008)


def ask(client: TestClient, headers: dict[str, str], body: dict[str, Any],
        **params: str) -> Any:
    res = client.post("/api/emergency", json=body, headers=headers, params=params)
    assert res.status_code == 200, res.text
    return res


def polygon(geom: shapely.Geometry) -> dict[str, Any]:
    return {"area": shapely.geometry.mapping(geom)}


def expected(households: gpd.GeoDataFrame) -> dict[str, Any]:
    """Totals counted with pandas from the households file."""
    flags = households[list(CARE_FLAGS)].astype(bool)
    vulnerable = flags.any(axis=1)
    return {"households": len(households), "residents": int(households["residents"].sum()),
            "vulnerable_households": int(vulnerable.sum()),
            "vulnerable_residents": int(households.loc[vulnerable, "residents"].sum()),
            "by_flag": {f: {"households": int(flags[f].sum()),
                            "residents": int(households.loc[flags[f], "residents"].sum())}
                        for f in CARE_FLAGS}}


def sums_to_totals(body: dict[str, Any]) -> None:
    """The answer is the documented model, and the grids' rows add up to the totals, each
    grid once."""
    assert EmergencyPublic.model_validate(body).model_dump(mode="json") == body
    grids, totals = body["grids"], body["totals"]
    codes = [g["code"] for g in grids]
    assert len(codes) == len(set(codes))
    for key in ("households", "residents", "vulnerable_households", "vulnerable_residents"):
        assert sum(g[key] for g in grids) == totals[key], key
    for flag in CARE_FLAGS:
        for key in ("households", "residents"):
            assert sum(g["by_flag"][flag][key] for g in grids) == totals["by_flag"][flag][key]
    assert totals["grids"] == len([c for c in codes if c])


def sql_count(demo_db: str, geom: shapely.Geometry, prefix: str) -> int:
    engine = create_engine(demo_db, poolclass=NullPool)
    with engine.connect() as conn:
        n = conn.execute(text(
            "SELECT count(*) FROM household WHERE grid_code LIKE :prefix "
            "AND ST_Intersects(geom, ST_GeomFromText(:wkt, 4326))"),
            {"prefix": prefix + "%", "wkt": geom.wkt}).scalar_one()
    engine.dispose()
    return int(n)


# --- counts ----------------------------------------------------------------------------------

def test_the_whole_district_equals_the_households_file(
        client: TestClient, headers: dict[str, dict[str, str]],
        households: gpd.GeoDataFrame, county: shapely.Geometry) -> None:
    body = ask(client, headers["admin"], polygon(county)).json()
    inside = households[households.intersects(county)]
    totals = {k: v for k, v in body["totals"].items() if k != "grids"}
    assert totals == expected(inside)
    assert body["totals"]["households"] == len(households)  # the county holds them all
    sums_to_totals(body)
    assert body["totals"]["grids"] > 250
    assert body["area"]["kind"] == "polygon" and 200 < body["area"]["km2"] < 300
    assert len(body["vulnerable_households"]) == body["totals"]["vulnerable_households"]
    # every grid with its names and a worker
    assert all(g["name"] and g["community_name"] and g["workers"] for g in body["grids"]
               if g["code"])


def test_a_drawn_polygon_equals_geopandas(
        client: TestClient, headers: dict[str, dict[str, str]],
        households: gpd.GeoDataFrame, across: shapely.Geometry) -> None:
    # a concave polygon with a hole: a box less its lower-right quarter, a hole in the middle
    x0, y0, x1, y1 = across.bounds
    mx, my = (x0 + x1) / 2, (y0 + y1) / 2
    shell = [(x0, y0), (mx, y0), (mx, my), (x1, my), (x1, y1), (x0, y1), (x0, y0)]
    hole = [(x0 + 0.002, my + 0.001), (x0 + 0.004, my + 0.001), (x0 + 0.004, my + 0.003),
            (x0 + 0.002, my + 0.001)]
    drawn = shapely.Polygon(shell, [hole])
    assert drawn.is_valid
    body = ask(client, headers["admin"], polygon(drawn)).json()
    inside = households[households.intersects(drawn)]
    assert 0 < len(inside) < len(households[households.intersects(across)])
    assert {k: v for k, v in body["totals"].items() if k != "grids"} == expected(inside)
    sums_to_totals(body)
    # a Feature holding the polygon is the same question
    feature = {"area": {"type": "Feature", "properties": {},
                        "geometry": shapely.geometry.mapping(drawn)}}
    assert ask(client, headers["admin"], feature).json()["totals"] == body["totals"]


def test_a_radius_around_a_point(client: TestClient, headers: dict[str, dict[str, str]],
                                 households: gpd.GeoDataFrame) -> None:
    center = households.geometry.iloc[5000]
    radius = 800.0
    body = ask(client, headers["admin"], {"point": [center.x, center.y],
                                          "radius_m": radius}).json()
    _, _, dist = Geod(ellps="WGS84").inv(np.full(len(households), center.x),
                                         np.full(len(households), center.y),
                                         households.geometry.x, households.geometry.y)
    inside = households[dist <= radius]
    assert len(inside) > 100
    assert {k: v for k, v in body["totals"].items() if k != "grids"} == expected(inside)
    sums_to_totals(body)
    assert body["area"]["kind"] == "circle" and body["area"]["radius_m"] == radius
    assert math.isclose(body["area"]["km2"], math.pi * 0.8**2, rel_tol=1e-6)
    # the same point as a Chinese web map gives it (GCJ-02): the same people
    gx, gy = wgs84_to_gcj02(center.x, center.y)
    shifted = ask(client, headers["admin"], {"point": [float(gx), float(gy)],
                                             "radius_m": radius, "crs": "gcj02"}).json()
    assert shifted["totals"] == body["totals"]


def test_an_empty_place_is_zero(client: TestClient,
                                headers: dict[str, dict[str, str]]) -> None:
    body = ask(client, headers["admin"], polygon(shapely.box(100.0, 40.0, 100.01, 40.01))).json()
    assert body["grids"] == [] and body["vulnerable_households"] == []
    assert body["totals"]["households"] == 0 and body["totals"]["by_flag"]["disabled"] == {
        "households": 0, "residents": 0}


# --- scope and masking ---------------------------------------------------------------------

def test_a_township_dispatcher_sees_only_their_township(
        client: TestClient, headers: dict[str, dict[str, str]], demo_db: str,
        across: shapely.Geometry) -> None:
    mine = ask(client, headers["dispatcher"], polygon(across)).json()
    everyone = ask(client, headers["admin"], polygon(across)).json()
    assert all(g["code"].startswith(TOWNSHIP[:9]) for g in mine["grids"])
    assert mine["totals"]["households"] == sql_count(demo_db, across, TOWNSHIP[:9])
    others = sql_count(demo_db, across, OTHER_TOWNSHIP[:9])
    assert others > 0
    assert everyone["totals"]["households"] == mine["totals"]["households"] + others
    assert any(g["code"].startswith(OTHER_TOWNSHIP[:9]) for g in everyone["grids"])
    sums_to_totals(mine)
    # counts only: no household list; the workers' phones whole (a dispatcher calls them)
    assert mine["vulnerable_households"] is None
    assert mine["totals"]["vulnerable_households"] > 0
    phones = [w["phone"] for g in mine["grids"] for w in g["workers"]]
    assert phones and not any("*" in p for p in phones)


def test_an_analyst_gets_counts_and_masked_workers(
        client: TestClient, headers: dict[str, dict[str, str]],
        across: shapely.Geometry) -> None:
    body = ask(client, headers["analyst"], polygon(across)).json()
    assert body["vulnerable_households"] is None and body["totals"]["vulnerable_residents"] > 0
    workers = [w for g in body["grids"] for w in g["workers"]]
    assert workers
    assert all(MASKED_PHONE.match(w["phone"]) for w in workers), workers[:3]
    assert all(w["name"].endswith("*") for w in workers)
    res = client.post("/api/emergency", json=polygon(across), headers=headers["analyst"],
                      params={"format": "csv", "rows": "households"})
    assert res.status_code == 403 and "counts" in res.json()["detail"]


def test_a_grid_worker_sees_only_their_grid(
        client: TestClient, headers: dict[str, dict[str, str]], county: shapely.Geometry,
        households: gpd.GeoDataFrame) -> None:
    body = ask(client, headers["grid_worker"], polygon(county)).json()
    assert [g["code"] for g in body["grids"]] == [GRID]
    listed = body["vulnerable_households"]
    assert listed and all(h["grid_code"] == GRID for h in listed)
    assert len(listed) == body["totals"]["vulnerable_households"]
    assert all(h["head_name"] and h["phone"] and "*" not in h["phone"] for h in listed)


def test_a_planner_gets_the_vulnerable_households(
        client: TestClient, headers: dict[str, dict[str, str]], across: shapely.Geometry,
        households: gpd.GeoDataFrame) -> None:
    body = ask(client, headers["planner"], polygon(across)).json()
    listed = body["vulnerable_households"]
    assert len(listed) == body["totals"]["vulnerable_households"] > 0
    assert all(h["grid_code"].startswith(TOWNSHIP[:9]) and h["flags"] for h in listed)
    truth = households.set_index("id")
    for h in listed[:50]:
        row = truth.loc[h["id"]]
        assert (h["head_name"], h["phone"], h["address"]) == (
            row["head_name"], row["phone"], row["address"])
        assert h["flags"] == [f for f in CARE_FLAGS if row[f]]
        assert shapely.Point(h["lon"], h["lat"]).intersects(across)
    # the read of names and phones is in the audit log, by household
    assert client.app.state.audit.flush()  # type: ignore[attr-defined]
    log = client.get("/api/audit", params={"user": "emergency-planner", "limit": 100},
                     headers=headers["admin"]).json()
    entry = next(e for e in log if e["target"] == "POST /api/emergency")
    assert entry["action"] == "read" and set(entry["row_ids"]) == {h["id"] for h in listed}
    assert f"{len(listed)} vulnerable households" in entry["detail"]
    # and said in the reader's language (the record keeps notes, not only English)
    chinese = client.get("/api/audit", params={"user": "emergency-planner", "limit": 100},
                         headers={**headers["admin"], "Accept-Language": "zh-CN"}).json()
    said = next(e for e in chinese if e["id"] == entry["id"])["detail"]
    assert f"{len(listed)} 户重点关爱住户" in said and "应急" in said, said


def test_counts_only_reads_with_masked_contacts_are_not_audited(
        client: TestClient, headers: dict[str, dict[str, str]],
        across: shapely.Geometry) -> None:
    ask(client, headers["analyst"], polygon(across))
    assert client.app.state.audit.flush()  # type: ignore[attr-defined]
    log = client.get("/api/audit", params={"user": "emergency-analyst", "limit": 100},
                     headers=headers["admin"]).json()
    assert not [e for e in log if e["target"] == "POST /api/emergency"]


def test_the_public_must_sign_in(client: TestClient, across: shapely.Geometry) -> None:
    res = client.post("/api/emergency", json=polygon(across))
    assert res.status_code == 401 and res.headers["www-authenticate"] == "Bearer"
    res = client.post("/api/emergency", json={"point": "nonsense"})  # 401 before 422
    assert res.status_code == 401


# --- exports ---------------------------------------------------------------------------------

def read_csv(res: Any) -> list[dict[str, str]]:
    assert res.headers["content-type"].startswith("text/csv")
    assert res.content.startswith(b"\xef\xbb\xbf")  # a BOM: spreadsheets read Chinese right
    assert "attachment" in res.headers["content-disposition"]
    return list(csv.DictReader(io.StringIO(res.content.decode("utf-8-sig"))))


def test_csv_exports(client: TestClient, headers: dict[str, dict[str, str]],
                     across: shapely.Geometry) -> None:
    body = ask(client, headers["planner"], polygon(across)).json()
    grids = read_csv(ask(client, headers["planner"], polygon(across), format="csv"))
    assert [r["grid_code"] for r in grids] == [g["code"] for g in body["grids"]]
    assert sum(int(r["households"]) for r in grids) == body["totals"]["households"]
    assert sum(int(r["elderly_alone_residents"]) for r in grids) == (
        body["totals"]["by_flag"]["elderly_alone"]["residents"])
    assert all(re.search(r"[\u4e00-\u9fff]", r["grid_name"] + r["workers"]) for r in grids)
    rows = read_csv(ask(client, headers["planner"], polygon(across), format="csv",
                        rows="households"))
    assert [r["id"] for r in rows] == [h["id"] for h in body["vulnerable_households"]]
    assert all(r["flags"] and r["phone"] and r["grid_name"] for r in rows)


def test_csv_cells_that_a_spreadsheet_would_run_are_quoted() -> None:
    table = [{"name": "=HYPERLINK(\"http://x\")", "phone": "+8613812345678", "a": "-1+1",
              "b": "@SUM(A1)", "c": "张三", "n": -3}]
    row = next(csv.DictReader(io.StringIO(rows_to_csv(table).decode("utf-8-sig"))))
    assert row == {"name": "'=HYPERLINK(\"http://x\")", "phone": "'+8613812345678",
                   "a": "'-1+1", "b": "'@SUM(A1)", "c": "张三", "n": "-3"}


def test_geojson_exports(client: TestClient, headers: dict[str, dict[str, str]],
                         across: shapely.Geometry) -> None:
    res = ask(client, headers["planner"], polygon(across), format="geojson")
    assert res.headers["content-type"].startswith("application/geo+json")
    fc = res.json()
    assert fc["type"] == "FeatureCollection" and fc["totals"]["households"] > 0
    assert sum(f["properties"]["households"] for f in fc["features"]) == (
        fc["totals"]["households"])
    shapes = [shapely.geometry.shape(f["geometry"]) for f in fc["features"]]
    assert all(s.geom_type in ("Polygon", "MultiPolygon") and s.intersects(across)
               for s in shapes)
    assert all(f["id"] == f["properties"]["code"] for f in fc["features"])
    points = ask(client, headers["planner"], polygon(across), format="geojson",
                 rows="households").json()
    assert len(points["features"]) == fc["totals"]["vulnerable_households"]
    assert all(f["geometry"]["type"] == "Point" and f["properties"]["phone"]
               and shapely.geometry.shape(f["geometry"]).intersects(across)
               for f in points["features"])
    # a dispatcher exports the grids (counts and workers), not the households
    res = client.post("/api/emergency", json=polygon(across), headers=headers["dispatcher"],
                      params={"format": "geojson", "rows": "households"})
    assert res.status_code == 403


# --- bad input -----------------------------------------------------------------------------

BOWTIE = [[[109.0, 34.2], [109.01, 34.21], [109.01, 34.2], [109.0, 34.21], [109.0, 34.2]]]
SQUARE = [[[109.0, 34.2], [109.01, 34.2], [109.01, 34.21], [109.0, 34.21], [109.0, 34.2]]]


def _many_vertices(n: int) -> list[list[list[float]]]:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    ring = np.column_stack([109.0 + 0.01 * np.cos(t), 34.2 + 0.01 * np.sin(t)]).tolist()
    return [[*ring, ring[0]]]


@pytest.mark.parametrize(("body", "says"), [
    ({"area": {"type": "Polygon", "coordinates": BOWTIE}},
     r"Self-intersection at \(109\.005, 34\.205\)"),
    ({"area": {"type": "Polygon", "coordinates": []}}, "empty"),
    ({"area": {"type": "MultiPolygon", "coordinates": []}}, "empty"),
    ({"area": {"type": "Polygon", "coordinates": [[[100, 20], [110, 20], [110, 30],
                                                   [100, 30], [100, 20]]]}}, "km²"),
    ({"area": {"type": "Polygon", "coordinates": _many_vertices(10_001)}}, "vertices"),
    ({"area": {"type": "Polygon", "coordinates": [[[109, 34], [209, 34], [209, 35],
                                                   [109, 34]]]}}, "out of range"),
    ({"area": {"type": "Polygon", "coordinates": [[[34.2, 109], [34.3, 109], [34.3, 109.1],
                                                   [34.2, 109]]]}}, "out of range"),
    ({"area": {"type": "Polygon", "coordinates": [[["a", "b"], [1, 2], [3, 4], [1, 1]]]}},
     "coordinates"),
    ({"area": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [0, 0]]]}}, "polygon"),
    ({"area": {"type": "Point", "coordinates": [109, 34.2]}}, "Polygon or MultiPolygon"),
    ({"area": {"type": "Polygon\x00", "coordinates": SQUARE}}, "NUL"),
    ({"area": {"type": "Polygon", "coordinates": SQUARE}, "crs": "wgs84\x00"}, "crs"),
    ({"area": {"type": "Polygon", "coordinates": SQUARE}, "crs": "epsg:3857"}, "crs"),
    ({"point": [109.0, 34.2], "radius_m": 0}, "radius_m"),
    ({"point": [109.0, 34.2], "radius_m": 10**9}, "radius_m"),
    ({"point": [109.0, 34.2], "radius_m": 500, "crs": "mars"}, "crs"),
    ({"point": [209.0, 34.2], "radius_m": 500}, "point"),
    ({"point": [109.0, 94.2], "radius_m": 500}, "point"),
    ({"point": [109.0, 34.2]}, "radius_m"),
    ({"point": [109.0, 34.2], "radius_m": 500,
      "area": {"type": "Polygon", "coordinates": SQUARE}}, "either"),
    ({}, "either"),
    ({"area": {"type": "Polygon", "coordinates": SQUARE}, "radius_m": 500}, "radius_m"),
    ({"point": [109.0, 34.2], "radius_m": 500, "radius": 5}, "radius"),
])
def test_bad_input_is_422_saying_what_is_wrong(client: TestClient,
                                               headers: dict[str, dict[str, str]],
                                               body: dict[str, Any], says: str) -> None:
    res = client.post("/api/emergency", json=body, headers=headers["admin"])
    assert res.status_code == 422, res.text
    assert re.search(says, str(res.json()["detail"])), res.json()["detail"]


def test_not_a_number_coordinates_are_422(client: TestClient,
                                          headers: dict[str, dict[str, str]]) -> None:
    body = ('{"area": {"type": "Polygon", "coordinates": [[[109, 34.2], [NaN, 34.2], '
            '[109.01, 34.21], [109, 34.2]]]}}')
    res = client.post("/api/emergency", content=body, headers={
        **headers["admin"], "Content-Type": "application/json"})
    assert res.status_code == 422 and "finite" in res.json()["detail"], res.text
