"""Heavy reports off the request path (issue 12): locate keeps its latency while reports
run in the worker processes; a finished report is kept until the data under it changes; a
report past its time limit is stopped (504); households out of reach come a page at a time,
and a page over the size limit is a 413 saying how to narrow it."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from gridmap.api.app import create_app
from gridmap.settings import Settings
from gridmap.store.db import libpq_dsn
from tests.conftest import serve_in_thread
from tests.helpers import bearer, token_for, wait_for_notice

POINT = {"lon": 108.9446, "lat": 34.2603}


@pytest.fixture(scope="module")
def admin(demo_db: str) -> dict[str, str]:
    return bearer(token_for(demo_db, "admin"))


@pytest.fixture(scope="module")
def client(demo_db: str, admin: dict[str, str]) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=demo_db)), headers=admin) as c:
        yield c


@pytest.fixture(scope="module")
def served(demo_db: str) -> Iterator[str]:
    yield from serve_in_thread(demo_db)


def _latencies(base: str, headers: dict[str, str], n: int) -> list[float]:
    out = []
    with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
        for _ in range(n):
            start = time.perf_counter()
            res = http.get("/api/locate", params=POINT)
            out.append(time.perf_counter() - start)
            assert res.status_code == 200, res.text
    return out


def test_locate_keeps_its_latency_while_heavy_reports_run(served: str,
                                                          admin: dict[str, str]) -> None:
    base = served
    calm = _latencies(base, admin, 100)
    statuses: list[int] = []

    def heavy(distance: int) -> None:  # nearly everyone out of reach: the worst page
        with httpx.Client(base_url=base, headers=admin, timeout=120) as http:
            statuses.append(http.get("/api/coverage/uncovered.geojson", params={
                "type": "kindergarten", "distance": distance, "limit": 10_000,
                "division": "610199001000"}).status_code)

    threads = [threading.Thread(target=heavy, args=(d,)) for d in (1, 2, 3)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    busy = _latencies(base, admin, 200)
    running = sum(t.is_alive() for t in threads)
    for t in threads:
        t.join(120)
    p99 = statistics.quantiles(busy, n=100)[98]
    print(f"locate p50 {statistics.median(calm) * 1e3:.1f} ms calm, "
          f"{statistics.median(busy) * 1e3:.1f} ms with heavy reports; p99 {p99 * 1e3:.1f} ms")
    assert statuses == [200, 200, 200]
    assert running, "the heavy reports ended before locate was measured"
    # before the worker pool: p99 466 ms beside three such reports
    assert p99 < 0.25
    assert statistics.median(busy) < 0.05


def test_a_check_is_kept_until_the_data_changes(client: TestClient, demo_db: str) -> None:
    first = client.get("/api/check")
    assert first.status_code == 200
    start = time.perf_counter()
    again = client.get("/api/check")
    assert time.perf_counter() - start < 0.5  # not made again: 15 s on the request path before
    assert again.json() == first.json()
    grid = first.json()["balance"][0]
    with psycopg.connect(libpq_dsn(demo_db), autocommit=True) as conn:
        household = conn.execute("SELECT id FROM household WHERE grid_code = %s LIMIT 1",
                                 (grid["code"],)).fetchone()[0]
        conn.execute("UPDATE household SET residents = residents + 100 WHERE id = %s",
                     (household,))
    try:
        wait_for_notice(client.app)
        changed = client.get("/api/check").json()
        row = next(r for r in changed["balance"] if r["code"] == grid["code"])
        assert row["residents"] == grid["residents"] + 100
    finally:
        with psycopg.connect(libpq_dsn(demo_db), autocommit=True) as conn:
            conn.execute("UPDATE household SET residents = residents - 100 WHERE id = %s",
                         (household,))


COLD_CHECK_BOUND_S = 30.0  # half the default report limit (60 s)


def test_a_cold_whole_district_check_answers_well_inside_its_limit(
        demo_db: str, admin: dict[str, str]) -> None:
    """The flaky first ``/api/check`` (issue 12): a new server's first whole-district check
    read every household column, parsed 100,000 WKB points one by one, asked PROJ's database
    for a UTM zone three times and started a worker interpreter, all inside the 60 s limit:
    15 s on a quiet machine, past the limit (a 504) under load. It now reads two numbers per
    household into a worker that started with the server."""
    with TestClient(create_app(Settings(database_url=demo_db)), headers=admin) as client:
        start = time.perf_counter()
        res = client.get("/api/check")
        elapsed = time.perf_counter() - start
    assert res.status_code == 200, res.text
    assert elapsed < COLD_CHECK_BOUND_S, f"{elapsed:.1f} s"
    body = res.json()
    with psycopg.connect(libpq_dsn(demo_db)) as conn:
        grids, households = conn.execute(
            "SELECT (SELECT count(*) FROM grid WHERE kind = 'comprehensive'),"
            "       (SELECT count(*) FROM household)").fetchone()
    assert len(body["balance"]) == grids
    counted = sum(row["households"] for row in body["balance"])
    assert counted + body["households_outside_grids"] <= households


def _kill(worker: object) -> None:
    process = worker.process  # type: ignore[attr-defined]
    process.kill()
    process.wait(10)


def test_a_worker_that_died_is_replaced_before_the_next_report(
        demo_db: str, admin: dict[str, str]) -> None:
    """The flaky first ``/api/check`` (issue 12), found: a report worker that had died
    (killed, out of memory, or ended by a database error of an earlier job) stayed in the
    pool's idle queue; the next report was sent to it and answered 500, and the one after
    that, on a fresh worker, 200 — schemathesis' "failed on the first call but did not on a
    subsequent one". A dead worker is now replaced before a job is sent to it."""
    settings = Settings(database_url=demo_db, report_workers=1)
    with TestClient(create_app(settings), headers=admin) as client:
        pool = client.app.state.reports.pool
        (worker,) = pool._all
        _kill(worker)
        res = client.get("/api/check", params={"community": "610199001001"})
        assert res.status_code == 200, res.text
        assert worker not in pool._all and len(pool._all) == 1


