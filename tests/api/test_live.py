"""Live updates of the incident queue (``GET /api/incidents/live``) from a real server: a
dispatcher hears of a new case within seconds; the public is refused; a stream that ends
frees its queue; a reconnecting client is given what it missed; a grid worker hears only of
cases near their grid; a stream ends with its session. And the fan-out itself: a slow client
loses its oldest notices and holds up nobody."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import geopandas as gpd
import httpx
import pytest
from fastapi import FastAPI

from gridmap.api import app as app_module
from gridmap.api.routes_live import Feed
from gridmap.demodata import DEMO_DIR, DEMO_FILES
from gridmap.store.listen import Change
from tests.conftest import loaded_database, serve_in_thread
from tests.helpers import bearer, token_for

TOWNSHIP, GRID, FAR_GRID = "610199001000", "610199001001001", "610199002021001"
GARBAGE = "事件/市容环境/暴露垃圾"
EVENTS = {"Accept": "text/event-stream"}
LIVE = "/api/incidents/live"


@pytest.fixture(scope="module")
def database(server_url: str, template_db: str) -> Iterator[str]:
    yield from loaded_database(server_url, template_db, (
        "counties", "townships", "communities", "grids", "workers"))


@pytest.fixture(scope="module")
def served(database: str) -> Iterator[tuple[str, FastAPI]]:
    """gridmap on a real server (uvicorn in a thread), and its app, to look inside."""
    made: list[FastAPI] = []
    real = app_module.create_app

    def keep(*args: Any, **kwargs: Any) -> FastAPI:
        made.append(real(*args, **kwargs))
        return made[-1]

    server = serve_in_thread(database)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(app_module, "create_app", keep)
        base_url = next(server)
    yield base_url, made[0]
    next(server, None)  # stops the server


@pytest.fixture(scope="module")
def who(database: str) -> dict[str, dict[str, str]]:
    return {
        "admin": bearer(token_for(database, "live-admin", "admin")),
        "dispatcher": bearer(token_for(database, "live-dispatcher", "dispatcher",
                                       (TOWNSHIP,))),
        "far_worker": bearer(token_for(database, "live-worker", "grid_worker", (FAR_GRID,))),
    }


@pytest.fixture(scope="module")
def points() -> dict[str, tuple[float, float]]:
    grids = gpd.read_file(DEMO_DIR / DEMO_FILES["grids"]).set_index("code")
    out = {}
    for name, code in (("grid", GRID), ("far", FAR_GRID)):
        p = grids.loc[code].geometry.buffer(-0.0005).representative_point()
        out[name] = (p.x, p.y)
    return out


class Stream:
    """The blocks of a server-sent event stream, read as they come."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.iter_lines()
        self.opening_id = ""  # the id of the opening block

    def block(self) -> dict[str, str]:
        """The next block's fields (a comment under ""); EOFError when the stream ended."""
        fields: dict[str, str] = {}
        for line in self.lines:
            if not line:
                if fields:
                    return fields
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        raise EOFError("the stream ended")

    def event(self, within: float) -> dict[str, Any]:
        """The next ``incidents`` event's data, within *within* seconds."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            fields = self.block()
            if fields.get("event") == "incidents":
                return {"id": fields["id"], **json.loads(fields["data"])}
        raise AssertionError(f"no incidents event within {within} s")


@contextmanager
def stream(base_url: str, headers: dict[str, str], *, read_timeout: float = 3.0
           ) -> Iterator[Stream]:
    """A stream that is listening: its opening block (retry, id) has arrived."""
    timeout = httpx.Timeout(5.0, read=read_timeout)
    with httpx.Client(base_url=base_url, timeout=timeout) as client, client.stream(
            "GET", LIVE, headers={**EVENTS, **headers}) as res:
        assert res.status_code == 200, res.read()
        assert res.headers["content-type"].startswith("text/event-stream")
        assert res.headers["cache-control"] == "no-cache"
        s = Stream(res)
        opening = s.block()
        while "retry" not in opening:  # replayed events come first
            opening = s.block()
        assert opening["retry"] == "2000" and opening["id"]
        s.opening_id = opening["id"]
        yield s


def report(base_url: str, headers: dict[str, str], point: tuple[float, float]) -> Any:
    res = httpx.post(base_url + "/api/incidents", headers=headers, json={
        "lon": point[0], "lat": point[1], "category": GARBAGE, "description": "路边垃圾"})
    assert res.status_code == 201, res.text
    return res.json()


def until(check: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def around(bbox: list[float], point: tuple[float, float]) -> bool:
    x, y = point
    return bbox[0] - 1e-5 <= x <= bbox[2] + 1e-5 and bbox[1] - 1e-5 <= y <= bbox[3] + 1e-5


def test_a_dispatcher_hears_of_a_new_case_within_seconds(
        served: tuple[str, FastAPI], who: dict[str, dict[str, str]],
        points: dict[str, tuple[float, float]]) -> None:
    base_url, app = served
    feed: Feed = app.state.live
    assert feed.listeners == 0
    with stream(base_url, who["dispatcher"]) as s:
        assert feed.listeners == 1
        started = time.monotonic()
        case = report(base_url, who["admin"], points["grid"])  # from another client
        event = s.event(within=3)
        heard_after = time.monotonic() - started
        # every step of the case updates its row: heard of too
        moved = httpx.post(f"{base_url}/api/incidents/{case['id']}/actions", headers={
            **who["dispatcher"], "If-Match": f'"v{case["version"]}"'},
            json={"action": "register"})
        assert moved.status_code == 200, moved.text
        step = s.event(within=3)
    assert heard_after < 3
    assert around(event["bbox"], points["grid"]) and event["at"]
    assert around(step["bbox"], points["grid"]) and step["id"] != event["id"]
    assert set(event) == {"id", "bbox", "at"}  # where and when, never what
    # the client went: its queue is freed
    assert until(lambda: feed.listeners == 0), feed.listeners


def test_the_public_is_refused_and_a_plain_get_is_told_how(
        served: tuple[str, FastAPI], who: dict[str, dict[str, str]]) -> None:
    base_url, app = served
    refused = httpx.get(base_url + LIVE, headers=EVENTS)
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    forged = httpx.get(base_url + LIVE, headers={**EVENTS, "Authorization": "Bearer x.y.z"})
    assert forged.status_code == 401
    plain = httpx.get(base_url + LIVE, headers=who["dispatcher"])
    assert plain.status_code == 406 and "text/event-stream" in plain.json()["detail"]
    assert app.state.live.listeners == 0


def test_a_reconnecting_client_is_given_what_it_missed(
        served: tuple[str, FastAPI], who: dict[str, dict[str, str]],
        points: dict[str, tuple[float, float]]) -> None:
    base_url, _ = served
    with stream(base_url, who["dispatcher"]) as s:
        last = s.opening_id
    report(base_url, who["admin"], points["grid"])  # while it was away
    time.sleep(0.2)
    httpx.get(base_url + "/auth/me", headers=who["dispatcher"])  # a request polls notices
    time.sleep(0.1)
    # back, with the id it had: the event it missed comes first, before the opening block
    with httpx.Client(base_url=base_url, timeout=5) as client, client.stream(
            "GET", LIVE, headers={**EVENTS, **who["dispatcher"], "Last-Event-ID": last}
    ) as res:
        first = Stream(res).block()
        assert first["event"] == "incidents", first
        assert around(json.loads(first["data"])["bbox"], points["grid"])
    # an id from another run or process: anything may have changed
    with httpx.Client(base_url=base_url, timeout=5) as client, client.stream(
            "GET", LIVE, headers={**EVENTS, **who["dispatcher"], "Last-Event-ID": "ab-1"}
    ) as res:
        first = Stream(res).block()
        assert first["event"] == "incidents" and json.loads(first["data"])["bbox"] is None


def test_a_grid_worker_hears_only_of_cases_near_their_grid(
        served: tuple[str, FastAPI], who: dict[str, dict[str, str]],
        points: dict[str, tuple[float, float]]) -> None:
    base_url, _ = served
    with stream(base_url, who["far_worker"]) as worker, \
            stream(base_url, who["dispatcher"]) as dispatcher:
        report(base_url, who["admin"], points["grid"])  # not near the worker's grid
        assert around(dispatcher.event(within=3)["bbox"], points["grid"])
        report(base_url, who["admin"], points["far"])  # in it
        heard = worker.event(within=3)  # the first the worker hears of
    assert around(heard["bbox"], points["far"])


def test_a_stream_ends_with_its_session_and_after_a_while(
        served: tuple[str, FastAPI], database: str) -> None:
    base_url, app = served
    feed: Feed = app.state.live
    token = bearer(token_for(database, "live-leaving", "dispatcher", (TOWNSHIP,)))
    with stream(base_url, token) as s:
        out = httpx.post(base_url + "/auth/logout", headers=token)
        assert out.status_code == 204
        started = time.monotonic()
        with pytest.raises(EOFError):
            while True:
                s.block()
        ended_after = time.monotonic() - started
    assert ended_after < 3
    assert httpx.get(base_url + LIVE, headers={**EVENTS, **token}).status_code == 401

    saved = feed.max_age, feed.keepalive
    feed.max_age, feed.keepalive = 1.2, 0.3
    try:
        with stream(base_url, bearer(token_for(database, "live-dispatcher"))) as s:
            blocks = []
            with pytest.raises(EOFError):
                while True:
                    blocks.append(s.block())
    finally:
        feed.max_age, feed.keepalive = saved
    assert {"": "keep-alive"} in blocks  # a comment keeps a quiet connection open
    assert until(lambda: feed.listeners == 0)


class _Hub:
    def __init__(self) -> None:
        self.subscribers: list[Callable[[list[Change]], None]] = []

    def subscribe(self, apply: Callable[[list[Change]], None], *, name: str) -> None:
        self.subscribers.append(apply)

    def poll(self) -> None:
        pass


def test_a_slow_client_loses_its_oldest_notices_and_holds_up_nobody() -> None:
    async def scenario() -> dict[str, Any]:
        feed = Feed(queue_size=4, history=8)
        hub = _Hub()
        feed.start(hub)  # type: ignore[arg-type]
        slow, other = feed.open(), feed.open()
        first_id = feed.last_id
        for n in range(10):  # as the hub hands them over, from any thread
            hub.subscribers[0]([Change("incident", (n, 0, n, 0)), Change("household", None)])
        hub.subscribers[0]([Change("household", (0, 0, 1, 1))])  # not an incident
        await asyncio.sleep(0)
        seen = {"slow": [slow.get_nowait().bbox[0] for _ in range(slow.qsize())],  # type: ignore[union-attr]
                "other": other.qsize(), "last": feed.last_id}
        seen["replay"] = [n.seq for n in feed.missed(f"{feed.epoch}-7")]
        seen["too_old"] = [n.bbox for n in feed.missed(first_id)]
        seen["first"] = feed.missed(None)
        feed.close(other)
        await feed.stop()
        seen["stopped"] = slow.get_nowait()
        seen["listeners"] = feed.listeners
        return seen

    seen = asyncio.run(scenario())
    assert seen["slow"] == [6, 7, 8, 9]  # the newest four
    assert seen["other"] == 4
    assert seen["last"].endswith("-10")
    assert seen["replay"] == [8, 9, 10]
    assert seen["too_old"] == [None]  # beyond the history: anything may have changed
    assert seen["first"] == []
    assert seen["stopped"] is None  # the streams are told to end
    assert seen["listeners"] == 1  # the slow one closes its own queue as it ends
