"""Drafts of a community's (or a township's) grids: open, edit with live statistics, undo and
redo, compare with the published grids, submit, approve, publish, abandon.

GeoJSON in and out (EPSG:4326, longitude first), the statistics in every answer, so a map
page can redraw after each edit. Every change names the revision it builds on (``If-Match``
with the draft's ``ETag``): a change to a draft someone else changed meanwhile is a 412,
never a silent overwrite.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from gridmap import drafts
from gridmap.analysis.drafting import DraftGrid
from gridmap.api.deps import CallerDep, ConnDep, client_of
from gridmap.api.routes_plans import GridChange, Moved
from gridmap.api.schemas import link

router = APIRouter(prefix="/api/drafts", tags=["drafts"])
DraftId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The draft's number")]
IfMatch = Annotated[str | None, Header(
    description="The draft's ETag as last read: a change over a newer revision is a 412")]
ETAG = re.compile(r'^(?:W/)?"?d(\d+)-r(\d+)"?$')
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such draft among the caller's"},
    409: {"description": "the draft's status does not allow this, or a community of the "
                         "draft was published since it was opened"},
    412: {"description": "the draft changed since the caller read it (If-Match)"},
    422: {"description": "the request cannot be carried out as sent; the detail says why"}}
DRAFT = "/api/drafts/{draft}"
_HERE = {"path.draft": "$response.body#/draft/id"}
_OVER = {**_HERE, "header.if-match": "$response.header.ETag"}
# what a planner does next with a draft it was answered (its id, the ETag of this revision)
DRAFT_LINKS = {
    "GetDraft": link(DRAFT, "get", "the draft again", _HERE),
    "EditDraft": link(f"{DRAFT}/edits", "post", "one more edit, over this revision", _OVER),
    "GetEdits": link(f"{DRAFT}/edits", "get", "the edits so far", _HERE),
    "UndoEdit": link(f"{DRAFT}/undo", "post", "undo the last edit", _OVER),
    "RedoEdit": link(f"{DRAFT}/redo", "post", "redo the edit undone last", _OVER),
    "DiffDraft": link(f"{DRAFT}/diff", "get", "what publishing would change", _HERE),
    "SubmitDraft": link(f"{DRAFT}/submit", "post", "submit it for approval", _OVER),
}


class DraftSummary(BaseModel):
    id: int
    area_code: str
    title: str
    status: Literal["open", "submitted", "approved", "published", "abandoned"]
    revision: int
    author: str
    created_at: datetime
    updated_at: datetime
    submitted_by: str | None
    submitted_at: datetime | None
    submit_note: str | None
    approved_by: str | None
    approved_at: datetime | None
    published_by: str | None
    published_at: datetime | None
    closing_note: str | None


class GridStats(BaseModel):
    code: str
    name: str
    kind: str
    community_code: str
    parent_grid_code: str | None
    locked: bool
    households: int
    residents: int
    vulnerable_households: int = Field(description="households with any care flag")
    workers: int
    full_time_workers: int
    band_low: int
    band_high: int
    status: str = Field(description="below, within, above, over_residents (the standard's "
                        "band), not_banded (exclusive grids)")
    compactness: float = Field(description="Polsby-Popper, 1 = a circle")
    area_km2: float


class DefectPublic(BaseModel):
    defect: str = Field(description="invalid, gap, overlap, outside, multipart, sliver")
    community_code: str | None
    grid_code: str | None
    other_code: str | None
    area_m2: float
    detail: str | None
    geometry: dict[str, Any] = Field(description="GeoJSON, where the defect is")


class StatsPublic(BaseModel):
    grids: list[GridStats]
    defects: list[DefectPublic]
    households_outside: int = Field(description="households of the area in no grid")
    blocking: list[str] = Field(description="what stops publishing: gaps, overlaps, "
                                "spill-over")
    warnings: list[str] = Field(description="what submitting must acknowledge with a note")
    publishable: bool
    server_ms: float = Field(description="time the statistics took on the server")


class WorkerPlace(BaseModel):
    id: str
    role: str
    grid_code: str | None = Field(description="the draft's grid for the worker")
    published_grid_code: str | None


class DraftPublic(BaseModel):
    draft: DraftSummary
    communities: list[str]
    grids: dict[str, Any] = Field(description="GeoJSON FeatureCollection of the draft grids")
    workers: list[WorkerPlace]
    stats: StatsPublic
    can_undo: bool
    can_redo: bool
    changed: list[str] = Field(description="codes of the grids the last edit changed")


class DraftCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    area: str = Field(pattern=r"^[0-9]{6}([0-9]{2}[1-9]|[0-9][1-9][0-9]|[1-9][0-9]{2})[0-9]{3}$",
                      description="community or township code (12 digits; a county's, "
                      "ending in 000000, has no grids of its own)")
    title: str = Field(min_length=1, max_length=200)


class Edit(BaseModel):
    """One edit; which fields it takes depends on ``op``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"op": "split", "grid": "610199001001001",
         "line": {"type": "LineString", "coordinates": [[109.0, 34.2], [109.01, 34.21]]}},
        {"op": "merge", "grids": ["610199001001001", "610199001001002"]},
        {"op": "move_vertex", "at": [109.001, 34.2], "to": [109.0012, 34.2003]},
        {"op": "paint", "grid": "610199001001001", "cells": ["8a4a1072b59ffff"]},
        {"op": "assign_worker", "worker": "W0001", "grid": "610199001001001"}]})
    op: Literal["split", "merge", "move_vertex", "paint", "add_micro", "remove_micro",
                "assign_worker", "lock"]
    grid: str | None = Field(None, pattern=r"^[0-9]{15}$")
    grids: list[Annotated[str, Field(pattern=r"^[0-9]{15}$")]] | None = Field(
        None, max_length=50)
    parent: str | None = Field(None, pattern=r"^[0-9]{15}$")
    line: dict[str, Any] | None = Field(None, description="GeoJSON LineString (split)")
    area: dict[str, Any] | None = Field(None, description="GeoJSON Polygon (paint, "
                                        "add_micro)")
    cells: list[Annotated[str, Field(max_length=20)]] | None = Field(
        None, max_length=10_000, description="H3 cells (paint)")
    at: tuple[float, float] | None = Field(None, description="[lon, lat] of the vertex")
    to: tuple[float, float] | None = Field(None, description="[lon, lat] to move it to")
    worker: str | None = Field(None, max_length=200)
    name: str | None = Field(None, max_length=200)
    locked: bool | None = None


