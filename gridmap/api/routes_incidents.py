"""The dispatcher's incidents: intake, the workflow's steps with optimistic locking (``ETag``
/ ``If-Match``), re-routing, a case with its timeline, the queue, the categories."""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from gridmap import i18n, incidents
from gridmap.access import NotVisible
from gridmap.api.deps import CallerDep, ConnDep, ReadsIncidents, client_of
from gridmap.api.errors import language_of
from gridmap.api.schemas import link
from gridmap.api.uploads import body_and_photos, openapi_body
from gridmap.domain.access import Show
from gridmap.domain.incidents import Action, Stage
from gridmap.domain.notes import note as system_note

log = logging.getLogger("gridmap")
router = APIRouter(prefix="/api", tags=["incidents"])
# reports handled at once per process: connections of the intake pool, and (reports with
# photos) worker threads; the rest wait on the event loop, where waiting costs nothing
INTAKE_SLOTS = 4
ETAG = re.compile(r'^\s*(?:W/)?"?v?(\d{1,9})"?\s*$')


class IncidentCreate(BaseModel):
    lon: float = Field(ge=-180, le=180, description="longitude (x)")
    lat: float = Field(ge=-90, le=90, description="latitude (y)")
    crs: Literal["wgs84", "cgcs2000", "gcj02", "bd09"] = "wgs84"
    category: str = Field(min_length=1, max_length=200,
                          description="a code of GET /api/incident-categories")
    description: str = Field("", max_length=2000)
    reporter: str | None = Field(None, max_length=200,
                                 description="who reported it and how to call them back")
    urgent: bool | None = Field(None, description="null: as the category says")


class IncidentAction(BaseModel):
    action: Action
    note: str | None = Field(None, max_length=2000,
                             description="why (required to cancel, return or reject)")
    assignee: str | None = Field(None, max_length=100,
                                 description="dispatch: a worker of the case's grid")


class IncidentRoute(BaseModel):
    grid_code: str = Field(pattern=r"^[0-9]{15}$")
    reason: str = Field(min_length=1, max_length=2000)


class PhotoPublic(BaseModel):
    id: str
    url: str = Field(description="GET it (as anyone who may see the case and its photos)")
    media_type: Literal["image/jpeg", "image/png", "image/webp"]
    bytes: int
    width: int
    height: int
    taken_by: str | None
    at: datetime


class Event(BaseModel):
    at: datetime
    actor: str | None
    role: str | None
    action: str
    from_stage: str | None
    to_stage: str
    grid_code: str | None
    assignee: str | None
    note: str | None = Field(description="what gridmap noted, in the caller's language; a "
                             "person's note as written")
    photos: list[str] = Field([], description="ids of the photos taken with this step")


class IncidentPublic(BaseModel):
    """A case; fields the caller's role may not see (description, reporter) are left out."""

    id: str
    category: str
    description: str | None = None
    reported_at: datetime
    status: Stage
    grid_code: str | None
    community_code: str | None
    township_code: str | None
    assignee: str | None
    reporter: str | None = None
    urgent: bool
    version: int
    updated_at: datetime
    dispatch_due: datetime | None
    handle_due: datetime | None
    verify_due: datetime | None
    closed_at: datetime | None
    lon: float
    lat: float
    overdue: list[str] = Field(description="deadlines of the current stage that have passed")
    next_actions: list[Action] = Field(description="the steps this caller may take next")
    warnings: list[str] = []
    timeline: list[Event] | None = None
    photos: list[PhotoPublic] | None = Field(None, description="with one case, for the roles "
                                             "that read descriptions")


class Category(BaseModel):
    code: str
    kind: str
    major: str
    minor: str
    unit_type: str
    limit: float
    limit_unit: str
    urgent: bool
    closing_condition: str


CASE = "/api/incidents/{incident_id}"
# what a client does next with a case it was answered (the body's id, the ETag header)
CASE_LINKS = {
    "GetIncident": link(CASE, "get", "the case with its timeline",
                        {"path.incident_id": "$response.body#/id"}),
    "ActOnIncident": link(f"{CASE}/actions", "post", "its next step, over this version",
                          {"path.incident_id": "$response.body#/id",
                           "header.if-match": "$response.header.ETag"}),
    "RouteIncident": link(f"{CASE}/route", "post", "route it to another grid, over this "
                          "version", {"path.incident_id": "$response.body#/id",
                                      "header.if-match": "$response.header.ETag"}),
}


def _etag(case: dict[str, Any]) -> str:
    return f'"v{case["version"]}"'


