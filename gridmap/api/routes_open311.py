"""Open311 GeoReport v2 (https://wiki.open311.org/GeoReport_v2): the incident categories as
services, and service requests reported and followed by other apps with an API key.

An API key (``gridmap key add ACCOUNT --label APP``) acts as its account: a key of a
dispatcher of a township reports and reads that township's cases, masked as a dispatcher
sees them. Services are public. The format is JSON only (``….json``; ``….xml`` is a 400).
Every answer of this router that is not a success is the spec's error list,
``[{"code": <HTTP status>, "description": "…"}]`` with that status: :class:`Open311Route`
turns gridmap's own errors into it here, leaving the app's handlers as they are.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection
from starlette.exceptions import HTTPException as StarletteHTTPException

from gridmap import i18n, incidents
from gridmap.access import AccessError, AccountError, NotVisible, Principal
from gridmap.api.deps import ConnDep, client_of
from gridmap.api.errors import language_of
from gridmap.api.uploads import read_photos
from gridmap.domain.access import Resource
from gridmap.domain.incidents import Category, Stage
from gridmap.domain.photos import PhotoError
from gridmap.store.photos import read_photos as read_photo_rows

SPEC = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = datetime(2026, 11, 21, tzinfo=UTC)  # when the routes below last changed
CLOSED = frozenset({Stage.closed, Stage.evaluated, Stage.cancelled})
MAX_RESULTS = 1000
PAGE = 1000  # cases read at a time while searching
MAX_SPAN = timedelta(days=90)
REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class Open311Error(Exception):
    """An answer in the spec's error form, with *status* as the HTTP status."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status


class ErrorPublic(BaseModel):
    code: int = Field(description="the HTTP status")
    description: str


def error_response(status: int, description: str,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = 'APIKey realm="open311"'
    return JSONResponse([{"code": status, "description": description}], status_code=status,
                        headers=headers)


def _invalid(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("query", "body"))
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else
                     str(error.get("msg", "invalid")))
    return "; ".join(parts) or "invalid request"


