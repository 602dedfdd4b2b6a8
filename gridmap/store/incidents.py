"""Incidents in the store: routing a point to its grid, township and worker; reading a case
and its timeline; writing a step. Rules live in :mod:`gridmap.domain.incidents`, the use case
in :mod:`gridmap.incidents`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from sqlalchemy import func, insert, or_, select, text, update
from sqlalchemy.engine import Connection

from gridmap.domain.access import Scope
from gridmap.domain.incidents import STAGE_DEADLINES
from gridmap.domain.notes import NOTES
from gridmap.store import tables
from gridmap.store.scope import in_scope
from gridmap.store.sqlfiles import read_sql

incident_t, event_t = tables.incident, tables.incident_event


@dataclass(frozen=True)
class Route:
    """Where a point belongs: its grid (None outside every grid), community, township, the
    worker responsible, and the other grids it lies on (a point on an edge)."""

    grid_code: str | None
    community_code: str | None
    township_code: str | None
    urban_rural: str | None
    assignee: str | None
    candidates: tuple[str, ...] = ()


def route_point(conn: Connection, lon: float, lat: float) -> Route:
    """The grid by gridmap's rule (exclusive first, then the lowest code), else the
    township whose boundary holds the point; the grid's full-time worker (else its head)."""
    rows = conn.execute(text(read_sql("route_point.sql")), {"lon": lon, "lat": lat}).mappings()
    found = [dict(r) for r in rows]
    if not found:
        return Route(None, None, None, None, None)
    top = found[0]
    code = top["grid_code"].strip() if top["grid_code"] else None
    return Route(code, _strip(top["community_code"]), _strip(top["township_code"]),
                 top["urban_rural"], top["assignee"],
                 tuple(r["grid_code"].strip() for r in found[1:] if r["grid_code"]))


def route_grid(conn: Connection, grid_code: str) -> Route | None:
    """The route of a grid named by a dispatcher (re-routing), None for an unknown grid."""
    row = conn.execute(text(read_sql("route_grid.sql")), {"code": grid_code}).mappings().first()
    if row is None:
        return None
    return Route(grid_code, _strip(row["community_code"]), _strip(row["township_code"]),
                 row["urban_rural"], row["assignee"])


def _strip(code: str | None) -> str | None:
    return code.strip() if code else None


def scope_column() -> Any:
    """The code that puts an incident in a caller's scope: its grid, or — outside every
    grid — the township it was registered to."""
    return func.coalesce(incident_t.c.grid_code, incident_t.c.township_code)


# Warnings of a report's routing, as its first timeline entry notes them in English and the
# answer says them (printf templates of the notes intake.sql also stores as keys and values)
OUTSIDE_NOTE = NOTES["outside_grid"].replace("{township}", "%s")
EDGE_NOTE = NOTES["on_edge"].replace("{grids}", "%s")


def _intake_params(values: dict[str, Any], photos: list[dict[str, Any]]) -> dict[str, Any]:
    return {**values, "outside_note": OUTSIDE_NOTE, "edge_note": EDGE_NOTE,
            "photo_ids": [p["id"] for p in photos],
            "photo_types": [p["media_type"] for p in photos],
            "photo_bytes": [p["bytes"] for p in photos],
            "photo_widths": [p["width"] for p in photos],
            "photo_heights": [p["height"] for p in photos],
            "photo_sha256": [p["sha256"] for p in photos]}


def _intake_row(row: Any) -> dict[str, Any] | None:
    if row is None:
        return None
    out = dict(row)
    del out["new_grid_code"]  # the route's, stripped
    return out


def intake(conn: Connection, values: dict[str, Any], photos: list[dict[str, Any]]
           ) -> dict[str, Any] | None:
    """Locate a report and, when its place is in ``values["scope"]``, insert the case with
    its first timeline entry, its *photos* (rows of the staged files, without ids of case
    and step: the statement knows them) and the audit entry, in one statement
    (``intake.sql``). None: the point is outside the district; else the route's columns
    (``visible``: whether the case was inserted) and the case's."""
    row = conn.execute(text(read_sql("intake.sql")), _intake_params(values, photos)
                       ).mappings().first()
    return _intake_row(row)


# The intake pool's connections: autocommit, and the prepared statement's generic plan from
# its first call on: planning it again for each point (a custom plan, which PostgreSQL's
# "auto" mode keeps choosing now and then) took 1.3 ms of the database's ~1.9 ms a report
INTAKE_CONNECTION: dict[str, Any] = {
    "autocommit": True, "options": "-c plan_cache_mode=force_generic_plan"}


@cache
def _intake_statement() -> bytes:
    """``intake.sql`` with psycopg's placeholders (``:name`` → ``%(name)s``), without its
    comments (short enough for psycopg to keep the conversion)."""
    lines = (line.strip() for line in read_sql("intake.sql").splitlines()
             if not line.lstrip().startswith("--"))
    return re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", "\n".join(lines)).encode()


