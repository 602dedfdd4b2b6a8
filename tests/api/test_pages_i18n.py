"""The map and sign-in pages in Chinese and in English, for elderly eyes and on phones, in a
real headless Chromium: real glyphs (no tofu), axe-core clean, 44 px targets, large text and
the language kept across visits, the phone's header and legend folded and tapped open, and a
failing request that says so with a retry instead of a stuck "loading…"."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page

from gridmap.api.pages import NODE_MODULES
from tests.api.test_browser import (
    DESKTOP,
    DISPATCHER,
    IN_WORKER_GRID,
    PHONE,
    browse,
    locate,
    open_menu,
    shot,
    sign_in,
    wait_for_map,
    wait_until,
)
from tests.conftest import serve_in_thread
from tests.helpers import token_for

WORKER_GRID_TEXT = "610199001001001"
WORKER = "i18n-worker"
AXE = NODE_MODULES / "axe-core" / "axe.min.js"

# each character drawn on a canvas in the page's own font, beside the replacement glyph
# (.notdef, what a missing font gives: the same empty box for every character)
GLYPHS = """() => {
  const canvas = document.createElement("canvas");
  canvas.width = 64; canvas.height = 64;
  const g = canvas.getContext("2d", { willReadFrequently: true });
  const family = getComputedStyle(document.body).fontFamily;
  const draw = (text) => {
    g.clearRect(0, 0, 64, 64);
    g.font = `48px ${family}`;
    g.fillStyle = "#000";
    g.textBaseline = "top";
    g.fillText(text, 4, 4);
    return Array.from(g.getImageData(0, 0, 64, 64).data).join(",");
  };
  const notdef = draw("\\u{10FFFD}");
  const drawn = ["网", "格", "地", "图", "调", "度"].map(draw);
  return { distinct: new Set(drawn).size, tofu: drawn.filter((d) => d === notdef).length,
           inked: drawn.filter((d) => /[1-9]/.test(d)).length };
}"""

# serious and critical violations only (moderate and minor ones are advice)
AXE_RUN = """async () => {
  const result = await axe.run(document, { resultTypes: ["violations"] });
  return result.violations.filter((v) => ["serious", "critical"].includes(v.impact))
    .map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                   nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ")) }));
}"""

# visible controls smaller than 44 × 44 px (a finger's width)
SMALL_TARGETS = """() => [...document.querySelectorAll(
    "button, a[href], input, select, summary")]
  .filter((el) => el.offsetParent !== null && !el.closest(".maplibregl-ctrl-attrib"))
  .map((el) => ({ el, box: el.getBoundingClientRect() }))
  .filter(({ box }) => box.width > 0 && (box.width < 44 || box.height < 44))
  .filter(({ el }) => !el.closest("#search-hits, #place-hits"))
  .map(({ el, box }) => `${el.id || el.textContent.trim()}: ${Math.round(box.width)}x${
    Math.round(box.height)}`)"""


@pytest.fixture(scope="module")
def base_url(demo_db: str) -> Iterator[str]:
    token_for(demo_db, DISPATCHER, "dispatcher", ("610199000000",))
    token_for(demo_db, WORKER, "grid_worker", (WORKER_GRID_TEXT,))
    yield from serve_in_thread(demo_db)


def axe_violations(page: Page) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    return list(page.evaluate(AXE_RUN))


def font_px(page: Page, selector: str) -> float:
    return float(page.evaluate(
        f"parseFloat(getComputedStyle(document.querySelector('{selector}')).fontSize)"))


def in_view(page: Page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    size = page.viewport_size
    assert size is not None
    return box is not None and box["x"] >= 0 and box["y"] >= 0 and \
        box["x"] + box["width"] <= size["width"] and box["y"] + box["height"] <= size["height"]


@pytest.mark.parametrize("size", [DESKTOP, PHONE])
def test_the_chinese_map_page(base_url: str, size: tuple[int, int],
                              tmp_path_factory: pytest.TempPathFactory) -> None:
    width, height = size
    with browse(base_url, width, height, locale="zh-CN", bypass_csp=True) as seen:
        page = seen.page
        sign_in(seen, base_url, DISPATCHER)
        wait_for_map(page)
        said = {"lang": page.evaluate("document.documentElement.lang"),
                "summary": page.text_content("#summary") or "",
                "who": page.text_content("#who") or "",
                "button": page.text_content("#locate-form button") or "",
                "legend": page.text_content("#legend") or ""}
        glyphs = page.evaluate(GLYPHS)
        base = font_px(page, "body")
        shot(page, f"zh-map-{width}.png", tmp_path_factory)
        reachable = {"locate": in_view(page, "#locate-xy") and in_view(
            page, "#locate-form button")}
        if seen.touch:  # the header folds its links and account behind the menu button
            reachable["menu folded"] = not page.is_visible("#dispatch-link")
            open_menu(seen)
            reachable["menu opens"] = in_view(page, "#dispatch-link") and in_view(
                page, "#lang-switch")
            shot(page, f"zh-menu-{width}.png", tmp_path_factory)
            seen.press("#menu-toggle")
            # the legend starts folded; a tap on its title opens it
            reachable["legend folded"] = not page.is_visible("#legend-note") and \
                not page.is_visible("text=超出标准")
            seen.press("#legend-title")
            reachable["legend opens"] = page.is_visible("text=超出标准")
            seen.press("#legend-title")
        small = page.evaluate(SMALL_TARGETS)
        violations = axe_violations(page)
        located = locate(seen, IN_WORKER_GRID, "gcj02")
        shot(page, f"zh-located-{width}.png", tmp_path_factory)
        # pinyin in the locate box: the road first, with its score; a tap flies there
        locate(seen, "cuihua")
        page.wait_for_selector("#place-hits li button", timeout=30_000)
        first_place = page.text_content("#place-hits li >> nth=0") or ""
        warned = page.evaluate("Boolean(document.getElementById('search-warning'))")
        answer_warns = page.evaluate(
            "fetch('/api/places?q=cuihua&limit=8').then((r) => r.json())"
            ".then((b) => b.warning !== null)")
        shot(page, f"zh-places-{width}.png", tmp_path_factory)
        seen.press("#place-hits li button >> nth=0")
        wait_until(page, "!document.getElementById('place-hits') && !document"
                         ".getElementById('locate-result').dataset.busy")
        flown = page.text_content("#locate-result") or ""
        scrolls = page.evaluate(
            "document.documentElement.scrollWidth > document.documentElement.clientWidth")

        # large text: 20 px, kept on the next visit
        open_menu(seen)
        seen.press("#text-size")
        page.reload()
        wait_for_map(page)
        large = {"font": font_px(page, "body"), "input": font_px(page, "#locate-xy"),
                 "pressed": page.get_attribute("#text-size", "aria-pressed"),
                 "scrolls": page.evaluate("document.documentElement.scrollWidth > "
                                          "document.documentElement.clientWidth")}
        shot(page, f"zh-large-{width}.png", tmp_path_factory)
        large["small"] = page.evaluate(SMALL_TARGETS)
        open_menu(seen)
        seen.press("#text-size")

        # the language switch: English, kept on the next visit; the API follows it
        open_menu(seen)
        with page.expect_navigation(timeout=90_000):
            seen.press("#lang-switch")
        wait_for_map(page)
        english = {"lang": page.evaluate("document.documentElement.lang"),
                   "who": page.text_content("#who") or "",
                   "summary": page.text_content("#summary") or "",
                   "legend": page.text_content("#legend") or ""}
        english["violations"] = axe_violations(page)
        shot(page, f"en-map-{width}.png", tmp_path_factory)
        page.reload()
        wait_for_map(page)
        english["kept"] = page.evaluate("document.documentElement.lang")
        answer = page.evaluate("fetch('/api/locate?lon=0&lat=0').then((r) => r.json())")
        open_menu(seen)
        with page.expect_navigation(timeout=90_000):
            seen.press("#lang-switch")  # back to Chinese
        wait_for_map(page)
        back = page.evaluate("document.documentElement.lang")

    assert said["lang"] == "zh-CN" and said["button"] == "定位"
    assert "74 个社区" in said["summary"] and "个网格" in said["summary"], said
    assert said["who"] == f"{DISPATCHER}（调度员）"
    assert "街道" in said["legend"] and "建筑（放大后显示）" in said["legend"], said["legend"]
    # six different characters, six different drawings, none the replacement box
    assert glyphs == {"distinct": 6, "tofu": 0, "inked": 6}, glyphs
    assert base >= 16
    assert all(reachable.values()), reachable
    assert not small, small
    assert not violations, violations
    assert WORKER_GRID_TEXT in located and "专职网格员" in located, located
    assert first_place.startswith("翠华路 道路") and "相似度 0.9" in first_place, first_place
    assert warned == answer_warns  # the page warns when the search does
    assert "›" in flown and "翠华路" not in flown, flown  # its grid, community and township
    assert not scrolls
    assert large == {"font": 20, "input": 20, "pressed": "true", "scrolls": False,
                     "small": []}, large
    assert english["lang"] == english["kept"] == "en"
    assert english["who"] == f"{DISPATCHER} (Dispatcher)"
    assert "74 communities" in english["summary"]
    assert "street" in english["legend"] and "building (shown closer in)" in english["legend"]
    assert not english["violations"], english["violations"]
    assert answer == {"code": "not_visible",  # the API speaks the page's language
                      "detail": "the point is in none of your divisions' grids"}
    assert back == "zh-CN"
    assert not seen.unexpected_errors((404, "/api/locate")), seen.errors
    assert not seen.external, seen.external


@pytest.mark.parametrize("size", [DESKTOP, PHONE])
@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_the_sign_in_page_in_each_language(base_url: str, size: tuple[int, int], locale: str,
                                           tmp_path_factory: pytest.TempPathFactory) -> None:
    width, height = size
    with browse(base_url, width, height, locale=locale, bypass_csp=True) as seen:
        page = seen.page
        page.goto(base_url + "/login?next=/")
        wait_until(page, "document.getElementById('login-submit').textContent.trim() !== ''")
        page.locator("#username").press_sequentially(DISPATCHER)
        page.locator("#password").press_sequentially("not the password")
        seen.press("#login-submit")
        page.wait_for_selector("[role=alert]:not(:empty)", timeout=30_000)
        alert = page.text_content("[role=alert]") or ""
        glyphs = page.evaluate(GLYPHS)
        small = page.evaluate(SMALL_TARGETS)
        violations = axe_violations(page)
        shot(page, f"login-{locale}-{width}.png", tmp_path_factory)
        labels = [page.text_content("label[for=username]"), page.text_content("#login-submit")]
    if locale == "zh-CN":
        assert alert == "登录失败：账号或密码错误", alert
        assert labels == ["账号", "登录"]
    else:
        assert alert == "Sign-in failed: wrong account name or password", alert
        assert labels == ["Account name", "Sign in"]
    assert glyphs == {"distinct": 6, "tofu": 0, "inked": 6}, glyphs
    assert not small, small
    assert not violations, violations
    assert not seen.unexpected_errors((401, "/auth/session")), seen.errors
    assert not seen.external, seen.external


@pytest.mark.parametrize("size", [DESKTOP, PHONE])
def test_a_failing_request_says_so_and_retries(base_url: str, size: tuple[int, int],
                                               tmp_path_factory: pytest.TempPathFactory
                                               ) -> None:
    width, height = size
    with browse(base_url, width, height, locale="zh-CN") as seen:
        page = seen.page
        failing = {"on": True}

        def standard(route: Any) -> None:
            if failing["on"]:
                route.fulfill(status=500, content_type="text/plain", body="boom")
            else:
                route.continue_()

        page.route("**/api/standard", standard)
        page.goto(base_url + "/")
        page.wait_for_selector("#problem", state="visible", timeout=60_000)
        problem = page.text_content("#problem-text") or ""
        summary = page.text_content("#summary") or ""
        retry = page.locator("#problem-retry").bounding_box()
        shot(page, f"problem-{width}.png", tmp_path_factory)
        # the network comes back: the retry draws the map
        failing["on"] = False
        seen.press("#problem-retry")
        wait_for_map(page)
        after = {"problem": page.is_visible("#problem"),
                 "layers": "grids-fill" in page.evaluate(
                     "map.getStyle().layers.map((l) => l.id)")}
        # a network failure (aborted) reads as one too
        page.route("**/api/communities.geojson", lambda route: route.abort())
        page.reload()
        page.wait_for_selector("#problem", state="visible", timeout=60_000)
        aborted = page.text_content("#problem-text") or ""
    assert problem == "加载失败（网格标准）：/api/standard：HTTP 500" or (
        "网格标准" in problem and "500" in problem), problem
    assert "加载中" not in summary
    assert retry is not None and retry["height"] >= 44 and retry["width"] >= 44
    assert after == {"problem": False, "layers": True}
    assert "社区边界" in aborted and "网络错误" in aborted, aborted
    assert not seen.external, seen.external


# each incident page: where it is, who opens it, what says it is ready, its heading and a
# status line written by the page (a time, in the deployment's zone, as the language writes it)
INCIDENT_PAGES = {
    "/dispatch": (DISPATCHER, "window.dispatchReady", "h1", ("调度台", "Dispatch desk"),
                  "#queue-status", ("更新于", "Updated")),
    "/mine": (WORKER, "window.mineReady", "h1", ("我的网格", "My grid"),
              "#tab-report", ("上报", "Report")),
    "/stats": (DISPATCHER, "window.statsReady", "h1", ("绩效与热点", "KPIs and hotspots"),
               "#kpi-title", ("绩效指标", "Performance indicators")),
}

@pytest.mark.parametrize("size", [DESKTOP, PHONE])
@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
@pytest.mark.parametrize("path", list(INCIDENT_PAGES))
def test_the_incident_pages_in_each_language(base_url: str, size: tuple[int, int],
                                             locale: str, path: str) -> None:
    """The dispatcher's desk, the worker's phone page and the indicators: every text from
    the catalogues in the browser's language (Chinese glyphs drawn, not boxes), axe-core
    clean, and the desk's times in Asia/Shanghai as the language writes them."""
    account, ready, heading, headings, probe, probes = INCIDENT_PAGES[path]
    chinese = locale == "zh-CN"
    width, height = size
    with browse(base_url, width, height, locale=locale, bypass_csp=True) as seen:
        page = seen.page
        sign_in(seen, base_url, account, next_path=path)
        wait_until(page, f"{ready} === true || Boolean(window.gridmapError || "
                         "window.mineError || window.statsError)", timeout=90)
        if path == "/dispatch":
            wait_until(page, "document.getElementById('queue-status').textContent !== ''")
        texts = (page.text_content(heading) or "", page.text_content(probe) or "")
        lang = page.evaluate("document.documentElement.lang")
        glyphs = page.evaluate(GLYPHS)
        violations = axe_violations(page)
        stamp = page.evaluate("i18n.formatTime('2026-11-21T12:30:00Z')")
        problem = page.is_visible("#problem")
    assert texts[0].strip() == headings[0 if chinese else 1], texts
    assert texts[1].strip().startswith(probes[0 if chinese else 1]), texts
    assert lang == ("zh-CN" if chinese else "en")
    # 20:30 in Shanghai (UTC+8), in the language's own way of writing a date
    assert stamp == ("2026年11月21日 20:30" if chinese else "November 21, 2026 at 20:30"), stamp
    assert glyphs == {"distinct": 6, "tofu": 0, "inked": 6}, glyphs
    assert not violations, violations
    assert not problem
    assert not seen.external, seen.external