class Submit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(None, max_length=2000, description="why the warnings are "
                             "acceptable (required when there are warnings)")
    acknowledge: bool = Field(False, description="the warnings were read")


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(None, max_length=2000)


class EditLogEntry(BaseModel):
    seq: int
    op: str
    params: dict[str, Any]
    author: str | None
    at: datetime
    undone: bool


class DraftDiffPublic(BaseModel):
    draft: int
    grids: list[GridChange]
    households_moved: int
    households: list[Moved]
    incidents_moved: int
    incidents: list[Moved]
    workers: list[Moved] = Field(description="workers the draft moves (id, from, to)")


class PublishedPublic(BaseModel):
    draft: int
    published: int = Field(description="community versions published")
    grids: list[GridChange]
    moved: dict[str, int] = Field(description="points whose grid changed, per layer")
    workers_moved: int
    workers_detached: int


def etag(draft: int, revision: int) -> str:
    return f'"d{draft}-r{revision}"'


def expected_revision(draft: int, if_match: str | None) -> int | None:
    if if_match is None:
        return None
    found = ETAG.match(if_match.strip())
    if found is None or int(found.group(1)) != draft:
        raise drafts.StaleRevision(f"If-Match {if_match!r} is not an ETag of draft {draft}: "
                                   "send the ETag its last answer carried", -1)
    return int(found.group(2))


def _summary(row: dict[str, Any]) -> DraftSummary:
    return DraftSummary(**{k: row[k] for k in DraftSummary.model_fields})


def _geojson(value: Any) -> dict[str, Any]:
    import shapely

    out: dict[str, Any] = json.loads(shapely.to_geojson(value))
    return out


def grid_feature(grid: DraftGrid) -> dict[str, Any]:
    """A draft grid as a GeoJSON Feature (lon/lat, full precision: sent back unchanged, it
    changes nothing)."""
    return {"type": "Feature", "id": grid.code, "geometry": _geojson(grid.geom),
            "properties": {"code": grid.code, "name": grid.name, "kind": grid.kind,
                           "community_code": grid.community_code,
                           "parent_grid_code": grid.parent_grid_code, "locked": grid.locked}}


def draft_public(view: drafts.DraftView) -> DraftPublic:
    features = [grid_feature(g) for g in view.grids.values()]
    stats = view.stats
    grids = [GridStats(**{**{k: r[k] for k in GridStats.model_fields
                             if k != "vulnerable_households"},
                          "vulnerable_households": r["vulnerable"]}) for r in stats.grids]
    defects = [DefectPublic(defect=r["defect"], community_code=r["community_code"],
                            grid_code=r["grid_code"], other_code=r["other_code"],
                            area_m2=r["area_m2"], detail=r["detail"],
                            geometry=_geojson(r["geometry"]))
               for r in stats.defects]
    return DraftPublic(
        draft=_summary(view.draft), communities=view.communities,
        grids={"type": "FeatureCollection", "features": features},
        workers=[WorkerPlace(id=w, role=v["role"], grid_code=v["grid"],
                             published_grid_code=v["base"]) for w, v in view.workers.items()],
        stats=StatsPublic(grids=grids, defects=defects,
                          households_outside=stats.households_outside,
                          blocking=stats.blocking, warnings=stats.warnings,
                          publishable=not stats.blocking,
                          server_ms=round(stats.seconds * 1000, 2)),
        can_undo=view.can_undo, can_redo=view.can_redo, changed=view.changed)


