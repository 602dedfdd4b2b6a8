"""Typed errors mapped to HTTP answers in one place.

Every error body has the same shape: ``code``, a stable machine-readable name of what went
wrong (``not_visible``, ``stale_version``, ``invalid_request``…), and ``detail``, the
sentence saying what to fix in the caller's language (:mod:`gridmap.i18n`: the page's
choice, ``Accept-Language``, else the deployment's ``language``), with ``Content-Language``
saying which. Validation errors keep FastAPI's list of fields in ``detail``.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gridmap import drafts, i18n, incidents, plans, reports
from gridmap.access import AccessError, AccountError
from gridmap.domain.photos import PhotoError
from gridmap.store.ogc import FilterError
from gridmap.tiles.mvt import TileError, UnknownLayer

# the code of an HTTPException a route raises, by its status
STATUS_CODES = {400: "bad_request", 401: "not_signed_in", 403: "forbidden", 404: "not_found",
                405: "method_not_allowed", 406: "not_acceptable", 409: "conflict",
                412: "stale_version", 413: "too_large", 415: "unsupported_media_type",
                422: "invalid_request", 428: "version_required", 429: "too_many_requests",
                503: "unavailable"}


def language_of(request: Request) -> i18n.Language:
    settings = getattr(request.app.state, "settings", None)
    return i18n.choose(cookie=request.cookies.get(i18n.COOKIE),
                       accept_language=request.headers.get("accept-language"),
                       default=settings.language if settings is not None else i18n.DEFAULT)


def error_code(exc: Exception) -> str:
    """A typed error's stable name: its ``code`` attribute, else its class's name in
    snake case (``NotVisible`` → ``not_visible``)."""
    code = getattr(exc, "code", None)
    if isinstance(code, str):
        return code
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()


def error_response(request: Request, status: int, *, code: str, detail: Any,
                   headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    """The one shape of an error answer: the code, the detail in the caller's language."""
    language = language_of(request)
    if isinstance(detail, str):
        detail = i18n.translate(detail, language)
    return JSONResponse({"code": code, "detail": detail, **extra}, status_code=status,
                        headers={**(headers or {}), "Content-Language": language})


# typed errors → status, the most specific type first (a subclass before its base)
STATUS: tuple[tuple[type[Exception], int], ...] = (
    (reports.UnknownDivision, 404),
    (reports.NothingToReport, 404),
    (reports.InvalidReport, 422),
    (reports.ReportTooLarge, 413),
    (reports.ReportsBusy, 503),
    (incidents.IntakeBusy, 503),
    (reports.ReportDatabaseUnavailable, 503),
    (reports.ReportTimeout, 504),
    (FilterError, 400),
    (UnknownLayer, 404),
    (TileError, 404),  # a tile outside its zoom's range does not exist
)
RETRY_AFTER_S = 5  # what a 503 asks the client to wait


def status_of(exc: Exception) -> int:
    """The HTTP status of a typed error (by its type, never by its message)."""
    for kind, status in STATUS:
        if isinstance(exc, kind):
            return status
    raise TypeError(f"no status for {type(exc).__name__}")  # install() registers only these


def typed_error(request: Request, exc: Exception) -> JSONResponse:
    status = status_of(exc)
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
    return error_response(request, status, code=error_code(exc), detail=str(exc),
                          headers=headers)


def access_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AccessError)
    headers = {}
    if exc.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    return error_response(request, exc.status, code=error_code(exc), detail=str(exc),
                          headers=headers)


def account_error(request: Request, exc: Exception) -> JSONResponse:
    return error_response(request, 422, code=error_code(exc), detail=str(exc))


def incident_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, incidents.IllegalStep):
        return error_response(request, 409, code=error_code(exc), detail=str(exc),
                              allowed=exc.allowed)
    status = {incidents.StaleVersion: 412, incidents.VersionRequired: 428}.get(type(exc), 422)
    return error_response(request, status, code=error_code(exc), detail=str(exc))


def photo_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PhotoError)
    return error_response(request, exc.status, code=error_code(exc), detail=str(exc))


def plan_error(request: Request, exc: Exception) -> JSONResponse:
    status = 412 if isinstance(exc, plans.StaleVersion) else 422
    return error_response(request, status, code=error_code(exc), detail=str(exc))


def http_error(request: Request, exc: Exception) -> JSONResponse:
    """An HTTPException a route raised (or the router's 404 / 405)."""
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail
    if detail == "Not Found":
        detail = "not found"
    elif detail == "Method Not Allowed":
        detail = "method not allowed"
    return error_response(request, exc.status_code,
                          code=STATUS_CODES.get(exc.status_code, f"http_{exc.status_code}"),
                          detail=detail, headers=dict(exc.headers or {}))


def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """A request whose parameters or body do not validate: FastAPI's list of fields."""
    assert isinstance(exc, RequestValidationError)
    return error_response(request, 422, code="invalid_request",
                          detail=jsonable_encoder(exc.errors()))


def draft_error(request: Request, exc: Exception) -> JSONResponse:
    status = {drafts.StaleRevision: 412, drafts.RevisionRequired: 428,
              drafts.IllegalState: 409, drafts.StaleBase: 409}.get(type(exc), 422)
    headers = {}
    if isinstance(exc, drafts.StaleRevision) and exc.etag is not None:
        headers["ETag"] = exc.etag
    elif isinstance(exc, drafts.StaleRevision) and exc.revision > 0:
        headers["ETag"] = f'"d{request.path_params.get("draft")}-r{exc.revision}"'
    return error_response(request, status, code=error_code(exc), detail=str(exc),
                          headers=headers)


def install(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    for kind, _ in STATUS:
        app.add_exception_handler(kind, typed_error)
    app.add_exception_handler(AccessError, access_error)
    app.add_exception_handler(AccountError, account_error)
    for error in (incidents.IncidentError, incidents.IllegalStep, incidents.StaleVersion,
                  incidents.VersionRequired):
        app.add_exception_handler(error, incident_error)
    app.add_exception_handler(PhotoError, photo_error)
    app.add_exception_handler(plans.StaleVersion, plan_error)
    app.add_exception_handler(plans.PlanError, plan_error)
    for draft_exc in (drafts.DraftError, drafts.StaleRevision, drafts.RevisionRequired,
                      drafts.IllegalState, drafts.StaleBase):
        app.add_exception_handler(draft_exc, draft_error)
