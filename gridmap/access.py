"""Access, the use case: accounts, sign-in, tokens, who the caller is, and the audit log.

Called by the API (``api/deps.py``, ``api/routes_auth.py``) and the CLI (``gridmap user``,
``gridmap audit``). The rules it applies (roles, scopes, masking) are in
:mod:`gridmap.domain.access`; the SQL in :mod:`gridmap.store.accounts`.

Tokens are JWTs (HS256, signed with ``Settings.secret_key``) naming a session row; revoking
the row (sign-out, a disabled account, a new password) revokes the token. Each process keeps
the sessions it has seen in memory and forgets them on the database's change notices, so a
request costs no query and a revocation is seen by the next request.

API keys (Open311 clients) are issued by an admin to an app or a person and act as an
account: its role and divisions. Only a key's SHA-256 is stored; the key is shown once. The
same cache holds them, forgotten on the same notices (a revoked key, a disabled account).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import queue
import re
import secrets
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from pwdlib import PasswordHash
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from gridmap.domain import notes
from gridmap.domain.access import (
    EVERYTHING,
    FIELDS,
    POLICY,
    FieldRules,
    Resource,
    Role,
    Scope,
    code_prefix,
)
from gridmap.domain.notes import Note, note
from gridmap.settings import Settings
from gridmap.store import accounts
from gridmap.store.listen import Change

NAME = re.compile(r"^[^\s\x00-\x1f\x7f-\x9f]{2,64}$")  # as the app_user CHECK ([:cntrl:])
SIGNED_IN_ROLES = tuple(r for r in Role if r != Role.public)
AUTH_TABLES = {"app_user", "user_division", "auth_session", "api_key"}
API_KEY_PREFIX = "gmk_"
_hasher = PasswordHash.recommended()
_DUMMY_HASH = _hasher.hash("gridmap: equal time for unknown accounts")


class AccessError(Exception):
    """A request the caller may not make; ``status`` is its HTTP status."""

    status = 403

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotSignedIn(AccessError):
    status = 401


class Forbidden(AccessError):
    status = 403


class NotVisible(AccessError):
    """Outside the caller's divisions, or absent: the same answer, so existence does not
    leak."""

    status = 404


class TooManyAttempts(AccessError):
    status = 429


class AccountError(ValueError):
    """A bad account name, role, division or password; the message says what to fix."""


class AccountExists(AccountError):
    """An account of that name exists already (names are never reused)."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: their role, the divisions they hold and how they see personal data."""

    name: str | None
    role: Role
    scope: Scope
    resources: frozenset[Resource]
    fields: FieldRules
    divisions: tuple[str, ...] = ()
    session: uuid.UUID | None = None
    expires_at: float = math.inf
    api_key: int | None = None  # the id of the API key the caller came with

    @property
    def signed_in(self) -> bool:
        return self.name is not None

    def may(self, resource: Resource) -> bool:
        return resource in self.resources

    def require(self, resource: Resource) -> Principal:
        if self.may(resource):
            return self
        if not self.signed_in:
            raise NotSignedIn(f"sign in to read {resource.value} (POST /auth/token, or the "
                              "sign-in page /login)")
        raise Forbidden(f"the {self.role.value} role may not read {resource.value}")

    def require_code(self, code: str | None, *, whole: bool = False) -> None:
        """A division or grid code the caller names must share rows with their divisions
        (*whole*: lie wholly inside them); 404 otherwise, as for a code that does not
        exist."""
        if code is None:
            return
        if not (self.scope.covers(code) if whole else self.scope.overlaps(code)):
            raise NotVisible(f"no division or grid {code} among yours")


def public_principal(settings: Settings) -> Principal:
    return Principal(None, Role.public, EVERYTHING, settings.public_resources(),
                     FIELDS[Role.public])


def principal_of(user: accounts.UserRow, session: uuid.UUID | None = None,
                 expires_at: float = math.inf) -> Principal:
    role = Role(user.role)
    scope = EVERYTHING if role == Role.admin else Scope.of(user.divisions)
    return Principal(user.name, role, scope, POLICY[role], FIELDS[role], user.divisions,
                     session, expires_at)


