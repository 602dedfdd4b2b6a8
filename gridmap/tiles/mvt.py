"""Vector tiles from PostGIS with a cache that is invalidated exactly where data changed.

Each layer's tile is one ``ST_AsMVT`` query (``tiles/sql``), run as a prepared statement on
an asyncio connection pool (psycopg), so a miss costs one round trip and no thread hop.
Tiles are kept in an in-process LRU cache, in front of a store shared by the server's
processes (:mod:`gridmap.tiles.store`); the database's change notices (migration 0003:
table + bounding box per statement) evict only the cached tiles of the affected layers that
touch the changed box — a redrawn grid or a new incident never leaves a stale tile, and every
other tile stays cached. Concurrent misses of one tile share one query, and a tile whose
query overlapped a change is served but not kept (it may predate the change).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache, partial
from typing import Literal

import numpy as np
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from gridmap.domain.access import Scope
from gridmap.domain.standards import GridStandard
from gridmap.store.db import check_pooled
from gridmap.store.listen import Change
from gridmap.store.sqlfiles import read_sql
from gridmap.tiles.store import SharedTiles, Tile

log = logging.getLogger("gridmap")

LAYERS = {
    "townships": ("divisions", {"level": "township", "layer": "townships"}),
    "communities": ("divisions", {"level": "community", "layer": "communities"}),
    "grids": ("grids", {}),
    "facilities": ("facilities", {}),
    "incidents": ("incidents", {}),
    "streets": ("streets", {}),
    "buildings": ("buildings", {}),
}
# the basemap's layers: the same for every caller (no division's, no one's personal data)
BASEMAP = frozenset({"streets", "buildings"})
# which tile layers a change to a table makes stale
AFFECTS = {"grid": ("grids",), "grid_load": ("grids",), "division": ("townships",
           "communities", "grids"), "facility": ("facilities",), "incident": ("incidents",),
           "street_edge": ("streets",), "building": ("buildings",)}
MAX_ZOOM = 22
PAD = 64 / 4096  # a tile's buffer (ST_AsMVTGeom's 64 of 4096), in tile widths
MAX_LAT = 85.0511287798066  # web mercator's edge
ENUMERATE = 64  # a stale range of at most this many tiles is looked up tile by tile
FLUSH_AT = 256  # changes noted before they are evicted even if no tile is asked for
View = tuple[tuple[str, ...] | None, bool]  # the caller's scope patterns, counts shown
ALL: View = (None, True)
Key = tuple[str, int, int, int, View]
TileRange = tuple[int, int, int, int, int]  # z, x0, x1, y0, y1 (inclusive)


class TileError(ValueError):
    """A tile request that cannot be answered (z/x/y out of range)."""


class UnknownLayer(TileError):
    """A layer that is not one of :data:`LAYERS`."""


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """(west, south, east, north) of a tile in degrees."""
    n = 2.0**z

    def lat(t: float) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * t / n))))

    return x / n * 360.0 - 180.0, lat(y + 1), (x + 1) / n * 360.0 - 180.0, lat(y)


def touching_tiles(bbox: tuple[float, float, float, float], z: int) -> TileRange:
    """The tiles of zoom *z* whose bounds with their buffer (:func:`_padded`) touch *bbox*
    (west, south, east, north in degrees): ``(z, x0, x1, y0, y1)``, inclusive, with the
    tiles that only meet it at an edge (a few too many is a re-render, one too few a
    stale tile).

    >>> touching_tiles((109.0, 34.2, 109.0, 34.2), 10)
    (10, 822, 822, 408, 408)
    """
    x0, x1, y0, y1 = (int(v) for v in _touching(np.array([bbox], dtype=np.float64), z)[0])
    return z, x0, x1, y0, y1


def _touching(boxes: np.ndarray, z: int) -> np.ndarray:
    """:func:`touching_tiles` of many boxes (rows of west, south, east, north) at zoom *z*:
    rows of x0, x1, y0, y1. Vectorised: a burst of 256 reports at 23 zooms was 33 ms of
    Python a tile at a time, ~1 ms this way."""
    n = 2**z
    pad = 360 / n * PAD  # in degrees, as _padded pads latitude too
    west, south, east, north = boxes.T
    eps = 1e-6

    def row(lat: np.ndarray) -> np.ndarray:  # a latitude as a fractional tile row
        r = np.radians(np.clip(lat, -MAX_LAT, MAX_LAT))
        return (1 - np.arcsinh(np.tan(r)) / np.pi) / 2 * n

    return np.stack([
        np.maximum(0, np.ceil((west - pad + 180) / 360 * n - eps) - 1),
        np.minimum(n - 1, np.floor((east + pad + 180) / 360 * n + eps)),
        np.maximum(0, np.ceil(row(north + pad) - eps) - 1),
        np.minimum(n - 1, np.floor(row(south - pad) + eps))], axis=1).astype(np.int64)


def stale_ranges(changes: list[Change]) -> dict[str, set[TileRange] | None]:
    """The tiles a batch of changes makes stale: per layer, the ranges of tiles at every
    zoom (None: the whole layer). A burst of reports is one batch: its ranges at low zooms
    are mostly the same ones."""
    stale: dict[str, set[TileRange] | None] = {}
    boxes: dict[str, list[tuple[float, float, float, float]]] = {}
    for change in changes:
        for layer in AFFECTS.get(change.table, ()):
            stale.setdefault(layer, set())
            if change.bbox is None:
                stale[layer] = None
            else:
                boxes.setdefault(layer, []).append(change.bbox)
    for layer, found in boxes.items():
        ranges = stale[layer]
        if ranges is None:
            continue
        unique = np.array(list(set(found)), dtype=np.float64)
        for z in range(MAX_ZOOM + 1):
            ranges.update((z, x0, x1, y0, y1) for x0, x1, y0, y1
                          in _touching(unique, z).tolist())
    return stale


def check_tile(layer: str, z: int, x: int, y: int) -> None:
    if layer not in LAYERS:
        raise UnknownLayer(f"unknown layer {layer!r}: choose one of {', '.join(LAYERS)}")
    if not 0 <= z <= MAX_ZOOM:
        raise TileError(f"zoom {z} is outside 0..{MAX_ZOOM}")
    if not (0 <= x < 2**z and 0 <= y < 2**z):
        raise TileError(f"tile {z}/{x}/{y} does not exist: x and y must be 0..{2**z - 1}")


@cache
def _query(name: str) -> bytes:
    return read_sql(f"{name}.sql", "gridmap.tiles.sql").encode()


def view_of(scope: Scope, *, counts: bool, layer: str | None = None) -> View:
    """What a caller may see in a tile: the rows of their scope, counts or not. Callers
    with the same view share cached tiles; every caller shares the basemap's."""
    if layer in BASEMAP:
        return ALL
    patterns = scope.patterns()
    return (None if patterns is None else tuple(patterns), counts)


