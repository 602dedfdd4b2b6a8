"""The demo map page in a real headless Chromium (Debian's), served by uvicorn."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.conftest import serve_in_thread

SHOT_DIR = Path(os.environ.get("GRIDMAP_SCREENSHOT_DIR", "/nonexistent"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--use-gl=swiftshader", "--enable-unsafe-swiftshader"]


@pytest.fixture(scope="module")
def base_url(demo_db: str) -> Iterator[str]:
    yield from serve_in_thread(demo_db)


def test_map_page_draws_the_district(base_url: str, tmp_path_factory: pytest.TempPathFactory
                                     ) -> None:
    errors: list[str] = []
    external: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: external.append(r.url)
                if not r.url.startswith(base_url) and not r.url.startswith(("data:", "blob:"))
                else None)
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
        browser.close()
    assert counts["grids"] > 200 and counts["communities"] > 50, counts
    assert "74 communities" in summary
    assert "households" in popup and "610199" in popup
    assert "›" in located and "full_time" in located
    assert not errors, errors
    assert not external, external


def test_coverage_map_renders_offline(base_url: str) -> None:
    errors: list[str] = []
    external: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1000, "height": 700})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: external.append(r.url)
                if not r.url.startswith(base_url) and not r.url.startswith(("data:", "blob:"))
                else None)
        page.goto(base_url + "/maps/coverage?type=elderly_daycare")
        page.wait_for_selector(".leaflet-container canvas", timeout=20_000)
        legend = page.text_content("body") or ""
        layers = page.evaluate("document.querySelectorAll('.leaflet-control-layers-overlays "
                               "input').length")
        browser.close()
    assert "Residents within 300 m" in legend
    assert layers == 2
    assert not errors, errors
    assert not external, external


def test_community_map_renders_offline(base_url: str) -> None:
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 900, "height": 700})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(base_url + "/maps/community/610199001001")
        page.wait_for_selector(".leaflet-container canvas", timeout=20_000)
        overlays = page.evaluate("document.querySelectorAll('.leaflet-control-layers-overlays "
                                 "input').length")
        browser.close()
    assert overlays >= 2  # grids, facilities
    assert not errors, errors
