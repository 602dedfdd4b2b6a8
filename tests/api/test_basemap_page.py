"""The map page's basemap and labels in a real headless Chromium, in Chinese and English, at a
desktop's size and a phone's: streets and buildings drawn under the grids from gridmap's own
tiles, street names along the streets and community and grid names drawn as labels from the
local CJK font, nothing loaded from
outside 127.0.0.1, axe-core clean. The Chinese desktop view is the README's picture
(``scripts/readme-picture.sh`` copies it to docs/demo-map.png)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page

from tests.api.test_browser import (
    DESKTOP,
    DISPATCHER,
    PHONE,
    WORKER_GRID,
    browse,
    locate,
    shot,
    sign_in,
    wait_for_map,
    wait_until,
)
from tests.api.test_pages_i18n import axe_violations
from tests.conftest import serve_in_thread
from tests.helpers import token_for

URBAN = (109.045, 34.205)  # among the urban communities
STREET_ENDINGS = ("路", "街", "巷", "大道", "环")  # the demo's street names end so

# the rendered features of some layers: how many, and the labels' texts
RENDERED = """(layers) => Object.fromEntries(layers.map((id) => [id,
  map.queryRenderedFeatures({ layers: [id] }).map((f) => f.properties.name || f.properties.id)]))"""

# the canvas's pixels with the label layers shown and then hidden: labels draw ink
LABEL_INK = """async () => {
  const pixels = () => new Promise((resolve) => {
    map.once("render", () => {
      const gl = map.getCanvas().getContext("webgl2") || map.getCanvas().getContext("webgl");
      const data = new Uint8Array(gl.drawingBufferWidth * gl.drawingBufferHeight * 4);
      gl.readPixels(0, 0, gl.drawingBufferWidth, gl.drawingBufferHeight, gl.RGBA,
                    gl.UNSIGNED_BYTE, data);
      resolve(data);
    });
    map.triggerRepaint();
  });
  const labels = ["communities-label", "grids-label", "streets-label"];
  const shown = await pixels();
  labels.forEach((id) => map.setLayoutProperty(id, "visibility", "none"));
  const hidden = await pixels();
  labels.forEach((id) => map.setLayoutProperty(id, "visibility", "visible"));
  let differ = 0;
  for (let i = 0; i < shown.length; i += 4) {
    if (shown[i] !== hidden[i] || shown[i + 1] !== hidden[i + 1]) differ++;
  }
  return differ;
}"""


WORKER = "basemap-worker"  # the grid worker of WORKER_GRID
TOWNSHIP_DISPATCHER = "basemap-township"  # a dispatcher of 长乐街道 (610199001000) only


@pytest.fixture(scope="module")
def base_url(demo_db: str) -> Iterator[str]:
    token_for(demo_db, DISPATCHER, "dispatcher", ("610199000000",))
    token_for(demo_db, WORKER, "grid_worker", (WORKER_GRID,))
    token_for(demo_db, TOWNSHIP_DISPATCHER, "dispatcher", ("610199001000",))
    yield from serve_in_thread(demo_db)


def settle(page: Page, zoom: float) -> None:
    page.evaluate(f"map.jumpTo({{ center: {list(URBAN)}, zoom: {zoom} }})")
    wait_for_map(page)
    # symbols are placed a frame after their tiles are in
    page.wait_for_timeout(500)


@pytest.mark.parametrize("size", [DESKTOP, PHONE])
@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_streets_buildings_and_labels_drawn_offline(base_url: str, size: tuple[int, int],
                                                    locale: str,
                                                    tmp_path_factory: pytest.TempPathFactory
                                                    ) -> None:
    width, height = size
    requests: list[str] = []
    with browse(base_url, width, height, locale=locale, bypass_csp=True) as seen:
        page = seen.page
        page.on("request", lambda r: requests.append(r.url))
        sign_in(seen, base_url, DISPATCHER)
        wait_for_map(page)
        order = page.evaluate("map.getStyle().layers.map((l) => l.id)")
        settle(page, 13.6)
        district = page.evaluate(RENDERED, ["communities-label", "streets-line",
                                            "buildings-fill", "streets-label"])
        if (width, locale) == (1200, "zh-CN"):
            shot(page, "readme-demo-map.png", tmp_path_factory)
        settle(page, 15.5)
        close = page.evaluate(RENDERED, ["grids-label", "streets-line", "buildings-fill",
                                         "streets-label"])
        shot(page, f"basemap-{locale}-{width}.png", tmp_path_factory)
        ink = page.evaluate(LABEL_INK)
        violations = axe_violations(page)
    assert order.index("buildings-fill") < order.index("streets-line") < order.index(
        "grids-fill") < order.index("communities-line") < order.index(
        "streets-label") < order.index("grids-label")
    # community names in Chinese at the district's zoom, grid names closer in
    assert len(district["communities-label"]) >= 3, district["communities-label"]
    assert all(name.endswith(("社区", "村")) for name in district["communities-label"])
    assert district["streets-line"] and district["buildings-fill"]
    assert close["grids-label"] and all("网格" in n for n in close["grids-label"]), close
    assert len(close["buildings-fill"]) > 20 and close["streets-line"]
    # street names along the streets, in Chinese, at both zooms (the same in either language:
    # they are the streets' names)
    for names in (district["streets-label"], close["streets-label"]):
        assert len(set(names)) >= 2, names
        assert all(name.endswith(STREET_ENDINGS) for name in names), names
    assert ink > 500, ink  # the labels put that many pixels on the canvas
    assert any("/tiles/streets/" in r for r in requests)
    assert any("/tiles/buildings/" in r for r in requests)
    # nothing leaves 127.0.0.1: no glyphs, fonts, tiles or scripts from outside
    outside = [r for r in requests if not r.startswith(("data:", "blob:"))
               and urlsplit(r).hostname != "127.0.0.1"]
    assert not outside, outside
    assert not seen.external, seen.external
    assert not violations, violations
    assert not seen.unexpected_errors(), seen.errors


@pytest.mark.parametrize("size", [DESKTOP, PHONE])
@pytest.mark.parametrize(("path", "account", "ready"), [
    ("/dispatch", DISPATCHER, "window.dispatchReady"), ("/mine", WORKER, "window.mineReady")])
def test_the_incident_pages_name_their_streets(base_url: str, size: tuple[int, int], path: str,
                                              account: str, ready: str,
                                              tmp_path_factory: pytest.TempPathFactory) -> None:
    """The dispatcher's desk and the grid worker's page show the basemap too: its streets
    carry their names along them, above the page's fills, drawn from the local font."""
    width, height = size
    with browse(base_url, width, height, locale="zh-CN") as seen:
        page = seen.page
        sign_in(seen, base_url, account, next_path=path)
        wait_until(page, f"{ready} === true && Boolean(map.getLayer('streets-label'))",
                   timeout=90)
        if path == "/dispatch":  # the worker's page stays on their grid, as it fits it
            page.evaluate(f"map.jumpTo({{ center: {list(URBAN)}, zoom: 15.5 }})")
        wait_until(page, "map.loaded() && !map.isMoving() && map.areTilesLoaded()")
        page.wait_for_timeout(500)  # symbols are placed a frame after their tiles are in
        order = page.evaluate("map.getStyle().layers.map((l) => l.id)")
        placement = page.evaluate(
            "map.getLayoutProperty('streets-label', 'symbol-placement')")
        names = page.evaluate(RENDERED, ["streets-label"])["streets-label"]
        shot(page, f"streets{path.replace('/', '-')}-{width}.png", tmp_path_factory)
    assert placement == "line"
    fill = "grids-fill" if path == "/dispatch" else "mine-fill"
    assert order.index(fill) < order.index("streets-label"), order
    assert names and all(name.endswith(STREET_ENDINGS) for name in names), names
    assert not seen.external, seen.external
    assert not seen.unexpected_errors(), seen.errors


@pytest.mark.parametrize("size", [DESKTOP, PHONE])
def test_a_place_outside_the_callers_divisions_says_so_on_the_map(
        base_url: str, size: tuple[int, int], tmp_path_factory: pytest.TempPathFactory) -> None:
    """A township's dispatcher types another township's school: it is listed, with its
    score, and said in words to be outside their divisions; the box warns before the list."""
    width, height = size
    with browse(base_url, width, height, locale="zh-CN") as seen:
        page = seen.page
        sign_in(seen, base_url, TOWNSHIP_DISPATCHER)
        wait_for_map(page)
        locate(seen, "曲江街道中学")
        page.wait_for_selector("#place-hits li button", timeout=30_000)
        first = page.text_content("#place-hits li >> nth=0") or ""
        warning = page.text_content("#search-warning") or ""
        shot(page, f"place-elsewhere-{width}.png", tmp_path_factory)
    assert first.startswith("曲江街道中学") and "相似度 1" in first, first
    assert "不在您的辖区内" in first, first
    assert "不在您的辖区内" in warning, warning
    assert not seen.external, seen.external
