"""Live updates of the incident queue as server-sent events (``GET /api/incidents/live``).

The database's change notices reach the process through its
:class:`~gridmap.store.listen.ChangeHub`. While a stream is open, a background task of the
app polls the hub every :attr:`Feed.poll_interval` seconds (a read of what the server already
sent, never a wait), so notices flow without requests. The :class:`Feed`, a hub subscriber,
turns each batch that touched the incident table into one notice and hands it to a bounded
queue per open stream: a slow client loses its oldest notices and holds up nobody.

A notice says only *where* something changed (``{"bbox": [w, s, e, n] | null, "at": …}``),
never what: the page reads its own queue again through the scoped API. A stream hears of the
changes near the divisions its caller holds. It ends when the client goes, when the caller's
session ends or changes (signed out, other grants), when the app shuts down, and after
:attr:`Feed.max_age` seconds in any case: the browser's ``EventSource`` reconnects by itself
and, sending ``Last-Event-ID``, is given the notices it missed meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

import shapely
from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from fastapi.security.utils import get_authorization_scheme_param
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Engine

from gridmap.access import NotSignedIn, Principal
from gridmap.api.deps import SESSION_COOKIE, ReadsIncidents
from gridmap.domain.access import Resource, Scope
from gridmap.domain.codes import division_level
from gridmap.store.listen import Change, ChangeHub

log = logging.getLogger("gridmap")
router = APIRouter(prefix="/api", tags=["incidents"])

EVENT_STREAM = "text/event-stream"
RETRY_MS = 2000  # how long EventSource waits before reconnecting
NEAR_DEG = 0.003  # ~300 m: a case routed across its grid's edge is still heard of
LAYER_OF_LEVEL = {"county": "counties", "township": "townships", "community": "communities"}
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Notice:
    seq: int
    bbox: Box | None  # lon/lat; None: anything may have changed
    at: datetime


def _offer(queue: asyncio.Queue[Notice | None], item: Notice | None) -> None:
    """Put without waiting: when the queue is full its oldest notice goes."""
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(item)


class Feed:
    """The incident notices of this process, fanned out to the open streams.

    Its state lives on the app's event loop: :meth:`apply` (called on whichever thread
    polled the hub) only schedules the notice there.
    """

    def __init__(self, *, poll_interval: float = 0.2, keepalive: float = 15.0,
                 max_age: float = 60.0, queue_size: int = 32, history: int = 256) -> None:
        self.poll_interval, self.keepalive, self.max_age = poll_interval, keepalive, max_age
        self.queue_size = queue_size
        self.epoch = secrets.token_hex(4)  # tells this run's event ids from another's
        self._seq = 0
        self._recent: deque[Notice] = deque(maxlen=history)
        self._queues: set[asyncio.Queue[Notice | None]] = set()
        self._areas: OrderedDict[tuple[str, ...], BaseGeometry] = OrderedDict()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pump: asyncio.Task[None] | None = None
        self.closed = False

    @property
    def listeners(self) -> int:
        """How many streams are open."""
        return len(self._queues)

    @property
    def last_id(self) -> str:
        return f"{self.epoch}-{self._seq}"

    # --- the notices --------------------------------------------------------------------

    def start(self, hub: ChangeHub) -> None:
        """Subscribe to *hub* and poll it while streams are open (call on the app's loop)."""
        self._loop = asyncio.get_running_loop()
        hub.subscribe(self.apply, name="the live incident feed")
        self._pump = asyncio.create_task(self._poll(hub), name="gridmap-live-poll")

    async def _poll(self, hub: ChangeHub) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.poll_interval)
            if not self._queues:  # nobody listens: the requests' own polls are enough
                continue
            try:
                hub.poll()
            except Exception as exc:  # never expected (the hub catches); keep polling
                if not failing:
                    log.error("live feed: polling the change notices failed: %s", exc,
                              exc_info=exc)
                failing = True
            else:
                failing = False

    def apply(self, changes: list[Change]) -> None:
        """A hub subscriber: one notice for the incidents a batch of changes touched."""
        loop = self._loop
        if loop is None:
            return
        boxes = [c.bbox for c in changes if c.table == "incident"]
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody listens
            if any(c.table in ("division", "grid") for c in changes):
                loop.call_soon_threadsafe(self._areas.clear)
            if boxes:
                loop.call_soon_threadsafe(self._publish, _union(boxes))

    def _publish(self, bbox: Box | None) -> None:
        self._seq += 1
        notice = Notice(self._seq, bbox, datetime.now(UTC))
        self._recent.append(notice)
        for queue in self._queues:
            _offer(queue, notice)

    def missed(self, last_event_id: str | None) -> list[Notice]:
        """The notices after *last_event_id* (sent back by a reconnecting EventSource): none
        for a first connection; one saying that anything may have changed when they cannot
        be told (an id of another process or run, or one too old)."""
        if not last_event_id:
            return []
        epoch, _, seq = last_event_id.strip().partition("-")
        if epoch == self.epoch and seq.isascii() and seq.isdigit() and len(seq) <= 12:
            after = int(seq)
            oldest = self._recent[0].seq if self._recent else self._seq + 1
            if oldest - 1 <= after <= self._seq:
                return [n for n in self._recent if n.seq > after]
        return [Notice(self._seq, None, datetime.now(UTC))]

    # --- the streams --------------------------------------------------------------------

    def open(self) -> asyncio.Queue[Notice | None]:
        queue: asyncio.Queue[Notice | None] = asyncio.Queue(self.queue_size)
        self._queues.add(queue)
        return queue

    def close(self, queue: asyncio.Queue[Notice | None]) -> None:
        self._queues.discard(queue)

    async def area(self, engine: Engine, caller: Principal) -> BaseGeometry | None:
        """Where the caller's divisions lie (None: everywhere), read once per set of
        divisions until grids or divisions are redrawn."""
        if caller.scope.everything:
            return None
        key = tuple(sorted(caller.divisions))
        area = self._areas.get(key)
        if area is None:
            area = self._areas[key] = await run_in_threadpool(_area_of, engine, key)
            while len(self._areas) > 256:
                self._areas.popitem(last=False)
        else:
            self._areas.move_to_end(key)
        return area

    async def stop(self) -> None:
        """Stop polling and end every open stream."""
        self.closed = True
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        for queue in self._queues:
            _offer(queue, None)


