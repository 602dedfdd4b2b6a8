"""Change notices from the database (LISTEN gridmap_change), read without blocking.

The triggers of migrations 0003, 0005, 0006 and 0013 send one notice per statement that
changes grids, divisions, households, facilities, incidents, workers, grid loads, accounts,
buildings or streets, with the bounding box it touched. Readers poll
:meth:`ChangeListener.poll` — a non-blocking read of what the server already sent, not a
query — so in-process state (the locate index, the tile cache, the session cache) follows
the database without a round trip per request.

The listener survives its database: when the connection is lost (a restart, a network cut)
it says so once in the log, answers "no changes" and reopens the connection in a background
thread, after half a second and then at growing intervals up to a few seconds. Notices sent
while it was away are lost, so its first poll after reconnecting reports every table as
changed and each subscriber rebuilds what it holds from the database.
"""

from __future__ import annotations

import contextlib
import json
import logging
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from gridmap.store.db import libpq_dsn

log = logging.getLogger("gridmap")

# every table whose triggers send notices: what "everything changed" names
TABLES = ("grid", "division", "grid_worker", "grid_load", "facility", "incident", "household",
          "app_user", "user_division", "auth_session", "api_key", "building", "street_edge")
# a dead peer that never closes the socket is noticed by TCP keepalives within ~1 minute
CONNECT_OPTIONS: dict[str, str | int] = {
    "connect_timeout": 5, "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10,
    "keepalives_count": 3, "application_name": "gridmap-listener"}


@dataclass(frozen=True)
class Change:
    table: str
    bbox: tuple[float, float, float, float] | None  # lon/lat; None: the whole table


def everything_changed() -> list[Change]:
    """A change of every table, whole: what a subscriber is told after notices were lost."""
    return [Change(table, None) for table in TABLES]


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class ChangeListener:
    """LISTEN on a connection of its own that reopens by itself.

    :meth:`poll` never raises and never waits: while the connection is down it returns no
    changes, and a background thread tries to reconnect every *retry* seconds at first,
    doubling up to *max_retry*.
    """

    CHANNEL = "gridmap_change"

    def __init__(self, database_url: str, *, retry: float = 0.5, max_retry: float = 4.0
                 ) -> None:
        self._dsn = libpq_dsn(database_url)
        self.retry, self.max_retry = retry, max_retry
        self._lock = threading.Lock()
        self._delay = retry
        self._next_try = 0.0
        self._reopening: threading.Thread | None = None
        self._fresh: psycopg.Connection | None = None  # reopened, not yet in use
        self._closed = False
        self.down_since: float | None = None  # time.monotonic() of the loss
        self.last_notice: float | None = None  # time.monotonic() of the last notice
        self._conn: psycopg.Connection | None = self._open()  # at start-up: fail loudly
        self._watch(self._conn)

    def _watch(self, conn: psycopg.Connection) -> None:
        """Watch *conn*'s socket: while nothing arrives on it, a poll is one ``poll(2)``
        call instead of a trip through psycopg. The first poll goes through psycopg anyway
        (it may hold notices that came in while LISTEN ran)."""
        self._socket: select.poll | None = None
        if hasattr(select, "poll"):
            self._socket = select.poll()
            self._socket.register(conn.fileno(), select.POLLIN)
        self._drained = False

    @property
    def connected(self) -> bool:
        return self._conn is not None

    def _open(self) -> psycopg.Connection:
        conn = psycopg.connect(make_conninfo(self._dsn, **CONNECT_OPTIONS), autocommit=True)
        try:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.CHANNEL)))
        except BaseException:
            conn.close()
            raise
        return conn

    def poll(self) -> list[Change]:
        """Notices that have arrived since the last poll (never waits, never raises); every
        table, whole, on the first poll after the connection was reopened."""
        with self._lock:
            if self._closed:
                return []
            if self._conn is None:
                return self._reopened()
            try:
                if self._conn.broken or self._conn.closed:
                    raise psycopg.OperationalError("the connection is closed")
                # nothing to read (a lost connection reads as readable: it goes on below)
                if self._drained and self._socket is not None and not self._socket.poll(0):
                    return []
                notes = list(self._conn.notifies(timeout=0, stop_after=None))
                self._drained = True
            except psycopg.Error as exc:
                self._lose(exc)
                return []
        if notes:
            self.last_notice = time.monotonic()
        changes: list[Change] = []
        for note in notes:
            try:
                body = json.loads(note.payload)
                box = body.get("bbox")
                bbox = (float(box[0]), float(box[1]), float(box[2]), float(box[3])
                        ) if box else None
                changes.append(Change(str(body["table"]), bbox))
            except (ValueError, TypeError, KeyError, IndexError, AttributeError):
                log.warning("change notices: a notice that is not gridmap's (%r) stands for "
                            "a change of everything", note.payload[:200])
                return everything_changed()
        return changes

    def _lose(self, exc: BaseException) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()
        self.down_since = time.monotonic()
        self._delay = self.retry
        self._next_try = self.down_since + self.retry
        log.warning("change notices: the connection to the database was lost (%s); serving "
                    "from memory and reconnecting in the background", _first_line(exc))

    def _reopened(self) -> list[Change]:
        """(Under the lock, while down.) Take up a reopened connection, or start reopening one
        when it is time."""
        if self._fresh is not None:
            self._conn, self._fresh = self._fresh, None
            self._watch(self._conn)
            down = time.monotonic() - (self.down_since or time.monotonic())
            self.down_since = None
            log.warning("change notices: reconnected to the database after %.1f s; notices "
                        "sent meanwhile were lost, so everything held in memory is rebuilt",
                        down)
            return everything_changed()
        busy = self._reopening is not None and self._reopening.is_alive()
        if not busy and time.monotonic() >= self._next_try:
            self._reopening = threading.Thread(target=self._reopen, daemon=True,
                                               name="gridmap-listener-reconnect")
            self._reopening.start()
        return []

    def _reopen(self) -> None:
        try:
            conn = self._open()
        except psycopg.Error as exc:
            with self._lock:
                self._delay = min(self._delay * 2, self.max_retry)
                self._next_try = time.monotonic() + self._delay
            log.debug("change notices: reconnecting failed (%s); next try in %.1f s",
                      _first_line(exc), self._delay)
            return
        with self._lock:
            if self._closed:
                conn.close()
            else:
                self._fresh = conn

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for conn in (self._conn, self._fresh):
                if conn is not None:
                    conn.close()
            self._conn = self._fresh = None


