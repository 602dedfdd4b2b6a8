"""Request dependencies: a connection per request, and who is calling.

Every route takes the caller through :data:`CallerDep` or one of the ``Reads…`` types, so no
route can forget to ask: the caller comes from a bearer token (``Authorization``), or from
the page session cookie, or is the public. A bad bearer token is a 401; a stale cookie
(signed out elsewhere, expired) makes the page the public's. A change asked for with the
cookie must carry the session's CSRF token in ``X-CSRF-Token``.
"""

from __future__ import annotations

import contextlib
import hmac
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from starlette.datastructures import State
from starlette.requests import cookie_parser

from gridmap.access import Forbidden, NotSignedIn, Principal, csrf_token
from gridmap.domain.access import Resource

SESSION_COOKIE = "gridmap_session"
CSRF_COOKIE = "gridmap_csrf"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}

bearer = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False,
                              description="An access token from POST /auth/token")


def get_connection(request: Request) -> Iterator[Connection]:
    conn = request.app.state.engine.connect()
    try:
        yield conn
    finally:
        # Closing rolls back; when the database went away after the answer was made, that
        # rollback fails after the response has started, and the client's connection was
        # dropped (no answer at all). The pool discards the dead connection; the answer
        # stands.
        with contextlib.suppress(DBAPIError):
            conn.close()


ConnDep = Annotated[Connection, Depends(get_connection)]


async def get_caller(request: Request,
                     token: Annotated[str | None, Depends(bearer)] = None) -> Principal:
    """The principal behind the request (the public when no token or cookie is sent)."""
    request.state.arrived = time.perf_counter()  # for the slow-request log
    state = request.app.state
    state.changes.poll()  # revocations and new grants first
    by_cookie = token is None
    if by_cookie:
        token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return state.public
    sessions = state.sessions
    try:
        principal = sessions.cached(token)
        if principal is None:
            principal = await run_in_threadpool(sessions.resolve, token)
    except NotSignedIn:
        if not by_cookie:
            raise  # an API client must learn that its token is no good
        return state.public  # a page with a stale session cookie is the public's page

    if by_cookie and request.method not in SAFE_METHODS:
        sent = request.headers.get("x-csrf-token", "")
        if not hmac.compare_digest(sent, csrf_token(state.settings, principal)):
            raise Forbidden("this change came with the page session but without its "
                            "X-CSRF-Token header: reload the page")
    request.state.principal = principal
    return principal


CallerDep = Annotated[Principal, Depends(get_caller)]


def caller_in_memory(state: State, authorization: bytes | None, cookie: bytes | None
                     ) -> Principal | None:
    """The caller as :func:`get_caller` finds them, when that needs no I/O and no error: the
    public (no token, no cookie) or a session already resolved; None otherwise (ask
    :func:`get_caller`). For the framework-free fast paths."""
    token: str | None = None
    if authorization is not None:
        scheme, _, token = authorization.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not token:
            token = None
    if token is None and cookie is not None:
        token = cookie_parser(cookie.decode("latin-1")).get(SESSION_COOKIE)
    if not token:
        return state.public
    try:
        principal: Principal | None = state.sessions.cached(token)
    except NotSignedIn:
        return None
    return principal


def reads(resource: Resource) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency: the caller, who must be allowed to read *resource* (401 / 403)."""

    async def check(caller: CallerDep) -> Principal:
        return caller.require(resource)

    check.__name__ = f"reads_{resource.value}"
    return check


ReadsBoundaries = Annotated[Principal, Depends(reads(Resource.boundaries))]
ReadsCounts = Annotated[Principal, Depends(reads(Resource.counts))]
ReadsFacilities = Annotated[Principal, Depends(reads(Resource.facilities))]
ReadsHouseholds = Annotated[Principal, Depends(reads(Resource.households))]
ReadsIncidents = Annotated[Principal, Depends(reads(Resource.incidents))]
ReadsUsers = Annotated[Principal, Depends(reads(Resource.users))]


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"
