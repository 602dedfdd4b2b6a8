"""Incidents, the use case: intake, routing, the stages with their deadlines, the timeline.

Called by the API (``api/routes_incidents.py``). Each function is one transaction: the case,
its timeline entry and the audit entry are written together or not at all. The rules it
applies — the stage machine, who may act, deadlines in working time — live in
:mod:`gridmap.domain.incidents` and :mod:`gridmap.domain.worktime`; the SQL in
:mod:`gridmap.store.incidents`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from gridmap import i18n
from gridmap.access import Actor, Forbidden, NotVisible, Principal, audit_entry
from gridmap.domain import incidents as rules
from gridmap.domain.access import Show
from gridmap.domain.chinacrs import to_wgs84
from gridmap.domain.notes import note as system_note
from gridmap.domain.photos import MAX_PHOTOS, Photo
from gridmap.domain.worktime import WorkCalendar, deadline
from gridmap.store import accounts
from gridmap.store import incidents as store
from gridmap.store import photos as photo_store
from gridmap.store.photos import PhotoFiles, Staged
from gridmap.store.scope import scope_param

FINISHED = frozenset({rules.Stage.cancelled, rules.Stage.closed, rules.Stage.evaluated})


@dataclass
class Phases:
    """Where a request's time went (ms per named phase, in order), for the slow-request
    log; each :meth:`mark` ends the phase that began at the previous one."""

    started: float = field(default_factory=time.perf_counter)
    spans: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._last = self.started

    def mark(self, phase: str) -> None:
        now = time.perf_counter()
        self.spans[phase] = self.spans.get(phase, 0.0) + (now - self._last) * 1e3
        self._last = now

    @property
    def total_ms(self) -> float:
        return (self._last - self.started) * 1e3

    def __str__(self) -> str:
        return ", ".join(f"{phase} {ms:.1f}" for phase, ms in self.spans.items())


class IncidentError(ValueError):
    """A report or a step that cannot be taken as sent; the message says what to fix."""


class IllegalStep(Exception):
    """A step the case's stage does not allow (409): ``allowed`` are the possible ones."""

    def __init__(self, message: str, allowed: list[str]) -> None:
        super().__init__(message)
        self.allowed = allowed


class StaleVersion(Exception):
    """The case changed since the caller read it (412)."""


class VersionRequired(Exception):
    """A step sent without ``If-Match`` (428)."""


class IntakeBusy(Exception):
    """Every intake connection stayed busy while the report waited (503, Retry-After)."""


@dataclass(frozen=True)
class Report:
    lon: float
    lat: float
    category: str
    description: str = ""
    crs: str = "wgs84"
    reporter: str | None = None
    urgent: bool | None = None  # None: as the category says


@dataclass(frozen=True)
class Workflow:
    """The deployment's categories, working calendar and photo folder."""

    categories: dict[str, rules.Category]
    calendar: WorkCalendar
    photos: PhotoFiles

    def category(self, code: str) -> rules.Category:
        if code not in self.categories:
            raise IncidentError(f"unknown category {code!r}: GET /api/incident-categories "
                                "lists them")
        return self.categories[code]


def _now() -> datetime:
    return datetime.now(UTC)


def _clean(text: str | None, what: str, most: int) -> str | None:
    if text is None:
        return None
    if "\x00" in text:
        raise IncidentError(f"{what} may not contain a NUL character")
    if len(text) > most:
        raise IncidentError(f"{what} may have {most} characters at most")
    return text.strip()


def _require_role(principal: Principal, action: rules.Action) -> None:
    if not rules.may_act(principal.role.value, action):
        if not principal.signed_in:
            from gridmap.access import NotSignedIn

            raise NotSignedIn("sign in to report or move incidents")
        raise Forbidden(f"the {principal.role.value} role may not {action.value} a case")


