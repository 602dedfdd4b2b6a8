"""Locate: the right grid and workers in-process, CRS conversion, edges, outside points, and
a redraw visible to the very next request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from fastapi.testclient import TestClient

from gridmap.api.app import create_app
from gridmap.demodata import DEMO_DIR, DEMO_FILES
from gridmap.domain import chinacrs
from gridmap.settings import Settings
from tests.helpers import (
    bearer,
    import_merged,
    neighbours_in_community,
    token_for,
    wait_for_notice,
)


@pytest.fixture(scope="module")
def client(grids_db: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=grids_db)),
                    headers=bearer(token_for(grids_db, "admin"))) as c:
        yield c


@pytest.fixture(scope="module")
def grids() -> gpd.GeoDataFrame:
    return gpd.read_file(DEMO_DIR / DEMO_FILES["grids"])


def test_locate_a_household_point(client: TestClient, grids: gpd.GeoDataFrame) -> None:
    grid = grids[grids["kind"] == "comprehensive"].iloc[40]
    p = grid.geometry.buffer(-0.001).representative_point()
    body = client.get("/api/locate", params={"lon": p.x, "lat": p.y}).json()
    assert body["inside"] and body["grid"]["code"] == grid["code"]
    assert body["community"]["code"] == grid["code"][:12]
    assert body["township"]["code"] == grid["code"][:9] + "000"
    roles = {w["role"] for w in body["workers"]}
    assert {"full_time", "grid_head", "supervisor"} <= roles
    assert all(w["phone"] for w in body["workers"])
    assert body["edge_distance_m"] > 10 and not body["near_edge"] and body["candidates"] == []


def test_exclusive_grid_comes_first(client: TestClient, grids: gpd.GeoDataFrame) -> None:
    ex = grids[grids["kind"] == "exclusive"].iloc[0]
    p = ex.geometry.representative_point()
    body = client.get("/api/locate", params={"lon": p.x, "lat": p.y}).json()
    assert body["grid"]["code"] == ex["code"] and body["grid"]["kind"] == "exclusive"
    assert ex["parent_grid_code"] in {c["code"] for c in body["candidates"]}


def test_near_an_edge_the_candidates_are_listed(client: TestClient,
                                                grids: gpd.GeoDataFrame) -> None:
    comp = grids[grids["kind"] == "comprehensive"]
    a = comp.iloc[10]
    b = comp[comp.geometry.touches(a.geometry)].iloc[0]
    shared = shapely.intersection(a.geometry, b.geometry)
    mid = shapely.line_interpolate_point(shapely.line_merge(shared), 0.5, normalized=True) \
        if shared.geom_type != "Point" else shared
    body = client.get("/api/locate", params={"lon": mid.x, "lat": mid.y}).json()
    assert body["near_edge"] and body["edge_distance_m"] < 0.01
    # an interpolated point is on the edge only to floating-point precision: either grid may
    # win, and the other is offered as a candidate
    pair = {a["code"], b["code"]}
    assert body["grid"]["code"] in pair
    assert pair - {body["grid"]["code"]} <= {c["code"] for c in body["candidates"]}


@pytest.mark.parametrize("system", ["gcj02", "bd09", "cgcs2000"])
def test_chinese_web_map_coordinates(client: TestClient, grids: gpd.GeoDataFrame,
                                     system: str) -> None:
    grid = grids[grids["kind"] == "comprehensive"].iloc[7]
    p = grid.geometry.buffer(-0.001).representative_point()
    x, y = p.x, p.y
    if system == "gcj02":
        x, y = (float(v) for v in chinacrs.wgs84_to_gcj02(p.x, p.y))
    elif system == "bd09":
        x, y = (float(v) for v in chinacrs.wgs84_to_bd09(p.x, p.y))
    body = client.get("/api/locate", params={"lon": x, "lat": y, "crs": system}).json()
    assert body["grid"]["code"] == grid["code"]
    assert abs(body["lon"] - p.x) < 1e-7 and abs(body["lat"] - p.y) < 1e-7


def test_outside_is_an_answer_not_an_error(client: TestClient) -> None:
    res = client.get("/api/locate", params={"lon": 116.4, "lat": 39.9})
    assert res.status_code == 200
    assert res.json()["inside"] is False and "outside" in res.json()["message"]


@pytest.mark.parametrize("params", [
    {"lon": "abc", "lat": 34.2}, {"lon": 200, "lat": 34.2}, {"lon": 109, "lat": -91},
    {"lon": 109, "lat": 34.2, "crs": "epsg:3857"}, {"lat": 34.2}])
def test_bad_coordinates_are_4xx(client: TestClient, params: dict) -> None:
    res = client.get("/api/locate", params=params)
    assert res.status_code == 422
    assert res.json()["detail"]


def test_a_redraw_is_seen_by_the_next_request(client: TestClient, grids_db: str,
                                              grids: gpd.GeoDataFrame, tmp_path: Path) -> None:
    a, b = neighbours_in_community(grids, 20)
    p = b.geometry.buffer(-0.0005).representative_point()
    before = client.get("/api/locate", params={"lon": p.x, "lat": p.y}).json()
    assert before["grid"]["code"] == b["code"]
    result = import_merged(grids_db, grids, a, b, tmp_path / "merged.geojson")
    assert result.exit_code == 0, result.output
    wait_for_notice(client.app)
    after = client.get("/api/locate", params={"lon": p.x, "lat": p.y}).json()
    assert after["grid"]["code"] == a["code"]


def test_the_fast_path_answers_as_the_framework_does(client: TestClient,
                                                     grids: gpd.GeoDataFrame) -> None:
    """A plain locate is answered before the framework (routes_locate.FastLocate); a request
    with a parameter it does not take goes through FastAPI. Both say the same, per caller."""
    ex = grids[grids["kind"] == "exclusive"].iloc[1]
    points = [ex.geometry.representative_point(), shapely.Point(116.4, 39.9)]
    with TestClient(client.app) as public:
        for caller in (client, public):
            for p in points:
                for crs in ("wgs84", "gcj02"):
                    params = {"lon": p.x, "lat": p.y, "crs": crs}
                    fast = caller.get("/api/locate", params=params)
                    framework = caller.get("/api/locate", params={**params, "via": "fastapi"})
                    assert fast.status_code == framework.status_code == 200
                    assert fast.json() == framework.json()
                    assert fast.headers["X-Content-Type-Options"] == "nosniff"
        inside = public.get("/api/locate", params={"lon": points[0].x, "lat": points[0].y})
        assert inside.json()["inside"] and inside.json()["workers"] == []  # no phones
        assert public.get("/api/locate", params={"lon": points[0].x, "lat": points[0].y},
                          headers={"Authorization": "Bearer nonsense"}).status_code == 401