def _options(request: Request) -> dict[str, Any]:
    s = request.app.state.settings
    return {"standard": s.standard, "tolerance": s.check_tolerance_m,
            "min_area": s.check_min_area_m2}


def _answer(response: Response, view: drafts.DraftView) -> DraftPublic:
    response.headers["ETag"] = etag(int(view.draft["id"]), view.revision)
    return draft_public(view)


@router.get("")
def list_drafts(conn: ConnDep, caller: CallerDep,
                status: Annotated[Literal["open", "submitted", "approved", "published",
                                          "abandoned"] | None, Query()] = None
                ) -> list[DraftSummary]:
    """The drafts of the caller's divisions, newest first (planners and admins)."""
    return [_summary(r) for r in drafts.list_drafts(conn, caller, status)]


@router.post("", status_code=201, responses={
    201: {"description": "the new draft (Location, ETag)", "links": DRAFT_LINKS},
    404: {"description": "no such community or township among the caller's"},
    422: {"description": "not a community or township code, or a bad title"}})
async def create_draft(request: Request, response: Response, caller: CallerDep,
                       body: DraftCreate) -> DraftPublic:
    """Open a draft of a community (or of a township, to move grids between its
    communities), starting from the published grids and workers."""
    state = request.app.state
    draft = await run_in_threadpool(drafts.open_draft, state.engine, caller, body.area,
                                    title=body.title, client=client_of(request))

    def read() -> drafts.DraftView:
        with state.engine.connect() as conn:
            return drafts.show(conn, caller, draft, state.drafts, **_options(request))

    view = await run_in_threadpool(read)
    response.headers["Location"] = f"/api/drafts/{draft}"
    return _answer(response, view)


@router.get("/{draft}", responses={200: {"links": DRAFT_LINKS}, 404: ERRORS[404]})
def get_draft(request: Request, response: Response, conn: ConnDep, caller: CallerDep,
              draft: DraftId) -> DraftPublic:
    """A draft: its grids (GeoJSON), workers, statistics and defects; the ETag to send
    back with the next change."""
    view = drafts.show(conn, caller, draft, request.app.state.drafts, **_options(request))
    return _answer(response, view)


@router.post("/{draft}/edits", responses={**ERRORS, 200: {"links": DRAFT_LINKS}, 428: {
    "description": "If-Match is missing"}})
async def post_edit(request: Request, response: Response, caller: CallerDep, draft: DraftId,
                    body: Edit, if_match: IfMatch = None) -> DraftPublic:
    """Apply one edit (split, merge, move_vertex, paint, add_micro, remove_micro,
    assign_worker, lock) and answer with the draft and its new statistics."""
    params = body.model_dump(exclude_unset=True, exclude={"op"})
    for key in ("at", "to"):
        if key in params and params[key] is not None:
            params[key] = list(params[key])
    state = request.app.state
    view = await run_in_threadpool(
        drafts.edit, state.engine, caller, draft, body.op, params, state.drafts,
        expected=expected_revision(draft, if_match), client=client_of(request),
        **_options(request))
    return _answer(response, view)


@router.get("/{draft}/edits", responses={404: ERRORS[404]})
def get_edits(conn: ConnDep, caller: CallerDep, draft: DraftId) -> list[EditLogEntry]:
    """The draft's edits in order; undone ones are marked (a redo brings them back)."""
    return [EditLogEntry(**e) for e in drafts.history(conn, caller, draft)]


async def _undo(request: Request, response: Response, caller: CallerDep, draft: int,
                if_match: str | None, redo: bool) -> DraftPublic:
    state = request.app.state
    view = await run_in_threadpool(
        drafts.undo, state.engine, caller, draft, state.drafts, redo=redo,
        expected=expected_revision(draft, if_match), client=client_of(request),
        **_options(request))
    return _answer(response, view)


@router.post("/{draft}/undo", responses={**ERRORS, 200: {"links": DRAFT_LINKS},
                                         428: {"description": "If-Match missing"}})
async def post_undo(request: Request, response: Response, caller: CallerDep, draft: DraftId,
                    if_match: IfMatch = None) -> DraftPublic:
    """Undo the draft's last edit."""
    return await _undo(request, response, caller, draft, if_match, False)


@router.post("/{draft}/redo", responses={**ERRORS, 200: {"links": DRAFT_LINKS},
                                         428: {"description": "If-Match missing"}})