def report(engine: Engine, principal: Principal, sent: Report, workflow: Workflow, *,
           client: str | None, photos: Sequence[Photo] = ()) -> tuple[dict[str, Any], list[str]]:
    """Take a report: locate it (exclusive grid first), route it to the grid, its community,
    township and worker, and record it as collected with its *photos* — one statement, so
    one round trip and all or nothing. A point outside every grid is registered to the
    township that holds it, with a warning; one outside the district is refused. Returns
    the case and the warnings."""
    values = _report_values(principal, sent, workflow, client=client, photos=len(photos))
    staged = workflow.photos.stage(photos) if photos else None
    try:
        if staged is None:  # a single statement needs no transaction of its own
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                row = store.intake(conn, values, [])
        else:
            with engine.begin() as conn:
                row = store.intake(conn, values, staged.rows("", 0, principal.name))
                if row is not None and row["id"] is not None:
                    staged.place()
    except BaseException:
        if staged is not None:
            staged.discard()
        raise
    if staged is not None and (row is None or row["id"] is None):
        staged.discard()
    return _reported(row, sent)


async def report_async(pool: AsyncConnectionPool[Any], principal: Principal, sent: Report,
                       workflow: Workflow, *, client: str | None,
                       phases: Phases | None = None) -> tuple[dict[str, Any], list[str]]:
    """:func:`report` of a report without photos, on the event loop: the same statement,
    prepared, on an autocommit connection of *pool* (what most reports are, so they cost
    no worker thread). *phases* is told of the checks, the wait for a connection and the
    statement."""
    phases = phases or Phases()
    values = _report_values(principal, sent, workflow, client=client, photos=0)
    phases.mark("checks")
    try:
        conn = await pool.getconn()
    except PoolTimeout:
        stats = pool.get_stats()
        if stats.get("pool_size", 0) >= pool.max_size and not stats.get("pool_available"):
            raise IntakeBusy(f"too many reports at once: this one waited {pool.timeout:g} s "
                             "for the database; send it again shortly") from None
        raise  # no connection to be had: the database is away (503 as such)
    phases.mark("connection")
    try:
        row = await store.intake_async(conn, values)
    finally:
        await pool.putconn(conn)
    phases.mark("statement")
    return _reported(row, sent)


def _report_values(principal: Principal, sent: Report, workflow: Workflow, *,
                   client: str | None, photos: int) -> dict[str, Any]:
    """The checked report as the values of ``intake.sql``."""
    if principal.role.value not in ("admin", "dispatcher", "grid_worker"):
        if not principal.signed_in:
            from gridmap.access import NotSignedIn

            raise NotSignedIn("sign in to report an incident")
        raise Forbidden(f"the {principal.role.value} role may not report incidents")
    category = workflow.category(sent.category)
    description = _clean(sent.description, "description", 2000) or ""
    reporter = _clean(sent.reporter, "reporter", 200)
    if not (math.isfinite(sent.lon) and math.isfinite(sent.lat)):
        raise IncidentError("lon and lat must be finite numbers")
    if photos > MAX_PHOTOS:
        raise IncidentError(f"{photos} photos: {MAX_PHOTOS} at most with one report")
    lon, lat = to_wgs84(sent.lon, sent.lat, sent.crs)
    at = _now()
    urgent = category.urgent if sent.urgent is None else sent.urgent
    return {
        "lon": lon, "lat": lat, "scope": scope_param(principal.scope),
        "id_prefix": f"C{at:%Y%m%d}", "category": category.code, "description": description,
        "at": at, "reporter": reporter, "urgent": urgent,
        "dispatch_due": at + timedelta(minutes=rules.DISPATCH_MINUTES[urgent]),
        "actor": principal.name, "role": principal.role.value,
        "client": Actor.of(principal, client).client, "target": "POST /api/incidents"}


def _reported(row: dict[str, Any] | None, sent: Report) -> tuple[dict[str, Any], list[str]]:
    """The case and its warnings from ``intake.sql``'s row, or why there is none."""
    if row is None:
        raise IncidentError(f"({sent.lon}, {sent.lat}) is outside every township of the "
                            "district: check the coordinates and their system (crs)")
    if row["id"] is None:
        raise NotVisible("the point is in none of your divisions")
    warnings = list(row.pop("warnings"))
    for key in ("urban_rural", "candidates", "visible", "photos"):
        row.pop(key)
    return row, warnings


