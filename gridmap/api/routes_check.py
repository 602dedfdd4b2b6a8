"""Partition validation and balance reports."""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse

from gridmap.access import Principal
from gridmap.analysis.report import check_communities
from gridmap.api.deps import ConnDep, ReadsCounts
from gridmap.domain.access import Resource
from gridmap.store.read import division_exists, read_check_inputs, read_layer
from gridmap.tiles.maps import community_map

router = APIRouter(tags=["checks"])

CommunityQuery = Query(None, description="12-digit community code; all communities if absent")


def _report(conn: ConnDep, request: Request, caller: Principal, community: str | None
            ) -> Any:
    if community is not None:
        if not re.fullmatch(r"[0-9]{12}", community):
            raise HTTPException(422, f"community must be a 12-digit code, not {community!r}")
        caller.require_code(community, whole=True)  # a check needs all of its grids
        if not division_exists(conn, community, "community"):
            raise HTTPException(404, f"no village/community with code {community} in the store")
    frames = read_check_inputs(conn, community=community, scope=caller.scope)
    if frames["communities"].empty:
        raise HTTPException(404, "no communities (wholly) among your divisions" if not
                            caller.scope.everything else
                            "no communities in the store: import them first")
    settings = request.app.state.settings
    return check_communities(
        frames["communities"], frames["grids"], frames["households"],
        workers=frames["workers"], standard=settings.standard,
        tolerance=settings.check_tolerance_m, min_area=settings.check_min_area_m2)


@router.get("/api/check")
def get_check(request: Request, conn: ConnDep, caller: ReadsCounts,
              community: str | None = CommunityQuery) -> dict[str, Any]:
    """Partition defects (GeoJSON, located) and per-grid balance against the standard, of
    the communities wholly among the caller's divisions."""
    report = _report(conn, request, caller, community)
    balance = report.balance.drop(columns=report.balance.geometry.name)
    return {
        "defects": json.loads(report.defects.to_json(drop_id=True)),
        "balance": json.loads(balance.to_json(orient="records")),
        "grids_outside_band": len(report.unbalanced),
        "households_outside_grids": report.outside_households,
    }


@router.get("/api/check.geojson", response_class=JSONResponse)
def get_check_geojson(request: Request, conn: ConnDep, caller: ReadsCounts,
                      community: str | None = CommunityQuery) -> Any:
    """The partition defects alone, as GeoJSON to open in QGIS."""
    report = _report(conn, request, caller, community)
    return JSONResponse(json.loads(report.defects.to_json(drop_id=True)),
                        media_type="application/geo+json")


@router.get("/maps/community/{community}", response_class=HTMLResponse, include_in_schema=True)
def community_page(request: Request, conn: ConnDep, caller: ReadsCounts, community: str
                   ) -> HTMLResponse:
    """A folium map of one community: grids by load against the standard, partition defects,
    facilities."""
    report = _report(conn, request, caller, community)
    facilities = read_layer(conn, "facilities", community=community, scope=caller.scope) \
        if caller.may(Resource.facilities) else None
    page = community_map(report.balance, defects=report.defects, facilities=facilities,
                         title=f"{community}: households per grid", assets="server")
    return HTMLResponse(page.get_root().render())