def _version(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    hit = ETAG.match(if_match)
    if hit is None:
        # matches no version of the case: the precondition failed (RFC 9110 §13.1.1)
        raise incidents.StaleVersion(f"If-Match {if_match!r} is not an ETag of this API "
                                      '(e.g. "v3")')
    return int(hit.group(1))


def _photos(photos: list[dict[str, Any]], incident_id: str) -> list[PhotoPublic]:
    return [PhotoPublic(**p, url=f"/api/incidents/{incident_id}/photos/{p['id']}")
            for p in photos]


def _answer(request: Request, response: Response, caller: Any, case: dict[str, Any], *,
            sent_by_caller: bool = False, **extra: Any) -> IncidentPublic:
    """The case as the caller may see it; a reporter read whole is audited, unless the
    caller sent it (the answer to their own report)."""
    response.headers["ETag"] = _etag(case)
    shown = incidents.present(case, caller)
    if "photos" in shown:
        extra["photos"] = _photos(shown.pop("photos"), case["id"])
    if case.get("reporter") and caller.fields.reporter == Show.full and not sent_by_caller:
        request.app.state.audit.read(caller, f"{request.method} {request.url.path}",
                                     client_of(request), divisions=caller.divisions,
                                     row_ids=[case["id"]],
                                     detail=system_note("read_reporter"))
    return IncidentPublic(**shown, **extra)


@router.post("/incidents", status_code=201, response_model_exclude_unset=True, responses={
    201: {"description": "the case as stored (Location, ETag)", "links": CASE_LINKS},
    400: {"description": "a form that cannot be parsed (too many files or fields, not "
                         "UTF-8)"},
    404: {"description": "the point is in none of the caller's divisions"},
    413: {"description": "a photo larger than the deployment allows"},
    415: {"description": "a photo that is not a JPEG, PNG or WebP image"},
    422: {"description": "unknown category, point outside the district, bad fields"}},
    openapi_extra=openapi_body(IncidentCreate, what="of the scene"))
async def create_incident(request: Request, response: Response, caller: CallerDep
                          ) -> IncidentPublic:
    """Report an incident: located (exclusive grid first) and routed to its grid, community,
    township and the grid's worker in the same statement, as stage ``collected``. Outside
    every grid it is registered to the township, with a warning. JSON, or a form with the
    same fields and photos (``photo``, repeated). The answer carries the case's ``ETag``
    for the next step. A refused report stores nothing, photos included."""
    state = request.app.state
    phases = incidents.Phases(getattr(request.state, "arrived", None) or time.perf_counter())
    phases.mark("caller")  # signed in, the change notices applied (get_caller)
    body, photos = await body_and_photos(request, IncidentCreate,
                                         max_bytes=state.settings.photo_max_bytes)
    phases.mark("body")
    sent = incidents.Report(lon=body.lon, lat=body.lat, crs=body.crs, category=body.category,
                            description=body.description, reporter=body.reporter,
                            urgent=body.urgent)
    if photos:  # files to write: in a worker thread, a few at once
        async with state.intake:
            case, warnings = await run_in_threadpool(
                incidents.report, state.engine, caller, sent, state.workflow,
                client=client_of(request), photos=photos)
        phases.mark("report with photos")
    else:  # on the event loop, waiting for one of the pool's connections
        case, warnings = await incidents.report_async(
            state.intake_pool, caller, sent, state.workflow, client=client_of(request),
            phases=phases)
    response.headers["Location"] = f"/api/incidents/{case['id']}"
    if warnings:  # the routing's, in the caller's language (rare: near an edge, off-grid)
        warnings = [i18n.translate(w, language_of(request)) for w in warnings]
    answer = _answer(request, response, caller, case, sent_by_caller=True, warnings=warnings)
    phases.mark("answer")
    if state.settings.slow_report_ms and phases.total_ms > state.settings.slow_report_ms:
        # for operators: where a slow report's time went (ms); the event loop's own pauses
        # and the queue before the request show as the gap to the client's figure
        log.warning("slow report %s: %.0f ms in the app (%s)", case["id"], phases.total_ms,
                    phases)
    return answer


@router.get("/incidents", response_model_exclude_unset=True)
def list_incidents(request: Request, conn: ConnDep, caller: ReadsIncidents,
                   stage: Annotated[list[Stage] | None, Query()] = None,
                   overdue: bool = False,
                   limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                   offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0
                   ) -> list[IncidentPublic]:
    """The caller's cases, newest first: of some stages (repeatable), or only those past a
    deadline of their stage (the dispatcher's queue)."""
    from gridmap.store.incidents import list_incidents as read_many

    rows = read_many(conn, caller.scope, stages=[s.value for s in stage] if stage else None,
                     overdue_at=datetime.now(UTC) if overdue else None, limit=limit,
                     offset=offset)
    return [IncidentPublic(**incidents.present(r, caller)) for r in rows]


@router.get("/incidents/{incident_id}", response_model_exclude_unset=True,
            responses={200: {"links": CASE_LINKS}})
def get_incident(request: Request, response: Response, conn: ConnDep,
                 caller: ReadsIncidents, incident_id: str) -> IncidentPublic:
    """One case with its timeline (what gridmap noted in the caller's language, a person's
    note as written); the ``ETag`` to send as ``If-Match`` with its next step."""
    case, timeline = incidents.read(conn, caller, incident_id, language=language_of(request))
    return _answer(request, response, caller, case,
                   timeline=[Event(**e) for e in timeline])


@router.post("/incidents/{incident_id}/actions", response_model_exclude_unset=True, responses={
    200: {"description": "the case after the step (ETag)", "links": CASE_LINKS},
    400: {"description": "a form that cannot be parsed (too many files or fields, not "
                         "UTF-8)"},
    409: {"description": "the step is not allowed from the case's stage"},
    412: {"description": "the case changed since it was read"},
    413: {"description": "a photo larger than the deployment allows"},
    415: {"description": "a photo that is not a JPEG, PNG or WebP image"},
    428: {"description": "If-Match is missing"}},
    openapi_extra=openapi_body(IncidentAction, what="e.g. of the work done, with feed_back"))
async def act(request: Request, response: Response, caller: CallerDep, incident_id: str,
              if_match: Annotated[str | None, Header(description="the ETag as read")] = None
              ) -> IncidentPublic:
    """Take the next step: register, cancel, dispatch, accept, return, feed_back, reject,
    verify, close, evaluate — JSON, or a form with the same fields and photos (``photo``,
    repeated) kept with the step in the timeline. An illegal step is a 409 naming the
    allowed ones; a stale ``If-Match`` a 412; either way nothing is stored."""
    state = request.app.state
    body, photos = await body_and_photos(request, IncidentAction,
                                         max_bytes=state.settings.photo_max_bytes)
    case = await run_in_threadpool(
        incidents.act, state.engine, caller, incident_id, body.action, state.workflow,
        version=_version(if_match), note=body.note, assignee=body.assignee,
        client=client_of(request), photos=photos)
    return _answer(request, response, caller, case)


@router.post("/incidents/{incident_id}/route", response_model_exclude_unset=True,
             responses={
    200: {"description": "the case, routed (ETag)", "links": CASE_LINKS},
    404: {"description": "no such case or grid among the caller's"},
    412: {"description": "the case changed since it was read"},
    428: {"description": "If-Match is missing"}})
async def route(request: Request, response: Response, caller: CallerDep, incident_id: str,
                body: IncidentRoute,
                if_match: Annotated[str | None, Header(description="the ETag as read")] = None
                ) -> IncidentPublic:
    """Route a case to another grid (near an edge, or outside every grid), with a reason."""
    case = await run_in_threadpool(
        incidents.reroute, request.app.state.engine, caller, incident_id, body.grid_code,
        version=_version(if_match), reason=body.reason, client=client_of(request))
    return _answer(request, response, caller, case)


@router.get("/incident-categories")
def categories(request: Request, caller: ReadsIncidents) -> list[Category]:
    """The categories a report may name, with their handling limits."""
    return [Category(**vars(c)) for c in request.app.state.workflow.categories.values()]


@router.get("/incidents/{incident_id}/photos/{photo_id}", response_class=FileResponse,
            responses={
    200: {"content": {t: {"schema": {"type": "string", "format": "binary"}}
                      for t in ("image/jpeg", "image/png", "image/webp")},
          "description": "the photo, as its content was checked to be"},
    403: {"description": "the caller's role does not see incident photos"},
    404: {"description": "no such case among the caller's, or no such photo of it"}})
def get_photo(request: Request, conn: ConnDep, caller: ReadsIncidents, incident_id: str,
              photo_id: str) -> FileResponse:
    """A photo of a case, for those who may see the case and read its description."""
    path, media_type = incidents.photo(conn, caller, request.app.state.workflow, incident_id,
                                       photo_id)
    if not path.is_file():
        raise NotVisible(f"the file of photo {photo_id} is missing from the "
                                     "photo folder: ask the administrator to restore it")
    return FileResponse(path, media_type=media_type, headers={
        "Cache-Control": "private, max-age=86400, immutable",
        "Content-Disposition": f'inline; filename="{path.name}"'})


# where a request names a category by its code: (path, method, field of the body)
CATEGORY_FIELDS = (("/api/incidents", "post", "category"),
                   ("/open311/v2/requests.json", "post", "service_code"))


def document_categories(app: FastAPI) -> None:
    """Make the OpenAPI list the category codes of the table this server loaded (the
    deployment's own file, or the packaged one) as the ``enum`` of each field naming a
    category, in JSON and form bodies alike."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        spec = generate()
        codes = sorted(app.state.workflow.categories)
        components = spec.get("components", {}).get("schemas", {})
        for path, method, field in CATEGORY_FIELDS:
            operation = spec["paths"].get(path, {}).get(method, {})
            for content in operation.get("requestBody", {}).get("content", {}).values():
                schema = content.get("schema", {})
                if "$ref" in schema:
                    schema = components[schema["$ref"].rsplit("/", 1)[-1]]
                found = schema.get("properties", {}).get(field)
                for branch in found.get("anyOf", [found]) if found else []:
                    if branch.get("type") == "string":
                        branch["enum"] = codes
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