def act(engine: Engine, principal: Principal, incident_id: str, action: rules.Action,
        workflow: Workflow, *, version: int | None, note: str | None = None,
        assignee: str | None = None, client: str | None, photos: Sequence[Photo] = ()
        ) -> dict[str, Any]:
    """Take one step of the workflow on a case the caller read at *version* (``If-Match``),
    with the *photos* taken (a feed-back shows the work done).
    Dispatching starts the handling clock (the category's limit in working time on the
    deployment's calendar); a feed-back starts the verification clock (1 h in cities, 2 h in
    the countryside)."""
    _require_role(principal, action)
    if version is None:
        raise VersionRequired("send If-Match with the ETag of the case as you read it, so "
                              "that a change made meanwhile is not overwritten")
    note = _clean(note, "note", 2000)
    if action in rules.NEEDS_REASON and not note:
        raise IncidentError(f"say why in note: a {action.value} needs a reason")
    if len(photos) > MAX_PHOTOS:
        raise IncidentError(f"{len(photos)} photos: {MAX_PHOTOS} at most with one step")
    staged = workflow.photos.stage(photos) if photos else None
    try:
        return _act(engine, principal, incident_id, action, workflow, version=version,
                    note=note, assignee=assignee, client=client, staged=staged)
    except BaseException:
        if staged is not None:
            staged.discard()
        raise


def _act(engine: Engine, principal: Principal, incident_id: str, action: rules.Action,
         workflow: Workflow, *, version: int, note: str | None, assignee: str | None,
         client: str | None, staged: Staged | None) -> dict[str, Any]:
    with engine.begin() as conn:
        case = _locked(conn, principal, incident_id)
        if case["version"] != version:
            raise StaleVersion(f"case {incident_id} changed since you read it (version "
                               f"{version}, now {case['version']}): read it again")
        stage = rules.Stage(case["status"])
        try:
            after = rules.next_stage(stage, action)
        except rules.IllegalTransition as exc:
            raise IllegalStep(str(exc), [a.value for a in exc.allowed]) from exc
        now = _now()
        values: dict[str, Any] = {"status": after.value}
        category = workflow.category(case["category"])
        if action == rules.Action.dispatch:
            if assignee is not None:
                _check_assignee(conn, case, assignee)
                values["assignee"] = assignee
            if case["grid_code"] is None:
                raise IncidentError("route the case to a grid before dispatching it "
                                    "(POST …/route)")
            values["handle_due"] = deadline(now, category.limit, category.limit_unit,
                                            workflow.calendar)
        elif action == rules.Action.feed_back:
            route = store.route_grid(conn, case["grid_code"]) if case["grid_code"] else None
            hours = rules.VERIFY_HOURS.get((route.urban_rural if route else None) or "urban", 1)
            values["verify_due"] = now + timedelta(hours=hours)
        elif action == rules.Action.close:
            values["closed_at"] = now
        store.update_incident(conn, incident_id, values)
        event_id = store.insert_event(conn, {
            "incident_id": incident_id, "actor": principal.name, "role": principal.role.value,
            "action": action.value, "from_stage": stage.value, "to_stage": after.value,
            "grid_code": case["grid_code"], "assignee": values.get("assignee",
                                                                     case["assignee"]),
            "note": note})
        said = [system_note("step", stage=stage.value, stage2=after.value)]
        if staged:
            said.append(system_note("photos", count=len(staged.ids)))
        accounts.insert_audit(conn, [audit_entry(
            Actor.of(principal, client), "write", f"POST /api/incidents/{incident_id}/actions",
            divisions=[case["grid_code"] or case["township_code"]], row_ids=[incident_id],
            detail=said)])
        updated = store.read_incident(conn, incident_id, principal.scope)
        if staged is not None:
            photo_store.insert_photos(conn, staged.rows(incident_id, event_id,
                                                        principal.name))
            staged.place()  # last: a failure above leaves nothing in place
    assert updated is not None
    return updated


