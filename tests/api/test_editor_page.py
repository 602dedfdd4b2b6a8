"""The planner's editor page (/editor) in a real headless Chromium: a planner signs in, picks a
community, opens a draft and splits its overloaded grid by drawing a line with mouse clicks on
the map (a line that does not cross the grid first: refused, the reason on the page, nothing
changed); sees the statistics and the difference from the published grids change, submits and
publishes, and a point locates in the new grid; then compares and restores the first version
(the point is in the old grid again). On a phone the folded panel opens, grids are tapped on
the map, merged and locked. axe-core finds nothing serious at either size."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
import shapely
from shapely.geometry import LineString, shape

from gridmap.domain.standards import GridStandard
from tests.api.test_browser import Browsed, browse, shot, sign_in, wait_until
from tests.api.test_pages_i18n import axe_violations
from tests.conftest import serve_in_thread
from tests.helpers import assigned_district, bearer, demo_area, size_check, token_for

TOWNSHIP, COMMUNITY, OTHER = "610199001000", "610199001001", "610199001002"
OVERLOADED = "610199001001001"  # 439 households: above the band the server is given
PLANNER = "editor-planner"
SIZES = size_check("header *, #panel *", "button, select, input, textarea, a.button, nav a")


@pytest.fixture(scope="module")
def database(server_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[str]:
    """Boundaries, grids, workers and the households of two communities, assigned."""
    for url in assigned_district(server_url, template_db,
                                 demo_area("communities", COMMUNITY, OTHER),
                                 tmp_path_factory.mktemp("editor")):
        token_for(url, PLANNER, "planner", (TOWNSHIP,))
        yield url


@pytest.fixture(scope="module")
def base_url(database: str) -> Iterator[str]:
    """Approval in one step (submitting approves); a band of 150–420 households, so that
    the community's 439-household grid is above it."""
    yield from serve_in_thread(database, draft_approval="one_step",
                               standard=GridStandard(urban_households=(150, 420)))


def open_editor(seen: Browsed, base_url: str, community: str, *, via_map: bool = False
                ) -> None:
    """Sign in as the planner (onto the map page and its link to the editor, *via_map*),
    pick *community* and open a new draft of it."""
    page = seen.page
    if via_map:
        sign_in(seen, base_url, PLANNER)
        page.wait_for_selector("#editor-link", state="visible", timeout=60_000)
        seen.press("#editor-link")
        page.wait_for_url(base_url + "/editor", timeout=60_000)
    else:
        sign_in(seen, base_url, PLANNER, next_path="/editor")
    wait_until(page, "window.gridmapReady === true || Boolean(window.gridmapError)")
    assert not page.evaluate("window.gridmapError")
    if page.is_visible("#panel-toggle"):
        seen.press("#panel-toggle")
    page.select_option("#community", community)
    wait_until(page, f"editor.community === '{community}' && "
                     "document.querySelectorAll('#history li').length > 0", timeout=30)
    seen.press("#open-draft")
    wait_until(page, "document.querySelectorAll('#stats tbody tr').length > 0", timeout=30)


def grid(page: Any, code: str) -> shapely.Geometry:
    features = page.evaluate("editor.view.grids.features")
    return shape(next(f for f in features if f["id"] == code)["geometry"])


def row(page: Any, code: str) -> dict[str, str]:
    return dict(page.evaluate(f"""(() => {{
      const tr = document.querySelector('#stats tr[data-code="{code}"]');
      return tr ? {{ band: tr.className, households: tr.querySelector('.households')
        .textContent, text: tr.textContent }} : null; }})()"""))


def crossing(geom: shapely.Geometry, *, across: bool = True) -> LineString:
    """An east–west line through the middle of *geom*: from just outside one edge to just
    outside the other (*across*), or a short one inside it."""
    middle = geom.representative_point()
    west, _, east, _ = geom.bounds
    chord = geom.intersection(LineString([(west - 1, middle.y), (east + 1, middle.y)]))
    piece = next(p for p in shapely.get_parts(chord) if p.distance(middle) < 1e-9)
    (x0, y), (x1, _) = piece.coords[0], piece.coords[-1]
    x0, x1 = min(x0, x1), max(x0, x1)
    if across:
        return LineString([(x0 - 0.0002, y), (x1 + 0.0002, y)])
    third = (x1 - x0) / 3
    return LineString([(x0 + third, y), (x1 - third, y)])


