"""Rendered tiles shared by every server process of one database: a SQLite file on disk.

``gridmap serve --workers N`` runs N processes; each keeps its hottest tiles in memory
(:class:`gridmap.tiles.mvt.TileCache`) and, behind them, this store, so a tile one process
rendered is not rendered again by the others. Every process hears every change notice and
deletes the tiles a change touches here as in memory (the deletes are idempotent).

A render that began before some process applied a change must not be kept: each eviction
bumps a shared *epoch* in the same transaction, and a tile is only written when the epoch
is still the one read before its query was sent. A change no process has applied yet when
the tile is written is deleted by the first process that applies it. A process that starts
(or reconnects to the change notices) has missed notices, so it empties the store.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import NamedTuple

SCHEMA = """
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS tile (
    layer TEXT NOT NULL, z INTEGER NOT NULL, x INTEGER NOT NULL, y INTEGER NOT NULL,
    view TEXT NOT NULL, etag TEXT NOT NULL, data BLOB NOT NULL,
    west REAL NOT NULL, south REAL NOT NULL, east REAL NOT NULL, north REAL NOT NULL,
    PRIMARY KEY (layer, z, x, y, view));
CREATE TABLE IF NOT EXISTS epoch (n INTEGER NOT NULL);
INSERT INTO epoch (n) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM epoch);
COMMIT;
"""


class Tile(NamedTuple):
    """A rendered tile and its strong HTTP entity tag (a digest of its bytes)."""

    data: bytes
    etag: str

    @classmethod
    def of(cls, data: bytes) -> Tile:
        return cls(data, '"' + hashlib.blake2b(data, digest_size=12).hexdigest() + '"')


def store_path(data_dir: Path, dsn: str) -> Path:
    """The store of one database (a digest of its connection string) in *data_dir*."""
    digest = hashlib.blake2b(dsn.encode(), digest_size=8).hexdigest()
    return Path(data_dir) / "tiles" / f"{digest}.sqlite"


class SharedTiles:
    """Tiles keyed by (layer, z, x, y, view) in a SQLite file (WAL: readers never wait for
    the writer), at most *max_tiles* of them (the oldest go first)."""

    def __init__(self, path: Path, *, max_tiles: int = 200_000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_tiles = max_tiles
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, timeout=10, isolation_level=None,
                                   check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")  # a cache: a lost write is a re-render
        self._db.executescript(SCHEMA)
        self._writes = 0

    def get(self, layer: str, z: int, x: int, y: int, view: str) -> Tile | None:
        with self._lock:
            row = self._db.execute(
                "SELECT data, etag FROM tile WHERE layer = ? AND z = ? AND x = ? AND y = ? "
                "AND view = ?", (layer, z, x, y, view)).fetchone()
        return None if row is None else Tile(bytes(row[0]), str(row[1]))

    def epoch(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT n FROM epoch").fetchone()[0])

    def put(self, layer: str, z: int, x: int, y: int, view: str, tile: Tile,
            bounds: tuple[float, float, float, float], *, epoch: int) -> bool:
        """Keep *tile* unless some process evicted tiles since *epoch* was read."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if int(self._db.execute("SELECT n FROM epoch").fetchone()[0]) != epoch:
                    return False
                self._db.execute("INSERT OR REPLACE INTO tile VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                                 (layer, z, x, y, view, tile.etag, tile.data, *bounds))
                self._writes += 1
                if self._writes % 1000 == 0:
                    self._db.execute(
                        "DELETE FROM tile WHERE rowid IN (SELECT rowid FROM tile ORDER BY "
                        "rowid LIMIT max(0, (SELECT count(*) FROM tile) - ?))",
                        (self.max_tiles,))
                return True
            finally:
                self._db.execute("COMMIT")

    def evict(self, layers: tuple[str, ...],
              bbox: tuple[float, float, float, float] | None) -> int:
        """Delete the tiles of *layers* whose bounds touch *bbox* (all of them for None),
        and move the epoch on; the number deleted."""
        marks = ",".join("?" * len(layers))
        where, params = f"layer IN ({marks})", list[object](layers)
        if bbox is not None:
            where += " AND NOT (east < ? OR west > ? OR north < ? OR south > ?)"
            params += [bbox[0], bbox[2], bbox[1], bbox[3]]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                gone = self._db.execute(f"DELETE FROM tile WHERE {where}", params).rowcount
                self._db.execute("UPDATE epoch SET n = n + 1")
            finally:
                self._db.execute("COMMIT")
        return int(gone)

    def evict_ranges(self, stale: Mapping[str, Collection[tuple[int, int, int, int, int]] | None]
                     ) -> int:
        """Delete, per layer, the tiles in its ranges ``(z, x0, x1, y0, y1)`` (inclusive; all
        of the layer's for None) in one transaction, through the primary key's index, and
        move the epoch on; the number deleted."""
        whole = [(layer,) for layer, ranges in stale.items() if ranges is None]
        parts = [(layer, *r) for layer, ranges in stale.items() for r in ranges or ()]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                gone = self._db.executemany("DELETE FROM tile WHERE layer = ?", whole).rowcount
                gone += self._db.executemany(
                    "DELETE FROM tile WHERE layer = ? AND z = ? AND x BETWEEN ? AND ? "
                    "AND y BETWEEN ? AND ?", parts).rowcount
                self._db.execute("UPDATE epoch SET n = n + 1")
            finally:
                self._db.execute("COMMIT")
        return int(gone)

    def close(self) -> None:
        with self._lock:
            self._db.close()
