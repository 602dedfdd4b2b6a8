"""Typed errors mapped to HTTP answers in one place."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

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


def install(app: FastAPI) -> None:
    app.add_exception_handler(AccessError, access_error)
    app.add_exception_handler(AccountError, account_error)