async def intake_async(conn: AsyncConnection[Any], values: dict[str, Any]
                       ) -> dict[str, Any] | None:
    """:func:`intake` of a report without photos on an autocommit psycopg connection of the
    event loop, as a prepared statement: no worker thread, no SQL compiled per call, one
    round trip."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(_intake_statement(), _intake_params(values, []), prepare=True)
    return _intake_row(await cur.fetchone())


def next_id(conn: Connection, at: datetime) -> str:
    number = conn.execute(text("SELECT nextval('incident_number_seq')")).scalar_one()
    return f"C{at:%Y%m%d}{int(number):06d}"


def insert_incident(conn: Connection, values: dict[str, Any]) -> None:
    geom = func.ST_SetSRID(func.ST_MakePoint(values.pop("lon"), values.pop("lat")), 4326)
    conn.execute(insert(incident_t).values(**values, geom=geom))


def insert_event(conn: Connection, values: dict[str, Any]) -> int:
    """Append a timeline entry; its id."""
    return int(conn.execute(insert(event_t).values(**values).returning(event_t.c.id))
               .scalar_one())


def lock(conn: Connection, incident_id: str, scope: Scope) -> dict[str, Any] | None:
    """The case, locked for this transaction, if it is in *scope*."""
    row = conn.execute(select(*_columns()).where(
        incident_t.c.id == incident_id, in_scope(scope_column(), scope))
        .with_for_update(of=incident_t)).mappings().first()
    return _row(row) if row else None


def update_incident(conn: Connection, incident_id: str, values: dict[str, Any]) -> None:
    conn.execute(update(incident_t).where(incident_t.c.id == incident_id).values(
        **values, version=incident_t.c.version + 1, updated_at=func.now()))


def read_incident(conn: Connection, incident_id: str, scope: Scope) -> dict[str, Any] | None:
    row = conn.execute(select(*_columns()).where(
        incident_t.c.id == incident_id, in_scope(scope_column(), scope))).mappings().first()
    return _row(row) if row else None


def read_timeline(conn: Connection, incident_id: str) -> list[dict[str, Any]]:
    """The steps of a case, oldest first; ``note`` is the text stored, ``notes`` what
    gridmap wrote as keys and values (None: a person's note, or a row from before)."""
    rows = conn.execute(select(event_t).where(event_t.c.incident_id == incident_id)
                        .order_by(event_t.c.at, event_t.c.id)).mappings()
    return [{**dict(r), "grid_code": _strip(r["grid_code"])} for r in rows]


def list_incidents(conn: Connection, scope: Scope, *, stages: list[str] | None = None,
                   overdue_at: datetime | None = None, limit: int = 100, offset: int = 0
                   ) -> list[dict[str, Any]]:
    """Cases in *scope*, newest first (optionally of some stages; overdue at a moment: a
    deadline of the stage they are in has passed)."""
    query = select(*_columns()).where(in_scope(scope_column(), scope))
    if stages:
        query = query.where(incident_t.c.status.in_(stages))
    if overdue_at is not None:
        c = incident_t.c
        query = query.where(or_(*(
            (c.status == stage.value) & (c[column] < overdue_at)
            for stage, (_, column) in STAGE_DEADLINES.items())))
    rows = conn.execute(query.order_by(incident_t.c.reported_at.desc(), incident_t.c.id)
                        .limit(limit).offset(offset)).mappings()
    return [_row(r) for r in rows]


def _columns() -> list[Any]:
    c = incident_t.c
    return [c.id, c.category, c.description, c.reported_at, c.status, c.grid_code,
            c.community_code, c.township_code, c.assignee, c.reporter, c.urgent, c.version,
            c.updated_at, c.dispatch_due, c.handle_due, c.verify_due, c.closed_at,
            func.ST_X(c.geom).label("lon"), func.ST_Y(c.geom).label("lat")]


def _row(row: Any) -> dict[str, Any]:
    out = dict(row)
    for key in ("grid_code", "community_code", "township_code"):
        out[key] = _strip(out[key])
    return out


def escalate_overdue(conn: Connection, now: datetime, *, warn_minutes: int, tz: str
                     ) -> list[tuple[str, str]]:
    """One round of the overdue job (``escalate_overdue.sql``): (case, action) of every
    warning and escalation appended. Rounds never overlap: the first to take the advisory
    lock does the round, the others skip it."""
    if not conn.execute(text("SELECT pg_try_advisory_xact_lock(hashtext('gridmap-overdue'))")
                        ).scalar_one():
        return []
    rows = conn.execute(text(read_sql("escalate_overdue.sql")),
                        {"now": now, "warn_minutes": warn_minutes, "tz": tz}).all()
    return [(str(r[0]), str(r[1])) for r in rows]
