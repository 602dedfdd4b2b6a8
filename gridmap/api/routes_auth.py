"""Sign-in and accounts: OAuth2 password flow for API clients, a cookie session for the web
pages, who-am-I, and the admin's accounts and audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from gridmap import access, i18n
from gridmap.api.deps import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    CallerDep,
    ConnDep,
    ReadsUsers,
    client_of,
)
from gridmap.api.errors import error, language_of
from gridmap.api.schemas import link
from gridmap.domain.access import Resource, Role
from gridmap.store import accounts

router = APIRouter(tags=["access"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="seconds until the token expires")


class Me(BaseModel):
    name: str | None = Field(description="account name; null when not signed in")
    role: Role
    divisions: list[str]
    reads: list[Resource] = Field(description="what this caller may read")
    fields: dict[str, str] = Field(description="how personal fields are shown to this caller")
    csrf_token: str | None = Field(
        None, description="send as X-CSRF-Token with changes made through the page session")


class UserPublic(BaseModel):
    name: str
    role: Role
    divisions: list[str]
    created_at: datetime
    disabled: bool


DivisionCode = Annotated[str, Field(pattern=r"^([0-9]{12}|[0-9]{15})$",
                                    description="a 12-digit division or 15-digit grid code")]


class UserCreate(BaseModel):
    name: str = Field(pattern=access.NAME.pattern, description="2 to 64 characters, without "
                      "spaces or control characters")
    role: Role
    divisions: list[DivisionCode] = Field(default=[], max_length=1000)
    password: str = Field(min_length=8, max_length=256)


class UserUpdate(BaseModel):
    disabled: bool | None = None
    password: str | None = Field(None, min_length=8, max_length=256)
    divisions: list[DivisionCode] | None = Field(None, max_length=1000)


class AuditEntry(BaseModel):
    id: int
    at: datetime
    user_name: str | None
    role: str | None
    action: str
    target: str
    divisions: list[str]
    row_ids: list[str] | None
    row_count: int | None
    client: str | None
    detail: str | None = Field(description="what gridmap noted, in the caller's language; "
                               "a text a person gave (a draft's title, a note) as written")


async def _sign_in(request: Request, username: str, password: str) -> access.Issued:
    state = request.app.state
    return await run_in_threadpool(access.sign_in, state.engine, username, password,
                                   settings=state.settings, client=client_of(request))


@router.post("/auth/token", responses={401: {"description": "wrong name or password"},
                                       429: {"description": "too many failed sign-ins"}})
async def token(request: Request,
                form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> Token:
    """Sign in (OAuth2 password flow): an access token to send as
    ``Authorization: Bearer …``. Repeated failures make each next attempt wait longer."""
    issued = await _sign_in(request, form.username, form.password)
    return Token(access_token=issued.token, expires_in=issued.expires_in)


@router.post("/auth/session", responses={401: {"description": "wrong name or password"}})
async def session(request: Request, response: Response,
                  username: Annotated[str, Form(min_length=1, max_length=200)],
                  password: Annotated[str, Form(min_length=1, max_length=256)]) -> Me:
    """Sign in for the web pages: the token goes into an HTTP-only cookie, and the answer
    carries the CSRF token that page scripts send with every change."""
    issued = await _sign_in(request, username, password)
    settings = request.app.state.settings
    csrf = access.csrf_token(settings, issued.principal)
    common: dict[str, Any] = {"max_age": issued.expires_in, "samesite": "strict",
                              "secure": settings.cookie_secure, "path": "/"}
    response.set_cookie(SESSION_COOKIE, issued.token, httponly=True, **common)
    response.set_cookie(CSRF_COOKIE, csrf, httponly=False, **common)
    return _me(issued.principal, csrf)


@router.post("/auth/logout", status_code=204)
async def logout(request: Request, caller: CallerDep) -> Response:
    """Sign out: the token (or page session) is revoked at once, in every server process."""
    await run_in_threadpool(access.sign_out, request.app.state.engine, caller,
                            client_of(request))
    request.app.state.sessions.forget()  # here at once; other processes on the notice
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


def _me(caller: access.Principal, csrf: str | None = None) -> Me:
    return Me(name=caller.name, role=caller.role, divisions=list(caller.divisions),
              reads=sorted(caller.resources), fields={
                  k: str(v.value) for k, v in vars(caller.fields).items()}, csrf_token=csrf)


@router.get("/auth/me")
async def me(request: Request, caller: CallerDep) -> Me:
    """Who the caller is, what they may read and how personal data is shown to them."""
    csrf = access.csrf_token(request.app.state.settings, caller) if caller.session else None
    return _me(caller, csrf)


def _user(row: accounts.UserRow) -> UserPublic:
    return UserPublic(name=row.name, role=Role(row.role), divisions=list(row.divisions),
                      created_at=row.created_at, disabled=row.disabled_at is not None)


@router.get("/api/users")
def list_users(conn: ConnDep, caller: ReadsUsers) -> list[UserPublic]:
    """Every account (admins only)."""
    return [_user(u) for u in accounts.list_users(conn)]


@router.post("/api/users", status_code=201, responses={
    201: {"description": "the new account", "links": {"UpdateUser": link(
        "/api/users/{name}", "patch", "disable it, set its password or divisions",
        {"path.name": "$response.body#/name"})}},
    409: error("an account of that name exists already"),
    422: error("a bad field, or a division code of the right form that is not in the store")})
def create_user(request: Request, caller: ReadsUsers, body: UserCreate) -> UserPublic:
    """Add an account (admins only); audited."""
    with request.app.state.engine.begin() as conn:
        row = access.add_user(conn, body.name, body.role.value, body.divisions, body.password,
                              actor=access.Actor.of(caller, client_of(request)))
    return _user(row)


@router.patch("/api/users/{name}")
def update_user(request: Request, caller: ReadsUsers, name: str, body: UserUpdate
                ) -> UserPublic:
    """Disable or enable an account, set its password or its divisions (admins only). A
    disabled account or a new password revokes the account's tokens at once; audited."""
    actor = access.Actor.of(caller, client_of(request))
    with request.app.state.engine.begin() as conn:
        if not access.NAME.match(name) or accounts.find_user(conn, name) is None:
            raise access.NotVisible(f"no account named {name!r}")
        if body.divisions is not None:
            access.set_divisions(conn, name, body.divisions, actor=actor)
        if body.password is not None:
            access.set_password(conn, name, body.password, actor=actor)
        if body.disabled is not None:
            access.set_disabled(conn, name, body.disabled, actor=actor)
        row = accounts.find_user(conn, name)
    request.app.state.sessions.forget()
    assert row is not None
    return _user(row)


@router.get("/api/audit")
def audit(request: Request, conn: ConnDep, caller: ReadsUsers,
          user: Annotated[str | None, Query(max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$",
                                            description="account name")] = None,
          since: Annotated[datetime | None, Query(description="ISO 8601 time")] = None,
          limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> list[AuditEntry]:
    """The audit log, newest first (admins only): every change and every read of unmasked
    personal data, with who, when, what and from where."""
    request.app.state.audit.flush()
    language = language_of(request)
    return [_audit_entry(row, language)
            for row in accounts.read_audit(conn, user=user, since=since, limit=limit)]


def _audit_entry(row: dict[str, Any], language: i18n.Language) -> AuditEntry:
    """A row of the audit log with its detail in *language* (what gridmap wrote)."""
    notes = row.pop("detail_notes")
    return AuditEntry(**row | {"detail": i18n.render_notes(notes, row["detail"], language)})
