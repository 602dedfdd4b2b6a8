"""The grid worker's phone page (/mine) in a real headless Chromium at 390×844, served by
uvicorn: the worker signs in, sees a case dispatched to their grid, accepts it and feeds back
with a note and a photo from the "camera" (a file set on the page's file input), and the
dispatcher's API shows the new stage and the photo; then the worker reports a new incident
at their position (the browser's geolocation) with a photo."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from PIL import Image
from sqlalchemy import create_engine

from gridmap.domain.incidents import ACTION_LABELS, STAGE_LABELS
from gridmap.incidents import escalate_overdue
from tests.api.test_browser import browse, shot, sign_in, wait_until
from tests.helpers import bearer, inside_grid, size_check, token_for

TOWNSHIP, GRID = "610199001000", "610199001001001"
GARBAGE = "事件/市容环境/暴露垃圾"
WORKER, DISPATCHER = "mine-worker", "mine-dispatcher"

# every visible text at 16 px at least, every control 44 px high at least, no sideways scroll
SIZES = size_check('header *, nav *, main *, #problem *',
                   'button, select, textarea, a.button, .photo-button')


@pytest.fixture(scope="module")
def base_url(photo_server: str) -> str:
    return photo_server


@pytest.fixture(scope="module")
def point() -> tuple[float, float]:
    return inside_grid(GRID)


def jpeg(tmp: Path, name: str, colour: tuple[int, int, int]) -> Path:
    out = io.BytesIO()
    Image.new("RGB", (320, 240), colour).save(out, "JPEG")
    path = tmp / name
    path.write_bytes(out.getvalue())
    return path


def test_a_worker_feeds_back_with_a_photo_and_reports_at_their_position(
        base_url: str, grids_db: str, point: tuple[float, float],
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    token_for(grids_db, WORKER, "grid_worker", (GRID,))
    desk = bearer(token_for(grids_db, DISPATCHER, "dispatcher", (TOWNSHIP,)))
    # the centre takes a report and dispatches it to the grid
    with httpx.Client(base_url=base_url, headers=desk) as api:
        case = api.post("/api/incidents", json={
            "lon": point[0], "lat": point[1], "category": GARBAGE,
            "description": "小区门口垃圾堆积", "reporter": "王先生 13812345678"})
        assert case.status_code == 201, case.text
        cid = case.json()["id"]
        for action in ("register", "dispatch"):
            case = api.post(f"/api/incidents/{cid}/actions", json={"action": action},
                            headers={"If-Match": case.headers["etag"]})
            assert case.status_code == 200, case.text
    # the overdue job warns the worker near the deadline, then escalates (超期督办)
    due = datetime.fromisoformat(case.json()["handle_due"])
    engine = create_engine(grids_db)
    try:
        for at in (due - timedelta(minutes=1), due + timedelta(minutes=1)):
            escalate_overdue(engine, now=at)
    finally:
        engine.dispose()
    before, after = jpeg(tmp_path, "before.jpg", (120, 90, 60)), jpeg(tmp_path, "after.jpg",
                                                                      (60, 160, 60))
    here = (point[0] + 0.0002, point[1] + 0.0001)

    with browse(base_url, 390, 844, locale="zh-CN") as seen:
        page = seen.page
        page.context.grant_permissions(["geolocation"], origin=base_url)
        page.context.set_geolocation({"longitude": here[0], "latitude": here[1],
                                      "accuracy": 8})
        sign_in(seen, base_url, WORKER, next_path="/mine")
        wait_until(page, "window.mineReady === true || Boolean(window.mineError)")
        assert not page.evaluate("window.mineError")
        labels = page.evaluate(f"""[{json.dumps([s.value for s in STAGE_LABELS])}
            .map((s) => [s, i18n.label("stage", s)]),
            {json.dumps([a.value for a in ACTION_LABELS])}
            .map((a) => [a, i18n.label("action", a)])].map(Object.fromEntries)""")
        item = f"#cases .case-item[data-id='{cid}']"
        wait_until(page, f"document.querySelector({json.dumps(item)})", timeout=10)
        listed = page.text_content(item) or ""
        pin = page.evaluate(f"Boolean(document.querySelector(\"button.pin[data-id='{cid}']\"))")
        list_sizes = page.evaluate(SIZES)
        problem_shown = page.is_visible("#problem")
        shot(page, "mine-cases-390.png", tmp_path_factory)

        # accept, then feed back with a note and a photo
        seen.press(item)
        wait_until(page, "document.querySelector('#case-actions [data-action=accept]')")
        warned = page.text_content("#case-timeline") or ""
        seen.press("#case-actions [data-action=accept]")
        wait_until(page, "document.querySelector('#case-actions [data-action=feed_back]')",
                   timeout=10)
        page.locator("#case-note").press_sequentially("已清理完毕")
        page.set_input_files("#case-photo", str(after))
        wait_until(page, "document.querySelectorAll('#case-preview img').length === 1")
        seen.press("#case-actions [data-action=feed_back]")
        wait_until(page, "document.getElementById('case-title').textContent.includes('处理反馈')",
                   timeout=10)
        wait_until(page, "[...document.querySelectorAll('#case-timeline img')]"
                         ".some((i) => i.complete && i.naturalWidth === 320)", timeout=10)
        status = page.text_content("#case-status") or ""
        case_sizes = page.evaluate(SIZES)
        shot(page, "mine-fed-back-390.png", tmp_path_factory)

        # a new report at my position, with a photo
        seen.press("#tab-report")
        page.select_option("#report-category", GARBAGE)
        page.locator("#report-description").press_sequentially("井盖缺失")
        seen.press("#report-here")
        wait_until(page, "document.getElementById('report-place').textContent"
                         ".includes('我的位置')", timeout=10)
        page.set_input_files("#report-photo", str(before))
        seen.press("#report-submit")
        wait_until(page, "document.getElementById('report-result').dataset.id || "
                         "document.getElementById('report-result').className === 'error'",
                   timeout=10)
        new_id = page.evaluate("document.getElementById('report-result').dataset.id")
        reported = page.text_content("#report-result") or ""
        report_sizes = page.evaluate(SIZES)
        shot(page, "mine-report-390.png", tmp_path_factory)
        errors = seen.unexpected_errors()

    # the page's labels are the domain's (from the server's catalogue, in Chinese)
    assert labels[0] == {s.value: label for s, label in STAGE_LABELS.items()}
    assert labels[1] == {a.value: label for a, label in ACTION_LABELS.items()}
    assert "任务派遣" in listed and "小区门口垃圾堆积" in listed and pin
    assert not problem_shown
    assert "反馈" in status, status
    # what gridmap noted in the timeline, in the page's language
    assert "处置时限" in warned and "即将到期" in warned, warned
    assert "超期督办：处置时限" in warned and "已过" in warned, warned
    assert "deadline" not in warned and "is near" not in warned, warned
    # the dispatcher's API: the new stage, the note and the photo with the feed-back
    with httpx.Client(base_url=base_url, headers=desk) as api:
        seen_case = api.get(f"/api/incidents/{cid}").json()
        assert seen_case["status"] == "reported"
        # (the last step taken: the overdue job's entries above are dated in the future)
        step = next(e for e in reversed(seen_case["timeline"]) if e["role"] != "system")
        assert step["action"] == "feed_back" and step["actor"] == WORKER
        assert step["note"] == "已清理完毕" and len(step["photos"]) == 1
        photo = next(p for p in seen_case["photos"] if p["id"] == step["photos"][0])
        got = api.get(photo["url"])
        assert got.headers["content-type"] == "image/jpeg"
        assert got.content == after.read_bytes()
        # the report made at the worker's position, routed to the grid, with its photo
        assert new_id and new_id in reported and GRID in reported
        new = api.get(f"/api/incidents/{new_id}").json()
        assert new["grid_code"] == GRID and new["description"] == "井盖缺失"
        assert abs(new["lon"] - here[0]) < 1e-6 and abs(new["lat"] - here[1]) < 1e-6
        assert [p["media_type"] for p in new["photos"]] == ["image/jpeg"]
        assert api.get(new["photos"][0]["url"]).content == before.read_bytes()
    for measured in (list_sizes, case_sizes, report_sizes):
        assert not measured["small"], measured["small"]
        assert not measured["low"], measured["low"]
        assert not measured["scrolls"]
    assert not errors, errors
    assert not seen.external, seen.external
