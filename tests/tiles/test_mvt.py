"""Which cached tiles a change makes stale, and when they are evicted (no database: tile
arithmetic and the cache's bookkeeping only)."""

from __future__ import annotations

import random
from pathlib import Path

from gridmap.domain.standards import GridStandard
from gridmap.store.listen import Change
from gridmap.tiles.mvt import (
    ALL,
    FLUSH_AT,
    MAX_ZOOM,
    TileCache,
    _padded,
    stale_ranges,
    touching_tiles,
)
from gridmap.tiles.store import SharedTiles, Tile
from tests.helpers import tile_of


def _touches(z: int, x: int, y: int, bbox: tuple[float, float, float, float]) -> bool:
    """The rule the cache followed by scanning every tile: its buffered bounds meet bbox."""
    west, south, east, north = _padded(z, x, y)
    return not (bbox[2] < west or bbox[0] > east or bbox[3] < south or bbox[1] > north)


def test_touching_tiles_hold_every_tile_whose_buffer_meets_the_box() -> None:
    rng = random.Random(7)
    boxes = [(109.0, 34.2, 109.0, 34.2), (-180.0, -85.0, -180.0, -85.0), (179.9, 85.0, 180.0,
             85.05), (0.0, 0.0, 0.0, 0.0)]  # on tile edges at every zoom; the map's corners
    for _ in range(400):
        west, south = rng.uniform(108, 110), rng.uniform(33, 35)
        boxes.append((west, south, west + rng.choice([0, rng.uniform(0, 0.05)]),
                      south + rng.choice([0, rng.uniform(0, 0.05)])))
    for bbox in boxes:
        for z in range(MAX_ZOOM + 1):
            _, x0, x1, y0, y1 = touching_tiles(bbox, z)
            n = 2**z
            # every tile that meets the box is in the range: none of the two rings of tiles
            # around the range meets it (tiles further out are further away); the range is
            # at most one tile wider each side than what meets it
            xs, ys = range(max(0, x0 - 2), min(n - 1, x1 + 2) + 1), range(
                max(0, y0 - 2), min(n - 1, y1 + 2) + 1)
            ring = [(x, y) for x in xs if not x0 <= x <= x1 for y in ys] + [
                (x, y) for x in range(x0, x1 + 1) for y in ys if not y0 <= y <= y1]
            for x, y in ring:
                assert not _touches(z, x, y, bbox), (bbox, z, x, y)
            assert (x1 - x0) <= 2 + (bbox[2] - bbox[0]) / 360 * n + 1


def test_a_batch_of_changes_is_one_set_of_ranges_per_layer() -> None:
    point = (109.0, 34.2, 109.0, 34.2)
    stale = stale_ranges([Change("incident", point), Change("incident", point),
                          Change("household", point)])  # no tile layer shows households
    assert set(stale) == {"incidents"}
    assert stale["incidents"] == {touching_tiles(point, z) for z in range(MAX_ZOOM + 1)}
    whole = stale_ranges([Change("incident", point), Change("division", None)])
    assert whole["townships"] is None and whole["grids"] is None
    assert whole["incidents"] is not None and len(whole["incidents"]) == MAX_ZOOM + 1


def _cache_holding(shared: SharedTiles, *tiles: tuple[int, int, int]) -> TileCache:
    """A cache (never connected: nothing here renders) holding *tiles* of the incidents
    layer in memory and in *shared*."""
    cache = TileCache("postgresql://127.0.0.1:1/none", GridStandard(), shared=shared)
    for z, x, y in tiles:
        tile = Tile.of(f"{z}/{x}/{y}".encode())
        assert cache._remember(("incidents", z, x, y, ALL), cache._epoch, tile)
        assert shared.put("incidents", z, x, y, repr(ALL), tile, _padded(z, x, y),
                          epoch=shared.epoch())
    return cache


def test_changes_are_noted_on_the_event_loop_and_evicted_before_the_next_tile_read(
        tmp_path: Path) -> None:
    here, far = tile_of(109.0512, 34.2051, 15), tile_of(109.2, 34.4, 15)
    shared = SharedTiles(tmp_path / "tiles.db")
    cache = _cache_holding(shared, here, far)
    point = (109.0512, 34.2051, 109.0512, 34.2051)
    cache.apply([Change("incident", point)])
    assert cache.stats.evicted == 0  # noted, not yet evicted: a report pays nothing more
    assert cache.cached("incidents", *here) is None  # the read evicts first
    assert cache.cached("incidents", *far) is not None
    assert shared.get("incidents", *here, repr(ALL)) is None
    assert shared.get("incidents", *far, repr(ALL)) is not None
    assert cache.stats.evicted == 1


def test_a_burst_of_changes_is_evicted_in_the_background_without_a_tile_read(
        tmp_path: Path) -> None:
    here = tile_of(109.0512, 34.2051, 15)
    shared = SharedTiles(tmp_path / "tiles.db")
    cache = _cache_holding(shared, here)
    point = (109.0512, 34.2051, 109.0512, 34.2051)
    cache.apply([Change("incident", point)] * (FLUSH_AT - 1))
    assert cache._flushing is None
    cache.apply([Change("incident", point), Change("household", point)])
    assert cache._flushing is not None
    cache._flushing.result(timeout=10)
    assert cache.stats.evicted == 1 and not cache._unapplied
    assert shared.get("incidents", *here, repr(ALL)) is None
