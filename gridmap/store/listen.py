"""Change notices from the database (LISTEN gridmap_change), read without blocking.

The triggers of migration 0003 send one notice per statement that changes grids, divisions,
households, facilities, incidents or workers, with the bounding box it touched. Readers poll
:meth:`ChangeListener.poll` — a non-blocking read of what the server already sent, not a
query — so in-process state (the locate index, the tile cache) follows the database without a
round trip per request.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from gridmap.store.db import libpq_dsn


@dataclass(frozen=True)
class Change:
    table: str
    bbox: tuple[float, float, float, float] | None  # lon/lat; None: the whole table


class ChangeListener:
    CHANNEL = "gridmap_change"

    def __init__(self, database_url: str) -> None:
        self._conn = psycopg.connect(libpq_dsn(database_url), autocommit=True)
        self._conn.execute(f"LISTEN {self.CHANNEL}")
        self._lock = threading.Lock()

    def poll(self) -> list[Change]:
        """Notices that have arrived since the last poll (never waits)."""
        with self._lock:
            changes = []
            for note in self._conn.notifies(timeout=0, stop_after=None):
                body = json.loads(note.payload)
                bbox = tuple(body["bbox"]) if body.get("bbox") else None
                changes.append(Change(body["table"], bbox))
            return changes

    def close(self) -> None:
        self._conn.close()


class ChangeHub:
    """One listener, many subscribers (the locate index, the tile cache): every request polls
    the hub, and whatever arrived is handed to each subscriber before the request proceeds."""

    def __init__(self, database_url: str) -> None:
        self.listener = ChangeListener(database_url)
        self._subscribers: list[Callable[[list[Change]], None]] = []

    def subscribe(self, apply: Callable[[list[Change]], None]) -> None:
        self._subscribers.append(apply)

    def poll(self) -> None:
        changes = self.listener.poll()
        if changes:
            for apply in self._subscribers:
                apply(changes)

    def close(self) -> None:
        self.listener.close()