def _area_of(engine: Engine, codes: tuple[str, ...]) -> BaseGeometry:
    from gridmap.store.read import read_layer

    parts: list[BaseGeometry] = []
    with engine.connect() as conn:
        for code in codes:
            layer = "grids" if len(code) == 15 else LAYER_OF_LEVEL[division_level(code)]
            parts.extend(read_layer(conn, layer, scope=Scope.of([code])).geometry)
    area = shapely.union_all(parts)
    shapely.prepare(area)
    return area


def _union(boxes: list[Box | None]) -> Box | None:
    known = [b for b in boxes if b is not None]
    if len(known) < len(boxes):
        return None
    return (min(b[0] for b in known), min(b[1] for b in known),
            max(b[2] for b in known), max(b[3] for b in known))


def concerns(area: BaseGeometry | None, bbox: Box | None) -> bool:
    """Whether a change in *bbox* is near *area* (None: everywhere, or anything changed).

    Examples
    --------
    >>> square = shapely.box(0, 0, 1, 1)
    >>> concerns(square, (0.5, 0.5, 0.5, 0.5)), concerns(square, (1.002, 0, 1.002, 0))
    (True, True)
    >>> concerns(square, (2, 2, 2, 2)), concerns(square, None), concerns(None, (2, 2, 2, 2))
    (False, True, True)
    """
    if area is None or bbox is None:
        return True
    w, s, e, n = bbox
    return bool(area.intersects(shapely.box(w - NEAR_DEG, s - NEAR_DEG, e + NEAR_DEG,
                                            n + NEAR_DEG)))