def draw_line(seen: Browsed, line: LineString) -> None:
    """Click each point of *line* on the map, then the last one again (terra-draw ends a
    line there)."""
    page = seen.page
    page.evaluate(f"map.fitBounds({list(line.bounds)}, {{padding: 60, animate: false}})")
    box = page.locator("#map canvas").bounding_box()
    assert box is not None
    points = [page.evaluate(f"map.project([{x}, {y}])") for x, y in line.coords]
    for p in [*points, points[-1]]:
        page.mouse.click(box["x"] + p["x"], box["y"] + p["y"])
        page.wait_for_timeout(350)  # not a double click (which zooms)


def diff_rows(page: Any) -> dict[str, str]:
    """The difference table: grid code → change, as the page words it."""
    return dict(page.evaluate("Object.fromEntries([...document.querySelectorAll("
                              "'#diff tbody tr')].map((tr) => [tr.dataset.code, "
                              "tr.cells[1].textContent]))"))


def locate(base_url: str, headers: dict[str, str], point: shapely.Point) -> str:
    """The grid GET /api/locate gives for *point*."""
    res = httpx.get(f"{base_url}/api/locate", params={"lon": point.x, "lat": point.y},
                    headers=headers)
    assert res.status_code == 200, res.text
    return str(res.json()["grid"]["code"])


def neighbours(page: Any) -> list[str]:
    """Two comprehensive grids of the draft that share an edge."""
    features = page.evaluate("editor.view.grids.features")
    grids = [(f["id"], shape(f["geometry"])) for f in features
             if f["properties"]["kind"] == "comprehensive"]
    return next([a, b] for i, (a, ga) in enumerate(grids) for b, gb in grids[i + 1:]
                if ga.intersection(gb).length > 0)


def tap_grids(seen: Browsed, codes: list[str]) -> None:
    """Tap inside each grid on the map, as a finger does."""
    page = seen.page
    box = page.locator("#map canvas").bounding_box()
    assert box is not None
    for code in codes:
        inside = grid(page, code).representative_point()
        p = page.evaluate(f"map.project([{inside.x}, {inside.y}])")
        page.touchscreen.tap(box["x"] + p["x"], box["y"] + p["y"])
        page.wait_for_timeout(400)


