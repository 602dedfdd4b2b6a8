"""Typed errors mapped to HTTP answers in one place.

Every error body has the same shape: ``code``, a stable machine-readable name of what went
wrong (``not_visible``, ``stale_version``, ``invalid_request``…), and ``detail``, the
sentence saying what to fix in the caller's language (:mod:`gridmap.i18n`: the page's
choice, ``Accept-Language``, else the deployment's ``language``), with ``Content-Language``
saying which. Validation errors keep FastAPI's list of fields in ``detail``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from gridmap import drafts, i18n, incidents, plans, reports
from gridmap.access import AccessError, AccountError, AccountExists
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
    (reports.ReportWorkerLost, 503),
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
    status = 409 if isinstance(exc, AccountExists) else 422
    return error_response(request, status, code=error_code(exc), detail=str(exc))


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
    """A request whose parameters or body do not validate: FastAPI's list of fields, each
    one's message in the caller's language. A body that is not UTF-8 is quoted back with its
    bad bytes replaced (FastAPI's encoder would decode it strictly and fail: a 500)."""
    assert isinstance(exc, RequestValidationError)
    language = language_of(request)
    problems = jsonable_encoder(exc.errors(), custom_encoder={
        bytes: lambda raw: raw.decode("utf-8", "replace")})
    for problem in problems:
        if isinstance(problem.get("msg"), str):
            problem["msg"] = i18n.translate(problem["msg"], language)
    return error_response(request, 422, code="invalid_request", detail=problems)


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


class ErrorPublic(BaseModel):
    """The body of every error answer."""

    model_config = ConfigDict(extra="allow")

    code: str = Field(description="what went wrong, as a stable name (not_found, "
                      "stale_version, invalid_request…)")
    detail: str | list[Any] = Field(description="what is wrong and what to do about it "
                                    "(a list of fields for a request that does not fit the "
                                    "schema)")


def error(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    """An error answer for a route's ``responses=``."""
    out: dict[str, Any] = {"model": ErrorPublic, "description": description}
    if retry_after:
        out["headers"] = {"Retry-After": {"description": "seconds to wait before retrying",
                                          "schema": {"type": "integer"}}}
    return out


# The answers any route of a kind may give, whatever it does: documented here once, added to
# every operation of the OpenAPI by document(); a route documents its own others.
UNAVAILABLE = error("the database is unavailable: retry after Retry-After seconds",
                    retry_after=True)
SIGNED_IN_ERRORS: dict[int, dict[str, Any]] = {
    401: error("the bearer token is not valid (expired, revoked or unknown): sign in again"),
    403: error("the caller's role or divisions do not allow this"),
}
PATH_ERRORS: dict[int, dict[str, Any]] = {
    404: error("nothing with that identifier, or none among the caller's"),
}
BODY_ERRORS: dict[int, dict[str, Any]] = {
    400: error("the body could not be parsed (not JSON, not a form)"),
}


def _calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def _common_errors(route: APIRoute) -> dict[int, dict[str, Any]]:
    from gridmap.api.deps import get_caller  # deps imports this module's neighbours

    out: dict[int, dict[str, Any]] = {503: UNAVAILABLE}
    if get_caller in set(_calls(route.dependant)):
        out.update(SIGNED_IN_ERRORS)
    if route.body_field is not None:
        out.update(BODY_ERRORS)
    if route.dependant.path_params:
        out.update(PATH_ERRORS)
    return out


def document(app: FastAPI) -> None:
    """Make the OpenAPI list, on every operation, the errors common to its kind of route:
    503 on all (the database away), 401/403 where the caller is asked for, 400 where a body
    is parsed, 404 where the path names something. Call after every router is included."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()  # FastAPI's, made again when a route is added
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault("ErrorPublic", ErrorPublic.model_json_schema(
            ref_template="#/components/schemas/{model}"))
        for context in iter_route_contexts(app.routes):
            route = context.original_route
            if not isinstance(route, APIRoute) or not route.include_in_schema:
                continue
            for method in context.methods or ():
                operation = schema["paths"].get(context.path_format, {}).get(method.lower())
                if operation is None:
                    continue
                answers = operation.setdefault("responses", {})
                for status, spec in _common_errors(route).items():
                    answers.setdefault(str(status), _documented(spec))
                for status, answer in answers.items():
                    _error_shape(status, answer)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _error_shape(status: str, answer: dict[str, Any]) -> None:
    """An error answer documented without a body, or with FastAPI's list-only validation
    body, gets the shape every error answer has (a domain rule broken is a 422 whose detail
    is a sentence)."""
    if not status.startswith(("4", "5")):
        return
    content = answer.get("content")
    if content is None or content.get("application/json", {}).get("schema") == {
            "$ref": "#/components/schemas/HTTPValidationError"}:
        answer["content"] = {"application/json": {"schema": {
            "$ref": "#/components/schemas/ErrorPublic"}}}


def _documented(spec: dict[str, Any]) -> dict[str, Any]:
    out = {"description": spec["description"],
           "content": {"application/json": {"schema": {
               "$ref": "#/components/schemas/ErrorPublic"}}}}
    if "headers" in spec:
        out["headers"] = spec["headers"]
    return out


def install(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    for kind, _ in STATUS:
        app.add_exception_handler(kind, typed_error)
    app.add_exception_handler(AccessError, access_error)
    app.add_exception_handler(AccountError, account_error)
    app.add_exception_handler(AccountExists, account_error)
    for error in (incidents.IncidentError, incidents.IllegalStep, incidents.StaleVersion,
                  incidents.VersionRequired):
        app.add_exception_handler(error, incident_error)
    app.add_exception_handler(PhotoError, photo_error)
    app.add_exception_handler(plans.StaleVersion, plan_error)
    app.add_exception_handler(plans.PlanError, plan_error)
    for draft_exc in (drafts.DraftError, drafts.StaleRevision, drafts.RevisionRequired,
                      drafts.IllegalState, drafts.StaleBase):
        app.add_exception_handler(draft_exc, draft_error)