def test_a_worker_dying_during_a_report_is_a_503_and_the_next_report_is_made(
        demo_db: str, admin: dict[str, str]) -> None:
    settings = Settings(database_url=demo_db, report_workers=1)
    with TestClient(create_app(settings), headers=admin) as client:
        pool = client.app.state.reports.pool
        (worker,) = pool._all
        sent = repr(pool._numbers)
        results: list[httpx.Response] = []
        thread = threading.Thread(target=lambda: results.append(client.get("/api/check")))
        thread.start()
        deadline = time.monotonic() + 30
        while repr(pool._numbers) == sent and time.monotonic() < deadline:
            time.sleep(0.005)  # until the whole-district check (seconds) is on its way
        _kill(worker)
        thread.join(60)
        (res,) = results
        assert res.status_code == 503, res.text
        assert res.headers["Retry-After"] and "report worker" in res.json()["detail"]
        again = client.get("/api/check", params={"community": "610199001001"})
        assert again.status_code == 200, again.text


def test_a_report_past_its_time_limit_is_stopped(demo_db: str, admin: dict[str, str]) -> None:
    settings = Settings(database_url=demo_db, report_timeout_s=0.5, report_workers=1)
    with TestClient(create_app(settings), headers=admin) as client:
        start = time.perf_counter()
        res = client.get("/api/check")
        assert time.perf_counter() - start < 5
        assert res.status_code == 504, res.text
        assert "limit of 0.5 s" in res.json()["detail"]
        assert "GRIDMAP_REPORT_TIMEOUT_S" in res.json()["detail"]
        pool = client.app.state.reports.pool
        assert not pool._all  # the worker that ran it was stopped
        assert client.get("/api/locate", params=POINT).status_code == 200


def test_households_out_of_reach_come_a_page_at_a_time(client: TestClient) -> None:
    params = {"type": "kindergarten", "division": "610199001000", "limit": 100}
    page = client.get("/api/coverage/uncovered.geojson", params=params)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("application/geo+json")
    body = page.json()
    assert body["numberReturned"] == 100 < body["numberMatched"]
    nxt = next(link["href"] for link in body["links"] if link["rel"] == "next")
    assert "offset=100" in nxt and "division=610199001000" in nxt
    second = client.get(nxt).json()
    ids = {f["properties"]["id"] for f in body["features"]}
    assert ids.isdisjoint(f["properties"]["id"] for f in second["features"])
    assert second["numberMatched"] == body["numberMatched"]
    last = client.get("/api/coverage/uncovered.geojson",
                      params={**params, "offset": body["numberMatched"] - 1}).json()
    assert last["numberReturned"] == 1
    assert not [link for link in last["links"] if link["rel"] == "next"]
    # the read is audited in words the audit log's reader sees in their language
    said = {language: {e["detail"] for e in client.get(
        "/api/audit", params={"user": "admin", "limit": 100},
        headers={"Accept-Language": language}).json()
        if e["target"] == "GET /api/coverage/uncovered.geojson"}
        for language in ("zh-CN", "en")}
    assert "幼儿园（300 米）未覆盖的住户" in said["zh-CN"]
    assert "uncovered kindergarten@300" in said["en"]


def test_a_page_over_the_size_limit_is_413_saying_how_to_narrow(
        demo_db: str, admin: dict[str, str]) -> None:
    settings = Settings(database_url=demo_db, report_page_mb=0.01, report_timeout_s=600)
    with TestClient(create_app(settings), headers=admin) as client:
        res = client.get("/api/coverage/uncovered.geojson",
                         params={"type": "kindergarten", "division": "610199001000"})
        assert res.status_code == 413
        detail = res.json()["detail"]
        assert "limit of 0.01 MB" in detail and "limit=" in detail and "division=" in detail


def test_callers_asking_for_the_same_report_at_once_share_one_computation(
        demo_db: str, admin: dict[str, str]) -> None:
    """Three dispatchers opening the check together take one worker, not three (a cold
    district check took one worker each before, and the third waited for a free one)."""
    settings = Settings(database_url=demo_db, report_workers=2)
    with TestClient(create_app(settings), headers=admin) as client:
        pool = client.app.state.reports.pool
        runs: list[object] = []
        real_run = pool.run

        async def counted(job: object) -> object:
            runs.append(job)
            return await real_run(job)

        pool.run = counted
        results: list[httpx.Response] = []
        threads = [threading.Thread(target=lambda: results.append(
            client.get("/api/check", params={"community": "610199001001"}))) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [r.status_code for r in results] == [200, 200, 200]
        assert results[0].json() == results[1].json() == results[2].json()
        assert len(runs) == 1