# --- secrets and passwords ------------------------------------------------------------

def signing_key(settings: Settings) -> str:
    """The configured key, or the one kept in ``data_dir/secret_key`` (made on first use,
    readable by its owner only; every server process reads the same file)."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    path = Path(settings.data_dir) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
    key = path.read_text().strip()
    if len(key) < 32:
        raise AccountError(f"{path} holds no usable key (32 characters at least): delete it "
                           "to have a new one made")
    return key


def check_password(password: str) -> str:
    if "\x00" in password:
        raise AccountError("a password may not contain a NUL character")
    if len(password) < 8:
        raise AccountError("a password needs 8 characters at least")
    if len(password) > 256:
        raise AccountError("a password may have 256 characters at most")
    return password


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise AccountError(f"account name {name!r} must be 2 to 64 characters, without spaces "
                           "or control characters")
    return name


def check_divisions(conn: Connection, role: Role, codes: Sequence[str]) -> list[str]:
    codes = list(dict.fromkeys(c.strip() for c in codes))
    for code in codes:
        try:
            code_prefix(code)
        except ValueError as exc:
            raise AccountError(str(exc)) from exc
    if not codes and role != Role.admin:
        raise AccountError(f"a {role.value} needs at least one --division (a county, "
                           "township, community or grid code)")
    unknown = accounts.unknown_codes(conn, codes)
    if unknown:
        raise AccountError(f"no division or grid with code {', '.join(unknown)} in the store")
    return codes


def parse_role(role: str) -> Role:
    if role not in SIGNED_IN_ROLES:
        raise AccountError(f"unknown role {role!r}: choose one of "
                           f"{', '.join(SIGNED_IN_ROLES)}")
    return Role(role)


# --- accounts (each function is one transaction's worth: the caller owns it) -----------

@dataclass(frozen=True)
class Actor:
    """Who makes a change, for the audit log: a signed-in principal or the command line."""

    name: str | None
    role: str | None
    client: str

    @classmethod
    def of(cls, principal: Principal, client: str | None) -> Actor:
        return cls(principal.name, principal.role.value, client or "unknown")


CLI = Actor(None, None, "cli")


def audit_entry(actor: Actor, action: str, target: str, *, divisions: Iterable[str] = (),
                row_ids: Sequence[str] | None = None, row_count: int | None = None,
                detail: str | Note | Sequence[Note] | None = None) -> dict[str, Any]:
    """A row of the audit log. A *detail* gridmap composes is a note (or several): kept as
    keys and values beside its English text, and read in the reader's language; a text
    (a draft's title, a person's note) is kept and shown as written."""
    if row_ids is not None and len(row_ids) > 1000:  # ids for small reads, a count for big
        row_count, row_ids = len(row_ids), None
    said = None if detail is None or isinstance(detail, str) else notes.stored(detail)
    return {"user_name": actor.name, "role": actor.role, "action": action, "target": target,
            "divisions": list(divisions), "row_ids": list(row_ids) if row_ids else None,
            "row_count": row_count if row_count is not None else
            (len(row_ids) if row_ids is not None else None),
            "client": actor.client,
            "detail": detail if isinstance(detail, str | None) else notes.english(detail),
            "detail_notes": said}


def add_user(conn: Connection, name: str, role: str, divisions: Sequence[str], password: str,
             *, actor: Actor) -> accounts.UserRow:
    check_name(name)
    parsed = parse_role(role)
    codes = check_divisions(conn, parsed, divisions)
    check_password(password)
    if accounts.find_user(conn, name) is not None:
        raise AccountExists(f"an account named {name!r} exists already")
    accounts.insert_user(conn, name, parsed.value, _hasher.hash(password), codes)
    accounts.insert_audit(conn, [audit_entry(actor, "write", "user add", divisions=codes,
                                             row_ids=[name],
                                             detail=note("user_role", role=parsed.value))])
    user = accounts.find_user(conn, name)
    assert user is not None
    return user


def _existing(conn: Connection, name: str) -> accounts.UserRow:
    user = accounts.find_user(conn, name)
    if user is None:
        raise AccountError(f"no account named {name!r}")
    return user


def set_disabled(conn: Connection, name: str, disabled: bool, *, actor: Actor) -> None:
    """Disable (its sessions are revoked at once) or enable an account."""
    user = _existing(conn, name)
    accounts.set_disabled(conn, user.id, disabled)
    accounts.insert_audit(conn, [audit_entry(actor, "write",
                                             "user disable" if disabled else "user enable",
                                             row_ids=[name])])


def set_password(conn: Connection, name: str, password: str, *, actor: Actor) -> None:
    """A new password; the account's sessions are revoked."""
    user = _existing(conn, name)
    accounts.set_password_hash(conn, user.id, _hasher.hash(check_password(password)))
    accounts.insert_audit(conn, [audit_entry(actor, "write", "user passwd", row_ids=[name])])


