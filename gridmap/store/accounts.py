"""Accounts, their division grants, sessions, API keys, sign-in failures and the audit log
(tables of migrations 0006 and 0008). Policy lives in :mod:`gridmap.access`; these
functions only read and write."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy import ARRAY, Text, delete, func, insert, literal, select, union_all, update
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection

from gridmap.store import tables

user_t, grant_t, session_t = tables.app_user, tables.user_division, tables.auth_session
audit_t, failure_t = tables.audit_log, tables.sign_in_failure
key_t = tables.api_key


@dataclass(frozen=True)
class UserRow:
    id: int
    name: str
    role: str
    password_hash: str
    divisions: tuple[str, ...]
    created_at: datetime
    disabled_at: datetime | None


def _user_rows(conn: Connection, *where: Any) -> list[UserRow]:
    codes = (select(func.coalesce(func.array_agg(aggregate_order_by(grant_t.c.code,
                                                                    grant_t.c.code)),
                                  literal([], type_=ARRAY(Text))))
             .where(grant_t.c.user_id == user_t.c.id).scalar_subquery())
    rows = conn.execute(select(user_t.c.id, user_t.c.name, user_t.c.role,
                               user_t.c.password_hash, codes.label("divisions"),
                               user_t.c.created_at, user_t.c.disabled_at)
                        .where(*where).order_by(user_t.c.name)).all()
    return [UserRow(r.id, r.name, r.role, r.password_hash, tuple(r.divisions), r.created_at,
                    r.disabled_at) for r in rows]


def find_user(conn: Connection, name: str) -> UserRow | None:
    rows = _user_rows(conn, user_t.c.name == name)
    return rows[0] if rows else None


def list_users(conn: Connection) -> list[UserRow]:
    return _user_rows(conn)


def insert_user(conn: Connection, name: str, role: str, password_hash: str,
                divisions: Sequence[str]) -> int:
    user_id = conn.execute(insert(user_t).values(name=name, role=role,
                                                 password_hash=password_hash)
                           .returning(user_t.c.id)).scalar_one()
    _grant(conn, user_id, divisions)
    return int(user_id)


def _grant(conn: Connection, user_id: int, divisions: Sequence[str]) -> None:
    if divisions:
        conn.execute(insert(grant_t), [{"user_id": user_id, "code": c} for c in divisions])


def set_disabled(conn: Connection, user_id: int, disabled: bool) -> None:
    conn.execute(update(user_t).where(user_t.c.id == user_id).values(
        disabled_at=func.now() if disabled else None))
    if disabled:
        revoke_sessions(conn, user_id)


def set_password_hash(conn: Connection, user_id: int, password_hash: str) -> None:
    conn.execute(update(user_t).where(user_t.c.id == user_id).values(
        password_hash=password_hash, password_at=func.now()))
    revoke_sessions(conn, user_id)


def set_grants(conn: Connection, user_id: int, divisions: Sequence[str]) -> None:
    conn.execute(delete(grant_t).where(grant_t.c.user_id == user_id))
    _grant(conn, user_id, divisions)


def unknown_codes(conn: Connection, codes: Sequence[str]) -> list[str]:
    """Which of *codes* name no division and no current grid."""
    known = union_all(
        select(tables.division.c.code.label("code")).where(tables.division.c.code.in_(codes)),
        select(tables.grid.c.code).where(tables.grid.c.code.in_(codes)))
    found = {str(c).strip() for c in conn.execute(known).scalars()}
    return [c for c in codes if c not in found]


def insert_session(conn: Connection, user_id: int, expires_at: datetime,
                   client: str | None) -> uuid.UUID:
    sid = uuid.uuid4()
    conn.execute(insert(session_t).values(id=sid, user_id=user_id, expires_at=expires_at,
                                          client=client))
    return sid


def revoke_session(conn: Connection, sid: uuid.UUID) -> bool:
    done = conn.execute(update(session_t).where(session_t.c.id == sid,
                                                session_t.c.revoked_at.is_(None))
                        .values(revoked_at=func.now()))
    return done.rowcount > 0


def revoke_sessions(conn: Connection, user_id: int) -> None:
    conn.execute(update(session_t).where(session_t.c.user_id == user_id,
                                         session_t.c.revoked_at.is_(None))
                 .values(revoked_at=func.now()))


def live_session(conn: Connection, sid: uuid.UUID) -> UserRow | None:
    """The account of a session that is neither revoked, expired nor of a disabled user."""
    owner = select(session_t.c.user_id).where(
        session_t.c.id == sid, session_t.c.revoked_at.is_(None),
        session_t.c.expires_at > func.now()).scalar_subquery()
    rows = _user_rows(conn, user_t.c.id == owner, user_t.c.disabled_at.is_(None))
    return rows[0] if rows else None


@dataclass(frozen=True)
class ApiKeyRow:
    id: int
    account: str
    role: str
    label: str
    created_at: datetime
    revoked_at: datetime | None
    account_disabled: bool


def insert_api_key(conn: Connection, user_id: int, label: str, key_hash: str) -> int:
    return int(conn.execute(insert(key_t).values(user_id=user_id, label=label,
                                                 key_hash=key_hash)
                            .returning(key_t.c.id)).scalar_one())


def _key_rows(conn: Connection, *where: Any) -> list[ApiKeyRow]:
    rows = conn.execute(select(key_t.c.id, user_t.c.name, user_t.c.role, key_t.c.label,
                               key_t.c.created_at, key_t.c.revoked_at,
                               user_t.c.disabled_at.is_not(None).label("disabled"))
                        .join_from(key_t, user_t, key_t.c.user_id == user_t.c.id)
                        .where(*where).order_by(key_t.c.id)).all()
    return [ApiKeyRow(r.id, r.name, r.role, r.label, r.created_at, r.revoked_at, r.disabled)
            for r in rows]


def find_api_key(conn: Connection, key_id: int) -> ApiKeyRow | None:
    rows = _key_rows(conn, key_t.c.id == key_id)
    return rows[0] if rows else None


def list_api_keys(conn: Connection) -> list[ApiKeyRow]:
    return _key_rows(conn)


def revoke_api_key(conn: Connection, key_id: int) -> bool:
    done = conn.execute(update(key_t).where(key_t.c.id == key_id, key_t.c.revoked_at.is_(None))
                        .values(revoked_at=func.now()))
    return done.rowcount > 0


def live_api_key(conn: Connection, key_hash: str) -> tuple[int, UserRow] | None:
    """(the key's id, its account) for a key that is not revoked, of an account that is not
    disabled."""
    key = conn.execute(select(key_t.c.id, key_t.c.user_id).where(
        key_t.c.key_hash == key_hash, key_t.c.revoked_at.is_(None))).first()
    if key is None:
        return None
    rows = _user_rows(conn, user_t.c.id == key.user_id, user_t.c.disabled_at.is_(None))
    return (int(key.id), rows[0]) if rows else None


def failures(conn: Connection, name: str) -> tuple[int, float]:
    """(failed sign-ins in a row, seconds since the last one) for an account name."""
    row = conn.execute(select(failure_t.c.failures,
                              func.extract("epoch", func.now() - failure_t.c.last_at))
                       .where(failure_t.c.name == name)).first()
    return (0, 0.0) if row is None else (int(row[0]), float(row[1]))


def record_failure(conn: Connection, name: str) -> None:
    stmt = pg_insert(failure_t).values(name=name, failures=1, last_at=func.now())
    conn.execute(stmt.on_conflict_do_update(
        index_elements=[failure_t.c.name],
        set_={"failures": failure_t.c.failures + 1, "last_at": func.now()}))


def clear_failures(conn: Connection, name: str) -> None:
    conn.execute(delete(failure_t).where(failure_t.c.name == name))


def insert_audit(conn: Connection, entries: Sequence[dict[str, Any]]) -> None:
    if entries:
        conn.execute(insert(audit_t), list(entries))


AUDIT_COPY = {"user_name": "text", "role": "text", "action": "text", "target": "text",
              "divisions": "text[]", "row_ids": "text[]", "row_count": "int4",
              "client": "text", "detail": "text", "detail_notes": "jsonb"}


def copy_audit(conn: Connection, entries: Sequence[dict[str, Any]]) -> None:
    """Many entries (as :func:`insert_audit` takes them) by COPY: the audit thread's batches
    of reads, one per locate of a dispatcher — a multi-row INSERT cost the server process
    more per entry than the locate itself, and PostgreSQL, on the same cores, more again."""
    raw = conn.connection.driver_connection
    if not isinstance(raw, psycopg.Connection):
        raise TypeError("gridmap's store needs the psycopg (3) driver: postgresql+psycopg://")
    with raw.cursor() as cur, cur.copy(
            f"COPY audit_log ({', '.join(AUDIT_COPY)}) FROM STDIN") as copy:
        copy.set_types(list(AUDIT_COPY.values()))
        for entry in entries:
            copy.write_row([entry[column] for column in AUDIT_COPY])


def read_audit(conn: Connection, *, user: str | None = None, since: datetime | None = None,
               limit: int = 1000) -> list[dict[str, Any]]:
    query = select(audit_t).order_by(audit_t.c.id.desc()).limit(limit)
    if user is not None:
        query = query.where(audit_t.c.user_name == user)
    if since is not None:
        query = query.where(audit_t.c.at >= since)
    return [dict(r) for r in conn.execute(query).mappings()]
