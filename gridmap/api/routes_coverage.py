"""Facility coverage: reports, the people out of reach, and a map."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

import geopandas as gpd
import pandas as pd
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse

from gridmap.access import Forbidden, Principal
from gridmap.analysis.coverage import (
    coverage_by,
    household_coverage,
    thresholds_for,
    uncovered,
)
from gridmap.api.deps import ConnDep, ReadsCounts, ReadsHouseholds, client_of
from gridmap.domain.access import Resource, Show, household_fields_shown, household_view
from gridmap.store.network import read_network
from gridmap.store.read import read_coverage_inputs, read_layer
from gridmap.tiles.maps import coverage_map

router = APIRouter(tags=["coverage"])

Division = Annotated[str | None, Query(description="12-digit code of a county, township or "
                                       "community; everything if absent")]
Types = Annotated[list[str] | None, Query(alias="type", description="facility type "
                                          "(repeatable); all if absent")]
Distances = Annotated[list[float] | None, Query(
    alias="distance", description="metres (repeatable); each type's life-circle distance "
    "if absent")]
MetricQ = Annotated[Literal["straight", "network"], Query(description="straight line or "
                                                          "along the walking network")]


def _compute(conn: ConnDep, caller: Principal, division: str | None, types: list[str] | None,
             distances: list[float] | None, metric: str
             ) -> tuple[gpd.GeoDataFrame, pd.DataFrame, dict[str, list[float]]]:
    if division is not None and not re.fullmatch(r"[0-9]{12}", division):
        raise HTTPException(422, f"division must be a 12-digit code, not {division!r}")
    caller.require_code(division)
    try:
        thresholds = thresholds_for(types, distances)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    try:
        households, facilities = read_coverage_inputs(conn, division=division,
                                                      scope=caller.scope)
        network = read_network(conn) if metric == "network" else None
        cov = household_coverage(households, facilities, thresholds=thresholds,
                                 metric=metric, network=network)  # type: ignore[arg-type]
    except ValueError as exc:
        raise HTTPException(404 if "no division" in str(exc) else 422, str(exc)) from exc
    return households, cov, thresholds


@router.get("/api/coverage", tags=["coverage"])
def get_coverage(conn: ConnDep, caller: ReadsCounts, division: Division = None,
                 types: Types = None, distances: Distances = None, metric: MetricQ = "straight",
                 level: Literal["grid", "community", "township", "all"] = "all"
                 ) -> list[dict[str, Any]]:
    """Share of residents, households and vulnerable residents within reach, per unit and
    facility type and distance, over the households in the caller's divisions."""
    households, cov, _ = _compute(conn, caller, division, types, distances, metric)
    table = coverage_by(households, cov, level=level)
    return json.loads(table.to_json(orient="records"))


@router.get("/api/coverage/uncovered.geojson")
def get_uncovered(request: Request, conn: ConnDep, caller: ReadsHouseholds,
                  type_: Annotated[str, Query(alias="type")],
                  distance: float | None = None, division: Division = None,
                  metric: MetricQ = "straight", vulnerable: bool = False) -> Any:
    """The households (of the caller's divisions) out of reach of one facility type, as
    GeoJSON; names, phones, addresses and care flags as the caller's role may see them."""
    if vulnerable and caller.fields.care_flags != Show.full:
        raise Forbidden(f"the {caller.role.value} role sees care flags only as counts per "
                        "grid (GET /api/coverage)")
    households, cov, thresholds = _compute(conn, caller, division, [type_],
                                           [distance] if distance else None, metric)
    column = f"{type_}@{thresholds[type_][0]:g}"
    layer = uncovered(households, cov, column, vulnerable_only=vulnerable)
    layer = layer.replace([float("inf")], None)
    body = json.loads(layer.to_json(drop_id=True))
    for feature in body["features"]:
        feature["properties"] = household_view(feature["properties"], caller.fields)
    if household_fields_shown(caller.fields):
        request.app.state.audit.read(
            caller, f"GET {request.url.path}", client_of(request),
            divisions=[division] if division else caller.divisions,
            row_ids=[str(v) for v in layer["id"]],
            detail=f"uncovered {column}{' vulnerable' if vulnerable else ''}")
    return JSONResponse(body, media_type="application/geo+json")


@router.get("/maps/coverage", response_class=HTMLResponse)
def coverage_page(request: Request, conn: ConnDep, caller: ReadsCounts,
                  type_: Annotated[str, Query(alias="type")] = "kindergarten",
                  distance: float | None = None, division: Division = None,
                  metric: MetricQ = "straight") -> HTMLResponse:
    """A map: share of residents within reach per grid (of the caller's divisions), and —
    for roles that see care flags — the vulnerable households out of reach (elderly living
    alone, disabled, left-behind children, low income)."""
    households, cov, thresholds = _compute(conn, caller, division, [type_],
                                           [distance] if distance else None, metric)
    column = f"{type_}@{thresholds[type_][0]:g}"
    table = coverage_by(households, cov, level="grid")
    grids = read_layer(conn, "grids", scope=caller.scope)
    units = grids.merge(table, left_on="code", right_on="unit", how="inner")
    if units.empty:
        raise HTTPException(422, "these households are not in any grid: run `gridmap assign`")
    out = None
    if caller.fields.care_flags == Show.full and caller.may(Resource.households):
        out = uncovered(households, cov, column, vulnerable_only=True)
        out = out[[c for c in out.columns
                   if c in household_view(dict.fromkeys(out.columns), caller.fields)]]
        request.app.state.audit.read(
            caller, f"GET {request.url.path}", client_of(request),
            divisions=[division] if division else caller.divisions,
            row_ids=[str(v) for v in out["id"]], detail=f"vulnerable out of reach {column}")
    page = coverage_map(units, uncovered=out, assets="server",
                        title=f"Residents within {thresholds[type_][0]:g} m of {type_}")
    return HTMLResponse(page.get_root().render())
