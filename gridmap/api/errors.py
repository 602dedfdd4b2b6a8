"""Typed errors mapped to HTTP answers in one place."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from gridmap import incidents, plans
from gridmap.access import AccessError, AccountError
from gridmap.domain.photos import PhotoError


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


def photo_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PhotoError)
    return JSONResponse({"detail": str(exc)}, status_code=exc.status)


def plan_error(request: Request, exc: Exception) -> JSONResponse:
    status = 412 if isinstance(exc, plans.StaleVersion) else 422
    return JSONResponse({"detail": str(exc)}, status_code=status)


def install(app: FastAPI) -> None:
    app.add_exception_handler(AccessError, access_error)
    app.add_exception_handler(AccountError, account_error)
    for error in (incidents.IncidentError, incidents.IllegalStep, incidents.StaleVersion,
                  incidents.VersionRequired):
        app.add_exception_handler(error, incident_error)
    app.add_exception_handler(PhotoError, photo_error)
    app.add_exception_handler(plans.StaleVersion, plan_error)
    app.add_exception_handler(plans.PlanError, plan_error)
