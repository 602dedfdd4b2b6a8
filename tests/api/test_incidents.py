"""Incidents from report to evaluation: intake routed in one transaction, the stages with only
their allowed steps, optimistic locking, returns, cancellations, routing outside every grid,
who may do what, and the timeline."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import geopandas as gpd
import psycopg
import pytest
from fastapi.testclient import TestClient

from gridmap.api.app import create_app
from gridmap.demodata import DEMO_DIR, DEMO_FILES
from gridmap.domain.incidents import load_categories
from gridmap.domain.worktime import WorkCalendar, deadline
from gridmap.settings import Settings
from tests.helpers import bearer, token_for

TOWNSHIP, GRID, OTHER_GRID = "610199001000", "610199001001001", "610199001001002"
GARBAGE = "事件/市容环境/暴露垃圾"


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
        "dispatcher": bearer(token_for(database, "inc-dispatcher", "dispatcher", (TOWNSHIP,))),
        "worker": bearer(token_for(database, "inc-worker", "grid_worker", (GRID,))),
        "other_worker": bearer(token_for(database, "inc-worker2", "grid_worker", (OTHER_GRID,))),
        "planner": bearer(token_for(database, "inc-planner", "planner", (TOWNSHIP,))),
        "analyst": bearer(token_for(database, "inc-analyst", "analyst", (TOWNSHIP,))),
        "far": bearer(token_for(database, "inc-far", "dispatcher", ("610199002000",))),
    }


@pytest.fixture(scope="module")
def points() -> dict[str, tuple[float, float]]:
    grids = gpd.read_file(DEMO_DIR / DEMO_FILES["grids"]).set_index("code")
    inside = grids.loc[GRID].geometry.buffer(-0.0005).representative_point()
    other = grids.loc[OTHER_GRID].geometry.buffer(-0.0005).representative_point()
    return {"grid": (inside.x, inside.y), "other": (other.x, other.y)}


def report(client: TestClient, headers: dict[str, str], point: tuple[float, float],
           **extra: Any) -> Any:
    return client.post("/api/incidents", headers=headers, json={
        "lon": point[0], "lat": point[1], "category": GARBAGE, "description": "垃圾堆在路边",
        "reporter": "王先生 13812345678", **extra})


def township_without_grids(database: str, code: str, name: str,
                           corner: tuple[float, float]) -> str:
    """A township of the county whose grids are not drawn yet: a 0.02° square north-east of
    *corner* (lon, lat), beside the demo's grids. Returns its code."""
    with psycopg.connect(database.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("INSERT INTO division (code, name, level, parent_code, geom) VALUES "
                     "(%s, %s, 'township', '610199000000', ST_Multi(ST_MakeEnvelope("
                     "%s, %s, %s, %s, 4326)))",
                     (code, name, *corner, corner[0] + 0.02, corner[1] + 0.02))
    return code


def step(client: TestClient, headers: dict[str, str], case: Any, action: str,
         **body: Any) -> Any:
    etag = case.headers["etag"] if hasattr(case, "headers") else case
    return client.post(f"/api/incidents/{case.json()['id']}/actions", headers={
        **headers, "If-Match": etag}, json={"action": action, **body})


def test_a_case_walks_every_stage(client: TestClient, who: dict[str, dict[str, str]],
                                  points: dict[str, tuple[float, float]], database: str
                                  ) -> None:
    case = report(client, who["dispatcher"], points["grid"])
    assert case.status_code == 201, case.text
    body = case.json()
    assert body["status"] == "collected" and body["grid_code"] == GRID
    assert body["community_code"] == GRID[:12] and body["township_code"] == TOWNSHIP
    assert body["assignee"] and body["warnings"] == []
    assert case.headers["location"] == f"/api/incidents/{body['id']}"
    walk = [("dispatcher", "register", "registered"), ("dispatcher", "dispatch", "dispatched"),
            ("worker", "accept", "handling"), ("worker", "feed_back", "reported"),
            ("dispatcher", "verify", "verified"), ("dispatcher", "close", "closed"),
            ("dispatcher", "evaluate", "evaluated")]
    for role, action, stage in walk:
        before = case.headers["etag"]
        case = step(client, who[role], case, action, note=f"{action} done")
        assert case.status_code == 200, (action, case.text)
        assert case.json()["status"] == stage and case.headers["etag"] != before
        if action == "dispatch":
            limit = load_categories()[GARBAGE]
            dispatched = datetime.fromisoformat(case.json()["updated_at"])
            due = datetime.fromisoformat(case.json()["handle_due"])
            expected = deadline(dispatched, limit.limit, limit.limit_unit, WorkCalendar())
            assert abs((due - expected).total_seconds()) < 5  # same rule, same calendar
        if action == "feed_back":
            assert case.json()["verify_due"]
    final = client.get(f"/api/incidents/{body['id']}", headers=who["dispatcher"]).json()
    assert [e["action"] for e in final["timeline"]] == ["collect"] + [a for _, a, _ in walk]
    assert {e["actor"] for e in final["timeline"]} == {"inc-dispatcher", "inc-worker"}
    assert final["next_actions"] == [] and final["closed_at"]
    with psycopg.connect(database.replace("+psycopg", "")) as conn:
        writes = conn.execute("SELECT count(*) FROM audit_log WHERE action = 'write' AND "
                              "%s = ANY(row_ids)", (body["id"],)).fetchone()
        assert writes == (8,)
        with pytest.raises(psycopg.Error, match="append-only"):
            conn.execute("DELETE FROM incident_event")


def test_an_illegal_step_is_409_naming_the_allowed_ones(
        client: TestClient, who: dict[str, dict[str, str]],
        points: dict[str, tuple[float, float]]) -> None:
    case = report(client, who["dispatcher"], points["grid"])
    res = step(client, who["dispatcher"], case, "close")
    assert res.status_code == 409
    assert set(res.json()["allowed"]) == {"register", "cancel"}
    assert "register" in res.json()["detail"]
    again = client.get(f"/api/incidents/{case.json()['id']}", headers=who["dispatcher"])
    assert again.headers["etag"] == case.headers["etag"]  # unchanged


def test_stale_and_missing_versions(client: TestClient, who: dict[str, dict[str, str]],
                                    points: dict[str, tuple[float, float]]) -> None:
    case = report(client, who["dispatcher"], points["grid"])
    first = step(client, who["dispatcher"], case, "register")  # one dispatcher moves it …
    assert first.status_code == 200
    second = step(client, who["dispatcher"], case, "cancel", note="duplicate")  # … the other
    assert second.status_code == 412 and "changed since you read it" in second.json()["detail"]
    missing = client.post(f"/api/incidents/{case.json()['id']}/actions",
                          headers=who["dispatcher"], json={"action": "dispatch"})
    assert missing.status_code == 428
    bad = client.post(f"/api/incidents/{case.json()['id']}/actions", headers={
        **who["dispatcher"], "If-Match": "yesterday"}, json={"action": "dispatch"})
    # not an ETag at all: the precondition cannot hold (412), and the answer says what to send
    assert bad.status_code == 412 and "is not an ETag" in bad.json()["detail"]
    now = client.get(f"/api/incidents/{case.json()['id']}", headers=who["dispatcher"]).json()
    assert now["status"] == "registered" and now["version"] == 2


def test_return_redispatch_reject_and_cancel(client: TestClient,
                                             who: dict[str, dict[str, str]],
                                             points: dict[str, tuple[float, float]]) -> None:
    case = report(client, who["dispatcher"], points["grid"])
    case = step(client, who["dispatcher"], case, "register")
    case = step(client, who["dispatcher"], case, "dispatch")
    no_reason = step(client, who["worker"], case, "return")
    assert no_reason.status_code == 422 and "reason" in no_reason.json()["detail"]
    case = step(client, who["worker"], case, "return", note="不属于本网格")
    assert case.json()["status"] == "returned"
    case = step(client, who["dispatcher"], case, "dispatch")
    case = step(client, who["worker"], case, "accept")
    case = step(client, who["worker"], case, "feed_back", note="已清理")
    case = step(client, who["dispatcher"], case, "reject", note="现场仍有垃圾")
    assert case.json()["status"] == "handling"
    other = report(client, who["dispatcher"], points["grid"])
    cancelled = step(client, who["dispatcher"], other, "cancel", note="重复上报")
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["next_actions"] == []


def test_who_may_do_what(client: TestClient, who: dict[str, dict[str, str]],
                         points: dict[str, tuple[float, float]]) -> None:
    assert report(client, {}, points["grid"]).status_code == 401
    assert report(client, who["analyst"], points["grid"]).status_code == 403
    assert report(client, who["planner"], points["grid"]).status_code == 403
    assert report(client, who["far"], points["grid"]).status_code == 404  # not their township
    assert report(client, who["other_worker"], points["grid"]).status_code == 404
    case = report(client, who["worker"], points["grid"])  # a worker reports from the street
    assert case.status_code == 201
    assert step(client, who["worker"], case, "register").status_code == 403
    assert step(client, who["planner"], case, "register").status_code == 403
    cid = case.json()["id"]
    assert client.get(f"/api/incidents/{cid}", headers=who["other_worker"]).status_code == 404
    assert client.get(f"/api/incidents/{cid}", headers=who["far"]).status_code == 404
    seen = client.get(f"/api/incidents/{cid}", headers=who["analyst"]).json()
    assert "reporter" not in seen and "description" not in seen and seen["next_actions"] == []
    full = client.get(f"/api/incidents/{cid}", headers=who["dispatcher"]).json()
    assert full["reporter"] == "王先生 13812345678"
    mine = client.get("/api/incidents", headers=who["other_worker"]).json()
    assert cid not in {c["id"] for c in mine}


def test_outside_every_grid_the_township_gets_it_and_it_can_be_routed(
        client: TestClient, database: str) -> None:
    new_township = township_without_grids(database, "610199009000", "新区街道", (109.50, 34.50))
    county = bearer(token_for(database, "inc-county", "dispatcher", ("610199000000",)))
    res = report(client, county, (109.51, 34.51))
    assert res.status_code == 201, res.text
    body = res.json()
    assert body["grid_code"] is None and body["township_code"] == new_township
    assert "outside every grid" in body["warnings"][0]
    blocked = step(client, county, step(client, county, res, "register"), "dispatch")
    assert blocked.status_code == 422 and "route" in blocked.json()["detail"]
    current = client.get(f"/api/incidents/{body['id']}", headers=county)
    routed = client.post(f"/api/incidents/{body['id']}/route", headers={
        **county, "If-Match": current.headers["etag"]},
        json={"grid_code": GRID, "reason": "新区尚未划网格，暂归该网格"})
    assert routed.status_code == 200, routed.text
    assert routed.json()["grid_code"] == GRID and routed.json()["assignee"]
    assert step(client, county, routed, "dispatch").status_code == 200
    township_only = bearer(token_for(database, "inc-new", "dispatcher", (new_township,)))
    assert client.get(f"/api/incidents/{body['id']}", headers=township_only).status_code \
        == 404  # routed away: now the grid's township's case


@pytest.mark.parametrize(("change", "status", "phrase"), [
    ({"category": "事件/不存在/没有"}, 422, "unknown category"),
    ({"lon": 116.4, "lat": 39.9}, 422, "outside every township"),
    ({"description": "bad \x00 byte"}, 422, "NUL"),
    ({"lon": 500}, 422, ""),
    ({"crs": "epsg:3857"}, 422, ""),
])
def test_bad_reports_are_4xx_and_write_nothing(client: TestClient,
                                               who: dict[str, dict[str, str]],
                                               points: dict[str, tuple[float, float]],
                                               database: str, change: dict[str, Any],
                                               status: int, phrase: str) -> None:
    with psycopg.connect(database.replace("+psycopg", "")) as conn:
        before = conn.execute("SELECT count(*) FROM incident").fetchone()
    x, y = points["grid"]
    res = client.post("/api/incidents", headers=who["dispatcher"], json={
        "lon": x, "lat": y, "category": GARBAGE, **change})
    assert res.status_code == status and phrase in str(res.json()["detail"])
    with psycopg.connect(database.replace("+psycopg", "")) as conn:
        assert conn.execute("SELECT count(*) FROM incident").fetchone() == before


def test_the_overdue_queue(client: TestClient, who: dict[str, dict[str, str]],
                           points: dict[str, tuple[float, float]], database: str) -> None:
    case = report(client, who["dispatcher"], points["grid"]).json()
    with psycopg.connect(database.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("UPDATE incident SET dispatch_due = now() - interval '1 hour' "
                     "WHERE id = %s", (case["id"],))
    queue = client.get("/api/incidents", params={"overdue": "true"},
                       headers=who["dispatcher"]).json()
    late = {c["id"]: c for c in queue}
    assert case["id"] in late and late[case["id"]]["overdue"] == ["dispatch"]
    assert client.get("/api/incidents", params={"overdue": "true"},
                      headers=who["far"]).json() == []
    categories = client.get("/api/incident-categories", headers=who["dispatcher"]).json()
    assert GARBAGE in {c["code"] for c in categories}


def test_overdue_cases_are_warned_then_escalated_once_across_a_holiday(
        client: TestClient, who: dict[str, dict[str, str]],
        points: dict[str, tuple[float, float]], database: str) -> None:
    from zoneinfo import ZoneInfo

    from sqlalchemy import create_engine

    from gridmap.incidents import escalate_overdue

    tz = ZoneInfo("Asia/Shanghai")
    # dispatched on the eve of National Day 2026, Wednesday 30 September 16:00, with a limit
    # of one working day: 1–7 October are public holidays (chinese_calendar 2026), so by hand
    # the case is due on the first working day after them, Thursday 8 October at 16:00
    dispatched = datetime(2026, 9, 30, 16, 0, tzinfo=tz)
    due = deadline(dispatched, 1, "working_days", WorkCalendar())
    assert due == datetime(2026, 10, 8, 16, 0, tzinfo=tz)
    case = report(client, who["dispatcher"], points["grid"])
    case = step(client, who["dispatcher"], case, "register")
    case = step(client, who["dispatcher"], case, "dispatch")
    cid = case.json()["id"]
    with psycopg.connect(database.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("UPDATE incident SET handle_due = %s WHERE id = %s", (due, cid))
        supervisor = conn.execute("SELECT id FROM grid_worker WHERE role = 'supervisor' AND "
                                  "division_code = %s ORDER BY id LIMIT 1",
                                  (TOWNSHIP,)).fetchone()
    engine = create_engine(database)

    def round_at(hour: int, minute: int, day: int = 8) -> list[str]:
        done = escalate_overdue(engine, now=datetime(2026, 10, day, hour, minute, tzinfo=tz))
        return [action for i, action in done if i == cid]

    assert round_at(12, 0, day=5) == []           # the holiday: nothing near yet
    assert round_at(14, 59) == []                 # more than an hour before
    assert round_at(15, 1) == ["warn_handling"]   # within the hour: the worker is warned
    assert round_at(15, 30) == []                 # once
    assert round_at(16, 1) == ["escalate_handling"]  # past it: 超期督办 to the supervisor
    assert round_at(17, 0) == []                  # once, whichever process runs the round
    engine.dispose()
    timeline = client.get(f"/api/incidents/{cid}", headers=who["dispatcher"]).json()["timeline"]
    escalation = next(e for e in timeline if e["action"] == "escalate_handling")
    assert escalation["assignee"] == supervisor[0] and escalation["role"] == "system"
    assert "2026-10-08 16:00" in escalation["note"]
    warning = next(e for e in timeline if e["action"] == "warn_handling")
    assert warning["assignee"] == case.json()["assignee"]


def test_a_short_deadline_warns_in_its_last_quarter_not_on_arrival(
        client: TestClient, who: dict[str, dict[str, str]],
        points: dict[str, tuple[float, float]], database: str) -> None:
    """A dispatch deadline (10 or 30 minutes) is shorter than the hour's warning: the case is
    warned when a quarter of its time is left, not the moment it arrives (which would warn
    every new case and make each round of the job one large insert)."""
    from sqlalchemy import create_engine

    from gridmap.incidents import escalate_overdue

    case = report(client, who["dispatcher"], points["grid"]).json()
    cid = case["id"]
    reported = datetime.fromisoformat(case["reported_at"])
    due = datetime.fromisoformat(case["dispatch_due"])
    allowed = due - reported
    assert allowed <= timedelta(minutes=30)
    engine = create_engine(database)

    def round_at(at: datetime) -> list[str]:
        return [action for i, action in escalate_overdue(engine, now=at) if i == cid]

    assert round_at(reported + timedelta(seconds=30)) == []      # just arrived
    assert round_at(due - allowed / 4 - timedelta(seconds=5)) == []  # three quarters gone, not yet
    assert round_at(due - allowed / 4 + timedelta(seconds=5)) == ["warn_dispatch"]
    assert round_at(due + timedelta(seconds=1)) == ["escalate_dispatch"]
    engine.dispose()



def race(base: str, headers: dict[str, str], incident_id: str, etag: str,
         actions: list[str]) -> list[int]:
    """Each of *actions* sent at the same moment from a thread of its own, with *etag*:
    the statuses of the answers."""
    import threading

    import httpx

    barrier = threading.Barrier(len(actions))
    answers: list[int] = []

    def send(action: str) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
            barrier.wait()
            res = http.post(f"/api/incidents/{incident_id}/actions", json={
                "action": action, "note": "duplicate"}, headers={"If-Match": etag})
            answers.append(res.status_code)

    threads = [threading.Thread(target=send, args=(a,)) for a in actions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return answers


def test_concurrent_steps_on_one_version_one_wins_the_others_get_412(
        database: str, who: dict[str, dict[str, str]],
        points: dict[str, tuple[float, float]]) -> None:
    """Eight dispatchers who read the same version send their step at the same moment,
    over HTTP to a served app: the row lock lets exactly one through; the others get 412
    and the case and its timeline hold that one step only."""
    import httpx

    from tests.conftest import serve_in_thread

    for base in serve_in_thread(database):
        with httpx.Client(base_url=base, headers=who["dispatcher"], timeout=60) as http:
            case = http.post("/api/incidents", json={
                "lon": points["grid"][0], "lat": points["grid"][1], "category": GARBAGE})
            assert case.status_code == 201, case.text
            cid = case.json()["id"]
            answers = race(base, who["dispatcher"], cid, case.headers["etag"],
                           ["register", "cancel"] * 4)
            now = http.get(f"/api/incidents/{cid}").json()
    assert sorted(answers) == [200] + [412] * 7, answers
    assert now["version"] == 2 and now["status"] in ("registered", "cancelled")
    assert [e["action"] for e in now["timeline"]] == [
        "collect", "register" if now["status"] == "registered" else "cancel"]


def test_a_report_that_waits_too_long_for_a_connection_is_told_to_retry(
        database: str, points: dict[str, tuple[float, float]]) -> None:
    """Under more reports than the intake pool serves, one that waits past the pool's limit
    is refused as busy (503 with Retry-After, stored nowhere), not as a missing database."""
    import asyncio

    from psycopg_pool import AsyncConnectionPool

    from gridmap import incidents
    from gridmap.access import CLI_PRINCIPAL
    from gridmap.api.errors import status_of
    from gridmap.store.db import libpq_dsn
    from gridmap.store.photos import PhotoFiles

    settings = Settings(database_url=database)
    workflow = incidents.Workflow(load_categories(settings.incident_categories),
                                  settings.work_calendar(), PhotoFiles(settings.photo_folder()))
    sent = incidents.Report(lon=points["grid"][0], lat=points["grid"][1], category=GARBAGE,
                            description="waits too long")

    async def crowded() -> tuple[Exception | None, str]:
        async with AsyncConnectionPool(libpq_dsn(database), min_size=1, max_size=1,
                                       timeout=0.5, kwargs={"autocommit": True}) as pool:
            async with pool.connection():  # another report holds the only connection
                try:
                    await incidents.report_async(pool, CLI_PRINCIPAL, sent, workflow,
                                                 client="test")
                except incidents.IntakeBusy as exc:
                    refused: Exception | None = exc
                else:
                    refused = None
            case, _ = await incidents.report_async(pool, CLI_PRINCIPAL, sent, workflow,
                                                   client="test")  # its turn: taken
        return refused, case["id"]

    refused, taken = asyncio.run(crowded())
    assert refused is not None and status_of(refused) == 503
    assert "too many reports at once" in str(refused)
    with psycopg.connect(database.replace("+psycopg", "")) as conn:
        rows = conn.execute("SELECT id FROM incident WHERE description = 'waits too long'"
                            ).fetchall()
    assert rows == [(taken,)]


def test_a_slow_report_is_logged_with_where_its_time_went(
        database: str, who: dict[str, dict[str, str]], points: dict[str, tuple[float, float]],
        caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(database_url=database, slow_report_ms=0.001)  # every report is slow
    with TestClient(create_app(settings)) as client, \
            caplog.at_level(logging.WARNING, logger="gridmap"):
        case = report(client, who["dispatcher"], points["grid"])
    assert case.status_code == 201, case.text
    lines = [r.getMessage() for r in caplog.records
             if r.getMessage().startswith(f"slow report {case.json()['id']}:")]
    assert len(lines) == 1
    for phase in ("caller", "body", "checks", "connection", "statement", "answer"):
        assert f" {phase} " in lines[0] or f"({phase} " in lines[0], lines[0]


def test_the_openapi_lists_the_categories_this_server_loaded(tmp_path: Path) -> None:
    """A category code is an enum of the OpenAPI, taken from the table the deployment
    loaded (here a table of two), in the JSON and form bodies of a report and in Open311's
    service_code."""
    packaged = files("gridmap.domain.data").joinpath("categories.csv").read_text("utf-8-sig")
    table = tmp_path / "categories.csv"
    table.write_text("\n".join(packaged.splitlines()[:3]) + "\n", encoding="utf-8")
    loaded = sorted(load_categories(table))
    assert len(loaded) == 2
    app = create_app(Settings(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none",
                              incident_categories=table))
    spec = app.openapi()
    bodies = spec["paths"]["/api/incidents"]["post"]["requestBody"]["content"]
    assert {media: body["schema"]["properties"]["category"]["enum"]
            for media, body in bodies.items()} == {
        "application/json": loaded, "multipart/form-data": loaded}
    form = spec["paths"]["/open311/v2/requests.json"]["post"]["requestBody"]["content"]
    ref = next(iter(form.values()))["schema"]["$ref"].rsplit("/", 1)[-1]
    code = spec["components"]["schemas"][ref]["properties"]["service_code"]
    assert [b["enum"] for b in code["anyOf"] if b.get("type") == "string"] == [loaded]


def _stored_events(database: str, incident_id: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database.replace("+psycopg", "")) as conn:
        return conn.execute("SELECT action, note, notes FROM incident_event WHERE "
                            "incident_id = %s ORDER BY id", (incident_id,)).fetchall()


def _timeline(client: TestClient, headers: dict[str, str], incident_id: str,
              language: str) -> dict[str, str | None]:
    res = client.get(f"/api/incidents/{incident_id}",
                     headers={**headers, "Accept-Language": language})
    assert res.status_code == 200, res.text
    return {e["action"]: e["note"] for e in res.json()["timeline"]}


def test_what_gridmap_notes_is_read_in_the_readers_language(
        client: TestClient, database: str) -> None:
    """A case outside every grid: the routing warning of its first step, the overdue job's
    warning and escalation (超期督办) are stored as keys and values and read in Chinese or
    English; a person's notes (a reason, a note that happens to be a catalogue text) are
    shown as written in both; the English is what the record keeps as text."""
    import re
    from zoneinfo import ZoneInfo

    from sqlalchemy import create_engine

    from gridmap.incidents import escalate_overdue

    township = township_without_grids(database, "610199008000", "东新街道", (109.53, 34.53))
    county = bearer(token_for(database, "notes-county", "dispatcher", ("610199000000",)))
    zh = report(client, {**county, "Accept-Language": "zh-CN"}, (109.54, 34.54))
    assert zh.status_code == 201, zh.text
    cid = zh.json()["id"]
    chinese_warning = f"不在任何网格内：已登记到乡镇（街道）{township}；请改派到网格"
    assert zh.json()["warnings"] == [chinese_warning]
    english = (f"outside every grid: registered to township {township}; route it to a grid "
               "(POST …/route)")
    en = report(client, {**county, "Accept-Language": "en"}, (109.54, 34.54))
    assert en.json()["warnings"] == [english]

    # a person's words: a reason, and a note that reads like one of gridmap's own texts
    case = step(client, county, zh, "register", note="wrong account name or password")
    case = client.post(f"/api/incidents/{cid}/route", headers={
        **county, "If-Match": case.headers["etag"]},
        json={"grid_code": GRID, "reason": "新区尚未划网格，暂归该网格"})
    assert case.status_code == 200, case.text
    case = step(client, county, case, "dispatch")
    assert case.status_code == 200, case.text
    due = datetime.fromisoformat(case.json()["handle_due"])
    engine = create_engine(database)
    try:
        for at in (due - timedelta(minutes=1), due + timedelta(minutes=1)):
            assert (cid, "escalate_handling" if at > due else "warn_handling") in \
                escalate_overdue(engine, now=at)
    finally:
        engine.dispose()
    local = due.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")

    chinese = _timeline(client, county, cid, "zh-CN")
    assert chinese["collect"] == chinese_warning
    assert chinese["warn_handling"] == f"处置时限 {local} 即将到期"
    assert chinese["escalate_handling"] == f"超期督办：处置时限 {local} 已过"
    for action in ("collect", "warn_handling", "escalate_handling"):
        assert not re.search("[A-Za-z]", chinese[action] or ""), chinese[action]
    assert chinese["register"] == "wrong account name or password"  # as written
    assert chinese["route"] == "新区尚未划网格，暂归该网格" and chinese["dispatch"] is None

    in_english = _timeline(client, county, cid, "en")
    assert in_english["collect"] == english
    assert in_english["warn_handling"] == f"the handling deadline {local} is near"
    assert in_english["escalate_handling"] == \
        f"超期督办: the handling deadline {local} has passed"
    assert in_english["register"] == "wrong account name or password"
    assert in_english["route"] == "新区尚未划网格，暂归该网格"

    # the record: the English text and the keys with their values; a person's note has no keys
    stored = {action: (note, notes) for action, note, notes in _stored_events(database, cid)}
    assert stored["collect"] == (english, [{"key": "outside_grid",
                                            "values": {"township": township}}])
    assert stored["escalate_handling"] == (in_english["escalate_handling"], [{
        "key": "deadline_passed", "values": {"deadline": "handling", "at": local}}])
    assert stored["register"] == ("wrong account name or password", None)
    assert stored["route"] == ("新区尚未划网格，暂归该网格", None)


def test_a_note_from_before_keys_were_kept_is_shown_as_it_is(
        client: TestClient, who: dict[str, dict[str, str]],
        points: dict[str, tuple[float, float]], database: str) -> None:
    """A timeline row written before migration 0018 holds its text alone: every reader
    sees that text, in either language."""
    cid = report(client, who["dispatcher"], points["grid"]).json()["id"]
    old = "the dispatch deadline 2025-06-01 09:30 is near"
    with psycopg.connect(database.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("INSERT INTO incident_event (incident_id, at, actor, role, action, "
                     "from_stage, to_stage, note) VALUES (%s, now(), NULL, 'system', "
                     "'warn_dispatch', 'collected', 'collected', %s)", (cid, old))
    for language in ("zh-CN", "en"):
        assert _timeline(client, who["dispatcher"], cid, language)["warn_dispatch"] == old


def test_the_audit_log_reads_its_details_in_the_readers_language(
        client: TestClient, who: dict[str, dict[str, str]],
        points: dict[str, tuple[float, float]], database: str) -> None:
    case = report(client, who["dispatcher"], points["grid"])
    assert step(client, who["dispatcher"], case, "register").status_code == 200
    admin = bearer(token_for(database, "notes-admin", "admin"))

    def detail(language: str) -> str:
        log = client.get("/api/audit", params={"user": "inc-dispatcher", "limit": 50},
                         headers={**admin, "Accept-Language": language})
        assert log.status_code == 200, log.text
        return next(e["detail"] for e in log.json() if e["action"] == "write"
                    and e["target"] == f"POST /api/incidents/{case.json()['id']}/actions")

    assert detail("zh-CN") == "信息收集 → 案件建立"
    assert detail("en") == "collected → registered"
    with psycopg.connect(database.replace("+psycopg", "")) as conn:
        row = conn.execute("SELECT detail, detail_notes FROM audit_log WHERE target = %s "
                           "AND action = 'write'",
                           (f"POST /api/incidents/{case.json()['id']}/actions",)).fetchone()
    assert row == ("collected → registered", [{
        "key": "step", "values": {"stage": "collected", "stage2": "registered"}}])
