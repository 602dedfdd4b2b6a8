"""Liveness and readiness probes, and the answer while the database is away.

``GET /healthz`` says the process answers; ``GET /readyz`` says whether it can do its work
(the database answers, the locate index is loaded, the change listener is connected), for a
load balancer or an orchestrator. Neither takes credentials nor shows personal data.

While the database is unreachable, a request that needs it gets a 503 with ``Retry-After``
at once (:func:`install`), not a 500 with a traceback; locate and cached tiles go on from
memory.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Literal

import psycopg
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import OperationalError as SQLAlchemyOperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError

from gridmap.api.errors import RETRY_AFTER_S, error_response

router = APIRouter(tags=["health"])
log = logging.getLogger("gridmap")
UNAVAILABLE = "the database is unavailable: retry shortly"
BUSY = "every database connection of the server is in use: retry shortly"
DATABASE_TIMEOUT_S = 3.0


class Health(BaseModel):
    status: Literal["ok"] = Field(description="the process answers")


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    database: bool = Field(description="the database answered SELECT 1")
    listener: bool = Field(description="the change listener (LISTEN gridmap_change) is "
                           "connected; while it is not, in-memory state may be stale")
    listener_down_s: float | None = Field(description="seconds since the listener lost its "
                                          "connection (null while connected)")
    last_notice_age_s: float | None = Field(description="seconds since the last change "
                                            "notice arrived (null: none since start-up)")
    locate_index: bool = Field(description="the locate index is loaded")
    grids: int = Field(description="grids in the locate index")
    locate_problem: str | None = Field(description="why stored grids are not all in the "
                                       "locate index (e.g. two grids overlap), if they are not")
    failing: dict[str, list[str]] = Field(description="parts of the server failing to apply "
                                          "change notices now, with the kinds of error")
    problems: list[str] = Field(description="why the server is not ready")


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """Liveness: the process answers (200). No credentials, no database."""
    return Health(status="ok")


def _database_answers(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            conn.execute(select(1))
    except DBAPIError:
        return False
    return True


async def _database_ready(engine: Engine) -> bool:
    try:
        return await asyncio.wait_for(run_in_threadpool(_database_answers, engine),
                                      DATABASE_TIMEOUT_S)
    except TimeoutError:
        return False


@router.get("/readyz", response_model=Readiness, responses={
    503: {"model": Readiness, "description": "not ready: see problems"}})
async def readyz(request: Request, response: Response) -> Readiness:
    """Readiness: 200 when the database answers, the locate index is loaded and the change
    listener is connected; 503 otherwise. Also the age of the last change notice and what is
    wrong with the stored grids, if anything. No credentials."""
    state = request.app.state
    state.changes.poll()  # also what reconnects the listener when no other request comes
    listener = state.changes.listener
    locator = state.locator.status()
    database = await _database_ready(state.engine)
    now = time.monotonic()
    problems = []
    if not database:
        problems.append(f"the database did not answer within {DATABASE_TIMEOUT_S:g} s")
    if not listener.connected:
        problems.append("the change listener is reconnecting")
    if not locator.loaded:
        problems.append(f"no locate index: {locator.problem}")
    ready = not problems
    response.status_code = 200 if ready else 503
    return Readiness(
        status="ready" if ready else "not ready", database=database,
        listener=listener.connected,
        listener_down_s=None if listener.down_since is None else
        round(now - listener.down_since, 3),
        last_notice_age_s=None if listener.last_notice is None else
        round(now - listener.last_notice, 3),
        locate_index=locator.loaded, grids=locator.grids, locate_problem=locator.problem,
        failing=state.changes.problems(), problems=problems)


class _Outage:
    """Logs a database outage once a minute at most, with how many requests got a 503."""

    def __init__(self, every_s: float = 60.0) -> None:
        self.every_s = every_s
        self.logged_at = -every_s
        self.unlogged = 0

    def note(self, exc: Exception) -> None:
        now = time.monotonic()
        self.unlogged += 1
        if now - self.logged_at >= self.every_s:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            log.warning("the database is unavailable (%s): %d request(s) answered 503 since "
                        "the last report", first, self.unlogged)
            self.logged_at, self.unlogged = now, 0


def install(app: FastAPI) -> None:
    """Answer 503 (``Retry-After``) for a lost or refused database connection:
    ``psycopg.OperationalError`` (a pool timeout included), SQLAlchemy's
    ``OperationalError``, or any DBAPI error that invalidated its connection; and for
    SQLAlchemy's pool running out of connections (its ``TimeoutError``)."""
    outage = _Outage()

    async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        if (isinstance(exc, DBAPIError) and not isinstance(exc, SQLAlchemyOperationalError)
                and not exc.connection_invalidated):
            raise exc  # not about the connection: a server error as before
        outage.note(exc)
        return error_response(request, 503, code="unavailable", detail=UNAVAILABLE,
                              headers={"Retry-After": str(RETRY_AFTER_S)})

    async def connections_busy(request: Request, exc: Exception) -> JSONResponse:
        outage.note(exc)
        return error_response(request, 503, code="unavailable", detail=BUSY,
                              headers={"Retry-After": str(RETRY_AFTER_S)})

    for kind in (psycopg.OperationalError, SQLAlchemyOperationalError, DBAPIError):
        app.add_exception_handler(kind, database_unavailable)
    # every connection of the engine's pool in use for its whole timeout: a burst of
    # requests, not a bug — a 503 to retry, not a 500
    app.add_exception_handler(SQLAlchemyTimeoutError, connections_busy)
