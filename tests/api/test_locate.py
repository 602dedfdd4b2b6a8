"""Locate: the right grid and workers in-process, CRS conversion, edges, outside points, and
a redraw visible to the very next request."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import geopandas as gpd
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from gridmap import access
from gridmap.api import routes_locate
from gridmap.api.app import create_app
from gridmap.demodata import DEMO_DIR, DEMO_FILES
from gridmap.domain import chinacrs
from gridmap.settings import Settings
from gridmap.store import accounts
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
    """A plain locate is answered before the framework (routes_locate.answer_fast); a request
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
        # a parameter sent empty is the framework's to refuse, not the fast path's to drop
        for blank in ("at", "crs"):
            res = public.get(f"/api/locate?lon={points[0].x}&lat={points[0].y}&{blank}=")
            assert res.status_code == 422, (blank, res.text)


def _fast(app: Any, params: dict[str, float], token: str) -> bytes | None:
    """The body :func:`routes_locate.answer_fast` sends for a bearer *token*, None when it
    leaves the request to the framework."""
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/api/locate", "app": app,
             "query_string": urlencode(params).encode(), "client": ("testclient", 50000),
             "headers": [(b"host", b"testserver"),
                         (b"authorization", f"Bearer {token}".encode())]}
    if not asyncio.run(routes_locate.answer_fast(scope, send)):
        assert sent == []
        return None
    assert sent[0]["status"] == 200
    assert (b"x-content-type-options", b"nosniff") in sent[0]["headers"]
    return b"".join(m.get("body", b"") for m in sent[1:])


def test_a_signed_in_caller_is_answered_fast_masked_audited_and_revocable(
        grids_db: str, grids: gpd.GeoDataFrame) -> None:
    """A session already resolved is answered before the framework, with the workers'
    phones as its role may see them (whole for a dispatcher, masked for an analyst), the
    same bytes' meaning as the framework's answer, and a full view audited as the framework
    audits it; a session revoked elsewhere (another process: the store here) is refused on
    the next request after its notice."""
    grid = grids[grids["kind"] == "comprehensive"].iloc[60]
    p = grid.geometry.buffer(-0.001).representative_point()
    params = {"lon": p.x, "lat": p.y}
    county = grid["code"][:6] + "000000"
    with TestClient(create_app(Settings(database_url=grids_db))) as client:
        _signed_in_fast(client, grids_db, params, county)


def _signed_in_fast(client: TestClient, grids_db: str, params: dict[str, float],
                    county: str) -> None:
    audit = client.app.state.audit
    engine = create_engine(grids_db, poolclass=NullPool)
    for role, name in (("dispatcher", "fast-dispatcher"), ("analyst", "fast-analyst")):
        token = token_for(grids_db, name, role, (county,))
        assert _fast(client.app, params, token) is None  # not resolved yet: the framework's
        framework = client.get("/api/locate", params={**params, "via": "fastapi"},
                               headers=bearer(token))
        audit.flush()
        with engine.connect() as conn:
            before = len(accounts.read_audit(conn, user=name))
        fast = _fast(client.app, params, token)
        assert fast is not None and json.loads(fast) == framework.json()
        phones = [w["phone"] for w in json.loads(fast)["workers"]]
        assert phones and all(phones)
        assert all("*" in phone for phone in phones) == (role == "analyst")
        assert audit.flush()
        with engine.connect() as conn:
            entries = accounts.read_audit(conn, user=name)
        if role == "dispatcher":  # a read of workers' phones, one entry per answer
            assert len(entries) == before + 1
            assert entries[0]["target"] == "GET /api/locate"
            assert entries[0]["divisions"] == [json.loads(fast)["grid"]["code"]]
            assert entries[0]["detail"] == "worker phones" and entries[0]["row_ids"] is None
            assert entries[0]["detail_notes"] == [{"key": "read_worker_phones", "values": {}}]
        else:  # masked phones are no read of personal data
            assert len(entries) == before
    with engine.begin() as conn:
        access.set_disabled(conn, "fast-analyst", True, actor=access.CLI)
    engine.dispose()
    wait_for_notice(client.app)
    assert _fast(client.app, params, token) is None
    res = client.get("/api/locate", params=params, headers=bearer(token))
    assert res.status_code == 401 and "revoked" in res.json()["detail"]
