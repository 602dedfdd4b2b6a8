"""Typed errors mapped to HTTP answers in one place."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from gridmap import drafts, incidents, plans
from gridmap.access import AccessError, AccountError


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


def draft_error(request: Request, exc: Exception) -> JSONResponse:
    status = {drafts.StaleRevision: 412, drafts.RevisionRequired: 428,
              drafts.IllegalState: 409, drafts.StaleBase: 409}.get(type(exc), 422)
    headers = {}
    if isinstance(exc, drafts.StaleRevision) and exc.revision > 0:
        headers["ETag"] = f'"d{request.path_params.get("draft")}-r{exc.revision}"'
    return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    app.add_exception_handler(AccessError, access_error)
    app.add_exception_handler(AccountError, account_error)
    for error in (incidents.IncidentError, incidents.IllegalStep, incidents.StaleVersion,
                  incidents.VersionRequired):
        app.add_exception_handler(error, incident_error)
    app.add_exception_handler(plans.StaleVersion, plan_error)
    app.add_exception_handler(plans.PlanError, plan_error)
    for draft_exc in (drafts.DraftError, drafts.StaleRevision, drafts.RevisionRequired,
                      drafts.IllegalState, drafts.StaleBase):
        app.add_exception_handler(draft_exc, draft_error)