Subscriber = Callable[[list[Change]], None]
PENDING_MAX = 1000  # more pending changes than this collapse to whole tables


@dataclass
class _Subscription:
    """A subscriber and the changes it has yet to apply: a subscriber that fails keeps them
    and is given them again later (after 0.5 s, doubling up to 8 s)."""

    apply: Subscriber
    name: str
    pending: list[Change] = field(default_factory=list)
    retry_at: float = 0.0
    delay: float = 0.0
    failing: set[str] = field(default_factory=set)  # kinds of error logged, until it recovers

    def deliver(self, changes: list[Change]) -> None:
        self.pending += changes
        if len(self.pending) > PENDING_MAX:
            self.pending = [Change(t, None) for t in sorted({c.table for c in self.pending})]
        if not self.pending or time.monotonic() < self.retry_at:
            return
        batch, self.pending = self.pending, []
        try:
            self.apply(batch)
        except Exception as exc:
            self.pending = batch + self.pending
            self.delay = min(max(self.delay * 2, 0.5), 8.0)
            self.retry_at = time.monotonic() + self.delay
            kind = type(exc).__name__
            if kind not in self.failing:
                self.failing.add(kind)
                log.error("change notices: %s failed to apply %d change(s) and will be given "
                          "them again; the other subscribers go on: %s", self.name, len(batch),
                          _first_line(exc), exc_info=exc)
            return
        if self.failing:
            log.warning("change notices: %s applies changes again", self.name)
            self.failing.clear()
        self.delay, self.retry_at = 0.0, 0.0


class ChangeHub:
    """One listener, many subscribers (the locate index, the tile cache, the session cache):
    every request polls the hub, and whatever arrived is handed to each subscriber before the
    request proceeds. A subscriber that raises is logged (once per kind of error) and given
    the changes again later; the others are not held up."""

    def __init__(self, database_url: str) -> None:
        self.listener = ChangeListener(database_url)
        self._subscribers: list[_Subscription] = []
        self._polling = threading.Lock()

    def subscribe(self, apply: Subscriber, *, name: str | None = None) -> None:
        label = name or getattr(apply, "__qualname__", None) or repr(apply)
        self._subscribers.append(_Subscription(apply, label))

    def poll(self) -> None:
        if not self._polling.acquire(blocking=False):
            return  # another thread is delivering right now
        try:
            changes = self.listener.poll()
            for subscription in self._subscribers:
                subscription.deliver(changes)
        finally:
            self._polling.release()

    def problems(self) -> dict[str, list[str]]:
        """Subscribers failing now, with the kinds of error."""
        return {s.name: sorted(s.failing) for s in self._subscribers if s.failing}

    def close(self) -> None:
        self.listener.close()