def set_divisions(conn: Connection, name: str, divisions: Sequence[str], *,
                  actor: Actor) -> None:
    user = _existing(conn, name)
    codes = check_divisions(conn, Role(user.role), divisions)
    accounts.set_grants(conn, user.id, codes)
    accounts.insert_audit(conn, [audit_entry(actor, "write", "user divisions", divisions=codes,
                                             row_ids=[name])])


# --- API keys -------------------------------------------------------------------------

@dataclass(frozen=True)
class IssuedKey:
    """A new API key: ``key`` is shown this once and stored only as its hash."""

    id: int
    key: str
    account: str
    label: str


def key_hash(key: str) -> str:
    """The stored form of an API key: its SHA-256, in hex.

    Examples
    --------
    >>> key_hash("gmk_example")[:16]
    '1ae30e475cee8d0f'
    """
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def check_label(label: str) -> str:
    label = label.strip()
    if not label or len(label) > 200 or not label.isprintable():
        raise AccountError("a key's label must be 1 to 200 printable characters (say which "
                           "app or person holds it)")
    return label


def add_api_key(conn: Connection, account: str, label: str, *, actor: Actor) -> IssuedKey:
    """A new API key acting as *account* (its role and divisions, now and later)."""
    label = check_label(label)
    user = _existing(conn, account)
    if user.disabled_at is not None:
        raise AccountError(f"the account {account!r} is disabled: enable it first")
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key_id = accounts.insert_api_key(conn, user.id, label, key_hash(key))
    accounts.insert_audit(conn, [audit_entry(actor, "write", "key add",
                                             divisions=user.divisions, row_ids=[str(key_id)],
                                             detail=note("key_for", account=account,
                                                         label=label))])
    return IssuedKey(key_id, key, user.name, label)


def revoke_api_key(conn: Connection, key_id: int, *, actor: Actor) -> accounts.ApiKeyRow:
    """Revoke a key: it stops working at once, in every process."""
    row = accounts.find_api_key(conn, key_id)
    if row is None:
        raise AccountError(f"no API key {key_id}")
    if not accounts.revoke_api_key(conn, key_id):
        raise AccountError(f"API key {key_id} is revoked already")
    accounts.insert_audit(conn, [audit_entry(actor, "write", "key revoke",
                                             row_ids=[str(key_id)],
                                             detail=note("key_of", account=row.account,
                                                         label=row.label))])
    return row


# --- sign-in and tokens -------------------------------------------------------------------

@dataclass(frozen=True)
class Issued:
    token: str
    expires_in: int
    principal: Principal


def issue_token(conn: Connection, user: accounts.UserRow, settings: Settings,
                client: str | None) -> Issued:
    now = datetime.now(UTC)
    expires = now + timedelta(minutes=settings.token_minutes)
    sid = accounts.insert_session(conn, user.id, expires, client)
    token = jwt.encode({"sub": user.name, "jti": str(sid), "iat": now, "exp": expires},
                       signing_key(settings), algorithm="HS256")
    return Issued(token, int((expires - now).total_seconds()),
                  principal_of(user, sid, expires.timestamp()))


