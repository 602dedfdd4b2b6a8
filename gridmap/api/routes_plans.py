"""A community's grid versions: the history, the difference between two versions (a table;
the map shows it from the same answer), and undoing a publish by restoring a version."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from gridmap import plans
from gridmap.api.deps import CallerDep, ConnDep, ReadsBoundaries, client_of
from gridmap.api.errors import language_of
from gridmap.domain.access import Resource

router = APIRouter(prefix="/api/communities", tags=["plans"])
Community = Annotated[str, Path(pattern=r"^[0-9]{12}$", description="12-digit community code")]


class VersionPublic(BaseModel):
    version: int
    valid_from: datetime
    valid_to: datetime | None
    note: str | None
    author: str | None
    approver: str | None
    restored_from: int | None
    grids: int


class GridChange(BaseModel):
    code: str
    change: str = Field(description="added, retired, reshaped or renamed")


class Moved(BaseModel):
    id: str
    from_grid: str | None
    to_grid: str | None


class DiffPublic(BaseModel):
    community: str
    from_version: int
    to_version: int
    grids: list[GridChange]
    households_moved: int
    households: list[Moved] | None = Field(
        None, description="each household that changes grid (for roles that read households)")
    incidents_moved: int
    workers_of_retired_grids: list[str]


class Restore(BaseModel):
    version: int = Field(ge=1, le=1_000_000)
    note: str = Field(min_length=1, max_length=2000, description="why")
    expected_version: int | None = Field(
        None, ge=1, le=1_000_000,
        description="the current version as the caller saw it: a restore over a newer "
        "publish is refused (412)")


class Restored(BaseModel):
    community: str
    published: int = Field(description="versions published (0: it is the current one)")
    grids: list[GridChange]
    moved: dict[str, int] = Field(description="points whose grid changed, per layer")
    workers_detached: int


@router.get("/{community}/versions")
def get_versions(request: Request, conn: ConnDep, caller: ReadsBoundaries,
                 community: Community) -> list[VersionPublic]:
    """Every published version of a community's grids, newest first, with its note (what
    gridmap wrote in the caller's language) and author."""
    return [VersionPublic(**v) for v in plans.history(conn, caller, community,
                                                      language=language_of(request))]


@router.get("/{community}/diff")
def get_diff(conn: ConnDep, caller: ReadsBoundaries, community: Community,
             from_: Annotated[int, Query(alias="from", ge=1, le=1_000_000)],
             to: Annotated[int | None, Query(ge=1, le=1_000_000,
                                             description="the current version if absent")]
             = None) -> DiffPublic:
    """What changed between two versions: grids added, retired, reshaped or renamed; the
    households and incidents that change grid; the workers of retired grids."""
    d = plans.diff(conn, caller, community, from_, to)
    households = None
    if caller.may(Resource.households):
        households = [Moved(id=i, from_grid=f, to_grid=t) for i, f, t in d.households
                      if caller.scope.covers(f) or caller.scope.covers(t)]
    return DiffPublic(
        community=community, from_version=d.from_version, to_version=d.to_version,
        grids=[GridChange(code=c, change=ch) for c, ch in d.grids],
        households_moved=len(d.households), households=households,
        incidents_moved=len(d.incidents), workers_of_retired_grids=d.workers)


@router.post("/{community}/restore", responses={
    404: {"description": "no such community or version among the caller's"},
    412: {"description": "the community was published again since"},
    422: {"description": "the restored grids would not partition the community"}})
async def post_restore(request: Request, caller: CallerDep, community: Community,
                       body: Restore) -> Restored:
    """Undo a publish: publish a new version equal to an earlier one — the same grids under
    their codes — checked and re-assigned like any publish (planners of the whole community,
    admins)."""
    settings = request.app.state.settings
    published, changes = await run_in_threadpool(
        plans.restore, request.app.state.engine, caller, community, body.version,
        note=body.note, expected=body.expected_version, client=client_of(request),
        tolerance=settings.check_tolerance_m, min_area=settings.check_min_area_m2)
    return Restored(community=community, published=published,
                    grids=[GridChange(code=c, change=ch) for c, ch in changes.grids],
                    moved=changes.moved, workers_detached=changes.workers_detached)
