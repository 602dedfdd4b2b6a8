"""The indicators and hotspots page (/stats) in a real headless Chromium, at a desktop size and
a phone's: the totals, the chart and the table show the numbers of GET /api/incidents/kpis
(grid by grid, and by worker when the unit changes), and the hotspot map and list flag the
grid with a planted surge — the one GET /api/incidents/hotspots flags."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import geopandas as gpd
import httpx
import psycopg
import pytest

from tests.api.test_browser import DESKTOP, PHONE, browse, shot, sign_in, wait_until
from tests.conftest import serve_in_thread
from tests.helpers import bearer, size_check, token_for

TOWNSHIP, GRID, PLANTED = "610199001000", "610199001001001", "610199001003001"
GARBAGE = "事件/市容环境/暴露垃圾"
VIEWER = "stats-page-dispatcher"
SIZES = size_check('header *, main *', 'button, select, input, a.button, nav a')


@pytest.fixture(scope="module")
def database(grids_db: str) -> str:
    return grids_db


@pytest.fixture(scope="module")
def base_url(database: str) -> Iterator[str]:
    yield from serve_in_thread(database)


@pytest.fixture(scope="module")
def api(base_url: str, database: str) -> Iterator[httpx.Client]:
    """The viewer's API, with cases: in GRID one closed, one cancelled, one new; in PLANTED
    a surge this week over a quiet history (inserted as an import leaves them)."""
    headers = bearer(token_for(database, VIEWER, "dispatcher", (TOWNSHIP,)))
    worker = bearer(token_for(database, "stats-page-worker", "grid_worker", (GRID,)))
    grids = gpd.read_file("data/boundaries/grids.geojson").set_index("code")
    at = {c: grids.loc[c].geometry.buffer(-0.0005).representative_point()
          for c in (GRID, PLANTED)}
    with httpx.Client(base_url=base_url, headers=headers) as client:
        def report() -> httpx.Response:
            res = client.post("/api/incidents", json={
                "lon": at[GRID].x, "lat": at[GRID].y, "category": GARBAGE})
            assert res.status_code == 201, res.text
            return res

        case = report()
        for who, action in ((headers, "register"), (headers, "dispatch"), (worker, "accept"),
                            (worker, "feed_back"), (headers, "verify"), (headers, "close")):
            case = client.post(f"/api/incidents/{case.json()['id']}/actions", json={
                "action": action}, headers={**who, "If-Match": case.headers["etag"]})
            assert case.status_code == 200, case.text
        gone = report()
        assert client.post(f"/api/incidents/{gone.json()['id']}/actions", json={
            "action": "cancel", "note": "重复"}, headers={
            "If-Match": gone.headers["etag"]}).status_code == 200
        report()
        now = datetime.now(UTC)
        days = [0.5 + i / 2 for i in range(12)] + [7 * w + 3 for w in range(1, 9)]
        rows = [(f"SP{k:04d}", GARBAGE, "历史", now - timedelta(days=d), "collected", PLANTED,
                 at[PLANTED].x, at[PLANTED].y) for k, d in enumerate(days)]
        with psycopg.connect(database.replace("+psycopg", ""), autocommit=True) as conn:
            conn.cursor().executemany(
                "INSERT INTO incident (id, category, description, reported_at, status, "
                "grid_code, geom) VALUES (%s, %s, %s, %s, %s, %s, "
                "ST_SetSRID(ST_MakePoint(%s, %s), 4326))", rows)
        yield client


def pct(rate: float | None) -> str:
    return "—" if rate is None else f"{100 * rate:.1f}%"


@pytest.mark.parametrize("size", [DESKTOP, PHONE])
def test_the_page_shows_the_apis_numbers(base_url: str, api: httpx.Client,
                                         size: tuple[int, int],
                                         tmp_path_factory: pytest.TempPathFactory) -> None:
    width, height = size
    with browse(base_url, width, height) as seen:
        page = seen.page
        sign_in(seen, base_url, VIEWER, next_path="/stats")
        wait_until(page, "window.statsReady === true || Boolean(window.statsError)")
        assert not page.evaluate("window.statsError")
        table = page.evaluate("""[...document.querySelectorAll('#kpi-table tbody tr')].map(
            (tr) => [tr.dataset.unit, Object.fromEntries([...tr.children].map(
              (td) => [td.dataset.key, td.textContent]))])""")
        totals = page.evaluate("""Object.fromEntries([...document.querySelectorAll(
            '#kpi-totals [data-total]')].map((d) => [d.dataset.total,
            d.querySelector('strong').textContent]))""")
        bars = page.evaluate("""[...document.querySelectorAll('#kpi-chart g')].map(
            (g) => [g.dataset.unit, g.querySelector('rect[data-key=closure_rate]')
            .getAttribute('width')])""")
        wait_until(page, "map.loaded() && !map.isMoving()")
        flagged_list = page.evaluate(
            "[...document.querySelectorAll('#hot-list li')].map((li) => li.dataset.unit)")
        on_map = page.evaluate("map.querySourceFeatures('hot').filter((f) => "
                               "f.properties.flagged).map((f) => f.properties.unit)")
        sizes = page.evaluate(SIZES)
        # the chart's text as drawn on the screen, not as written in the SVG
        chart_text = page.evaluate("Math.min(...[...document.querySelectorAll('#kpi-chart "
                                   "text')].map((t) => t.getBoundingClientRect().height))")
        shot(page, f"stats-{width}.png", tmp_path_factory)

        # by worker: the performance table
        page.select_option("#kpi-by", "worker")
        seen.press("#kpi-form button")
        wait_until(page, "window.kpiRows && window.kpiRows.some((r) => r.unit && "
                         "r.unit.startsWith('W'))", timeout=10)
        by_worker = page.evaluate("""[...document.querySelectorAll('#kpi-table tbody tr')]
            .map((tr) => [tr.dataset.unit, tr.querySelector('[data-key=cases]').textContent])""")
        errors = seen.unexpected_errors()

    kpis: list[dict[str, Any]] = api.get("/api/incidents/kpis", params={"by": "grid"}).json()
    assert {r["unit"] or "" for r in kpis} == {u for u, _ in table}
    for unit, cells in table:
        row = next(r for r in kpis if (r["unit"] or "") == unit)
        assert cells["cases"] == str(row["cases"]) and cells["closed"] == str(row["closed"])
        assert cells["closure_rate"] == pct(row["closure_rate"])
        assert cells["on_time_rate"] == pct(row["on_time_rate"])
        assert cells["overdue"] == str(row["overdue"])
        assert cells["returned"] == str(row["returned"])
    mine = next(cells for unit, cells in table if unit == GRID)
    assert mine["cases"] == "3" and mine["closed"] == "1" and mine["closure_rate"] == "50.0%"
    assert totals["cases"] == str(sum(r["cases"] for r in kpis))
    closed = sum(r["closed"] for r in kpis)
    assert totals["closure"] == pct(closed / sum(r["cases"] - r["cancelled"] for r in kpis))
    assert dict(bars)[GRID] and float(dict(bars)[GRID]) > 0
    workers = api.get("/api/incidents/kpis", params={"by": "worker"}).json()
    assert sorted(by_worker) == sorted([r["unit"] or "", str(r["cases"])] for r in workers)

    hot = api.get("/api/incidents/hotspots").json()
    flagged = [u["unit"] for u in hot["units"] if u["flagged"]]
    assert flagged == [PLANTED]
    assert flagged_list == flagged and set(on_map) == {PLANTED}
    assert chart_text >= 16, chart_text  # a 16 px font's box
    assert not sizes["small"] and not sizes["low"] and not sizes["scrolls"], sizes
    assert not errors, errors
    assert not seen.external, seen.external