class Open311Route(APIRoute):
    """A route whose errors — gridmap's, the request's validation, an HTTP error — are
    answered in the Open311 form."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handle(request)
            except Open311Error as exc:
                return error_response(exc.status, str(exc))
            except AccessError as exc:
                retry = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
                return error_response(exc.status, str(exc), retry)
            except (incidents.IncidentError, AccountError) as exc:
                return error_response(400, str(exc))
            except PhotoError as exc:
                return error_response(exc.status, str(exc))
            except RequestValidationError as exc:
                return error_response(400, _invalid(exc))
            except StarletteHTTPException as exc:  # FastAPI's own, and the form parser's
                return error_response(exc.status_code, str(exc.detail), exc.headers)

        return route


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": list[ErrorPublic], "description": text} for status, text in (
        (400, "a field missing or invalid (the description names it), or a format other "
              "than json"),
        (401, "no api_key, or one that is unknown, revoked or of a disabled account"),
        (403, "the key's role may not do this"),
        (404, "no such request among the key's divisions"),
        (413, "media larger than the deployment allows"),
        (415, "media that is not a JPEG, PNG or WebP image"))}

router = APIRouter(prefix="/open311", tags=["Open311"], route_class=Open311Route)


# --- schemas ------------------------------------------------------------------------------

class Endpoint(BaseModel):
    specification: str = SPEC
    url: str
    changeset: datetime
    type: Literal["production", "test"] = "production"
    formats: list[str] = ["application/json"]


class Discovery(BaseModel):
    changeset: datetime
    contact: str
    key_service: str
    endpoints: list[Endpoint]


class Service(BaseModel):
    service_code: str = Field(description="the incident category's code")
    service_name: str = Field(description="the category's minor class")
    description: str
    metadata: bool = Field(default=False, description="no further attributes are asked for")
    type: Literal["realtime", "batch", "blackbox"] = "realtime"
    keywords: str = Field(description="comma-separated")
    group: str = Field(description="the category's major class")


class RequestCreated(BaseModel):
    service_request_id: str
    service_notice: str = Field(description="warnings about the routing, or empty")
    account_id: str | None = None


class ServiceRequest(BaseModel):
    """A case as an Open311 service request; ``description`` is left out for a role that may
    not read it."""

    service_request_id: str
    status: Literal["open", "closed"] = Field(
        description="closed: closed, evaluated or cancelled")
    status_notes: str | None = Field(description="the last note of the case's timeline")
    service_name: str | None
    service_code: str
    description: str | None = None
    agency_responsible: str | None = Field(
        description="the grid's code, or the township's for a case outside every grid")
    service_notice: str | None
    requested_datetime: datetime
    updated_datetime: datetime
    expected_datetime: datetime | None = Field(description="when handling is due")
    address: str | None
    address_id: str | None
    zipcode: str | None
    lat: float
    long: float
    media_url: str | None


# --- the caller and the fields -------------------------------------------------------------

def _caller(request: Request, api_key: str | None) -> Principal:
    """The account an API key acts as (may query the database: call off the event loop)."""
    if api_key is None or not api_key.strip():
        raise Open311Error(401, "api_key was not provided: an administrator issues keys "
                           "(gridmap key add ACCOUNT --label APP)")
    state = request.app.state
    state.changes.poll()  # revocations and disabled accounts first
    principal: Principal = state.sessions.resolve_key(api_key.strip())
    return principal


def _no_nul(fields: dict[str, str | None]) -> None:
    for name, value in fields.items():
        if value is not None and "\x00" in value:
            raise Open311Error(400, f"{name} may not contain a NUL character")


def _given(value: str | None) -> str | None:
    return value.strip() if value is not None and value.strip() else None


def _coordinate(value: str, name: str, bound: float) -> float:
    try:
        number = float(value)
    except ValueError:
        raise Open311Error(400, f"{name} must be a number of decimal degrees (WGS 84), not "
                           f"{value[:50]!r}") from None
    if not (math.isfinite(number) and -bound <= number <= bound):
        raise Open311Error(400, f"{name} must lie between -{bound:g} and {bound:g}")
    return number


def _reporter(first_name: str | None, last_name: str | None, phone: str | None,
              email: str | None) -> str | None:
    name = " ".join(p for p in (first_name, last_name) if p)
    reporter = " ".join(p for p in (name, phone, email) if p) or None
    if reporter is not None and len(reporter) > 200:
        raise Open311Error(400, "first_name, last_name, phone and email may have 200 "
                           "characters at most together")
    return reporter


def _when(value: str | None, name: str) -> datetime | None:
    value = _given(value)
    if value is None:
        return None
    value = re.sub(r" (\d\d:?\d\d)$", r"+\1", value)  # a "+" of the zone sent unescaped
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise Open311Error(400, f"{name} must be a date and time with its zone, as "
                           f"2026-05-01T08:30:00+08:00 or 2026-05-01T00:30:00Z, not "
                           f"{value[:50]!r}")
    return at


def _window(start_date: str | None, end_date: str | None) -> tuple[datetime, datetime]:
    start, end = _when(start_date, "start_date"), _when(end_date, "end_date")
    try:
        if end is None:
            end = start + MAX_SPAN if start else datetime.now(UTC)
        if start is None:
            start = end - MAX_SPAN
    except OverflowError:
        raise Open311Error(400, "start_date or end_date is out of range") from None
    if start > end:
        raise Open311Error(400, "start_date is after end_date")
    if end - start > MAX_SPAN:
        raise Open311Error(400, "start_date and end_date may span 90 days at most")
    return start, end


def _list(value: str | None, name: str, most: int = MAX_RESULTS) -> list[str]:
    items = list(dict.fromkeys(p.strip() for p in (value or "").split(",") if p.strip()))
    if len(items) > most:
        raise Open311Error(400, f"{name} may list {most} values at most")
    return items


def _stages(status: str | None) -> list[str] | None:
    wanted = set(_list(status, "status"))
    if not wanted <= {"open", "closed"}:
        raise Open311Error(400, f"status may be open, closed or both (comma-separated), not "
                           f"{','.join(sorted(wanted - {'open', 'closed'}))[:50]!r}")
    if not wanted or wanted == {"open", "closed"}:
        return None
    closed = "closed" in wanted
    return [s.value for s in Stage if (s in CLOSED) == closed]


# --- cases as service requests --------------------------------------------------------------

def _media(request: Request, conn: Connection, caller: Principal,
           found: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> dict[str, str]:
    """The URL of each case's first photo (for the roles that see photos), by case id."""
    if not incidents.sees_photos(caller):
        return {}
    out: dict[str, str] = {}
    for photo in read_photo_rows(conn, [case["id"] for case, _ in found]):
        out.setdefault(photo["incident_id"], str(request.url_for(
            "get_media", service_request_id=photo["incident_id"], photo_id=photo["id"])))
    return out


