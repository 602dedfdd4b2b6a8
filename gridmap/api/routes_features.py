"""Map layers as GeoJSON."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from gridmap import i18n
from gridmap.api.deps import ConnDep, ReadsBoundaries, ReadsCounts
from gridmap.api.errors import language_of
from gridmap.api.schemas import FeatureCollection, GeoJSONResponse
from gridmap.domain.access import Resource
from gridmap.domain.standards import GridStandard
from gridmap.store import features

router = APIRouter(prefix="/api", tags=["layers"])


Count = Annotated[int, Field(ge=0)]


class SummaryPublic(BaseModel):
    """Rows of each layer within the caller's divisions."""

    model_config = ConfigDict(extra="forbid")

    townships: Count
    communities: Count
    grids: Count
    households: Count = Field(description="in the caller's grids (all, outside every grid "
                              "included, for a caller holding everything)")
    facilities: Count
    incidents: Count
    workers: Count


@router.get("/summary")
def get_summary(conn: ConnDep, caller: ReadsCounts) -> SummaryPublic:
    """Row counts of every layer, within the caller's divisions."""
    return SummaryPublic(**features.summary(conn, scope=caller.scope))


Band = Annotated[list[int], Field(min_length=2, max_length=2,
                                   description="[least, most] households of a grid")]


class StandardPublic(BaseModel):
    """:class:`GridStandard` as sent (its bands are pairs: a tuple's schema is not valid
    OpenAPI 3.0)."""

    urban_households: Band
    urban_max_residents: int
    rural_households: Band
    rural_max_residents: int
    micro_households: Band
    households_per_worker: int = Field(description="full-time worker workload")


@router.get("/standard")
def get_standard(request: Request) -> StandardPublic:
    """The grid-size standard this deployment applies (households and residents per grid)."""
    standard: GridStandard = request.app.state.settings.standard
    return StandardPublic(**standard.model_dump())


class LocalePublic(BaseModel):
    language: i18n.Language = Field(description="the language answers come in for this "
                                    "caller (cookie gridmap_lang, Accept-Language, setting)")
    time_zone: str = Field(description="the deployment's time zone: show times in it")
    labels: dict[str, dict[str, str]] = Field(
        description="names of the vocabulary, by kind (role, worker_role, stage, action, "
        "facility_type, band, defect, resource) and value, from gridmap's catalogue")


@router.get("/locale", response_model=LocalePublic)
def get_locale(request: Request) -> LocalePublic:
    """The caller's language, the deployment's time zone and the labels of roles, stages,
    facility types, band states and defects in that language (the pages name things with
    these; anyone may read them)."""
    language = language_of(request)
    return LocalePublic(language=language, time_zone=request.app.state.settings.time_zone,
                        labels=i18n.labels(language))


@router.get("/communities.geojson", response_class=GeoJSONResponse,
            responses={200: {"model": FeatureCollection}})
def get_communities(conn: ConnDep, caller: ReadsBoundaries) -> Any:
    """Villages and communities (the caller's) with their population."""
    return GeoJSONResponse(features.divisions_geojson(conn, "community", scope=caller.scope))


@router.get("/townships.geojson", response_class=GeoJSONResponse,
            responses={200: {"model": FeatureCollection}})
def get_townships(conn: ConnDep, caller: ReadsBoundaries) -> Any:
    """Townships and sub-districts (the caller's)."""
    return GeoJSONResponse(features.divisions_geojson(conn, "township", scope=caller.scope))


@router.get("/grids.geojson", response_class=GeoJSONResponse,
            responses={200: {"model": FeatureCollection}})
def get_grids(
    conn: ConnDep,
    caller: ReadsBoundaries,
    community: str | None = Query(None, pattern=r"^[0-9]{12}$",
                                  description="12-digit community code; all if absent"),
) -> Any:
    """Current grids (the caller's) with households and residents counted inside each (for
    callers who may read counts)."""
    caller.require_code(community)
    return GeoJSONResponse(features.grids_geojson(
        conn, community=community, scope=caller.scope, counts=caller.may(Resource.counts)))
