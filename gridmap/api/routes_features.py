"""Map layers as GeoJSON."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from gridmap.api.deps import ConnDep
from gridmap.store import features

router = APIRouter(prefix="/api", tags=["layers"])
GEOJSON = "application/geo+json"


class GeoJSONResponse(JSONResponse):
    media_type = GEOJSON


@router.get("/summary")
def get_summary(conn: ConnDep) -> dict[str, int]:
    """Row counts of every layer."""
    return features.summary(conn)


@router.get("/standard")
def get_standard(request: Request) -> dict[str, Any]:
    """The grid-size standard this deployment applies (households and residents per grid)."""
    return request.app.state.settings.standard.model_dump()


@router.get("/communities.geojson", response_class=GeoJSONResponse)
def get_communities(conn: ConnDep) -> Any:
    """Villages and communities with their population."""
    return GeoJSONResponse(features.divisions_geojson(conn, "community"))


@router.get("/townships.geojson", response_class=GeoJSONResponse)
def get_townships(conn: ConnDep) -> Any:
    """Townships and sub-districts."""
    return GeoJSONResponse(features.divisions_geojson(conn, "township"))


@router.get("/grids.geojson", response_class=GeoJSONResponse)
def get_grids(
    conn: ConnDep,
    community: str | None = Query(None, description="12-digit community code; all if absent"),
) -> Any:
    """Current grids with households and residents counted inside each."""
    if community is not None and not re.fullmatch(r"[0-9]{12}", community):
        raise HTTPException(422, f"community must be a 12-digit division code, not {community!r}")
    return GeoJSONResponse(features.grids_geojson(conn, community=community))
