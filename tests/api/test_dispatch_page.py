"""The dispatcher's desk (/dispatch) in a real headless Chromium, served by uvicorn: a report
filed through the form is routed to its grid's worker, a case reported elsewhere appears in
the queue by itself (server-sent events), a step taken by its button moves the case — at a
desktop size and at a phone's, tapping the real controls."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pandas as pd
import psycopg
import pytest
from PIL import Image
from sqlalchemy import create_engine

from gridmap.demodata import DEMO_DIR, DEMO_FILES
from gridmap.domain.incidents import ACTION_LABELS, STAGE_LABELS
from gridmap.incidents import escalate_overdue
from tests.api.test_browser import (
    DESKTOP,
    PHONE,
    Browsed,
    browse,
    shot,
    sign_in,
    wait_until,
)
from tests.helpers import bearer, inside_grid, size_check, token_for

TOWNSHIP, GRID = "610199001000", "610199001001001"
GARBAGE = "事件/市容环境/暴露垃圾"
DISPATCHER, ELSEWHERE = "desk-dispatcher", "desk-other-dispatcher"

# every visible text of the page's own (not the map's canvas) at 16 px at least, and every
# control it offers at least 44 px high
SIZES = size_check('header *, #problem *, #panel *, #legend *',
                   'button, select, input, textarea, a.button, nav a, summary')


@pytest.fixture(scope="module")
def base_url(photo_server: str) -> str:
    return photo_server


@pytest.fixture(scope="module")
def api(grids_db: str) -> dict[str, str]:
    """The page's account (signs in with the password), and another dispatcher's token
    for the reports made from outside the page."""
    token_for(grids_db, DISPATCHER, "dispatcher", (TOWNSHIP,))
    return bearer(token_for(grids_db, ELSEWHERE, "dispatcher", (TOWNSHIP,)))


@pytest.fixture(scope="module")
def point() -> tuple[float, float]:
    return inside_grid(GRID)


@pytest.fixture(scope="module")
def worker() -> pd.Series:
    """The worker a case in GRID goes to: its full-time worker (as routing picks)."""
    workers = pd.read_csv(DEMO_DIR / DEMO_FILES["workers"], dtype=str)
    mine = workers[workers["grid_code"] == GRID]
    return mine.sort_values(by="role", key=lambda r: r != "full_time").iloc[0]


def has_case(list_selector: str, case_id: str) -> str:
    return (f"[...document.querySelectorAll('{list_selector} .case-item')]"
            f".some((b) => b.dataset.id === {json.dumps(case_id)})")


def file_report(seen: Browsed, point: tuple[float, float], photo: Path) -> None:
    """Through the intake form: a category, words, a photo, and the point — clicked on the
    map at a desktop, typed on a phone."""
    page = seen.page
    seen.press("#tab-report")
    page.select_option("#report-category", GARBAGE)
    page.fill("#report-description", "人行道上堆着垃圾")
    page.locator("#report-reporter").press_sequentially("王先生 13812345678")
    page.set_input_files("#report-photo", str(photo))
    if seen.touch:
        page.locator("#report-xy").press_sequentially(f"{point[0]:.6f}, {point[1]:.6f}")
    else:  # zoomed in on the spot, a click there
        page.evaluate("([x, y]) => map.jumpTo({center: [x, y], zoom: 16})", list(point))
        wait_until(page, "!map.isMoving()")
        box = page.locator("#map").bounding_box()
        assert box is not None
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        wait_until(page, "document.getElementById('report-xy').value !== ''", timeout=5)
    seen.press("#report-submit")
    wait_until(page, "document.querySelector('#report-result .routed-head') !== null || "
                     "document.getElementById('report-result').classList.contains('error')",
               timeout=10)


@pytest.mark.parametrize("size", [DESKTOP, PHONE])
def test_a_dispatcher_takes_reports_and_moves_cases(
        base_url: str, grids_db: str, api: dict[str, str], point: tuple[float, float],
        worker: pd.Series, size: tuple[int, int], tmp_path_factory: pytest.TempPathFactory
) -> None:
    width, height = size
    with browse(base_url, width, height, locale="zh-CN") as seen:
        page = seen.page
        sign_in(seen, base_url, DISPATCHER, next_path="/dispatch")
        wait_until(page, "window.dispatchReady === true || Boolean(window.gridmapError)")
        assert not page.evaluate("window.gridmapError")
        wait_until(page, "map.loaded() && !map.isMoving() && map.areTilesLoaded()")
        wait_until(page, "document.getElementById('live').dataset.state === 'live'", 10)
        labels = page.evaluate(f"""[{json.dumps([s.value for s in STAGE_LABELS])}
            .map((s) => [s, i18n.label("stage", s)]),
            {json.dumps([a.value for a in ACTION_LABELS])}
            .map((a) => [a, i18n.label("action", a)])].map(Object.fromEntries)""")
        page.evaluate("window.sameDocument = true")  # gone if the page reloads

        # 1. a report through the form, with a photo: routed to the grid's worker
        photo = tmp_path_factory.mktemp("upload") / "scene.png"
        Image.new("RGB", (120, 90), (90, 140, 60)).save(photo, "PNG")
        file_report(seen, point, photo)
        wait_until(page, f"document.getElementById('report-result').textContent"
                         f".includes({json.dumps(worker['name'])})", timeout=10)
        routed = page.text_content("#report-result") or ""
        first = page.text_content("#report-result .case-id") or ""
        # the case shows its photo, as the API serves it
        seen.press("#report-result .open-case")
        wait_until(page, "[...document.querySelectorAll('#case-photos img')].some("
                         "(i) => i.complete && i.naturalWidth === 120)", timeout=10)
        shown = page.get_attribute("#case-photos a", "href") or ""
        shot(page, f"dispatch-routed-{width}.png", tmp_path_factory)

        # 2. a report from elsewhere (another dispatcher, through the API) shows up by itself
        seen.press("#tab-queue")
        seen.press("#queues [data-queue=new]")
        other = httpx.post(base_url + "/api/incidents", headers=api, json={
            "lon": point[0], "lat": point[1], "category": GARBAGE,
            "description": "又有一堆"})
        assert other.status_code == 201, other.text
        second = other.json()["id"]
        wait_until(page, has_case("#queue-list", second), timeout=6)
        wait_until(page, "map.querySourceFeatures('incidents', {sourceLayer: 'incidents'})"
                         f".some((f) => f.properties.id === {json.dumps(second)})", timeout=6)
        queue = page.text_content("#queue-list") or ""
        # past its dispatch deadline (as if reported long ago): marked by itself, in the
        # list and on the map, by more than colour
        with psycopg.connect(grids_db.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute("UPDATE incident SET dispatch_due = now() - interval '1 hour' "
                         "WHERE id = %s", (second,))
        engine = create_engine(grids_db)  # the overdue job's round: 超期督办 in the timeline
        try:
            assert (second, "escalate_dispatch") in escalate_overdue(engine)
        finally:
            engine.dispose()
        wait_until(page, f"document.querySelector(\"#queue-list .case-item.overdue"
                         f"[data-id='{second}'] .overdue-mark\")", timeout=6)
        ring = page.evaluate("JSON.stringify(map.getFilter('incidents-overdue'))")
        shot(page, f"dispatch-queue-{width}.png", tmp_path_factory)

        # 3. a step by its button: register it; the stage and the next steps change
        seen.press(f"#queue-list .case-item[data-id='{second}']")
        wait_until(page, "document.querySelector('#case-actions [data-action=register]')")
        actions_before = page.evaluate(
            "[...document.querySelectorAll('#case-actions button')].map((b) => b.dataset.action)")
        page.evaluate("events.close()")  # the live stream is lost for a while
        seen.press("#case-actions [data-action=register]")
        wait_until(page, "document.getElementById('case-title').textContent.includes('案件建立')"
                         " && document.querySelector('#case-actions [data-action=dispatch]')",
                   timeout=10)
        registered = page.text_content("#case-title") or ""
        # meanwhile another dispatcher dispatches it, unheard of: the page's step is refused
        # (412, the case changed since it was read), said so, and the case read again
        url = f"{base_url}/api/incidents/{second}"
        moved = httpx.post(url + "/actions", json={"action": "dispatch"}, headers={
            **api, "If-Match": httpx.get(url, headers=api).headers["etag"]})
        assert moved.status_code == 200, moved.text
        seen.press("#case-actions [data-action=dispatch]")
        wait_until(page, "document.getElementById('case-status').classList.contains('error')"
                         " && document.getElementById('case-title').textContent"
                         ".includes('任务派遣')", timeout=10)
        stale = page.text_content("#case-status") or ""
        timeline = page.text_content("#case-timeline") or ""
        page.evaluate("listen()")  # back online
        seen.press("#tab-queue")
        seen.press("#queues [data-queue=hand]")
        wait_until(page, has_case("#queue-list", second), timeout=6)
        sizes = page.evaluate(SIZES)
        shot(page, f"dispatch-moved-{width}.png", tmp_path_factory)

        # 4. a step that needs a reason, sent without one: the server's words
        seen.press("#queues [data-queue=new]")
        wait_until(page, has_case("#queue-list", first), timeout=6)
        seen.press(f"#queue-list .case-item[data-id='{first}']")
        wait_until(page, "document.querySelector('#case-actions [data-action=cancel]')")
        seen.press("#case-actions [data-action=cancel]")
        wait_until(page, "document.getElementById('case-status').classList.contains('error')")
        refused = page.text_content("#case-status") or ""
        case_sizes = page.evaluate(SIZES)
        shot(page, f"dispatch-case-{width}.png", tmp_path_factory)
        same_document = page.evaluate("window.sameDocument === true")
        errors = seen.unexpected_errors((422, f"/api/incidents/{first}/actions"),
                                        (412, f"/api/incidents/{second}/actions"))

    # the page's labels are the domain's (from the server's catalogue, in Chinese)
    assert labels[0] == {s.value: label for s, label in STAGE_LABELS.items()}
    assert labels[1] == {a.value: label for a, label in ACTION_LABELS.items()}
    assert GRID in routed and worker["id"] in routed and worker["phone"] in routed, routed
    assert TOWNSHIP in routed and GRID[:12] in routed
    assert first.startswith("C") and first != second
    photos = httpx.get(f"{base_url}/api/incidents/{first}", headers=api).json()["photos"]
    assert [p["media_type"] for p in photos] == ["image/png"] and shown == photos[0]["url"]
    assert "信息收集" in queue and GRID in queue
    assert second in ring
    assert actions_before == ["register", "cancel"]
    assert "案件建立" in registered
    assert "在您读取后已被修改" in stale, stale  # the server's words, in the page's language
    assert "立案" in timeline and DISPATCHER in timeline
    # what gridmap noted (the overdue job's escalation), in the page's language
    assert "超期督办：派遣时限" in timeline and "已过" in timeline, timeline
    assert "deadline" not in timeline and "has passed" not in timeline, timeline
    assert "派遣" in timeline and ELSEWHERE in timeline
    assert "请在说明中写明原因" in refused, refused
    assert same_document  # the queue changed without a reload
    for measured in (sizes, case_sizes):
        assert not measured["small"], measured["small"]
        assert not measured["low"], measured["low"]
        assert not measured["scrolls"]
    assert not errors, errors
    assert not seen.external, seen.external


def test_the_public_is_asked_to_sign_in(base_url: str) -> None:
    with browse(base_url, 390, 844, locale="zh-CN") as seen:
        page = seen.page
        page.goto(base_url + "/dispatch")
        wait_until(page, "window.dispatchReady === true || Boolean(window.gridmapError)")
        problem = page.text_content("#problem") or ""
        link = page.get_attribute("#problem a", "href")
        panel = page.is_visible("#panel")
    assert "请先登录" in problem and link == "/login?next=%2Fdispatch"
    assert not panel
    assert not seen.unexpected_errors(), seen.errors
    assert not seen.external, seen.external