async def post_redo(request: Request, response: Response, caller: CallerDep, draft: DraftId,
                    if_match: IfMatch = None) -> DraftPublic:
    """Redo the edit undone last."""
    return await _undo(request, response, caller, draft, if_match, True)


@router.get("/{draft}/diff", responses={404: ERRORS[404]})
def get_diff(request: Request, conn: ConnDep, caller: CallerDep, draft: DraftId
             ) -> DraftDiffPublic:
    """What publishing the draft would change: grids added, retired, reshaped or renamed;
    the households and incidents that would change grid; the workers it moves."""
    d = drafts.diff(conn, caller, draft, request.app.state.drafts)

    def moved(rows: list[tuple[str, str | None, str | None]]) -> list[Moved]:
        return [Moved(id=i, from_grid=f, to_grid=t) for i, f, t in rows]

    return DraftDiffPublic(draft=draft, grids=[GridChange(code=c, change=ch)
                                               for c, ch in d.grids],
                           households_moved=len(d.households), households=moved(d.households),
                           incidents_moved=len(d.incidents), incidents=moved(d.incidents),
                           workers=moved(d.workers))


@router.post("/{draft}/submit", responses=ERRORS)
async def post_submit(request: Request, response: Response, caller: CallerDep,
                      draft: DraftId, body: Submit, if_match: IfMatch = None) -> DraftPublic:
    """Submit the draft for approval: gaps, overlaps and spill-over block it; warnings (band,
    grids without a full-time worker) must be acknowledged with a note. Approves it too when
    the deployment approves in one step."""
    state = request.app.state
    view = await run_in_threadpool(
        drafts.submit, state.engine, caller, draft, state.drafts, note=body.note,
        acknowledge=body.acknowledge, expected=expected_revision(draft, if_match),
        client=client_of(request), one_step=state.settings.draft_approval == "one_step",
        **_options(request))
    return _answer(response, view)


async def _decide(request: Request, response: Response, caller: CallerDep, draft: int,
                  body: Decision, if_match: str | None, approve: bool) -> DraftSummary:
    row = await run_in_threadpool(
        drafts.decide, request.app.state.engine, caller, draft, approve=approve,
        note=body.note, expected=expected_revision(draft, if_match),
        client=client_of(request))
    response.headers["ETag"] = etag(draft, int(row["revision"]))
    return _summary(row)


@router.post("/{draft}/approve", responses={**ERRORS, 403: {
    "description": "not an admin or a planner holding the county, or the submitter"}})
async def post_approve(request: Request, response: Response, caller: CallerDep,
                       draft: DraftId, body: Decision, if_match: IfMatch = None
                       ) -> DraftSummary:
    """Approve a submitted draft (an admin, or a planner holding the county; not the one who
    submitted it)."""
    return await _decide(request, response, caller, draft, body, if_match, True)


@router.post("/{draft}/send-back", responses={**ERRORS, 403: {
    "description": "not an admin or a planner holding the county, or the submitter"}})
async def post_send_back(request: Request, response: Response, caller: CallerDep,
                         draft: DraftId, body: Decision, if_match: IfMatch = None
                         ) -> DraftSummary:
    """Send a submitted draft back to its author (open again), with a note saying why."""
    return await _decide(request, response, caller, draft, body, if_match, False)


@router.post("/{draft}/publish", responses=ERRORS)
async def post_publish(request: Request, caller: CallerDep, draft: DraftId,
                       if_match: IfMatch = None) -> PublishedPublic:
    """Publish an approved draft in one transaction: new versions, stable codes, points
    re-assigned, workers moved; locate, tiles and counts agree on the next request. A draft
    whose communities were published since it was opened is refused (409)."""
    state = request.app.state
    done = await run_in_threadpool(
        drafts.publish, state.engine, caller, draft, state.drafts,
        expected=expected_revision(draft, if_match), client=client_of(request),
        **_options(request))
    return PublishedPublic(draft=draft, published=done.versions,
                           grids=[GridChange(code=c, change=ch) for c, ch in done.diff.grids],
                           moved=done.diff.moved, workers_moved=done.workers_moved,
                           workers_detached=done.diff.workers_detached)


@router.post("/{draft}/abandon", responses=ERRORS)
async def post_abandon(request: Request, response: Response, caller: CallerDep,
                       draft: DraftId, body: Decision, if_match: IfMatch = None
                       ) -> DraftSummary:
    """Abandon a draft (its grids and edits stay readable; nothing is published)."""
    row = await run_in_threadpool(
        drafts.abandon, request.app.state.engine, caller, draft, note=body.note,
        expected=expected_revision(draft, if_match), client=client_of(request))
    response.headers["ETag"] = etag(draft, int(row["revision"]))
    return _summary(row)