def reroute(engine: Engine, principal: Principal, incident_id: str, grid_code: str, *,
            version: int | None, reason: str | None, client: str | None) -> dict[str, Any]:
    """Route a case to another grid (a point near an edge, or outside every grid), with a
    reason. The new grid must be the caller's too."""
    _require_role(principal, rules.Action.dispatch)
    if version is None:
        raise VersionRequired("send If-Match with the ETag of the case as you read it")
    reason = _clean(reason, "reason", 2000)
    if not reason:
        raise IncidentError("say why in reason: re-routing needs a reason")
    with engine.begin() as conn:
        case = _locked(conn, principal, incident_id)
        if case["version"] != version:
            raise StaleVersion(f"case {incident_id} changed since you read it (version "
                               f"{version}, now {case['version']}): read it again")
        if rules.Stage(case["status"]) in FINISHED:
            raise IllegalStep(f"a {case['status']} case is not routed any more", [])
        route = store.route_grid(conn, grid_code)
        if route is None or not principal.scope.covers(grid_code):
            raise NotVisible(f"no grid {grid_code} among yours")
        store.update_incident(conn, incident_id, {
            "grid_code": grid_code, "community_code": route.community_code,
            "township_code": route.township_code, "assignee": route.assignee})
        store.insert_event(conn, {
            "incident_id": incident_id, "actor": principal.name, "role": principal.role.value,
            "action": "route", "from_stage": case["status"], "to_stage": case["status"],
            "grid_code": grid_code, "assignee": route.assignee, "note": reason})
        accounts.insert_audit(conn, [audit_entry(
            Actor.of(principal, client), "write", f"POST /api/incidents/{incident_id}/route",
            divisions=[grid_code], row_ids=[incident_id],
            detail=f"{case['grid_code'] or case['township_code']} → {grid_code}")])
        updated = store.read_incident(conn, incident_id, principal.scope)
    assert updated is not None
    return updated


def _locked(conn: Connection, principal: Principal, incident_id: str) -> dict[str, Any]:
    case = store.lock(conn, incident_id, principal.scope)
    if case is None:
        raise NotVisible(f"no case {incident_id!r} among yours")
    return case


def _check_assignee(conn: Connection, case: dict[str, Any], worker: str) -> None:
    from sqlalchemy import select

    from gridmap.store import tables

    w = tables.grid_worker.c
    row = conn.execute(select(w.grid_code, w.division_code).where(w.id == worker)).first()
    if row is None or (row.grid_code or "").strip() != case["grid_code"]:
        raise IncidentError(f"worker {worker!r} does not work in grid {case['grid_code']}")


def present(case: dict[str, Any], principal: Principal) -> dict[str, Any]:
    """A case as the caller's role may see it (description and reporter masked or left
    out); ``overdue`` lists the deadlines that have passed."""
    rules_ = principal.fields
    out = dict(case)
    if rules_.incident_description == Show.hidden:
        out.pop("description", None)
        out.pop("photos", None)
    if rules_.reporter == Show.hidden:
        out.pop("reporter", None)
    now = _now()
    stage = case["status"]
    held = rules.STAGE_DEADLINES.get(rules.Stage(stage))
    due = case.get(held[1]) if held else None
    out["overdue"] = [held[0]] if held and due is not None and due < now else []
    out["next_actions"] = [a.value for a in rules.allowed_actions(rules.Stage(stage))
                           if rules.may_act(principal.role.value, a)]
    return out


def read(conn: Connection, principal: Principal, incident_id: str, *,
         language: i18n.Language | None = None
         ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A case and its timeline, each step with the ids of the photos taken with it and its
    note in *language* (:func:`timeline_notes`); the case's ``photos`` (for a role that may
    see them, see :func:`sees_photos`)."""
    case = store.read_incident(conn, incident_id, principal.scope)
    if case is None:
        raise NotVisible(f"no case {incident_id!r} among yours")
    timeline = timeline_notes(store.read_timeline(conn, incident_id), language)
    photos = photo_store.read_photos(conn, [incident_id]) if sees_photos(principal) else []
    for event in timeline:
        event["photos"] = [p["id"] for p in photos if p["event_id"] == event["id"]]
    case["photos"] = photos
    return case, timeline


def timeline_notes(timeline: list[dict[str, Any]], language: i18n.Language | None = None
                   ) -> list[dict[str, Any]]:
    """The steps of a timeline with their ``note`` for a reader of *language* (the current
    one by default): what gridmap wrote in that language, a person's note as written."""
    for event in timeline:
        event["note"] = i18n.render_notes(event.pop("notes", None), event["note"], language)
    return timeline


