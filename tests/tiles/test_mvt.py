"""Which cached tiles a change makes stale (no database: tile arithmetic only)."""

from __future__ import annotations

import random

from gridmap.store.listen import Change
from gridmap.tiles.mvt import MAX_ZOOM, _padded, stale_ranges, touching_tiles


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
            # every tile that meets the box is in the range; the range is at most one tile
            # wider each side than what meets it
            for x in range(max(0, x0 - 2), min(n - 1, x1 + 2) + 1):
                for y in range(max(0, y0 - 2), min(n - 1, y1 + 2) + 1):
                    inside = x0 <= x <= x1 and y0 <= y <= y1
                    if _touches(z, x, y, bbox):
                        assert inside, (bbox, z, x, y)
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