def _as_request(case: dict[str, Any], timeline: list[dict[str, Any]], caller: Principal,
                categories: dict[str, Category], media: dict[str, str]) -> ServiceRequest:
    shown = incidents.present(case, caller)
    notes = [e["note"] for e in timeline if e.get("note")]
    category = categories.get(case["category"])
    extra = {"description": shown["description"]} if "description" in shown else {}
    return ServiceRequest(
        service_request_id=case["id"],
        status="closed" if case["status"] in CLOSED else "open",
        status_notes=notes[-1] if notes else None,
        service_name=category.minor if category else None,
        service_code=case["category"],
        agency_responsible=case["grid_code"] or case["township_code"],
        service_notice=None,
        requested_datetime=case["reported_at"],
        updated_datetime=case["updated_at"],
        expected_datetime=case["handle_due"],
        address=None, address_id=None, zipcode=None,
        lat=case["lat"], long=case["lon"], media_url=media.get(case["id"]), **extra)


def _read_visible(conn: Connection, caller: Principal, ids: Iterable[str],
                  language: i18n.Language) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    found = []
    for incident_id in ids:
        if not REQUEST_ID.match(incident_id):
            continue  # no case has such an id
        try:
            found.append(incidents.read(conn, caller, incident_id, language=language))
        except NotVisible:
            continue
    return found


def _newest_first(conn: Connection, caller: Principal, stages: list[str] | None
                  ) -> Iterator[dict[str, Any]]:
    """The caller's cases of some stages, newest first, a page at a time."""
    from gridmap.store.incidents import list_incidents

    offset = 0
    while True:
        page = list_incidents(conn, caller.scope, stages=stages, limit=PAGE, offset=offset)
        yield from page
        if len(page) < PAGE:
            return
        offset += PAGE


def _search(conn: Connection, caller: Principal, *, stages: list[str] | None,
            codes: set[str] | None, start: datetime, end: datetime, language: i18n.Language
            ) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """The caller's cases reported between *start* and *end*, of some categories (all:
    None), newest first, at most :data:`MAX_RESULTS`; their timelines' notes in
    *language*."""
    from gridmap.store.incidents import read_timeline

    found: dict[str, dict[str, Any]] = {}  # by id: a case a page shifted onto the next once
    for case in _newest_first(conn, caller, stages):
        if case["reported_at"] < start or len(found) == MAX_RESULTS:
            break
        if case["reported_at"] <= end and (codes is None or case["category"] in codes):
            found.setdefault(case["id"], case)
    return [(case, incidents.timeline_notes(read_timeline(conn, case["id"]), language))
            for case in found.values()]


# --- routes ------------------------------------------------------------------------------

ApiKeyQuery = Annotated[str | None, Query(description="an API key: gridmap key add")]
JurisdictionQuery = Annotated[str | None, Query(
    description="accepted and ignored: this server serves one jurisdiction")]


@router.get("/discovery.json")
def discovery(request: Request) -> Discovery:
    """Service discovery: where the GeoReport v2 endpoint is and how to get a key."""
    return Discovery(
        changeset=CHANGESET, contact="the administrator of this gridmap server",
        key_service="an administrator issues keys, each acting as an account with its role "
        "and divisions: gridmap key add ACCOUNT --label APP",
        endpoints=[Endpoint(url=str(request.url_for("services")).removesuffix(
            "/services.json"), changeset=CHANGESET)])


