"""Facility coverage: reports, the people out of reach, and a map (made by the report
workers: gridmap.reports)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from gridmap.access import Forbidden
from gridmap.analysis.coverage import MAX_DISTANCE_M
from gridmap.api.deps import ReadsCounts, ReadsHouseholds
from gridmap.api.errors import error
from gridmap.api.schemas import (
    REPORT_ERRORS,
    Feature,
    FeatureCollection,
    GeoJSONResponse,
    Link,
    report_output,
)
from gridmap.domain.access import Resource, Show, household_fields_shown
from gridmap.domain.lifecircle import FACILITY_TYPES
from gridmap.reports import CoverageJob, CoverageMapJob, UncoveredJob

router = APIRouter(tags=["coverage"])

MAX_PAGE = 10_000
FacilityType = Literal[tuple(FACILITY_TYPES)]  # type: ignore[valid-type]
Division = Annotated[str | None, Query(pattern=r"^[0-9]{12}$", description="12-digit code "
                                       "of a county, township or community; everything if "
                                       "absent")]
Types = Annotated[list[FacilityType] | None, Query(  # type: ignore[valid-type]
    alias="type", description="facility type (repeatable); all if absent")]
Distance = Annotated[float | None, Query(gt=0, le=MAX_DISTANCE_M, description="metres; the "
                                         "type's life-circle distance if absent")]
Distances = Annotated[list[Annotated[float, Field(gt=0, le=MAX_DISTANCE_M)]] | None, Query(
    alias="distance", description="metres (repeatable); each type's life-circle distance "
    "if absent")]
MetricQ = Annotated[Literal["straight", "network"], Query(description="straight line or "
                                                          "along the walking network")]


class CoveragePublic(BaseModel):
    unit: str = Field(description="grid, community or township code; 'all'; 'outside' for "
                      "households outside every grid")
    type: str
    distance_m: float
    residents: int
    residents_covered: int
    households: int
    households_covered: int
    vulnerable: int = Field(description="residents of households with a care flag")
    vulnerable_covered: int
    residents_share: float | None = Field(description="null where there are no residents")
    households_share: float | None
    vulnerable_share: float | None


class UncoveredProperties(BaseModel):
    """A household out of reach: its fields as the caller's role may see them (hidden ones
    left out), and ``dist_<type>``, metres to the nearest facility of the type (null: none
    within reach of the search)."""

    model_config = ConfigDict(extra="allow")

    id: str


class UncoveredFeature(Feature):
    properties: UncoveredProperties  # type: ignore[assignment]


class UncoveredPage(FeatureCollection):
    """A page of the households out of reach."""

    features: list[UncoveredFeature]  # type: ignore[assignment]
    numberMatched: int = Field(description="households out of reach in all pages")
    numberReturned: int = Field(description="households in this page")
    links: list[Link] = Field(description="self; next and prev where there are more")


def _key(values: list[str] | list[float] | None) -> tuple:
    return tuple(values or ())


@router.get("/api/coverage", response_model=list[CoveragePublic], responses={
    **REPORT_ERRORS, 422: error("a bad parameter; metric=network without a walking network in "
                                "the store (gridmap load-network)")})
async def get_coverage(request: Request, caller: ReadsCounts, division: Division = None,
                       types: Types = None, distances: Distances = None,
                       metric: MetricQ = "straight",
                       level: Literal["grid", "community", "township", "all"] = "all"
                       ) -> Response:
    """Share of residents, households and vulnerable residents within reach, per unit and
    facility type and distance, over the households in the caller's divisions."""
    caller.require_code(division)
    job = CoverageJob(division, _key(types), _key(distances), metric, level, caller.scope)
    return await report_output(request, caller, job)


@router.get("/api/coverage/uncovered.geojson", response_class=GeoJSONResponse, responses={
    200: {"model": UncoveredPage}, **REPORT_ERRORS})
async def get_uncovered(request: Request, caller: ReadsHouseholds,
                        type_: Annotated[FacilityType, Query(alias="type")],  # type: ignore[valid-type]
                        distance: Distance = None, division: Division = None,
                        metric: MetricQ = "straight", vulnerable: bool = False,
                        limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description=(
                            f"households per page, at most {MAX_PAGE}"))] = 1000,
                        offset: Annotated[int, Query(ge=0, le=2**31)] = 0) -> Response:
    """The households (of the caller's divisions) out of reach of one facility type, as
    GeoJSON, a page at a time (``numberMatched``, ``next`` link); names, phones, addresses
    and care flags as the caller's role may see them."""
    if vulnerable and caller.fields.care_flags != Show.full:
        raise Forbidden(f"the {caller.role.value} role sees care flags only as counts per "
                        "grid (GET /api/coverage)")
    caller.require_code(division)
    settings = request.app.state.settings
    query = tuple((k, v) for k, v in request.query_params.multi_items() if k != "offset")
    job = UncoveredJob(type_, distance, division, metric, vulnerable, caller.scope,
                       caller.fields, bool(household_fields_shown(caller.fields)), limit,
                       offset, str(request.url.replace(query="")), query,
                       int(settings.report_page_mb * 1e6))
    return await report_output(request, caller, job)


@router.get("/maps/coverage", response_class=Response, responses={
    200: {"content": {"text/html": {}}}, **REPORT_ERRORS})
async def coverage_page(request: Request, caller: ReadsCounts,
                        type_: Annotated[FacilityType, Query(alias="type")] = "kindergarten",  # type: ignore[valid-type]
                        distance: Distance = None, division: Division = None,
                        metric: MetricQ = "straight") -> Response:
    """A map: share of residents within reach per grid (of the caller's divisions), and —
    for roles that see care flags — the vulnerable households out of reach (elderly living
    alone, disabled, left-behind children, low income)."""
    caller.require_code(division)
    shows = caller.fields.care_flags == Show.full and caller.may(Resource.households)
    job = CoverageMapJob(type_, distance, division, metric, caller.scope, caller.fields,
                         shows)
    return await report_output(request, caller, job)