def event_block(epoch: str, notice: Notice) -> str:
    data = {"bbox": list(notice.bbox) if notice.bbox else None, "at": notice.at.isoformat()}
    return (f"id: {epoch}-{notice.seq}\nevent: incidents\n"
            f"data: {json.dumps(data, separators=(',', ':'))}\n\n")


def _credential(request: Request) -> str | None:
    """The token the caller came with (as :func:`gridmap.api.deps.get_caller` reads it)."""
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    if scheme.lower() == "bearer" and token:
        return token
    return request.cookies.get(SESSION_COOKIE)


async def _still_allowed(request: Request, token: str | None, caller: Principal) -> bool:
    """Whether the caller's session still stands, with the role and divisions it had."""
    if token is None:
        return False
    sessions = request.app.state.sessions
    try:
        now = sessions.cached(token) or await run_in_threadpool(sessions.resolve, token)
    except NotSignedIn:
        return False
    return bool(now.may(Resource.incidents) and now.role == caller.role
                and now.divisions == caller.divisions)


async def _events(request: Request, caller: Principal, area: BaseGeometry | None,
                  last_event_id: str | None) -> AsyncIterator[str]:
    feed: Feed = request.app.state.live
    token = _credential(request)
    queue = feed.open()
    try:
        # what a reconnecting client missed; then the id to send back next time
        for past in feed.missed(last_event_id):
            if concerns(area, past.bbox):
                yield event_block(feed.epoch, past)
        yield f"retry: {RETRY_MS}\nid: {feed.last_id}\n\n"
        loop = asyncio.get_running_loop()
        ends = loop.time() + feed.max_age
        quiet_until = loop.time() + feed.keepalive
        tick = min(1.0, feed.keepalive, feed.max_age)
        notice: Notice | None
        while True:
            heard = True
            try:
                notice = await asyncio.wait_for(queue.get(), tick)
            except TimeoutError:
                heard, notice = False, None  # nothing new: time to look around
            if ((heard and notice is None) or loop.time() >= ends
                    or await request.is_disconnected()
                    or not await _still_allowed(request, token, caller)):
                return  # stopping, long enough, gone, or no longer signed in as before
            if notice is not None:
                if concerns(area, notice.bbox):
                    quiet_until = loop.time() + feed.keepalive
                    yield event_block(feed.epoch, notice)
            elif loop.time() >= quiet_until:
                quiet_until = loop.time() + feed.keepalive
                yield ": keep-alive\n\n"
    finally:
        feed.close(queue)


@router.get("/incidents/live", response_class=StreamingResponse, responses={
    200: {"content": {EVENT_STREAM: {}},
          "description": "an `incidents` event whenever the caller's cases may have changed"},
    406: {"description": "the request does not accept text/event-stream"}})
async def live(request: Request, caller: ReadsIncidents,
               last_event_id: Annotated[str | None, Header(
                   max_length=64, description="the id of the last event received (sent by "
                   "a reconnecting EventSource): the events missed since then come first")
               ] = None) -> StreamingResponse:
    """Server-sent events (``Accept: text/event-stream``, as ``EventSource`` sends): an
    ``incidents`` event — data ``{"bbox": [west, south, east, north] | null, "at": …}`` —
    whenever cases near the caller's divisions change (``null``: anything may have changed),
    and a comment every 15 s to keep the connection open. No case data: read the queue
    again (``GET /api/incidents``) on each event. The stream ends after a minute, when the
    session ends or when the server stops; EventSource reconnects by itself."""
    if EVENT_STREAM not in request.headers.get("accept", ""):
        raise HTTPException(406, "this is a stream of server-sent events that does not end: "
                                 "send Accept: text/event-stream (EventSource does)")
    feed: Feed = request.app.state.live
    if feed.closed:
        raise HTTPException(503, "the server is stopping: reconnect shortly",
                            headers={"Retry-After": "2"})
    area = await feed.area(request.app.state.engine, caller)
    return StreamingResponse(
        _events(request, caller, area, last_event_id), media_type=EVENT_STREAM,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
