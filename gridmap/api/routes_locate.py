"""The dispatcher's calls: locate a point, search an address."""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.datastructures import State
from starlette.types import Scope as AsgiScope
from starlette.types import Send

from gridmap.access import AuditLog, NotVisible, Principal
from gridmap.api.deps import (
    CallerDep,
    ConnDep,
    ReadsBoundaries,
    ReadsHouseholds,
    caller_in_memory,
    client_of,
)
from gridmap.api.errors import language_of
from gridmap.api.schemas import LocatePublic, SearchHit
from gridmap.api.security import PAGE_HEADERS
from gridmap.domain.access import (
    Resource,
    Show,
    household_fields_shown,
    household_view,
    worker_view,
)
from gridmap.domain.chinacrs import to_wgs84
from gridmap.domain.notes import note
from gridmap.store.search import search_addresses
from gridmap.store.versions import locate_at

router = APIRouter(prefix="/api", tags=["locate"])
log = logging.getLogger("gridmap")
WORKER_PHONES = note("read_worker_phones")  # a full view of a grid's workers, audited


@router.get("/locate", responses={200: {"model": LocatePublic}})
async def locate(
    request: Request,
    caller: CallerDep,
    lon: Annotated[float, Query(ge=-180, le=180, description="longitude (x)")],
    lat: Annotated[float, Query(ge=-90, le=90, description="latitude (y)")],
    crs: Annotated[Literal["wgs84", "cgcs2000", "gcj02", "bd09"], Query(
        description="coordinate system of lon/lat: gcj02 and bd09 are what Chinese web "
        "maps and geocoders return")] = "wgs84",
    at: Annotated[datetime | None, Query(
        description="a past moment (ISO 8601): the grids of the versions valid then")] = None,
) -> Any:
    """Township, community, grid (exclusive grids first) and the grid's workers with their
    phones (as the caller's role may see them) for a point; the distance to the nearest grid
    edge and, within the margin (default 10 m), the other candidate grids. Outside every
    grid: ``inside`` false. A point in a grid outside the caller's divisions: 404. With
    ``at``, the answer as of that moment (from the published versions; no workers, whose
    history is not kept)."""
    caller.require(Resource.boundaries)  # inline: a dependency level costs this hot path
    if at is not None:
        return await run_in_threadpool(_locate_at, request, caller, lon, lat, crs, at)
    return JSONResponse(answer_for(request.app.state, caller, lon, lat, crs,
                                   client=client_of(request), path=request.url.path))


def answer_for(state: State, caller: Principal, lon: float, lat: float, crs: str, *,
               client: str, path: str) -> dict[str, Any]:
    """The in-memory index's answer as *caller* may see it (NotVisible: outside their
    divisions); a full view of the workers' phones is audited."""
    answer: dict[str, Any] = state.locator.locate(lon, lat, crs)
    scope = caller.scope
    if answer["inside"] and not scope.covers(answer["grid"]["code"]):
        raise NotVisible("the point is in none of your divisions' grids")
    if not answer["inside"] and not scope.everything:
        raise NotVisible("the point is in none of your divisions' grids")
    answer["candidates"] = [c for c in answer["candidates"] if scope.covers(c["code"])]
    if "workers" in answer:
        answer["workers"] = _workers(state.audit, caller, answer["workers"],
                                     answer["grid"]["code"], client=client, target=f"GET {path}")
    return answer


CRS_CHOICES = ("wgs84", "cgcs2000", "gcj02", "bd09")
# the bytes JSONResponse renders, from one encoder made once (json.dumps with options makes
# one per call)
JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
FAST_PARAMS = {"lon", "lat", "crs"}
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,3})?")


# the fast answer's headers, encoded once: its type and those every answer carries
FAST_HEADERS = [(b"content-type", b"application/json"), *PAGE_HEADERS]


