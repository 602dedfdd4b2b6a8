"""Incident indicators and hotspots over HTTP: cases made and walked through the API plus
historical cases inserted directly (as an import leaves them: no timeline, no deadlines);
the numbers checked by hand, the CSV, the planted hotspot, scope, and bad parameters."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import geopandas as gpd
import h3
import psycopg
import pytest
from fastapi.testclient import TestClient

from gridmap.api.app import create_app
from gridmap.demodata import DEMO_DIR, DEMO_FILES
from gridmap.settings import Settings
from tests.helpers import bearer, token_for

TOWNSHIP, FAR_TOWNSHIP = "610199001000", "610199002000"
GRID, OTHER_GRID = "610199001001001", "610199001001002"  # one community
PLANTED = "610199001003001"  # the same township, another community
FAR_GRID = "610199002021001"
GARBAGE = "事件/市容环境/暴露垃圾"
WALK = [("dispatcher", "register"), ("dispatcher", "dispatch"), ("worker", "accept"),
        ("worker", "feed_back"), ("dispatcher", "verify"), ("dispatcher", "close")]


@pytest.fixture(scope="module")
def database(grids_db: str) -> str:
    return grids_db  # the demo's divisions, grids and workers, this module's own


@pytest.fixture(scope="module")
def client(database: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=database))) as c:
        yield c


@pytest.fixture(scope="module")
def who(database: str) -> dict[str, dict[str, str]]:
    return {
        "admin": bearer(token_for(database, "stats-admin", "admin")),
        "dispatcher": bearer(token_for(database, "stats-dispatcher", "dispatcher",
                                       (TOWNSHIP,))),
        "worker": bearer(token_for(database, "stats-worker", "grid_worker", (GRID,))),
        "other_worker": bearer(token_for(database, "stats-worker2", "grid_worker",
                                         (OTHER_GRID,))),
        "analyst": bearer(token_for(database, "stats-analyst", "analyst", (TOWNSHIP,))),
        "far": bearer(token_for(database, "stats-far", "dispatcher", (FAR_TOWNSHIP,))),
        "public": {},
    }


@pytest.fixture(scope="module")
def points() -> dict[str, tuple[float, float]]:
    grids = gpd.read_file(DEMO_DIR / DEMO_FILES["grids"]).set_index("code")
    out = {}
    for code in (GRID, OTHER_GRID, PLANTED, FAR_GRID):
        p = grids.loc[code].geometry.buffer(-0.0005).representative_point()
        out[code] = (p.x, p.y)
    return out


def _report(client: TestClient, headers: dict[str, str], point: tuple[float, float]) -> Any:
    res = client.post("/api/incidents", headers=headers, json={
        "lon": point[0], "lat": point[1], "category": GARBAGE, "description": "垃圾"})
    assert res.status_code == 201, res.text
    return res


def _step(client: TestClient, headers: dict[str, str], case: Any, action: str,
          note: str | None = None) -> Any:
    res = client.post(f"/api/incidents/{case.json()['id']}/actions", headers={
        **headers, "If-Match": case.headers["etag"]}, json={"action": action, "note": note})
    assert res.status_code == 200, (action, res.text)
    return res


@pytest.fixture(scope="module")
def cases(client: TestClient, who: dict[str, dict[str, str]],
          points: dict[str, tuple[float, float]], database: str) -> dict[str, Any]:
    """Through the API, now: in GRID a closed case (A), a returned one (B), a cancelled one
    (C) and a new one (D); in OTHER_GRID a closed one (E).

    Inserted, in the past (weeks counted back from now): GRID two closed cases a week for
    the 8 weeks before this one and one in handling past its deadline 10 days ago;
    PLANTED 12 cases this week and one a week before (the surge), with their grid but
    neither community nor township (as imports leave them); FAR_GRID 12 this week."""
    start = datetime.now(UTC)
    made: dict[str, Any] = {}
    a = _report(client, who["dispatcher"], points[GRID])
    for role, action in WALK:
        a = _step(client, who[role], a, action)
    made["A"] = a
    b = _report(client, who["dispatcher"], points[GRID])
    for role, action in WALK[:2]:
        b = _step(client, who[role], b, action)
    made["B"] = _step(client, who["worker"], b, "return", "不属于本网格")
    made["C"] = _step(client, who["dispatcher"], _report(client, who["dispatcher"],
                                                         points[GRID]), "cancel", "重复")
    made["D"] = _report(client, who["dispatcher"], points[GRID])
    e = _report(client, who["dispatcher"], points[OTHER_GRID])
    for role, action in WALK:
        e = _step(client, who["other_worker" if role == "worker" else role], e, action)
    made["E"] = e

    now = datetime.now(UTC)
    rows: list[tuple[Any, ...]] = []

    def add(grid: str, days_ago: float, status: str = "closed",
            handle_due: datetime | None = None) -> None:
        lon, lat = points[grid]
        # as an import leaves them, the planted grid's cases know only their grid
        community, township = (None, None) if grid == PLANTED else (grid[:12],
                                                                    grid[:9] + "000")
        rows.append((f"H{len(rows):05d}", GARBAGE, "历史", now - timedelta(days=days_ago),
                     status, grid, community, township, handle_due, lon, lat))

    for week in range(1, 9):
        add(GRID, 7 * week + 2)
        add(GRID, 7 * week + 5)
        add(PLANTED, 7 * week + 3, "collected")
    add(GRID, 10, "handling", handle_due=now - timedelta(days=8))
    for i in range(12):
        add(PLANTED, 0.5 + i / 2, "collected")
        add(FAR_GRID, 0.5 + i / 2, "collected")
    with psycopg.connect(database.replace("+psycopg", ""), autocommit=True) as conn:
        conn.cursor().executemany(
            "INSERT INTO incident (id, category, description, reported_at, status, grid_code,"
            " community_code, township_code, handle_due, geom) VALUES (%s, %s, %s, %s, %s, %s,"
            " %s, %s, %s, ST_SetSRID(ST_MakePoint(%s, %s), 4326))", rows)
        made["workers"] = dict(conn.execute("SELECT id, name FROM grid_worker").fetchall())
    made["start"] = start
    return made


def _kpis(client: TestClient, headers: dict[str, str], **params: Any) -> Any:
    return client.get("/api/incidents/kpis", params=params, headers=headers)


def test_kpis_of_the_cases_made_through_the_api(client: TestClient,
                                                who: dict[str, dict[str, str]],
                                                cases: dict[str, Any]) -> None:
    since = (cases["start"] - timedelta(seconds=1)).isoformat()
    res = _kpis(client, who["dispatcher"], by="grid", since=since)
    assert res.status_code == 200, res.text
    rows = {r["unit"]: r for r in res.json()}
    assert set(rows) == {GRID, OTHER_GRID}  # the inserted cases are older
    g = rows[GRID]
    assert (g["cases"], g["cancelled"], g["closed"], g["returned"], g["overdue"]) == (
        4, 1, 1, 1, 0)
    assert g["closure_rate"] == pytest.approx(1 / 3)  # A of A, B, D
    assert (g["closed_with_deadline"], g["closed_on_time"], g["on_time_rate"]) == (1, 1, 1.0)
    # A left every stage up to verified; B left collected, registered and dispatched
    assert set(g["median_hours"]) == {"collected", "registered", "dispatched", "handling",
                                      "reported", "verified"}
    assert all(0 <= h < 0.1 for h in g["median_hours"].values())
    assert g["name"]  # the grid's name
    o = rows[OTHER_GRID]
    assert (o["cases"], o["closed"], o["closure_rate"], o["on_time_rate"]) == (1, 1, 1.0, 1.0)


def test_kpis_over_all_time_count_the_imported_cases_too(
        client: TestClient, who: dict[str, dict[str, str]], cases: dict[str, Any]) -> None:
    rows = {r["unit"]: r for r in _kpis(client, who["dispatcher"], by="grid").json()}
    assert set(rows) == {GRID, OTHER_GRID, PLANTED}
    g = rows[GRID]
    assert (g["cases"], g["cancelled"], g["closed"]) == (4 + 17, 1, 1 + 16)
    assert g["closure_rate"] == pytest.approx(17 / 20)
    assert (g["closed_with_deadline"], g["on_time_rate"]) == (1, 1.0)  # imports: no deadline
    assert g["overdue"] == 1  # the case in handling since 10 days
    p = rows[PLANTED]
    assert (p["cases"], p["closed"], p["closure_rate"], p["median_hours"]) == (20, 0, 0.0, {})
    township = _kpis(client, who["dispatcher"], by="township").json()  # PLANTED's too
    assert [(r["unit"], r["cases"]) for r in township] == [(TOWNSHIP, 21 + 1 + 20)]
    assert township[0]["name"]
    monthly = _kpis(client, who["dispatcher"], by="community", period="month").json()
    assert sum(r["cases"] for r in monthly) == 42 and all(r["period"] for r in monthly)


def test_kpis_as_csv(client: TestClient, who: dict[str, dict[str, str]],
                     cases: dict[str, Any]) -> None:
    as_json = _kpis(client, who["dispatcher"], by="grid").json()
    res = _kpis(client, who["dispatcher"], by="grid", format="csv")
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/csv")
    assert "attachment" in res.headers["content-disposition"]
    assert res.content.startswith(b"\xef\xbb\xbf")  # spreadsheets read it as UTF-8
    rows = list(csv.DictReader(io.StringIO(res.content.decode("utf-8-sig"))))
    assert [r["unit"] for r in rows] == [r["unit"] for r in as_json]
    by_unit = {r["unit"]: r for r in rows}
    assert by_unit[GRID]["cases"] == "21" and float(by_unit[GRID]["closure_rate"]) == 0.85
    assert by_unit[PLANTED]["median_hours_handling"] == ""  # none measured
    assert float(by_unit[GRID]["median_hours_collected"]) == pytest.approx(
        next(r for r in as_json if r["unit"] == GRID)["median_hours"]["collected"])


def test_worker_names_as_each_role_sees_them(client: TestClient,
                                             who: dict[str, dict[str, str]],
                                             cases: dict[str, Any]) -> None:
    assignee = cases["A"].json()["assignee"]
    full_name = cases["workers"][assignee]
    seen = {}
    for role in ("dispatcher", "analyst"):
        rows = _kpis(client, who[role], by="worker").json()
        seen[role] = {r["unit"]: r for r in rows}
        assert seen[role][assignee]["cases"] == 4  # A, B, C, D: GRID's full-time worker
        assert seen[role][None]["cases"] == 37  # the inserted cases: nobody assigned
    assert seen["dispatcher"][assignee]["name"] == full_name
    assert seen["analyst"][assignee]["name"] == full_name[0] + "*" * (len(full_name) - 1)
    csv_text = _kpis(client, who["analyst"], by="worker", format="csv").content.decode(
        "utf-8-sig")
    assert full_name not in csv_text
    log = client.get("/api/audit", params={"user": "stats-dispatcher"},
                     headers=who["admin"]).json()
    assert any(e["detail"] == "worker names (incident KPIs)" for e in log)


def test_hotspots_flag_the_planted_grid(client: TestClient, who: dict[str, dict[str, str]],
                                        cases: dict[str, Any]) -> None:
    res = client.get("/api/incidents/hotspots", headers=who["dispatcher"])
    assert res.status_code == 200, res.text
    body = res.json()
    assert (body["days"], body["history"], body["alpha"], body["floor"]) == (7, 8, 0.01, 0.5)
    units = {u["unit"]: u for u in body["units"]}
    assert set(units) == {GRID, OTHER_GRID, PLANTED}
    assert [u["unit"] for u in body["units"] if u["flagged"]] == [PLANTED]
    p = units[PLANTED]
    assert (p["current"], p["baseline_mean"], p["threshold"]) == (12, 1.0, 4)
    assert p["p_value"] < 1e-7 and p["name"]
    g = units[GRID]  # 4 cases this week against 17 in 8 weeks: as usual
    assert (g["current"], g["baseline_mean"]) == (4, 17 / 8) and not g["flagged"]
    assert units[OTHER_GRID]["current"] == 1 and not units[OTHER_GRID]["flagged"]
    assert body["units"][0]["unit"] == PLANTED

    geo = client.get("/api/incidents/hotspots", params={"format": "geojson"},
                     headers=who["dispatcher"])
    assert geo.headers["content-type"].startswith("application/geo+json")
    fc = geo.json()
    assert fc["type"] == "FeatureCollection" and fc["days"] == 7
    flagged = [f for f in fc["features"] if f["properties"]["flagged"]]
    assert [f["properties"]["unit"] for f in flagged] == [PLANTED]
    assert flagged[0]["geometry"]["type"] in ("Polygon", "MultiPolygon")



def test_hotspots_per_h3_cell(client: TestClient, who: dict[str, dict[str, str]],
                              points: dict[str, tuple[float, float]],
                              cases: dict[str, Any]) -> None:
    res = client.get("/api/incidents/hotspots", params={"unit": "h3", "format": "geojson"},
                     headers=who["dispatcher"])
    assert res.status_code == 200, res.text
    fc = res.json()
    planted = h3.latlng_to_cell(points[PLANTED][1], points[PLANTED][0], 9)
    assert fc["resolution"] == 9
    assert [f["properties"]["unit"] for f in fc["features"]
            if f["properties"]["flagged"]] == [planted]
    far_cell = h3.latlng_to_cell(points[FAR_GRID][1], points[FAR_GRID][0], 9)
    assert far_cell not in {f["properties"]["unit"] for f in fc["features"]}
    coarse = client.get("/api/incidents/hotspots", params={"unit": "h3", "resolution": 6},
                        headers=who["dispatcher"]).json()
    assert all(h3.get_resolution(u["unit"]) == 6 for u in coarse["units"])


def test_scope(client: TestClient, who: dict[str, dict[str, str]],
               cases: dict[str, Any]) -> None:
    ours = {GRID, OTHER_GRID, PLANTED}
    far = _kpis(client, who["far"], by="grid").json()
    assert [r["unit"] for r in far] == [FAR_GRID]
    far_workers = _kpis(client, who["far"], by="worker").json()
    assert sum(r["cases"] for r in far_workers) == 12
    hot = client.get("/api/incidents/hotspots", headers=who["far"]).json()
    assert [u["unit"] for u in hot["units"]] == [FAR_GRID] and hot["units"][0]["flagged"]
    geo = client.get("/api/incidents/hotspots", params={"format": "geojson"},
                     headers=who["far"]).json()
    assert {f["properties"]["unit"] for f in geo["features"]} == {FAR_GRID}
    mine = _kpis(client, who["worker"], by="grid").json()
    assert [r["unit"] for r in mine] == [GRID]
    admin = {r["unit"] for r in _kpis(client, who["admin"], by="grid").json()}
    assert admin == ours | {FAR_GRID}
    flagged = {u["unit"] for u in client.get("/api/incidents/hotspots",
                                             headers=who["admin"]).json()["units"]
               if u["flagged"]}
    assert flagged == {PLANTED, FAR_GRID}
    for path in ("/api/incidents/kpis", "/api/incidents/hotspots"):
        res = client.get(path, headers=who["public"])
        assert res.status_code == 401 and res.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("path", "params"), [
    ("kpis", {"by": "colour"}), ("kpis", {"period": "year"}), ("kpis", {"format": "xml"}),
    ("kpis", {"by": "grid\x00"}), ("kpis", {"since": "\x00"}),
    ("kpis", {"since": "2026-11-02T00:00:00Z", "until": "2026-11-01T00:00:00Z"}),
    ("kpis", {"since": "2026-11-01T00:00:00Z", "until": "2026-11-01T00:00:00Z"}),
    ("kpis", {"since": "yesterday"}), ("kpis", {"until": "1000-01-01T00:00:00"}),
    ("hotspots", {"days": 0}), ("hotspots", {"days": -7}), ("hotspots", {"days": 10_000}),
    ("hotspots", {"history": 0}), ("hotspots", {"alpha": 0}), ("hotspots", {"alpha": 1e-300}),
    ("hotspots", {"alpha": "nan"}),
    ("hotspots", {"alpha": 1}), ("hotspots", {"unit": "street"}),
    ("hotspots", {"resolution": 20}), ("hotspots", {"format": "csv"}),
    ("hotspots", {"unit": "h3\x00"}), ("hotspots", {"until": "9999-12-31T23:59:59"}),
])
def test_bad_parameters_are_422(client: TestClient, who: dict[str, dict[str, str]],
                                path: str, params: dict[str, Any]) -> None:
    res = client.get(f"/api/incidents/{path}", params=params, headers=who["dispatcher"])
    assert res.status_code == 422, res.text
    assert res.json()["detail"]


def test_naive_times_are_in_the_deployments_zone(client: TestClient,
                                                 who: dict[str, dict[str, str]],
                                                 cases: dict[str, Any]) -> None:
    """Beijing is UTC+8: a naive ``until`` 8 hours after the start (as Beijing time) is the
    start itself, so nothing made since falls before it."""
    start = cases["start"] - timedelta(seconds=1)
    naive = (start + timedelta(hours=8)).replace(tzinfo=None).isoformat()
    rows = _kpis(client, who["dispatcher"], since=(start - timedelta(hours=1)).isoformat(),
                 until=naive).json()
    assert rows == []


def test_an_empty_window_is_an_empty_answer(client: TestClient,
                                            who: dict[str, dict[str, str]],
                                            cases: dict[str, Any]) -> None:
    before = {"until": "2000-01-01T00:00:00Z"}
    for params in ({}, {"format": "geojson"}, {"unit": "h3"}, {"unit": "h3",
                                                               "format": "geojson"}):
        res = client.get("/api/incidents/hotspots", params={**before, **params},
                         headers=who["dispatcher"])
        assert res.status_code == 200, res.text
        body = res.json()
        assert body["units" if "units" in body else "features"] == []
    assert _kpis(client, who["dispatcher"], **before).json() == []
    header = _kpis(client, who["dispatcher"], format="csv", **before).content
    assert header.decode("utf-8-sig").startswith("unit,name,cases,")