def test_a_planner_splits_an_overloaded_grid_and_publishes_it(
        base_url: str, database: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    with browse(base_url, 1280, 800, locale="zh-CN", bypass_csp=True) as seen:
        page = seen.page
        open_editor(seen, base_url, COMMUNITY, via_map=True)
        before = row(page, OVERLOADED)
        assert "above" in before["band"] and "超出标准" in before["text"], before
        households = int(before["households"])
        seen.press("#tool-split")
        assert page.get_attribute("#tool-split", "aria-pressed") == "true"
        old = grid(page, OVERLOADED)
        codes = {g["code"] for g in page.evaluate("editor.view.stats.grids")}

        # a line that does not cross the grid: refused, the reason and what to do on the page
        revision = page.evaluate("document.body.dataset.revision")
        draw_line(seen, crossing(old, across=False))
        wait_until(page, "!document.getElementById('problem').hidden", timeout=30)
        said = page.text_content("#problem") or ""
        assert page.get_attribute("#problem", "data-status") == "422"
        assert "拆分失败" in said and OVERLOADED in said, said
        assert "请把线的两端都画到网格外面" in said, said  # the server says why, in Chinese
        assert "草稿和已发布的网格都没有改变" in said, said  # and the page what to do
        assert page.evaluate("document.body.dataset.revision") == revision
        assert row(page, OVERLOADED)["households"] == before["households"]
        seen.press("#problem-close")
        assert page.is_hidden("#problem")

        draw_line(seen, crossing(old))
        wait_until(page, f"!document.querySelector('#stats tr[data-code=\"{OVERLOADED}\"]')",
                   timeout=30)
        view = page.evaluate("editor.view")
        new = [g for g in view["stats"]["grids"] if g["code"] not in codes]
        assert len(new) == 2, view["changed"]
        assert sum(g["households"] for g in new) == households  # conserved, shown per row
        for g in new:
            shown = row(page, g["code"])
            assert int(shown["households"]) == g["households"] < households
            assert "above" not in shown["band"]
        assert "分区问题" in (page.text_content("#stats-box") or "")
        assert page.is_enabled("#undo")
        # what publishing would change: the draft against the published grids
        seen.press("#diff-draft")
        wait_until(page, "document.querySelectorAll('#diff tbody tr').length > 0", timeout=30)
        changes = diff_rows(page)
        assert changes[OVERLOADED] == "撤销" and all(changes[g["code"]] == "新增" for g in new)
        assert page.evaluate("map.getFilter('diff-retired')")[2][1] == [OVERLOADED]
        shot(page, "editor-split-1280.png", tmp_path_factory)
        sizes = page.evaluate(SIZES)
        violations = axe_violations(page)

        page.fill("#note", "拆分超标网格")
        page.check("#acknowledge")
        seen.press("#submit")
        wait_until(page, "document.body.dataset.draftStatus === 'approved'", timeout=30)
        seen.press("#publish")
        wait_until(page, "document.body.dataset.draftStatus === 'published'", timeout=60)
        assert page.is_hidden("#problem"), page.text_content("#problem")
        assert page.is_disabled("#tool-split")

        target = new[0]["code"]
        inside = grid(page, target).representative_point()
        page.fill("#locate-xy", f"{inside.x:.7f}, {inside.y:.7f}")
        seen.press("#locate-form button")
        wait_until(page, "document.getElementById('locate-result').dataset.grid", timeout=30)
        assert page.get_attribute("#locate-result", "data-grid") == target
        assert target in (page.text_content("#locate-result") or "")
        headers = bearer(token_for(database, PLANNER, "planner", (TOWNSHIP,)))
        assert locate(base_url, headers, inside) == target

        # the history: version 1 against the published draft, then restored
        assert page.locator("#history li").count() == 2
        seen.press('#history li[data-version="1"] button >> text=与当前版比较')
        wait_until(page, "document.getElementById('diff-summary').textContent"
                         ".includes('第 1 版与第 2 版')", timeout=30)
        assert diff_rows(page) == changes
        page.fill("#restore-note", "撤回拆分")
        seen.press('#history li[data-version="1"] button >> text=恢复此版本')
        wait_until(page, "document.querySelectorAll('#history li').length === 3", timeout=60)
        assert page.is_hidden("#problem"), page.text_content("#problem")
        assert locate(base_url, headers, inside) == OVERLOADED  # back under its own code
        errors = seen.unexpected_errors((422, f"/api/drafts/{view['draft']['id']}/edits"))
    assert sizes == {"small": [], "low": [], "scrolls": False}, sizes
    assert violations == [], violations
    assert errors == [] and seen.external == [], (errors, seen.external)


def test_on_a_phone_the_panel_folds_and_its_controls_are_tapped(
        base_url: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    with browse(base_url, 390, 844, locale="en-US", bypass_csp=True) as seen:
        page = seen.page
        sign_in(seen, base_url, PLANNER, next_path="/editor")
        wait_until(page, "window.gridmapReady === true || Boolean(window.gridmapError)")
        assert page.is_hidden("#panel")  # folded: the map has the screen
        seen.press("#panel-toggle")
        assert page.is_visible("#open-draft")
        page.select_option("#community", OTHER)
        wait_until(page, f"editor.community === '{OTHER}'", timeout=30)
        seen.press("#open-draft")
        wait_until(page, "document.querySelectorAll('#stats tbody tr').length > 0", timeout=30)
        before = page.evaluate("editor.view.stats.grids.map((g) => g.code)")
        seen.press("#tool-merge")
        assert page.get_attribute("#tool-merge", "aria-pressed") == "true"
        assert "Click two or more" in (page.text_content("#tool-hint") or "")
        seen.press("#panel-toggle")  # the map, whole, to tap two neighbours on
        assert page.is_hidden("#panel")
        pair = neighbours(page)
        tap_grids(seen, pair)
        seen.press("#panel-toggle")
        assert all(c in (page.text_content("#tool-hint") or "") for c in pair)
        seen.press("#merge-apply")
        wait_until(page, f"editor.view.stats.grids.length === {len(before) - 1}", timeout=30)
        after = page.evaluate("editor.view.stats.grids.map((g) => g.code)")
        assert not set(pair) & set(after) and len(set(after) - set(before)) == 1
        seen.press("#tool-lock")
        assert page.get_attribute("#tool-merge", "aria-pressed") == "false"
        seen.press("#panel-toggle")
        tap_grids(seen, pair[:1] if pair[0] in after else [sorted(after)[0]])
        seen.press("#panel-toggle")
        wait_until(page, "editor.view.stats.grids.some((g) => g.locked)", timeout=30)
        locked = page.evaluate("editor.view.stats.grids.find((g) => g.locked).code")
        assert "locked" in row(page, locked)["text"]
        seen.press("#tool-cancel")
        assert page.get_attribute("#tool-lock", "aria-pressed") == "false"
        seen.press("#diff-draft")
        wait_until(page, "document.getElementById('diff-summary').textContent !== ''")
        sizes = page.evaluate(SIZES)
        shot(page, "editor-390.png", tmp_path_factory)
        violations = axe_violations(page)
        seen.press("#panel-toggle")
        assert page.is_hidden("#panel")
        errors = seen.unexpected_errors()
    assert sizes == {"small": [], "low": [], "scrolls": False}, sizes
    assert violations == [], violations
    assert errors == [], errors



def click_points(seen: Browsed, points: list[tuple[float, float]]) -> None:
    """Click each (lon, lat) on the map, a moment apart (not a double click)."""
    page = seen.page
    box = page.locator("#map canvas").bounding_box()
    assert box is not None
    for x, y in points:
        p = page.evaluate(f"map.project([{x}, {y}])")
        page.mouse.click(box["x"] + p["x"], box["y"] + p["y"])
        page.wait_for_timeout(350)


def test_a_shared_vertex_moves_both_grids_and_painting_moves_land(base_url: str) -> None:
    with browse(base_url, 1280, 800, locale="en-US") as seen:
        page = seen.page
        open_editor(seen, base_url, OTHER)
        a, b = neighbours(page)
        ga, gb = grid(page, a), grid(page, b)
        home = shape(page.evaluate(f"editor.communities.find((f) => f.properties.code === "
                                   f"'{OTHER}').geometry")).boundary
        shared = [xy for xy in sorted({tuple(c) for c in shapely.get_coordinates(ga).tolist()})
                  if shapely.Point(xy).distance(gb.boundary) < 1e-7
                  and shapely.Point(xy).distance(home) > 1e-5]
        assert shared, "the two grids share no inner vertex"
        x, y = shared[0]
        toward = ga.representative_point()
        step = 0.0001 / max(1e-12, shapely.Point(x, y).distance(toward))
        to = (x + (toward.x - x) * step, y + (toward.y - y) * step)
        page.evaluate(f"map.fitBounds([{x - 0.001}, {y - 0.001}, {x + 0.001}, {y + 0.001}], "
                      "{animate: false})")
        seen.press("#tool-move")
        click_points(seen, [(x, y)])
        assert "new place" in (page.text_content("#tool-hint") or "")
        click_points(seen, [to])
        wait_until(page, f"editor.view.changed.includes('{a}') && "
                         f"editor.view.changed.includes('{b}')", timeout=30)
        assert not page.evaluate("editor.view.stats.defects.filter((d) => "
                                 "['gap', 'overlap'].includes(d.defect)).length")
        moved = page.evaluate("editor.view.draft.revision")
        seen.press("#undo")
        wait_until(page, f"editor.view.draft.revision > {moved} && !editor.view.can_undo",
                   timeout=30)
        assert grid(page, a).equals(ga) and grid(page, b).equals(gb)
        seen.press("#redo")
        wait_until(page, "editor.view.can_undo", timeout=30)
        assert not grid(page, a).equals(ga)

        # paint a square on the shared edge into grid a: a grows, b shrinks
        seen.press("#tool-paint")
        page.select_option("#paint-target", a)
        mid = ga.intersection(gb).interpolate(0.5, normalized=True)
        d = 0.0002
        square = [(mid.x - d, mid.y - d), (mid.x + d, mid.y - d), (mid.x + d, mid.y + d),
                  (mid.x - d, mid.y + d), (mid.x - d, mid.y - d)]
        area = {g: page.evaluate(f"editor.view.stats.grids.find((s) => s.code === '{g}')"
                                 ".area_km2") for g in (a, b)}
        page.evaluate(f"map.fitBounds([{mid.x - 0.001}, {mid.y - 0.001}, {mid.x + 0.001}, "
                      f"{mid.y + 0.001}], {{animate: false}})")
        revision = page.evaluate("editor.view.draft.revision")
        click_points(seen, square)
        wait_until(page, f"editor.view.draft.revision > {revision}", timeout=30)
        after = {g: page.evaluate(f"editor.view.stats.grids.find((s) => s.code === '{g}')"
                                  ".area_km2") for g in (a, b)}
        assert after[a] > area[a] and after[b] < area[b], (area, after)
        assert page.is_hidden("#problem"), page.text_content("#problem")
        errors = seen.unexpected_errors()
    assert errors == [], errors


def press_grids(seen: Browsed, codes: list[str]) -> None:
    """Tap (a phone) or click inside each grid on the map."""
    if seen.touch:
        tap_grids(seen, codes)
        return
    click_points(seen, [grid(seen.page, c).representative_point().coords[0] for c in codes])


def draft_row(url: str, draft: int) -> tuple[str, str | None, int, int]:
    """The stored draft: its status, closing note, grids and logged edits."""
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        row = conn.execute(
            "SELECT status, closing_note, (SELECT count(*) FROM plan_draft_grid WHERE "
            "draft_id = d.id), (SELECT count(*) FROM plan_draft_edit WHERE draft_id = d.id) "
            "FROM plan_draft d WHERE id = %s", (draft,)).fetchone()
    assert row is not None
    return row[0], row[1], int(row[2]), int(row[3])


@pytest.mark.parametrize(("width", "height", "locale"),
                         [(1280, 800, "zh-CN"), (390, 844, "en-US")])
def test_abandoning_a_draft_asks_first_says_what_is_lost_and_keeps_the_draft(
        base_url: str, database: str, width: int, height: int, locale: str) -> None:
    with browse(base_url, width, height, locale=locale, bypass_csp=True) as seen:
        page = seen.page
        open_editor(seen, base_url, OTHER)
        draft = int(page.evaluate("editor.draft"))
        grids = int(page.evaluate("editor.view.stats.grids.length"))
        # an edit to lose: two neighbours merged
        pair = neighbours(page)
        seen.press("#tool-merge")
        if seen.touch:
            seen.press("#panel-toggle")
        press_grids(seen, pair)
        if seen.touch:
            seen.press("#panel-toggle")
        seen.press("#merge-apply")
        wait_until(page, f"editor.view.stats.grids.length === {grids - 1}", timeout=30)
        headers = bearer(token_for(database, PLANNER, "planner", (TOWNSHIP,)))
        diff = httpx.get(f"{base_url}/api/drafts/{draft}/diff", headers=headers).json()
        assert len(diff["grids"]) >= 2, diff["grids"]  # one retired, one reshaped

        # the button asks; the question says what would be lost; nothing is done yet
        seen.press("#abandon")
        wait_until(page, "!document.getElementById('abandon-box').hidden", timeout=30)
        loss = page.text_content("#abandon-loss") or ""
        said = (f"改动了 {len(diff['grids'])} 个网格" if locale == "zh-CN"
                else f"changes {len(diff['grids'])} grids")
        assert f"{draft}" in loss and said in loss, loss
        assert ("不会发布" in loss) if locale == "zh-CN" else ("none of it will be published"
                                                               in loss), loss
        assert page.evaluate("document.activeElement.id") == "abandon-keep"
        assert draft_row(database, draft)[0] == "open"
        targets = {b: page.locator(f"#{b}").bounding_box()
                   for b in ("abandon", "abandon-keep", "abandon-yes")}
        assert all(box and box["width"] >= 44 and box["height"] >= 44
                   for box in targets.values()), targets
        sizes = page.evaluate(SIZES)
        violations = axe_violations(page)
        seen.press("#abandon-keep")
        assert page.is_hidden("#abandon-box")
        assert page.evaluate("document.body.dataset.draftStatus") == "open"
        assert draft_row(database, draft)[0] == "open"

        # confirmed: abandoned, the page takes no more edits, the draft is kept as it was
        seen.press("#abandon")
        wait_until(page, "!document.getElementById('abandon-box').hidden", timeout=30)
        page.fill("#abandon-note", "merged by mistake")
        seen.press("#abandon-yes")
        wait_until(page, "document.body.dataset.draftStatus === 'abandoned'", timeout=30)
        assert page.is_hidden("#problem"), page.text_content("#problem")
        assert page.is_hidden("#abandon-box")
        for control in ("#tool-merge", "#submit", "#undo", "#abandon"):
            assert page.is_disabled(control), control
        assert str(draft) in (page.text_content("#summary") or "")
        offered = page.evaluate("[...document.querySelectorAll('#drafts option')]"
                                ".map((o) => o.value)")
        assert str(draft) not in offered
        status, note, kept, edits = draft_row(database, draft)
        assert (status, note, kept) == ("abandoned", "merged by mistake", grids - 1)
        assert edits >= 1
        again = httpx.get(f"{base_url}/api/drafts/{draft}", headers=headers)
        assert again.status_code == 200 and len(again.json()["grids"]["features"]) == grids - 1
        errors = seen.unexpected_errors()
    assert sizes == {"small": [], "low": [], "scrolls": False}, sizes
    assert violations == [], violations
    assert errors == [], errors