def sees_photos(principal: Principal) -> bool:
    """Photos show what the description tells (and often people, plates, house numbers):
    the roles that read descriptions see them."""
    return principal.fields.incident_description != Show.hidden


def photo(conn: Connection, principal: Principal, workflow: Workflow, incident_id: str,
          photo_id: str) -> tuple[Path, str]:
    """The file and media type of a photo of a case the caller may see."""
    if store.read_incident(conn, incident_id, principal.scope) is None:
        raise NotVisible(f"no case {incident_id!r} among yours")
    if not sees_photos(principal):
        raise Forbidden(f"the {principal.role.value} role may not see incident photos")
    row = photo_store.read_photo(conn, incident_id, photo_id)
    if row is None:
        raise NotVisible(f"case {incident_id} has no photo {photo_id!r}")
    return workflow.photos.path(photo_id, row["media_type"]), row["media_type"]


def escalate_overdue(engine: Engine, *, now: datetime | None = None, warn_minutes: int = 60,
                     tz: str = "Asia/Shanghai") -> list[tuple[str, str]]:
    """One round of the overdue job: warn the worker of each case within *warn_minutes* of
    the deadline of its stage, and escalate (超期督办) each case past it to the supervisor
    of its township — once per case, stage and deadline (the timeline is the job's state).
    Returns (case, action) of what it appended."""
    with engine.begin() as conn:
        return store.escalate_overdue(conn, now or _now(), warn_minutes=warn_minutes, tz=tz)


def orphan_photos(engine: Engine, files: PhotoFiles, *, older_than: timedelta
                  ) -> list[Path]:
    """Files of the photo folder without a row, last changed more than *older_than* ago:
    what a machine that stopped between placing a step's photos and committing it leaves
    (and staged ``.part`` files of a process that died). Younger files are left alone: their
    transaction may still be running."""
    cutoff = (_now() - older_than).timestamp()
    found = [(photo_id, path) for photo_id, path, mtime in files.files() if mtime < cutoff]
    known: set[str] = set()
    with engine.connect() as conn:
        for start in range(0, len(found), 1000):
            known |= photo_store.known_ids(conn, [i for i, _ in found[start:start + 1000]])
    return [path for photo_id, path in found
            if path.name.endswith(".part") or photo_id not in known]


class OverdueJob:
    """Runs :func:`escalate_overdue` every *interval* seconds in a background thread of the
    service. Its state is in PostgreSQL, so a restart, or several server processes, change
    nothing; a round that fails (the database is away) is logged once and tried again."""

    def __init__(self, engine: Engine, *, interval: float, warn_minutes: int, tz: str) -> None:
        import threading

        self.engine, self.interval, self.warn_minutes, self.tz = (
            engine, interval, warn_minutes, tz)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gridmap-overdue", daemon=True)
        self.rounds = 0
        self.failing = False

    def start(self) -> None:
        if self.interval > 0:
            self._thread.start()

    def _run(self) -> None:
        import logging

        log = logging.getLogger("gridmap")
        while not self._stop.wait(self.interval):
            try:
                done = escalate_overdue(self.engine, warn_minutes=self.warn_minutes,
                                        tz=self.tz)
            except Exception as exc:  # the database is away: say so once, try next round
                if not self.failing:
                    log.warning("overdue job: round failed (%s); retrying every %.0f s",
                                str(exc).splitlines()[0], self.interval)
                self.failing = True
                continue
            if self.failing:
                log.warning("overdue job: running again")
            self.failing = False
            self.rounds += 1
            if done:
                log.info("overdue job: %d warnings and escalations", len(done))

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
