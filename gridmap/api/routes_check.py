"""Partition validation and balance reports (made by the report workers: gridmap.reports)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from gridmap.api.deps import ReadsCounts
from gridmap.api.schemas import (
    REPORT_ERRORS,
    Feature,
    FeatureCollection,
    GeoJSONResponse,
    report_output,
)
from gridmap.domain.access import Resource
from gridmap.reports import CheckJob, CheckRules, CommunityMapJob

router = APIRouter(tags=["checks"])

CODE12 = r"^[0-9]{12}$"
CommunityQuery = Annotated[str | None, Query(
    pattern=CODE12, description="12-digit community code; all communities if absent")]


class GridBalance(BaseModel):
    code: str
    urban_rural: Literal["urban", "rural"] | str
    households: int
    residents: int
    band_low: int
    band_high: int
    status: str = Field(description="below, within, above or over_residents")
    excess: int = Field(description="households beyond the band (negative: below it)")
    residents_excess: int
    workers: int
    households_per_worker: float | None
    area_km2: float | None
    compactness: float | None = Field(description="Polsby-Popper: 1 is a circle")


class DefectProperties(BaseModel):
    defect: str = Field(description="invalid, gap, overlap, outside, multipart or sliver")
    community_code: str | None
    grid_code: str | None = Field(description="the grid at fault (null: a gap)")
    other_code: str | None = Field(description="the other grid of an overlap")
    area_m2: float | None
    detail: str | None


class DefectFeature(Feature):
    properties: DefectProperties  # type: ignore[assignment]


class DefectsPublic(FeatureCollection):
    """Partition defects, each located by its geometry (WGS 84)."""

    features: list[DefectFeature]  # type: ignore[assignment]


class CheckPublic(BaseModel):
    defects: DefectsPublic = Field(description="partition defects (gaps, overlaps, "
                                       "spill-over, pieces, slivers), located")
    balance: list[GridBalance]
    grids_outside_band: int
    households_outside_grids: int


def _rules(request: Request) -> CheckRules:
    settings = request.app.state.settings
    return CheckRules(standard=settings.standard, tolerance_m=settings.check_tolerance_m,
                      min_area_m2=settings.check_min_area_m2)


@router.get("/api/check", response_model=CheckPublic, responses=REPORT_ERRORS)
async def get_check(request: Request, caller: ReadsCounts, community: CommunityQuery = None
                    ) -> Response:
    """Partition defects (GeoJSON, located) and per-grid balance against the standard, of
    the communities wholly among the caller's divisions. Made by a report worker and kept
    until the data changes."""
    caller.require_code(community, whole=True)  # a check needs all of its grids
    job = CheckJob(community, caller.scope, _rules(request))
    return await report_output(request, caller, job)


@router.get("/api/check.geojson", response_class=GeoJSONResponse, responses={
    200: {"model": DefectsPublic}, **REPORT_ERRORS})
async def get_check_geojson(request: Request, caller: ReadsCounts,
                            community: CommunityQuery = None) -> Any:
    """The partition defects alone, as GeoJSON to open in QGIS."""
    caller.require_code(community, whole=True)
    job = CheckJob(community, caller.scope, _rules(request), form="geojson")
    return await report_output(request, caller, job)


@router.get("/maps/community/{community}", response_class=Response, responses={
    200: {"content": {"text/html": {}}}, **REPORT_ERRORS})
async def community_page(request: Request, caller: ReadsCounts,
                         community: Annotated[str, Path(pattern=CODE12)]) -> Response:
    """A folium map of one community: grids by load against the standard, partition defects,
    facilities."""
    caller.require_code(community, whole=True)
    job = CommunityMapJob(community, caller.scope, _rules(request),
                          facilities=caller.may(Resource.facilities))
    return await report_output(request, caller, job)
