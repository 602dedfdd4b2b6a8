"""Typed errors mapped to HTTP answers in one place."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from gridmap import incidents, plans, reports
from gridmap.access import AccessError, AccountError
from gridmap.store.ogc import FilterError
from gridmap.tiles.mvt import TileError, UnknownLayer

# typed errors → status, the most specific type first (a subclass before its base)
STATUS: tuple[tuple[type[Exception], int], ...] = (
    (reports.UnknownDivision, 404),
    (reports.NothingToReport, 404),
    (reports.InvalidReport, 422),
    (reports.ReportTooLarge, 413),
    (reports.ReportsBusy, 503),
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
    return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)


def access_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AccessError)
    headers = {}
    if exc.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    return JSONResponse({"detail": str(exc)}, status_code=exc.status, headers=headers)


def account_error(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=422)


def incident_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, incidents.IllegalStep):
        return JSONResponse({"detail": str(exc), "allowed": exc.allowed}, status_code=409)
    status = {incidents.StaleVersion: 412, incidents.VersionRequired: 428}.get(type(exc), 422)
    return JSONResponse({"detail": str(exc)}, status_code=status)


def plan_error(request: Request, exc: Exception) -> JSONResponse:
    status = 412 if isinstance(exc, plans.StaleVersion) else 422
    return JSONResponse({"detail": str(exc)}, status_code=status)


def install(app: FastAPI) -> None:
    for kind, _ in STATUS:
        app.add_exception_handler(kind, typed_error)
    app.add_exception_handler(AccessError, access_error)
    app.add_exception_handler(AccountError, account_error)
    for error in (incidents.IncidentError, incidents.IllegalStep, incidents.StaleVersion,
                  incidents.VersionRequired):
        app.add_exception_handler(error, incident_error)
    app.add_exception_handler(plans.StaleVersion, plan_error)
    app.add_exception_handler(plans.PlanError, plan_error)