def sign_in(engine: Engine, name: str, password: str, *, settings: Settings,
            client: str | None) -> Issued:
    """A token for a right name and password. Wrong ones are recorded (committed even
    though this raises) and, past ``sign_in_free_failures`` in a row, each further attempt
    must wait twice as long as the last before it is even checked."""
    key = name.replace("\x00", "").strip().lower()[:200]  # text in PostgreSQL holds no NUL
    actor = Actor(name if NAME.match(name) else None, None, client or "unknown")
    refusal: AccessError | None = None
    why: Note | None = None  # the refusal, as the audit log keeps it
    with engine.begin() as conn:  # committed before anything is raised
        failed, since = accounts.failures(conn, key)
        over = failed - settings.sign_in_free_failures
        wait = min(2.0**over, settings.sign_in_max_wait_s) if over >= 0 else 0.0
        user = accounts.find_user(conn, name) if NAME.match(name) else None
        if since < wait:
            refusal = TooManyAttempts(
                f"too many failed sign-ins for {name!r}: try again in "
                f"{math.ceil(wait - since)} s", retry_after=math.ceil(wait - since))
            accounts.insert_audit(conn, [audit_entry(actor, "refused", "sign in",
                                                     detail=note("too_many_sign_ins"))])
        elif not _hasher.verify(password, user.password_hash if user else _DUMMY_HASH):
            refusal, why = NotSignedIn("wrong account name or password"), note("wrong_password")
        elif user is not None and user.disabled_at is not None:
            refusal = NotSignedIn(f"the account {name!r} is disabled")
            why = note("account_disabled", name=repr(name))
        if isinstance(refusal, NotSignedIn):
            accounts.record_failure(conn, key)
            accounts.insert_audit(conn, [audit_entry(actor, "sign_in_failed", "sign in",
                                                     detail=why)])
    if refusal is not None:
        raise refusal
    assert user is not None
    with engine.begin() as conn:
        accounts.clear_failures(conn, key)
        issued = issue_token(conn, user, settings, client)
        accounts.insert_audit(conn, [audit_entry(Actor.of(issued.principal, client),
                                                 "sign_in", "sign in")])
    return issued


def sign_out(engine: Engine, principal: Principal, client: str | None) -> None:
    if principal.session is None:
        return
    with engine.begin() as conn:
        accounts.revoke_session(conn, principal.session)
        accounts.insert_audit(conn, [audit_entry(Actor.of(principal, client), "sign_out",
                                                 "sign out")])


def csrf_token(settings: Settings, principal: Principal) -> str:
    """The value a page sends back in ``X-CSRF-Token`` with every change it asks for: bound
    to its session, so another site cannot forge it."""
    return hmac.new(signing_key(settings).encode(), str(principal.session).encode(),
                    hashlib.sha256).hexdigest()


@dataclass
class Sessions:
    """Tokens → principals, cached per process and forgotten on the change notices of
    accounts, grants and sessions (a :class:`~gridmap.store.listen.ChangeHub` subscriber)."""

    engine: Engine
    settings: Settings
    _known: dict[str, Principal] = field(default_factory=dict)
    _keys: dict[str, Principal] = field(default_factory=dict)  # by key hash
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _forgotten: int = 0  # how many times the cache was dropped

    def __post_init__(self) -> None:
        self._key = signing_key(self.settings)

    def cached(self, token: str) -> Principal | None:
        principal = self._known.get(token)
        if principal is not None and principal.expires_at <= datetime.now(UTC).timestamp():
            raise NotSignedIn("the token has expired: sign in again")
        return principal

    def resolve(self, token: str) -> Principal:
        """The principal of a token (may query the database: call off the event loop)."""
        principal = self.cached(token)
        if principal is not None:
            return principal
        try:
            claims = jwt.decode(token, self._key, algorithms=["HS256"],
                                options={"require": ["exp", "jti", "sub"]})
            sid = uuid.UUID(claims["jti"])
        except jwt.ExpiredSignatureError as exc:
            raise NotSignedIn("the token has expired: sign in again") from exc
        except (jwt.InvalidTokenError, ValueError) as exc:
            raise NotSignedIn("the token is not one this server issued: sign in again") from exc
        seen = self._forgotten
        with self.engine.connect() as conn:
            user = accounts.live_session(conn, sid)
        if user is None:
            raise NotSignedIn("the token was revoked (signed out, new password or account "
                              "disabled): sign in again")
        principal = principal_of(user, sid, float(claims["exp"]))
        with self._lock:
            if self._forgotten == seen:  # not revoked while we asked: keep it
                self._known[token] = principal
        return principal

    def cached_key(self, key: str) -> Principal | None:
        return self._keys.get(key_hash(key))

    def resolve_key(self, key: str) -> Principal:
        """The principal of an API key (may query the database: call off the event loop)."""
        digest = key_hash(key)
        principal = self._keys.get(digest)
        if principal is not None:
            return principal
        seen = self._forgotten
        with self.engine.connect() as conn:
            found = accounts.live_api_key(conn, digest)
        if found is None:
            raise NotSignedIn("the api_key is not one this server issued, or it was revoked, "
                              "or its account is disabled")
        key_id, user = found
        principal = replace(principal_of(user), api_key=key_id)
        with self._lock:
            if self._forgotten == seen:  # not revoked while we asked: keep it
                self._keys[digest] = principal
        return principal

    def apply(self, changes: list[Change]) -> None:
        if any(change.table in AUTH_TABLES for change in changes):
            self.forget()

    def forget(self) -> None:
        """Drop every cached session and key: the next request of each asks the
        database."""
        with self._lock:
            self._known.clear()
            self._keys.clear()
            self._forgotten += 1


