"""The demo map page in a real headless Chromium (Debian's), served by uvicorn."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from tests.conftest import serve_in_thread

SHOT_DIR = Path(os.environ.get("GRIDMAP_SCREENSHOT_DIR", "/nonexistent"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--use-gl=swiftshader", "--enable-unsafe-swiftshader"]


@dataclass
class Browsed:
    page: Page
    errors: list[str] = field(default_factory=list)   # console errors and page exceptions
    external: list[str] = field(default_factory=list)  # requests that left the server


@contextmanager
def browse(base_url: str, width: int, height: int) -> Iterator[Browsed]:
    """A page in Debian's headless chromium that records errors and outside requests."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        seen = Browsed(browser.new_page(viewport={"width": width, "height": height}))
        seen.page.on("console", lambda m: seen.errors.append(m.text)
                     if m.type == "error" else None)
        seen.page.on("pageerror", lambda e: seen.errors.append(str(e)))
        seen.page.on("request", lambda r: seen.external.append(r.url)
                     if not r.url.startswith((base_url, "data:", "blob:")) else None)
        try:
            yield seen
        finally:
            browser.close()


@pytest.fixture(scope="module")
def base_url(demo_db: str) -> Iterator[str]:
    yield from serve_in_thread(demo_db)


def test_map_page_draws_the_district(base_url: str, tmp_path_factory: pytest.TempPathFactory
                                     ) -> None:
    with browse(base_url, 1200, 800) as seen:
        page = seen.page
        page.goto(base_url + "/")
        page.wait_for_function("window.gridmapReady === true", timeout=30_000)
        page.wait_for_function("map.loaded() && !map.isMoving()", timeout=30_000)
        counts = page.evaluate("""() => ({
            grids: map.queryRenderedFeatures({layers: ['grids-fill']}).length,
            communities: map.queryRenderedFeatures({layers: ['communities-line']}).length,
        })""")
        summary = page.text_content("#summary") or ""
        page.screenshot(path=str(SHOT_DIR / "home.png") if SHOT_DIR.exists()
                        else str(tmp_path_factory.mktemp("shots") / "home.png"))
        # click a grid: its popup shows the grid's code and household count
        page.mouse.click(600, 420)
        page.wait_for_selector(".maplibregl-popup", timeout=5_000)
        popup = page.text_content(".maplibregl-popup") or ""
        # the locate box: a GCJ-02 point (as a Chinese web map gives it) → grid and workers
        page.fill("#locate-xy", "109.0277, 34.2232")
        page.select_option("#locate-crs", "gcj02")
        page.click("#locate-form button")
        page.wait_for_function(
            "document.getElementById('locate-result').textContent.includes('610199')",
            timeout=10_000)
        located = page.text_content("#locate-result") or ""
        # an address with a typo (社去 for 社区) → candidates; picking one locates it
        page.fill("#locate-xy", "晋昌社去1号楼101")
        page.click("#locate-form button")
        page.wait_for_selector("#search-hits li button", timeout=10_000)
        hits = page.text_content("#search-hits") or ""
        page.click("#search-hits li button >> nth=0")
        page.wait_for_function(
            "!document.getElementById('search-hits')", timeout=10_000)
        picked = page.text_content("#locate-result") or ""
    assert counts["grids"] > 200 and counts["communities"] > 50, counts
    assert "74 communities" in summary
    assert "households" in popup and "610199" in popup
    assert "›" in located and "full_time" in located
    assert "晋昌社区1号楼101室" in hits and "full_time" in hits
    assert "晋昌社区" in picked and "›" in picked and "full_time" in picked
    assert not seen.errors, seen.errors
    assert not seen.external, seen.external


def folium_map(base_url: str, path: str, width: int) -> tuple[Browsed, str, int]:
    """A folium page drawn: what it recorded, its text and how many overlays it offers."""
    with browse(base_url, width, 700) as seen:
        seen.page.goto(base_url + path)
        seen.page.wait_for_selector(".leaflet-container canvas", timeout=20_000)
        text = seen.page.text_content("body") or ""
        overlays = seen.page.evaluate(
            "document.querySelectorAll('.leaflet-control-layers-overlays input').length")
    return seen, text, overlays


def test_coverage_map_renders_offline(base_url: str) -> None:
    seen, legend, layers = folium_map(base_url, "/maps/coverage?type=elderly_daycare", 1000)
    assert "Residents within 300 m" in legend
    assert layers == 2
    assert not seen.errors, seen.errors
    assert not seen.external, seen.external


def test_community_map_renders_offline(base_url: str) -> None:
    seen, _, overlays = folium_map(base_url, "/maps/community/610199001001", 900)
    assert overlays >= 2  # grids, facilities
    assert not seen.errors, seen.errors
