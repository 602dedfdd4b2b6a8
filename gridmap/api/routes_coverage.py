"""Facility coverage: reports, the people out of reach, and a map."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

import geopandas as gpd
import pandas as pd
from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import HTMLResponse, JSONResponse

from gridmap.analysis.coverage import (
    coverage_by,
    household_coverage,
    thresholds_for,
    uncovered,
)
from gridmap.api.deps import ConnDep
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


def _compute(conn: ConnDep, division: str | None, types: list[str] | None,
             distances: list[float] | None, metric: str
             ) -> tuple[gpd.GeoDataFrame, pd.DataFrame, dict[str, list[float]]]:
    if division is not None and not re.fullmatch(r"[0-9]{12}", division):
        raise HTTPException(422, f"division must be a 12-digit code, not {division!r}")
    try:
        thresholds = thresholds_for(types, distances)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    try:
        households, facilities = read_coverage_inputs(conn, division=division)
        network = read_network(conn) if metric == "network" else None
        cov = household_coverage(households, facilities, thresholds=thresholds,
                                 metric=metric, network=network)  # type: ignore[arg-type]
    except ValueError as exc:
        raise HTTPException(404 if "no division" in str(exc) else 422, str(exc)) from exc
    return households, cov, thresholds


@router.get("/api/coverage", tags=["coverage"])
def get_coverage(conn: ConnDep, division: Division = None, types: Types = None,
                 distances: Distances = None, metric: MetricQ = "straight",
                 level: Literal["grid", "community", "township", "all"] = "all"
                 ) -> list[dict[str, Any]]:
    """Share of residents, households and vulnerable residents within reach, per unit and
    facility type and distance."""
    households, cov, _ = _compute(conn, division, types, distances, metric)
    table = coverage_by(households, cov, level=level)
    return json.loads(table.to_json(orient="records"))


@router.get("/api/coverage/uncovered.geojson")
def get_uncovered(conn: ConnDep, type_: Annotated[str, Query(alias="type")],
                  distance: float | None = None, division: Division = None,
                  metric: MetricQ = "straight", vulnerable: bool = False) -> Any:
    """The households out of reach of one facility type, as GeoJSON."""
    households, cov, thresholds = _compute(conn, division, [type_],
                                           [distance] if distance else None, metric)
    column = f"{type_}@{thresholds[type_][0]:g}"
    layer = uncovered(households, cov, column, vulnerable_only=vulnerable)
    layer = layer.replace([float("inf")], None)
    return JSONResponse(json.loads(layer.to_json(drop_id=True)),
                        media_type="application/geo+json")


@router.get("/maps/coverage", response_class=HTMLResponse)
def coverage_page(conn: ConnDep, type_: Annotated[str, Query(alias="type")] = "kindergarten",
                  distance: float | None = None, division: Division = None,
                  metric: MetricQ = "straight") -> HTMLResponse:
    """A map: share of residents within reach per grid, and the vulnerable households out of
    reach (elderly living alone, disabled, left-behind children, low income)."""
    households, cov, thresholds = _compute(conn, division, [type_],
                                           [distance] if distance else None, metric)
    column = f"{type_}@{thresholds[type_][0]:g}"
    table = coverage_by(households, cov, level="grid")
    grids = read_layer(conn, "grids")
    units = grids.merge(table, left_on="code", right_on="unit", how="inner")
    if units.empty:
        raise HTTPException(422, "these households are not in any grid: run `gridmap assign`")
    out = uncovered(households, cov, column, vulnerable_only=True)
    page = coverage_map(units, uncovered=out, assets="server",
                        title=f"Residents within {thresholds[type_][0]:g} m of {type_}")
    return HTMLResponse(page.get_root().render())