@router.get("/v2/services.json")
def services(request: Request, jurisdiction_id: JurisdictionQuery = None) -> list[Service]:
    """The incident categories as services (public: no key needed)."""
    out = []
    for c in request.app.state.workflow.categories.values():
        unit = c.limit_unit.replace("_", " ")
        out.append(Service(
            service_code=c.code, service_name=c.minor,
            description=f"{c.kind} {c.major}: {c.minor}. Handled by {c.unit_type} within "
            f"{c.limit:g} {unit}{' (urgent)' if c.urgent else ''}; closed when: "
            f"{c.closing_condition or '-'}",
            keywords=",".join([c.kind, c.major, c.minor, c.unit_type]
                              + (["urgent"] if c.urgent else [])),
            group=c.major))
    return out


@router.post("/v2/requests.json", status_code=201, responses=ERRORS)
async def create_request(
    request: Request, response: Response,
    api_key: Annotated[str | None, Form(description="an API key of an account that may "
                                        "report: admin, dispatcher, grid_worker")] = None,
    service_code: Annotated[str | None, Form(description="from services.json")] = None,
    lat: Annotated[str | None, Form(description="WGS 84 latitude (required here)")] = None,
    long: Annotated[str | None, Form(description="WGS 84 longitude (required here)")] = None,
    address_string: Annotated[str | None, Form(
        description="not enough alone: lat and long are required")] = None,
    address_id: Annotated[str | None, Form()] = None,
    description: Annotated[str | None, Form(description="2000 characters at most")] = None,
    first_name: Annotated[str | None, Form()] = None,
    last_name: Annotated[str | None, Form()] = None,
    phone: Annotated[str | None, Form()] = None,
    email: Annotated[str | None, Form()] = None,
    media_url: Annotated[str | None, Form(description="not kept by this server: send the "
                                          "image itself as media")] = None,
    # not ``UploadFile | None``: the OpenAPI would say "a string or null" instead of "a
    # file", and a client (schemathesis) would send it as a plain field
    media: Annotated[UploadFile, File(description="a photo (multipart/form-data): "
                                      "JPEG, PNG or WebP")] = None,  # type: ignore[assignment]
    device_id: Annotated[str | None, Form()] = None,
    account_id: Annotated[str | None, Form()] = None,
    jurisdiction_id: Annotated[str | None, Form(description="accepted and ignored")] = None,
) -> list[RequestCreated]:
    """Report a service request (form-encoded, as the spec says). It becomes a case,
    located and routed to its grid, community, township and worker as ``collected``; the
    reporter is the name with the phone and email sent. Routing warnings come back as
    ``service_notice``."""
    caller = await run_in_threadpool(_caller, request, api_key)
    _no_nul({"service_code": service_code, "lat": lat, "long": long,
             "address_string": address_string, "address_id": address_id,
             "description": description, "first_name": first_name, "last_name": last_name,
             "phone": phone, "email": email, "media_url": media_url})
    state = request.app.state
    code = _given(service_code)
    if code is None:
        raise Open311Error(400, "service_code was not provided: services.json lists them")
    if code not in state.workflow.categories:
        raise Open311Error(400, f"service_code {code[:200]!r} was not found: services.json "
                           "lists them")
    lat_, long_ = _given(lat), _given(long)
    if lat_ is None or long_ is None:
        missing = " and ".join(n for n, v in (("lat", lat_), ("long", long_)) if v is None)
        if _given(address_string) or _given(address_id):
            raise Open311Error(400, f"{missing} not provided: coordinates are required in "
                               "this deployment (an address_string or address_id alone is "
                               "not located)")
        raise Open311Error(400, f"{missing} not provided: coordinates are required in this "
                           "deployment")
    point = (_coordinate(long_, "long", 180), _coordinate(lat_, "lat", 90))
    reporter = _reporter(_given(first_name), _given(last_name), _given(phone), _given(email))
    photos = await read_photos([media] if media is not None and (media.size or media.filename)
                               else [], max_bytes=state.settings.photo_max_bytes)
    client = f"{client_of(request)} (api key {caller.api_key})"
    case, warnings = await run_in_threadpool(
        incidents.report, state.engine, caller, incidents.Report(
            lon=point[0], lat=point[1], category=code, description=description or "",
            reporter=reporter), state.workflow, client=client, photos=photos)
    if _given(media_url):
        warnings.append("media_url was not kept: send the image itself as media")
    response.headers["Location"] = f"{router.prefix}/v2/requests/{case['id']}.json"
    language = language_of(request)  # the routing's warnings, as the timeline says them
    return [RequestCreated(service_request_id=case["id"], service_notice="; ".join(
        i18n.translate(w, language) for w in warnings))]