def tile_statement(layer: str, z: int, x: int, y: int, standard: GridStandard,
                   view: View = ALL) -> tuple[bytes, dict[str, object]]:
    """The query (psycopg placeholders) that renders a tile for a view, and its
    parameters."""
    name, extra = LAYERS[layer]
    patterns, counts = view
    params: dict[str, object] = {"z": z, "x": x, "y": y, **extra,
                                 "scope": None if patterns is None else list(patterns),
                                 "counts": counts}
    if name == "grids":
        s = standard
        params |= {"urban_low": s.urban_households[0], "urban_high": s.urban_households[1],
                   "rural_low": s.rural_households[0], "rural_high": s.rural_households[1]}
    return _query(name), params


@dataclass
class TileStats:
    hits: int = 0
    shared: int = 0  # found in the store shared with the other processes
    misses: int = 0
    evicted: int = 0


Source = Literal["hit", "shared", "miss"]


class TileCache:
    """Tiles of one database, rendered on a pool of *connections* and cached (up to
    *max_tiles* in memory; 0 keeps none), in front of the store *shared* with the other
    server processes when one is given. Open with :meth:`open` inside the event loop that
    serves."""

    def __init__(self, dsn: str, standard: GridStandard, *, max_tiles: int = 50_000,
                 connections: int = 8, shared: SharedTiles | None = None) -> None:
        # a connection broken by a database restart is checked out of the pool, and a tile
        # waits at most 3 s for one (then the caller gets the 503 of a missing database)
        self.pool = AsyncConnectionPool(dsn, min_size=1, max_size=connections, open=False,
                                        kwargs={"autocommit": True}, timeout=3,
                                        check=check_pooled)
        self.standard = standard
        self.max_tiles = max_tiles
        self.shared = shared if max_tiles else None
        self._tiles: OrderedDict[Key, Tile] = OrderedDict()
        self._views: dict[tuple[str, int, int, int], set[View]] = {}  # what _tiles holds
        self._pending: dict[Key, asyncio.Task[Tile]] = {}
        self._epoch = 0  # counts evictions: a render that saw it change is not kept
        self._unapplied: list[Change] = []  # noted by apply, evicted by flush
        self._flusher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gridmap-tiles")
        self._flushing: Future[None] | None = None
        self._flushing_lock = threading.Lock()  # held by a flush: a tile read waits for it
        self._lock = threading.Lock()
        self.stats = TileStats()
        if self.shared is not None:  # notices sent before this process listened are lost
            self.shared.evict(tuple(LAYERS), None)

    async def open(self) -> None:
        await self.pool.open(wait=True)

    async def close(self) -> None:
        await self.pool.close()
        self._flusher.shutdown(wait=True)
        if self.shared is not None:
            self.shared.close()

    async def _render(self, layer: str, z: int, x: int, y: int, view: View) -> Tile:
        conn: AsyncConnection
        async with self.pool.connection() as conn:
            cur = await conn.execute(*tile_statement(layer, z, x, y, self.standard, view),
                                     prepare=True)
            row = await cur.fetchone()
        return Tile.of(bytes(row[0] or b"") if row else b"")

    def cached(self, layer: str, z: int, x: int, y: int, view: View = ALL) -> Tile | None:
        """The tile held in this process's memory, or None."""
        check_tile(layer, z, x, y)
        if self._unapplied or self._flushing_lock.locked():
            self.flush()
        key = (layer, z, x, y, view)
        with self._lock:
            tile = self._tiles.get(key)
            if tile is not None:
                self._tiles.move_to_end(key)
                self.stats.hits += 1
            return tile

    async def get(self, layer: str, z: int, x: int, y: int, view: View = ALL
                  ) -> tuple[Tile, Source]:
        """The tile as *view* sees it, and where it came from."""
        tile = self.cached(layer, z, x, y, view)
        if tile is not None:
            return tile, "hit"
        key = (layer, z, x, y, view)
        if self.shared is not None:
            epoch = self._epoch
            tile = self.shared.get(layer, z, x, y, repr(view))
            if tile is not None:
                with self._lock:
                    self.stats.shared += 1
                self._remember(key, epoch, tile)
                return tile, "shared"
        task = self._pending.get(key)
        if task is None:  # the first miss renders; the others wait for it
            shared_epoch = None if self.shared is None else self.shared.epoch()
            task = asyncio.ensure_future(self._render(*key))
            self._pending[key] = task
            task.add_done_callback(partial(self._keep, key, self._epoch, shared_epoch))
        return await asyncio.shield(task), "miss"

    def _keep(self, key: Key, epoch: int, shared_epoch: int | None,
              task: asyncio.Task[Tile]) -> None:
        del self._pending[key]
        if task.cancelled() or task.exception() is not None:
            return
        with self._lock:
            self.stats.misses += 1
        tile = task.result()
        if self._remember(key, epoch, tile) and self.shared is not None \
                and shared_epoch is not None:
            layer, z, x, y, view = key
            self.shared.put(layer, z, x, y, repr(view), tile, _padded(z, x, y),
                            epoch=shared_epoch)

    def _remember(self, key: Key, epoch: int, tile: Tile) -> bool:
        """Keep *tile* in memory unless a change was applied since *epoch*."""
        with self._lock:
            if epoch != self._epoch or not self.max_tiles:
                return False
            self._tiles[key] = tile
            self._views.setdefault(key[:4], set()).add(key[4])
            while len(self._tiles) > self.max_tiles:
                self._forget(self._tiles.popitem(last=False)[0])
            return True

    def _forget(self, key: Key) -> None:
        """(Under the lock.) *key* has left ``_tiles``."""
        views = self._views.get(key[:4])
        if views is not None:
            views.discard(key[4])
            if not views:
                del self._views[key[:4]]

    def _stale_keys(self, stale: dict[str, set[TileRange] | None]) -> list[Key]:
        """(Under the lock.) The cached tiles in *stale*: looked up tile by tile for small
        ranges (a new incident: a few tiles a zoom), else by a pass over the cache."""
        small = all(ranges is not None and all(
            (x1 - x0 + 1) * (y1 - y0 + 1) <= ENUMERATE for _, x0, x1, y0, y1 in ranges)
            for ranges in stale.values())
        if small:
            found: list[Key] = []
            for layer, ranges in stale.items():
                for z, x0, x1, y0, y1 in ranges or ():
                    for x in range(x0, x1 + 1):
                        for y in range(y0, y1 + 1):
                            views = self._views.get((layer, z, x, y))
                            if views:
                                found.extend((layer, z, x, y, v) for v in views)
            return found

        def within(key: Key) -> bool:
            ranges = stale[key[0]]
            return ranges is None or any(
                z == key[1] and x0 <= key[2] <= x1 and y0 <= key[3] <= y1
                for z, x0, x1, y0, y1 in ranges)

        return [k for k in self._tiles if k[0] in stale and within(k)]

    def apply(self, changes: list[Change]) -> None:
        """Take note of changes: the tiles they make stale are evicted, here and in the
        shared store, before the next tile is read (:meth:`flush`), not now.

        It runs on the event loop before every request that polled — a report's intake
        too — so it only moves the epoch on (a render under way is not kept) and keeps the
        changes: a burst of reports is evicted as one batch (one pass, one store
        transaction, its ranges at low zooms merged) when a tile is asked for, or when
        :data:`FLUSH_AT` changes have gathered."""
        changes = [c for c in changes if c.table in AFFECTS]
        if not changes:
            return
        with self._lock:
            self._epoch += 1
            self._unapplied += changes
            due = len(self._unapplied) >= FLUSH_AT
        if due and (self._flushing is None or self._flushing.done()):
            # a batch of FLUSH_AT reports is a few ms of work: not on the event loop
            self._flushing = self._flusher.submit(self._flush_logged)

    def _flush_logged(self) -> None:
        try:
            self.flush()
        except Exception:  # the changes stay noted: the next tile read evicts them
            log.exception("tile cache: evicting stale tiles failed; tried again before the "
                          "next tile is read")

    def flush(self) -> None:
        """Evict what the changes noted since the last flush make stale (the tiles a batch
        touches looked up by their z/x/y, here and in the store's primary key); if a flush
        is under way, wait for it first. Only the dictionary's part holds the lock that
        :meth:`apply` takes, so noting changes never waits for the store."""
        with self._flushing_lock:
            with self._lock:
                changes, self._unapplied = self._unapplied, []
            if not changes:
                return
            try:
                stale = stale_ranges(changes)
                with self._lock:
                    gone = self._stale_keys(stale)
                    for k in gone:
                        del self._tiles[k]
                        self._forget(k)
                    self.stats.evicted += len(gone)
                if self.shared is not None:
                    self.shared.evict_ranges(stale)
            except BaseException:
                with self._lock:
                    self._unapplied[:0] = changes
                raise


def _padded(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """A tile's bounds with its buffer (64/4096 of its width), which carries features drawn
    in it too."""
    west, south, east, north = tile_bounds(z, x, y)
    pad = (east - west) * 64 / 4096
    return west - pad, south - pad, east + pad, north + pad
