"""Open311 GeoReport v2, as another app sees it: plain HTTP against a running server, an API
key issued on the command line, form-encoded reports, the spec's fields and error lists, keys
that stop working when revoked or when their account is disabled, and nothing written on a
refused report."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import geopandas as gpd
import httpx
import psycopg
import pytest

from gridmap.demodata import DEMO_DIR, DEMO_FILES
from gridmap.domain.incidents import load_categories
from tests.conftest import loaded_database, serve_in_thread
from tests.helpers import run_cli, token_for

TOWNSHIP, GRID, OTHER_GRID = "610199001000", "610199001001001", "610199002021001"
GARBAGE = "事件/市容环境/暴露垃圾"
V2 = "/open311/v2"


@pytest.fixture(scope="module")
def database(server_url: str, template_db: str) -> Iterator[str]:
    yield from loaded_database(server_url, template_db, (
        "counties", "townships", "communities", "grids", "workers"))


@pytest.fixture(scope="module")
def http(database: str) -> Iterator[httpx.Client]:
    for base in serve_in_thread(database):
        with httpx.Client(base_url=base) as client:
            yield client


def issue_key(database: str, account: str, role: str, divisions: tuple[str, ...],
              label: str = "citizen app") -> str:
    """An account (made unless it exists) and a new key for it, issued on the command line."""
    token_for(database, account, role, divisions)
    result = run_cli(database, "key", "add", account, "--label", label)
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert key.startswith("gmk_") and "\n" not in key
    return key


@pytest.fixture(scope="module")
def keys(database: str) -> dict[str, str]:
    return {
        "dispatcher": issue_key(database, "o311-dispatcher", "dispatcher", (TOWNSHIP,)),
        "admin": issue_key(database, "o311-admin", "admin", ()),
        "analyst": issue_key(database, "o311-analyst", "analyst", (TOWNSHIP,)),
        "planner": issue_key(database, "o311-planner", "planner", (TOWNSHIP,)),
    }


@pytest.fixture(scope="module")
def points() -> dict[str, tuple[float, float]]:
    """(lat, long) inside the dispatcher's grid and inside a grid of another township."""
    grids = gpd.read_file(DEMO_DIR / DEMO_FILES["grids"]).set_index("code")
    inside = grids.loc[GRID].geometry.buffer(-0.0005).representative_point()
    other = grids.loc[OTHER_GRID].geometry.buffer(-0.0005).representative_point()
    return {"grid": (inside.y, inside.x), "other": (other.y, other.x)}


def incidents(database: str) -> int:
    with psycopg.connect(database.replace("+psycopg", "")) as conn:
        row = conn.execute("SELECT count(*) FROM incident").fetchone()
    assert row is not None
    return int(row[0])


def form(key: str | None, point: tuple[float, float], **extra: str) -> dict[str, str]:
    body = {"service_code": GARBAGE, "lat": str(point[0]), "long": str(point[1]),
            "description": "垃圾堆在路边", "first_name": "伟", "last_name": "王",
            "phone": "13812345678", "email": "wang@example.com", **extra}
    if key is not None:
        body["api_key"] = key
    return body


def open311_error(res: httpx.Response, status: int, *words: str) -> str:
    """Assert an answer in the spec's error form; its description."""
    assert res.status_code == status, (res.status_code, res.text)
    body = res.json()
    assert isinstance(body, list) and len(body) == 1 and set(body[0]) == {"code",
                                                                          "description"}
    assert body[0]["code"] == status
    for word in words:
        assert word in body[0]["description"], (word, body)
    return str(body[0]["description"])


