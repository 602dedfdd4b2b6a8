"""The demo map page and the sign-in page in a real headless Chromium (Debian's), served by
uvicorn: what each caller sees, at a desktop size and at a phone's."""

from __future__ import annotations

import os
import re
import shutil
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from playwright.sync_api import ConsoleMessage, Page

from tests.conftest import serve_in_thread
from tests.helpers import chromium, token_for

SHOT_DIR = Path(os.environ.get("GRIDMAP_SCREENSHOT_DIR", "/nonexistent"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--use-gl=swiftshader", "--enable-unsafe-swiftshader"]

PASSWORD = "correct horse battery"  # tests.helpers.token_for gives every account this one
ADMIN, DISPATCHER, WORKER, REFUSED = "map-admin", "map-dispatcher", "map-worker", "map-refused"
WORKER_GRID = "610199001001001"
# WGS84, in the neighbouring grid 610199001001002 (its workers: 郭波秀 13304612771, 宋娟)
NEXT_DOOR = "109.0293, 34.2264"
# GCJ-02 (as a Chinese web map gives it), in the worker's own grid (萧强芳 13120432786)
IN_WORKER_GRID = "109.0277, 34.2232"
DESKTOP = pytest.param((1200, 800), id="desktop")
PHONE = pytest.param((390, 844), id="phone")
# a request the page makes and the server refuses (the test asks for it): Chromium logs
# "Failed to load resource: … status of 404" for it, which is no fault of the page
REFUSED_LOAD = re.compile(r"^Failed to load resource: the server responded with a status of "
                          r"(?P<status>\d+) .*\[(?P<url>[^\]]*)\]$")


@dataclass
class Browsed:
    page: Page
    touch: bool
    errors: list[str] = field(default_factory=list)   # console errors and page exceptions
    external: list[str] = field(default_factory=list)  # requests that left the server

    def press(self, selector: str) -> None:
        """Tap (on a phone) or click a control."""
        if self.touch:
            self.page.tap(selector)
        else:
            self.page.click(selector)

    def unexpected_errors(self, *refused: tuple[int, str]) -> list[str]:
        """The errors recorded, but for the refusals (status, path) the test asked for."""
        left = []
        for error in self.errors:
            hit = REFUSED_LOAD.match(error)
            if hit and (int(hit["status"]), urlsplit(hit["url"]).path) in refused:
                continue
            left.append(error)
        return left


def _console(seen: Browsed, message: ConsoleMessage) -> None:
    if message.type == "error":
        seen.errors.append(f"{message.text} [{message.location.get('url', '')}]")


@contextmanager
def browse(base_url: str, width: int, height: int, *, locale: str = "en-US",
           bypass_csp: bool = False) -> Iterator[Browsed]:
    """A page in Debian's headless chromium (a context of its own: a fresh profile) that
    records errors and outside requests; a touch screen when phone-sized; a browser set to
    *locale* (it sends Accept-Language, so the pages and the API speak its language).
    *bypass_csp*: so that axe-core can be put into the page."""
    touch = width < 700
    with chromium.context(CHROMIUM, FLAGS, viewport={"width": width, "height": height},
                          has_touch=touch, is_mobile=touch, locale=locale,
                          bypass_csp=bypass_csp) as context:
        page = context.new_page()
        seen = Browsed(page, touch)
        page.on("console", lambda m: _console(seen, m))
        page.on("pageerror", lambda e: seen.errors.append(str(e)))
        page.on("request", lambda r: seen.external.append(r.url)
                if not r.url.startswith((base_url, "data:", "blob:")) else None)
        yield seen


def wait_until(page: Page, expression: str, timeout: float = 90.0) -> Any:
    """Poll a JavaScript expression until it is truthy. (``page.wait_for_function`` runs
    ``eval`` in the page, which the pages' Content-Security-Policy forbids.)"""
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {expression}")
        page.wait_for_timeout(100)


def wait_for_map(page: Page) -> None:
    """Until the page has drawn what its caller may see and the tiles are in."""
    wait_until(page, "window.gridmapReady === true || Boolean(window.gridmapError)")
    error = page.evaluate("window.gridmapError")
    assert not error, f"the map page failed: {error}"
    wait_until(page, "map.loaded() && !map.isMoving() && map.areTilesLoaded()")


def grid_codes(page: Page) -> set[str]:
    return set(page.evaluate(
        "[...new Set(map.queryRenderedFeatures({layers: ['grids-fill']})"
        ".map((f) => f.properties.code))]"))


def locate(seen: Browsed, text: str, crs: str = "wgs84") -> str:
    """Type into the locate box and press Locate: what the box answers."""
    page = seen.page
    page.fill("#locate-xy", text)
    page.select_option("#locate-crs", crs)
    seen.press("#locate-form button")
    wait_until(page, "!document.getElementById('locate-result').dataset.busy && document"
                     ".getElementById('locate-result').textContent.trim() !== ''", timeout=10)
    return page.text_content("#locate-result") or ""


def sign_in(seen: Browsed, base_url: str, name: str, password: str = PASSWORD,
            next_path: str | None = None, lands_on: str | None = None) -> None:
    """Through the sign-in page, typing as a person does; on to *lands_on* (*next_path*, or
    the map if that is None)."""
    page = seen.page
    page.goto(base_url + "/login" + ("" if next_path is None else
                                     f"?next={quote(next_path, safe='')}"))
    page.locator("#username").press_sequentially(name)
    page.locator("#password").press_sequentially(password)
    seen.press("#login-submit")
    page.wait_for_url(base_url + (lands_on or next_path or "/"), timeout=90_000)


def open_menu(seen: Browsed) -> None:
    """On a phone the header's links, switches and account fold behind the menu button:
    tap it open (a desktop shows them)."""
    if seen.page.is_visible("#menu-toggle") and \
            seen.page.get_attribute("#menu-toggle", "aria-expanded") != "true":
        seen.press("#menu-toggle")
        seen.page.wait_for_selector("#menu", state="visible", timeout=5_000)


def shot(page: Page, name: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = SHOT_DIR if SHOT_DIR.exists() else tmp_path_factory.mktemp("shots")
    page.screenshot(path=str(folder / name))


@pytest.fixture(scope="module")
def base_url(demo_db: str) -> Iterator[str]:
    yield from serve_in_thread(demo_db)


@pytest.fixture(scope="module")
def accounts(demo_db: str) -> None:
    """The accounts the pages sign in with (all with PASSWORD)."""
    token_for(demo_db, ADMIN, "admin")
    token_for(demo_db, DISPATCHER, "dispatcher", ("610199000000",))  # the whole county
    token_for(demo_db, WORKER, "grid_worker", (WORKER_GRID,))
    token_for(demo_db, REFUSED, "analyst", ("610199000000",))


def test_map_page_draws_the_district(base_url: str, accounts: None,
                                     tmp_path_factory: pytest.TempPathFactory) -> None:
    with browse(base_url, 1200, 800) as seen:
        page = seen.page
        sign_in(seen, base_url, ADMIN)
        wait_for_map(page)
        counts = page.evaluate("""() => ({
            grids: map.queryRenderedFeatures({layers: ['grids-fill']}).length,
            communities: map.queryRenderedFeatures({layers: ['communities-line']}).length,
        })""")
        summary = page.text_content("#summary") or ""
        who = page.text_content("#who") or ""
        shot(page, "home.png", tmp_path_factory)
        # click a grid: its popup shows the grid's code and household count
        page.mouse.click(600, 460)
        page.wait_for_selector(".maplibregl-popup", timeout=5_000)
        popup = page.text_content(".maplibregl-popup") or ""
        # the locate box: a GCJ-02 point (as a Chinese web map gives it) → grid and workers
        located = locate(seen, IN_WORKER_GRID, "gcj02")
        # an address with a typo (搂 for 楼) → candidates; picking one locates it (a typo in
        # the community's name is ambiguous since the demo's streets are named from the same
        # stems: 晋昌路…杏园社区1号楼101室 is as near to 晋昌社去1号楼101)
        page.fill("#locate-xy", "晋昌社区1号搂101")
        page.click("#locate-form button")
        page.wait_for_selector("#search-hits li button", timeout=10_000)
        hits = page.text_content("#search-hits") or ""
        page.click("#search-hits li button >> nth=0")
        wait_until(page, "!document.getElementById('search-hits') && !document"
                         ".getElementById('locate-result').dataset.busy",
                   timeout=10)
        picked = page.text_content("#locate-result") or ""
    assert counts["grids"] > 200 and counts["communities"] > 50, counts
    assert "74 communities" in summary
    assert who == f"{ADMIN} (Administrator)"
    assert "households" in popup and "610199" in popup
    assert "›" in located and "Full-time grid worker" in located and WORKER_GRID in located
    assert "晋昌社区1号楼101室" in hits and "Full-time grid worker" in hits and "score 0." in hits
    assert "晋昌社区" in picked and "›" in picked and "Full-time grid worker" in picked
    assert not seen.errors, seen.errors
    assert not seen.external, seen.external


@pytest.mark.parametrize("size", [DESKTOP, PHONE])
def test_a_dispatcher_and_a_grid_worker_see_their_own_divisions(
        base_url: str, accounts: None, size: tuple[int, int],
        tmp_path_factory: pytest.TempPathFactory) -> None:
    width, height = size
    seen_by: dict[str, dict[str, Any]] = {}
    for name in (DISPATCHER, WORKER):
        with browse(base_url, width, height) as seen:
            page = seen.page
            sign_in(seen, base_url, name)
            wait_for_map(page)
            saw: dict[str, Any] = {
                "who": page.text_content("#who"),
                "grids": grid_codes(page),
                "summary": page.text_content("#summary") or "",
                "layers": page.evaluate("map.getStyle().layers.map((l) => l.id)"),
            }
            shot(page, f"map-{name}-{width}.png", tmp_path_factory)
            saw["next_door"] = locate(seen, NEXT_DOOR)
            saw["next_door_error"] = page.evaluate(
                "document.getElementById('locate-result').classList.contains('error')")
            shot(page, f"next-door-{name}-{width}.png", tmp_path_factory)
            saw["own"] = locate(seen, IN_WORKER_GRID, "gcj02")
            shot(page, f"located-{name}-{width}.png", tmp_path_factory)
            # sign out: the page reloads as the public's, with the sign-in link again
            open_menu(seen)
            with page.expect_navigation(timeout=90_000):  # the page reloads
                seen.press("#logout")
            wait_for_map(page)
            open_menu(seen)
            page.wait_for_selector("#login", state="visible", timeout=10_000)
            saw["after"] = {"who": page.is_visible("#who"),
                            "logout": page.is_visible("#logout"),
                            "summary": page.text_content("#summary") or "",
                            "login": page.get_attribute("#login", "href")}
            refused = ((404, "/api/locate"),) if name == WORKER else ()
            saw["errors"] = seen.unexpected_errors(*refused)
            saw["external"] = seen.external
        seen_by[name] = saw

    dispatcher, worker = seen_by[DISPATCHER], seen_by[WORKER]
    assert dispatcher["who"] == f"{DISPATCHER} (Dispatcher)"
    assert worker["who"] == f"{WORKER} (Grid worker)"
    # the whole county against the one grid
    assert worker["grids"] == {WORKER_GRID}
    assert len(dispatcher["grids"]) > 50 and WORKER_GRID in dispatcher["grids"]
    assert "74 communities" in dispatcher["summary"]
    assert worker["summary"].startswith("1 grid · ") and "communities" not in worker["summary"]
    for saw in (dispatcher, worker):
        assert {"facilities", "incidents"} <= set(saw["layers"]), saw["layers"]
    # the grid next door: its grid and workers' phones for the dispatcher, a 404 for the worker
    assert "610199001001002" in dispatcher["next_door"] and "13304612771" in dispatcher[
        "next_door"], dispatcher["next_door"]
    assert not dispatcher["next_door_error"]
    assert worker["next_door"] == "the point is in none of your divisions' grids"
    assert worker["next_door_error"]
    # the worker's own grid: both see it, with the worker's phone
    for saw in (dispatcher, worker):
        assert WORKER_GRID in saw["own"] and "13120432786" in saw["own"], saw["own"]
        assert saw["after"] == {"who": False, "logout": False, "login": "/login?next=/",
                                "summary": "Sign in to see counts"}
        assert not saw["errors"], saw["errors"]
        assert not saw["external"], saw["external"]


@pytest.mark.parametrize("size", [DESKTOP, PHONE])
def test_a_wrong_password_is_refused_on_the_sign_in_page(
        base_url: str, accounts: None, size: tuple[int, int],
        tmp_path_factory: pytest.TempPathFactory) -> None:
    width, height = size
    with browse(base_url, width, height) as seen:
        page = seen.page
        page.goto(base_url + "/login?next=/")
        assert page.is_visible("label[for=username]") and page.is_visible(
            "label[for=password]")
        page.locator("#username").press_sequentially(REFUSED)
        page.locator("#password").press_sequentially("not the password")
        seen.press("#login-submit")
        page.wait_for_selector("[role=alert]:not(:empty)", timeout=10_000)
        alert = page.text_content("[role=alert]") or ""
        shot(page, f"login-refused-{width}.png", tmp_path_factory)
        box = page.locator("#login-submit").bounding_box()
        font = page.evaluate("parseFloat(getComputedStyle("
                             "document.getElementById('username')).fontSize)")
        scrolls = page.evaluate(
            "document.documentElement.scrollWidth > document.documentElement.clientWidth")
        url = page.url
        password_left = page.input_value("#password")
        # the right password then lets the same account in
        page.locator("#password").press_sequentially(PASSWORD)
        seen.press("#login-submit")
        page.wait_for_url(base_url + "/", timeout=10_000)
        wait_for_map(page)
        who = page.text_content("#who")
    assert alert == "Sign-in failed: wrong account name or password", alert
    assert url.startswith(base_url + "/login")
    assert password_left == ""
    assert box is not None and box["height"] >= 44 and box["width"] <= width
    assert font >= 16 and not scrolls
    assert who == f"{REFUSED} (Analyst)"
    assert not seen.unexpected_errors((401, "/auth/session")), seen.errors
    assert not seen.external, seen.external


def test_sign_in_goes_on_to_paths_of_this_site_only(base_url: str, accounts: None) -> None:
    with browse(base_url, 1200, 800) as seen:
        page = seen.page
        page.goto(base_url + "/login")
        cases = {
            "/": "/", "/maps/coverage?type=school#x": "/maps/coverage?type=school#x",
            "//evil.example/x": "/", "/\\evil.example": "/", "/\t/evil.example": "/",
            "https://evil.example/": "/", "javascript:alert(1)": "/", "maps": "/",
            "": "/", " /x": "/",
        }
        went = {case: page.evaluate("(next) => safeNext(next)", case) for case in cases}
        # and a real sign-in that is asked to go elsewhere stays here
        sign_in(seen, base_url, DISPATCHER, next_path="//evil.example/", lands_on="/")
    assert went == cases
    assert page.url == base_url + "/"
    assert not seen.errors, seen.errors
    assert not seen.external, seen.external


@pytest.mark.parametrize("size", [DESKTOP, PHONE])
def test_the_public_sees_the_boundaries_only(base_url: str, size: tuple[int, int],
                                             tmp_path_factory: pytest.TempPathFactory) -> None:
    width, height = size
    with browse(base_url, width, height) as seen:
        page = seen.page
        page.goto(base_url + "/")
        wait_for_map(page)
        grids = grid_codes(page)
        layers = page.evaluate("map.getStyle().layers.map((l) => l.id)")
        fill = page.evaluate("map.getPaintProperty('grids-fill', 'fill-color')")
        summary = page.text_content("#summary") or ""
        if seen.touch:  # the phone's legend starts folded: its title opens it
            assert not page.is_visible("#legend-note")
            seen.press("#legend-title")
        legend = page.inner_text("#legend")  # what shows (hidden rows left out)
        open_menu(seen)
        login = page.get_attribute("#login", "href")
        login_box = page.locator("#login").bounding_box()
        scrolls = page.evaluate(
            "document.documentElement.scrollWidth > document.documentElement.clientWidth")
        shot(page, f"public-{width}.png", tmp_path_factory)
        # a point: its grid, but no workers; an address: sign in first
        located = locate(seen, NEXT_DOOR)
        searched = locate(seen, "晋昌社区1号楼")
        searched_link = page.get_attribute("#locate-result a", "href")
        # the sign-in link leads to the sign-in page, which comes back to the map
        seen.press("#login")
        page.wait_for_url(base_url + "/login?next=/")
        login_font = page.evaluate("parseFloat(getComputedStyle("
                                   "document.getElementById('password')).fontSize)")
        login_scrolls = page.evaluate(
            "document.documentElement.scrollWidth > document.documentElement.clientWidth")
        shot(page, f"login-{width}.png", tmp_path_factory)
    assert len(grids) > 200, len(grids)
    assert "facilities" not in layers and "incidents" not in layers
    assert fill == "#b8c2cc"  # one neutral fill: the public's tiles carry no counts
    assert summary == "Sign in to see counts"
    assert "Sign in to see household counts" in legend and "below the band" not in legend
    assert "facility" not in legend
    assert login == "/login?next=/"
    assert login_box is not None and login_box["height"] >= 44
    assert not scrolls and not login_scrolls and login_font >= 16
    assert "610199001001002" in located and "sign in to see the workers" in located
    assert "13304612771" not in located
    assert searched.startswith("sign in to read households"), searched
    assert searched_link == "/login?next=%2F"
    assert not seen.unexpected_errors((401, "/api/search")), seen.errors
    assert not seen.external, seen.external


def test_a_session_ended_elsewhere_turns_the_page_public(base_url: str, accounts: None
                                                        ) -> None:
    with browse(base_url, 1200, 800) as seen:
        page = seen.page
        sign_in(seen, base_url, DISPATCHER)
        wait_for_map(page)
        # the session is revoked elsewhere (its token signs out): the cookie stays behind
        token = next(c["value"] for c in page.context.cookies()
                     if c["name"] == "gridmap_session")
        request = urllib.request.Request(base_url + "/auth/logout", method="POST",
                                         headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request) as answer:
            assert answer.status == 204
        page.reload()
        wait_for_map(page)  # the stale cookie counts as no session: the public's map
        open_menu(seen)
        login = page.is_visible("#login")
        who = page.is_visible("#who")
        # signing in again mends it
        seen.press("#login")
        page.wait_for_url(base_url + "/login?next=/")
        page.locator("#username").press_sequentially(DISPATCHER)
        page.locator("#password").press_sequentially(PASSWORD)
        seen.press("#login-submit")
        page.wait_for_url(base_url + "/")
        wait_for_map(page)
        again = page.text_content("#who")
    assert login and not who
    assert again == f"{DISPATCHER} (Dispatcher)"
    assert not seen.unexpected_errors(), seen.errors
    assert not seen.external, seen.external


def folium_map(base_url: str, path: str, width: int) -> tuple[Browsed, str, int]:
    """A folium page drawn for a signed-in admin (its counts are not the public's): what
    it recorded, its text and how many overlays it offers."""
    with browse(base_url, width, 700) as seen:
        sign_in(seen, base_url, ADMIN, next_path=path)
        seen.page.wait_for_selector(".leaflet-container canvas", timeout=20_000)
        text = seen.page.text_content("body") or ""
        overlays = seen.page.evaluate(
            "document.querySelectorAll('.leaflet-control-layers-overlays input').length")
    return seen, text, overlays


def test_coverage_map_renders_offline(base_url: str, accounts: None) -> None:
    seen, legend, layers = folium_map(base_url, "/maps/coverage?type=elderly_daycare", 1000)
    assert "Residents within 300 m" in legend
    assert layers == 2
    assert not seen.errors, seen.errors
    assert not seen.external, seen.external


def test_community_map_renders_offline(base_url: str, accounts: None) -> None:
    seen, _, overlays = folium_map(base_url, "/maps/community/610199001001", 900)
    assert overlays >= 2  # grids, facilities
    assert not seen.errors, seen.errors