@router.get("/v2/requests.json", response_model_exclude_unset=True, responses=ERRORS)
def list_requests(
    request: Request, conn: ConnDep, api_key: ApiKeyQuery = None,
    service_request_id: Annotated[str | None, Query(
        description="comma-separated ids; when given, the other filters are ignored")] = None,
    service_code: Annotated[str | None, Query(description="comma-separated")] = None,
    start_date: Annotated[str | None, Query(
        description="reported at or after; with end_date at most 90 days apart")] = None,
    end_date: Annotated[str | None, Query(description="reported at or before")] = None,
    status: Annotated[str | None, Query(description="open, closed or both")] = None,
    jurisdiction_id: JurisdictionQuery = None,
) -> list[ServiceRequest]:
    """The key's service requests, newest first: those named, or those reported in a
    window (the last 90 days by default) of some services and statuses; 1000 at most. A
    key is required: cases are not public."""
    caller = _caller(request, api_key).require(Resource.incidents)
    categories = request.app.state.workflow.categories
    if service_request_id is not None:
        found = _read_visible(conn, caller, _list(service_request_id, "service_request_id"),
                              language_of(request))
    else:
        codes = set(_list(service_code, "service_code")) or None
        start, end = _window(start_date, end_date)
        found = _search(conn, caller, stages=_stages(status), codes=codes, start=start,
                        end=end, language=language_of(request))
    media = _media(request, conn, caller, found)
    return [_as_request(case, timeline, caller, categories, media)
            for case, timeline in found]


@router.get("/v2/requests/{service_request_id}.json", response_model_exclude_unset=True,
            responses=ERRORS)
def get_request(request: Request, conn: ConnDep, service_request_id: str,
                api_key: ApiKeyQuery = None, jurisdiction_id: JurisdictionQuery = None
                ) -> list[ServiceRequest]:
    """One service request (a list of one, as the spec says)."""
    caller = _caller(request, api_key).require(Resource.incidents)
    found = _read_visible(conn, caller, [service_request_id], language_of(request))
    if not found:
        raise Open311Error(404, f"service_request_id {service_request_id[:64]!r} was not "
                           "found among the key's divisions")
    case, timeline = found[0]
    return [_as_request(case, timeline, caller, request.app.state.workflow.categories,
                        _media(request, conn, caller, found))]


@router.get("/v2/requests/{service_request_id}/media/{photo_id}", response_class=FileResponse,
            responses={**ERRORS, 200: {"content": {t: {"schema": {"type": "string",
                                                                   "format": "binary"}}
                                                   for t in ("image/jpeg", "image/png",
                                                             "image/webp")},
                                       "description": "the photo (its media_url)"}})
def get_media(request: Request, conn: ConnDep, service_request_id: str, photo_id: str,
              api_key: ApiKeyQuery = None) -> FileResponse:
    """A photo of a service request (its ``media_url``), for a key that may see the
    request and its photos."""
    caller = _caller(request, api_key).require(Resource.incidents)
    if not REQUEST_ID.match(service_request_id):
        raise Open311Error(404, "no such service_request_id among the key's divisions")
    try:
        path, media_type = incidents.photo(conn, caller, request.app.state.workflow,
                                           service_request_id, photo_id)
    except NotVisible as exc:
        raise Open311Error(404, str(exc)) from None
    if not path.is_file():
        raise Open311Error(404, f"the file of photo {photo_id} is missing")
    return FileResponse(path, media_type=media_type,
                        headers={"Cache-Control": "private, max-age=86400, immutable"})


@router.api_route("/v2/{resource:path}", methods=["GET", "POST"], include_in_schema=False)
def elsewhere(resource: str) -> None:
    """Another format, or a resource this server does not have."""
    if resource.endswith(".xml"):
        raise Open311Error(400, "this server serves JSON only: ask for "
                           f"{resource.removesuffix('.xml')[:100]}.json")
    raise Open311Error(404, "no such resource: services.json, requests.json and "
                       "requests/{service_request_id}.json are served")