class AuditLog:
    """Reads of unmasked personal data, written in batches by a background thread (a
    request does not wait for the insert; at most ``interval`` seconds of entries are in
    memory). Writes are audited in their own transaction instead (:func:`audit_entry`).

    A read only appends its entry to a queue: the thread wakes every ``interval`` seconds
    (or when a flush asks) and takes what has gathered. It is not woken per entry — under a
    dispatch centre's stream of locates that was a wake-up, and a turn at the GIL taken
    from the event loop, for every answer (a seventh of the server's CPU, and the requests
    waiting behind it)."""

    def __init__(self, engine: Engine, *, interval: float = 0.5) -> None:
        self.engine = engine
        self.interval = interval
        self._queue: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._wake = threading.Event()  # a flush, or the end
        self._stop = False
        self._flushed = threading.Condition()
        self._pending = 0
        self._thread = threading.Thread(target=self._run, name="gridmap-audit", daemon=True)
        self._thread.start()

    def read(self, principal: Principal, target: str, client: str | None, *,
             divisions: Iterable[str] = (), row_ids: Sequence[str] | None = None,
             row_count: int | None = None, detail: str | Note | Sequence[Note] | None = None
             ) -> None:
        with self._flushed:
            self._pending += 1
        self._queue.put(audit_entry(Actor.of(principal, client), "read", target,
                                    divisions=divisions, row_ids=row_ids,
                                    row_count=row_count, detail=detail))

    def _run(self) -> None:
        """Every ``interval`` seconds, or at once when a flush or :meth:`close` asks, what
        has gathered is written in one transaction: under a stream of reads one COPY a
        round, not a transaction (and a commit to wait for) every few entries."""
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            stop = self._stop
            batch: list[dict[str, Any]] = []
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if batch:
                self._write(batch)
            if stop:
                return

    def _write(self, batch: list[dict[str, Any]]) -> None:
        try:
            with self.engine.begin() as conn:
                accounts.copy_audit(conn, batch)
        except Exception:  # the database is away: keep the entries for a later round
            for entry in batch:
                self._queue.put(entry)
            time.sleep(self.interval)
            return
        with self._flushed:
            self._pending -= len(batch)
            self._flushed.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every entry recorded so far is in the table."""
        self._wake.set()
        with self._flushed:
            return self._flushed.wait_for(lambda: self._pending <= 0, timeout)

    def close(self) -> None:
        self.flush()
        self._stop = True
        self._wake.set()
        self._thread.join(5)


# the command line acts as the machine's operator: everything, audited with client "cli"
CLI_PRINCIPAL = Principal(None, Role.admin, EVERYTHING, POLICY[Role.admin], FIELDS[Role.admin])
