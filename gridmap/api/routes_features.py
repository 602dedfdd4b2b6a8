"""Map layers as GeoJSON."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from gridmap.api.deps import ConnDep, ReadsBoundaries, ReadsCounts
from gridmap.domain.access import Resource
from gridmap.store import features

router = APIRouter(prefix="/api", tags=["layers"])
GEOJSON = "application/geo+json"


class GeoJSONResponse(JSONResponse):
    media_type = GEOJSON


@router.get("/summary")
def get_summary(conn: ConnDep, caller: ReadsCounts) -> dict[str, int]:
    """Row counts of every layer, within the caller's divisions."""
    return features.summary(conn, scope=caller.scope)


@router.get("/standard")
def get_standard(request: Request) -> dict[str, Any]:
    """The grid-size standard this deployment applies (households and residents per grid)."""
    return request.app.state.settings.standard.model_dump()


@router.get("/communities.geojson", response_class=GeoJSONResponse)
def get_communities(conn: ConnDep, caller: ReadsBoundaries) -> Any:
    """Villages and communities (the caller's) with their population."""
    return GeoJSONResponse(features.divisions_geojson(conn, "community", scope=caller.scope))


@router.get("/townships.geojson", response_class=GeoJSONResponse)
def get_townships(conn: ConnDep, caller: ReadsBoundaries) -> Any:
    """Townships and sub-districts (the caller's)."""
    return GeoJSONResponse(features.divisions_geojson(conn, "township", scope=caller.scope))


@router.get("/grids.geojson", response_class=GeoJSONResponse)
def get_grids(
    conn: ConnDep,
    caller: ReadsBoundaries,
    community: str | None = Query(None, description="12-digit community code; all if absent"),
) -> Any:
    """Current grids (the caller's) with households and residents counted inside each (for
    callers who may read counts)."""
    if community is not None and not re.fullmatch(r"[0-9]{12}", community):
        raise HTTPException(422, f"community must be a 12-digit division code, not {community!r}")
    caller.require_code(community)
    return GeoJSONResponse(features.grids_geojson(
        conn, community=community, scope=caller.scope, counts=caller.may(Resource.counts)))