async def answer_fast(scope: AsgiScope, send: Send) -> bool:
    """Locate without the framework (:class:`gridmap.api.app.Gridmap` asks first): the
    answer of :func:`fast_answer`, sent; False when there is none."""
    body = fast_answer(scope)
    if body is None:
        return False
    await send({"type": "http.response.start", "status": 200,
                "headers": [*FAST_HEADERS, (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})
    return True


def fast_answer(scope: AsgiScope) -> bytes | None:
    """The JSON of a ``GET /api/locate`` with plain, valid lon/lat (and crs), from the
    in-memory index, for a caller known without I/O — the public or a session already
    resolved — who may read boundaries; None for anything else — ``at``, a value out of
    range, a token to check, an answer to refuse, an error — which :func:`locate` answers.
    Both fast paths (:func:`answer_fast`, :mod:`gridmap.api.fastproto`) answer with it."""
    try:
        return _fast_body(scope)
    except Exception:  # a bug: logged, and the framework's way answers (or reports) it
        log.exception("locate's fast path failed; the framework answers the request")
        return None


def _fast_body(scope: AsgiScope) -> bytes | None:
    try:
        params = dict(parse_qsl(scope["query_string"].decode("latin-1"), strict_parsing=True,
                                keep_blank_values=True))  # "at=" is the framework's 422
        if not (NUMBER.fullmatch(params["lon"]) and NUMBER.fullmatch(params["lat"])):
            return None
        lon, lat = float(params["lon"]), float(params["lat"])
    except (ValueError, KeyError):
        return None
    crs = params.get("crs", "wgs84")
    if params.keys() - FAST_PARAMS or crs not in CRS_CHOICES \
            or not (-180 <= lon <= 180 and -90 <= lat <= 90):
        return None
    state = scope["app"].state
    headers = dict(scope["headers"])
    if b"origin" in headers and state.settings.cors_origins:
        return None  # a cross-origin call: the CORS middleware's headers are wanted
    state.changes.poll()  # revocations, new grants and redraws first
    caller = caller_in_memory(state, headers.get(b"authorization"), headers.get(b"cookie"))
    if caller is None or not caller.may(Resource.boundaries):
        return None
    client = scope["client"][0] if scope.get("client") else "unknown"
    try:
        answer = answer_for(state, caller, lon, lat, crs, client=client, path=scope["path"])
    except NotVisible:
        return None
    return JSON.encode(answer).encode()


def _locate_at(request: Request, caller: Principal, lon: float, lat: float, crs: str,
               at: datetime) -> dict[str, Any]:
    if at.tzinfo is None:
        at = at.replace(tzinfo=ZoneInfo(request.app.state.settings.time_zone))
    x, y = to_wgs84(lon, lat, crs)
    with request.app.state.engine.connect() as conn:
        grids = locate_at(conn, x, y, at)
    answer: dict[str, Any] = {"lon": x, "lat": y, "crs": crs, "at": at.isoformat(),
                              "workers": []}
    if not grids:
        if not caller.scope.everything:
            raise NotVisible("the point was in none of your divisions' grids then")
        return {**answer, "inside": False, "message": "the point was outside every grid then"}
    top = grids[0]
    if not caller.scope.covers(top["code"]):
        raise NotVisible("the point was in none of your divisions' grids then")
    return {**answer, "inside": True, "version": top["version"],
            "township": {"code": top["township_code"], "name": top["township_name"]},
            "community": {"code": top["community_code"], "name": top["community_name"]},
            "grid": {"code": top["code"], "name": top["name"], "kind": top["kind"]},
            "candidates": [{"code": g["code"], "name": g["name"], "kind": g["kind"]}
                           for g in grids[1:] if caller.scope.covers(g["code"])]}


def _workers(audit: AuditLog, caller: Principal, workers: list[dict[str, Any]],
             grid_code: str, *, client: str, target: str) -> list[dict[str, Any]]:
    """The workers as the caller may see them; a full view of their phones is audited."""
    if not caller.may(Resource.workers):
        return []
    shown = [w for w in (worker_view(w, caller.fields) for w in workers) if w is not None]
    if shown and caller.fields.worker_contact == Show.full:
        audit.read(caller, target, client, divisions=[grid_code], row_count=len(shown),
                   detail=WORKER_PHONES)
    return shown


@router.get("/search", response_model=list[SearchHit], response_model_exclude_unset=True)
def search(
    request: Request,
    conn: ConnDep,
    caller: ReadsHouseholds,
    q: Annotated[str, Query(min_length=2, max_length=200,
                            description="an address or part of one, typos allowed")],
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> list[dict[str, Any]]:
    """Households of the caller's divisions whose address matches, best first, with their
    location, grid, community, township and the grid's workers with their phones
    (``workers`` is empty for a household outside every grid). Names, phones, addresses and
    care flags as the caller's role may see them: a role that sees addresses to the building
    gets one hit per building."""
    if "\x00" in q:  # PostgreSQL text cannot hold it: say so instead of failing in the query
        raise HTTPException(422, "q must not contain a NUL character (\\x00): remove it")
    locator = request.app.state.locator
    hits: list[dict[str, Any]] = []
    seen: set[tuple[object, object]] = set()
    building = caller.fields.address == Show.building
    rows = search_addresses(conn, q.strip(), limit=limit * 10 if building else limit,
                            scope=caller.scope)
    for row in rows:
        if len(hits) == limit:
            break
        hit: dict[str, Any] = household_view(row, caller.fields)
        key = (hit.get("address"), hit["grid_code"])
        if building:
            if key in seen:
                continue
            seen.add(key)
            hit["id"] = None  # stands for a building, not one household
        grid_code = str(hit["grid_code"]) if hit["grid_code"] else None
        hits.append({**hit, **locator.describe(grid_code)})
    grids: set[str] = set()
    for hit in hits:
        workers: list[dict[str, Any]] = hit["workers"]
        hit["workers"] = [w for w in (worker_view(w, caller.fields) for w in workers)
                          if w is not None] if caller.may(Resource.workers) else []
        if hit["grid_code"]:
            grids.add(hit["grid_code"])
    if hits and (household_fields_shown(caller.fields)
                 or caller.fields.worker_contact == Show.full):
        request.app.state.audit.read(
            caller, f"GET {request.url.path}", client_of(request),
            divisions=sorted(grids),
            row_ids=[h["id"] for h in hits if h["id"]] or None, row_count=len(hits),
            detail=note("read_address_search"))
    return hits


class PlacePublic(BaseModel):
    kind: Literal["road", "township", "community", "grid", "facility", "building"]
    name: str = Field(description="the place's name; a building's address (or name)")
    id: str = Field(description="a division or grid code, a facility's or building's id; "
                    "for a road, the township it is in")
    type: str | None = Field(description="a grid's kind, a facility's type")
    township_code: str
    lon: float
    lat: float
    score: float = Field(ge=0, le=1, description="similarity of the query to the name "
                         "(or to its pinyin), 1 for the name itself")
    inside_scope: bool = Field(description="whether the place lies in the caller's "
                               "divisions; false only for a public place (road, facility, "
                               "building) elsewhere, ranked after the caller's own")
    note: str | None = Field(description="why the place is flagged (outside the caller's "
                             "divisions), in the caller's language; null when it is not")


class PlacesPublic(BaseModel):
    query: str
    warning: Literal["weak", "outside_scope", "apart"] | None = Field(
        description="weak: the best hit is a guess; outside_scope: the best hit lies outside "
        "the caller's divisions; apart: the best hits are about as good and lie far apart — "
        "check the alternatives before acting on the first")
    hits: list[PlacePublic]


@router.get("/places", response_model=PlacesPublic)
def places(
    request: Request,
    caller: ReadsBoundaries,
    q: Annotated[str, Query(min_length=2, max_length=200, description="a road, community, "
                            "grid, facility or building name or a building's address, "
                            "typos allowed; or its pinyin (cuihualu) or initials (chl)")],
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> Any:
    """Named places: roads (the named streets of the walking network, and the streets of
    household addresses) and buildings (by address or name; both for those who may read
    households or counts), townships, communities, grids and facilities (for those who may
    read facilities), best first, each with its similarity score; ``warning`` when the best
    hit is weak, lies outside the caller's divisions, or the best hits lie far apart.

    The caller's divisions come first. Townships, communities and grids outside them are
    not found (as everywhere, a division outside them is not there for the caller).
    Roads, facilities and buildings — public places, no one's personal data — are found
    outside them too, but ranked as if their score were 0.1 lower: one of the caller's own
    comes before an equally good (or slightly better) one elsewhere, while an exact name
    elsewhere still comes before a weak guess at home. Such a hit keeps its true ``score``
    and carries ``inside_scope: false`` and a ``note`` saying so; households are never
    found here (``GET /api/search`` keeps them to the caller's divisions)."""
    if "\x00" in q:
        raise HTTPException(422, "q must not contain a NUL character (\\x00): remove it")
    kinds = {"township", "community", "grid"}
    if caller.may(Resource.households) or caller.may(Resource.counts):
        kinds |= {"road", "building"}
    if caller.may(Resource.facilities):
        kinds.add("facility")
    return request.app.state.places.search(q.strip(), scope=caller.scope,
                                           kinds=frozenset(kinds), limit=limit,
                                           language=language_of(request))