def eventually(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    """Whether *check* holds within *seconds* (a change notice reaches the server a moment
    after the commit that sent it)."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_discovery_and_services_are_public(http: httpx.Client) -> None:
    found = http.get("/open311/discovery.json").json()
    assert found["endpoints"][0]["url"].endswith(V2)
    assert found["endpoints"][0]["formats"] == ["application/json"]
    res = http.get(f"{V2}/services.json")
    assert res.status_code == 200 and res.headers["content-type"].startswith("application/json")
    services = {s["service_code"]: s for s in res.json()}
    categories = load_categories()
    assert set(services) == set(categories)
    garbage = services[GARBAGE]
    assert garbage["service_name"] == categories[GARBAGE].minor
    assert garbage["group"] == categories[GARBAGE].major
    assert garbage["metadata"] is False and garbage["type"] == "realtime"
    assert set(garbage) == {"service_code", "service_name", "description", "metadata", "type",
                            "keywords", "group"}
    assert categories[GARBAGE].minor in garbage["keywords"].split(",")


def test_a_third_party_app_reports_and_follows_a_request(
        http: httpx.Client, keys: dict[str, str], points: dict[str, tuple[float, float]],
        database: str) -> None:
    before = incidents(database)
    res = http.post(f"{V2}/requests.json", data=form(keys["dispatcher"], points["grid"]))
    assert res.status_code == 201, res.text
    [created] = res.json()
    rid = created["service_request_id"]
    assert created == {"service_request_id": rid, "service_notice": "", "account_id": None}
    assert res.headers["location"] == f"{V2}/requests/{rid}.json"
    assert incidents(database) == before + 1

    one = http.get(f"{V2}/requests/{rid}.json", params={"api_key": keys["dispatcher"]})
    assert one.status_code == 200, one.text
    [request] = one.json()
    assert request["service_request_id"] == rid and request["status"] == "open"
    assert request["agency_responsible"] == GRID
    assert request["service_code"] == GARBAGE
    assert request["service_name"] == load_categories()[GARBAGE].minor
    assert request["description"] == "垃圾堆在路边"
    assert request["lat"] == pytest.approx(points["grid"][0])
    assert request["long"] == pytest.approx(points["grid"][1])
    assert request["requested_datetime"] and request["updated_datetime"]
    assert request["expected_datetime"] is None  # due once dispatched
    assert request["address"] is None and request["status_notes"] is None
    assert {"address_id", "zipcode", "media_url", "service_notice"} <= set(request)

    listed = http.get(f"{V2}/requests.json", params={
        "api_key": keys["dispatcher"], "service_request_id": f"{rid},C19990101000001"})
    assert [r["service_request_id"] for r in listed.json()] == [rid]
    assert listed.json()[0]["status"] == "open"
    recent = http.get(f"{V2}/requests.json", params={
        "api_key": keys["dispatcher"], "status": "open", "service_code": GARBAGE})
    assert rid in {r["service_request_id"] for r in recent.json()}
    for other in ({"status": "closed"}, {"service_code": "事件/违法建设/违法建筑"},
                  {"start_date": "2020-01-01T00:00:00Z", "end_date": "2020-02-01T00:00:00Z"}):
        res = http.get(f"{V2}/requests.json", params={"api_key": keys["dispatcher"], **other})
        assert res.status_code == 200, res.text
        assert rid not in {r["service_request_id"] for r in res.json()}, other

    # the analyst reads it without the description; the planner too, with it
    seen = http.get(f"{V2}/requests/{rid}.json", params={"api_key": keys["analyst"]}).json()
    assert seen[0]["status"] == "open" and "description" not in seen[0]
    assert "description" in http.get(f"{V2}/requests/{rid}.json",
                                     params={"api_key": keys["planner"]}).json()[0]

    with psycopg.connect(database.replace("+psycopg", "")) as conn:
        row = conn.execute("SELECT reporter, status FROM incident WHERE id = %s",
                           (rid,)).fetchone()
        assert row == ("伟 王 13812345678 wang@example.com", "collected")
        audit = conn.execute("SELECT user_name, client FROM audit_log WHERE action = 'write' "
                             "AND %s = ANY(row_ids)", (rid,)).fetchall()
    assert len(audit) == 1 and audit[0][0] == "o311-dispatcher"
    assert "api key" in audit[0][1]


def test_a_closed_case_is_closed_with_its_last_note(
        http: httpx.Client, keys: dict[str, str], points: dict[str, tuple[float, float]],
        database: str) -> None:
    res = http.post(f"{V2}/requests.json", data=form(keys["dispatcher"], points["grid"]))
    rid = res.json()[0]["service_request_id"]
    token = token_for(database, "o311-dispatcher")
    case = http.get(f"/api/incidents/{rid}", headers={"Authorization": f"Bearer {token}"})
    cancel = http.post(f"/api/incidents/{rid}/actions", json={
        "action": "cancel", "note": "重复上报"}, headers={
        "Authorization": f"Bearer {token}", "If-Match": case.headers["etag"]})
    assert cancel.status_code == 200, cancel.text
    [request] = http.get(f"{V2}/requests/{rid}.json",
                         params={"api_key": keys["dispatcher"]}).json()
    assert request["status"] == "closed" and request["status_notes"] == "重复上报"
    closed = http.get(f"{V2}/requests.json", params={"api_key": keys["dispatcher"],
                                                      "status": "closed"}).json()
    assert rid in {r["service_request_id"] for r in closed}


@pytest.mark.parametrize(("change", "field"), [
    ({"service_code": ""}, "service_code"),
    ({"lat": ""}, "lat"),
    ({"long": ""}, "long"),
    ({"lat": "", "long": "", "address_string": "翠华路152号"}, "coordinates are required"),
    ({"service_code": "事件/没有/这一类"}, "service_code"),
    ({"lat": "north"}, "lat"),
    ({"long": "181"}, "long"),
    ({"lat": "nan"}, "lat"),
    ({"description": "垃圾\x00堆"}, "description"),
    ({"first_name": "伟\x00"}, "first_name"),
    ({"description": "x" * 2001}, "description"),
    ({"first_name": "x" * 300}, "200 characters"),
])
def test_bad_fields_are_400_naming_the_field_and_write_nothing(
        http: httpx.Client, keys: dict[str, str], points: dict[str, tuple[float, float]],
        database: str, change: dict[str, str], field: str) -> None:
    before = incidents(database)
    body = {k: v for k, v in {**form(keys["dispatcher"], points["grid"]), **change}.items()
            if v != ""}
    open311_error(http.post(f"{V2}/requests.json", data=body), 400, field)
    assert incidents(database) == before


def test_keys_that_do_not_work_are_401_and_write_nothing(
        http: httpx.Client, points: dict[str, tuple[float, float]], database: str) -> None:
    before = incidents(database)
    for key in (None, "", "gmk_not-a-key", "' OR 1=1 --", "nul\x00key", "x" * 5000):
        open311_error(http.post(f"{V2}/requests.json", data=form(key, points["grid"])), 401,
                      "api_key")
        params = {"api_key": key} if key is not None else {}
        res = http.get(f"{V2}/requests.json", params=params)
        assert res.headers["www-authenticate"]
        open311_error(res, 401, "api_key")
        open311_error(http.get(f"{V2}/requests/C1.json", params=params), 401)
    assert incidents(database) == before


def test_a_revoked_key_and_a_disabled_account_s_key_stop_working(
        http: httpx.Client, points: dict[str, tuple[float, float]], database: str) -> None:
    key = issue_key(database, "o311-leaving", "grid_worker", (GRID,))
    other = issue_key(database, "o311-leaving", "grid_worker", (GRID,), label="second app")

    def works(k: str) -> bool:
        return http.get(f"{V2}/requests.json", params={"api_key": k}).status_code == 200

    assert works(key) and works(other)
    listing = run_cli(database, "key", "list")
    assert "o311-leaving" in listing.stdout and "second app" in listing.stdout
    key_id = next(line.split()[0] for line in listing.stdout.splitlines()
                  if "o311-leaving" in line and "citizen app" in line)
    assert run_cli(database, "key", "revoke", key_id).exit_code == 0
    assert eventually(lambda: not works(key))
    assert works(other)
    again = run_cli(database, "key", "revoke", key_id)
    assert again.exit_code == 2 and "revoked already" in again.output
    assert run_cli(database, "key", "revoke", "999999").exit_code == 2

    before = incidents(database)
    assert run_cli(database, "user", "disable", "o311-leaving").exit_code == 0
    assert eventually(lambda: not works(other))
    open311_error(http.post(f"{V2}/requests.json", data=form(other, points["grid"])), 401,
                  "disabled")
    assert incidents(database) == before
    refused = run_cli(database, "key", "add", "o311-leaving", "--label", "third")
    assert refused.exit_code == 2 and "disabled" in refused.output
    assert "revoked" in run_cli(database, "key", "list").stdout
    with psycopg.connect(database.replace("+psycopg", "")) as conn:
        targets = [r[0] for r in conn.execute(
            "SELECT target FROM audit_log WHERE target LIKE 'key %' ORDER BY id")]
    assert "key add" in targets and "key revoke" in targets


def test_out_of_scope_requests_are_404_and_roles_that_may_not_report_are_403(
        http: httpx.Client, keys: dict[str, str], points: dict[str, tuple[float, float]],
        database: str) -> None:
    res = http.post(f"{V2}/requests.json", data=form(keys["admin"], points["other"]))
    assert res.status_code == 201, res.text
    rid = res.json()[0]["service_request_id"]
    assert http.get(f"{V2}/requests/{rid}.json",
                    params={"api_key": keys["admin"]}).json()[0]["agency_responsible"] == (
        OTHER_GRID)
    open311_error(http.get(f"{V2}/requests/{rid}.json", params={"api_key": keys["dispatcher"]}),
                  404, rid)
    listed = http.get(f"{V2}/requests.json", params={"api_key": keys["dispatcher"],
                                                     "service_request_id": rid})
    assert listed.status_code == 200 and listed.json() == []
    mine = http.get(f"{V2}/requests.json", params={"api_key": keys["dispatcher"]}).json()
    assert mine and all(r["agency_responsible"].startswith("610199001") for r in mine)
    open311_error(http.get(f"{V2}/requests/no%00such.json",
                           params={"api_key": keys["dispatcher"]}), 404)

    before = incidents(database)
    open311_error(http.post(f"{V2}/requests.json",
                            data=form(keys["dispatcher"], points["other"])), 404)
    open311_error(http.post(f"{V2}/requests.json", data=form(keys["planner"], points["grid"])),
                  403, "planner")
    open311_error(http.post(f"{V2}/requests.json", data=form(keys["analyst"], points["grid"])),
                  403, "analyst")
    assert incidents(database) == before


@pytest.mark.parametrize(("params", "words"), [
    ({"start_date": "yesterday"}, ("start_date",)),
    ({"end_date": "2026-05-01T08:30:00"}, ("end_date", "zone")),
    ({"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"}, ("90 days",)),
    ({"start_date": "2026-06-01T00:00:00Z", "end_date": "2026-01-01T00:00:00Z"}, ("after",)),
    ({"start_date": "9999-12-31T00:00:00Z"}, ("range",)),
    ({"status": "pending"}, ("status",)),
    ({"service_request_id": ",".join(f"C{i}" for i in range(1001))}, ("service_request_id",)),
])
def test_bad_searches_are_400(http: httpx.Client, keys: dict[str, str], params: dict[str, Any],
                              words: tuple[str, ...]) -> None:
    open311_error(http.get(f"{V2}/requests.json",
                           params={"api_key": keys["dispatcher"], **params}), 400, *words)


def test_a_zone_sent_with_an_unescaped_plus_is_understood(http: httpx.Client,
                                                         keys: dict[str, str]) -> None:
    res = http.get(f"{V2}/requests.json?api_key={keys['dispatcher']}"
                   "&start_date=2026-01-01T08:00:00+08:00&end_date=2026-02-01T08:00:00+08:00")
    assert res.status_code == 200, res.text


def test_only_json_is_served(http: httpx.Client, keys: dict[str, str],
                             points: dict[str, tuple[float, float]], database: str) -> None:
    before = incidents(database)
    open311_error(http.get(f"{V2}/services.xml"), 400, "JSON only", "services.json")
    open311_error(http.get(f"{V2}/requests/C1.xml"), 400, "JSON only")
    open311_error(http.post(f"{V2}/requests.xml", data=form(keys["dispatcher"],
                                                             points["grid"])), 400, "JSON only")
    open311_error(http.get(f"{V2}/tokens/abc.json"), 404)
    assert incidents(database) == before


def test_what_gridmap_noted_reads_in_the_callers_language(
        http: httpx.Client, keys: dict[str, str], points: dict[str, tuple[float, float]],
        database: str) -> None:
    """The notice of a report and a request's last note when gridmap wrote it (the overdue
    job's 超期督办), by id and in a search, in Chinese or English as the caller asks."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import create_engine

    from gridmap.incidents import escalate_overdue

    res = http.post(f"{V2}/requests.json", headers={"Accept-Language": "zh-CN"},
                    data=form(keys["dispatcher"], points["grid"],
                              media_url="https://example.com/a.jpg"))
    assert res.status_code == 201, res.text
    [created] = res.json()
    assert created["service_notice"] == "media_url 未保存：请把图片本身作为 media 发送"
    rid = created["service_request_id"]
    engine = create_engine(database)
    try:  # two days on, the case was never dispatched
        assert (rid, "escalate_dispatch") in escalate_overdue(
            engine, now=datetime.now(UTC) + timedelta(days=2))
    finally:
        engine.dispose()
    for language, says in (("zh-CN", "超期督办：派遣时限 "),
                           ("en", "超期督办: the dispatch deadline ")):
        headers = {"Accept-Language": language}
        [one] = http.get(f"{V2}/requests/{rid}.json", headers=headers,
                         params={"api_key": keys["dispatcher"]}).json()
        found = http.get(f"{V2}/requests.json", headers=headers,
                         params={"api_key": keys["dispatcher"]}).json()
        listed = next(r for r in found if r["service_request_id"] == rid)
        assert one["status_notes"].startswith(says), one["status_notes"]
        assert listed["status_notes"] == one["status_notes"]
