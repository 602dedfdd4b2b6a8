"""Incident statistics for the centre and the analysts: performance indicators per grid,
worker, community, township or category (JSON or CSV), and hotspots — grids or H3 cells with
far more cases this window than their own history (JSON or GeoJSON). Only the caller's
cases count."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from gridmap.access import Principal
from gridmap.analysis.incidents import (
    MIN_ALPHA,
    TIMED_STAGES,
    Period,
    Unit,
    hotspots,
    hotspots_to_frame,
    kpis,
)
from gridmap.api.deps import ConnDep, ReadsIncidents, client_of
from gridmap.api.schemas import GEOJSON, Feature, FeatureCollection, content_of
from gridmap.domain.access import Resource, Show, show
from gridmap.domain.incidents import Stage
from gridmap.domain.notes import note as system_note
from gridmap.io.write import rows_to_csv
from gridmap.store.incident_stats import (
    read_case_points,
    read_cases,
    read_events,
    read_grid_shapes,
)

router = APIRouter(prefix="/api", tags=["incident statistics"])

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
FLOOR = 0.5  # the least baseline mean a hotspot test assumes (see analysis.incidents)

Moment = Annotated[datetime | None, Query(
    description="ISO 8601; without an offset, in the deployment's time zone")]


class KpiPublic(BaseModel):
    """Indicators of the cases reported in one unit (and period)."""

    unit: str | None = Field(description="grid / community / township code, worker id or "
                             "category; null: no grid, nobody assigned")
    name: str | None = Field(None, description="the unit's name (a worker's as the caller's "
                             "role may see it)")
    period: date | None = Field(None, description="the period's first day")
    cases: int
    cancelled: int
    closed: int = Field(description="closed or evaluated")
    closure_rate: float | None = Field(description="结案率: closed / (cases − cancelled)")
    closed_with_deadline: int = Field(description="closed cases with a handling deadline")
    closed_on_time: int = Field(description="of those, closed by the handling deadline")
    on_time_rate: float | None = Field(description="按期结案率: closed_on_time / "
                                       "closed_with_deadline")
    overdue: int = Field(description="now past the deadline of their stage")
    returned: int = Field(description="return steps in the cases' timelines")
    median_hours: dict[Stage, float] = Field(description="median hours from entering a stage "
                                             "to leaving it, for the stages measured")


class HotspotPublic(BaseModel):
    unit: str = Field(description="grid code or H3 cell")
    name: str | None = Field(None, description="the grid's name")
    current: int = Field(description="cases in the latest window")
    baseline_mean: float = Field(description="mean cases per earlier window")
    expected: float = Field(description="the baseline mean, at least the floor")
    threshold: int = Field(description="the Poisson 1 − alpha quantile of expected")
    p_value: float = Field(description="P(at least current | Poisson(expected))")
    flagged: bool = Field(description="current > threshold (p_value <= alpha)")


class HotspotTest(BaseModel):
    """The parameters of the hotspot test, beside its units in either form."""

    unit: Literal["grid", "h3"]
    resolution: int | None
    window_start: datetime
    window_end: datetime
    days: int
    history: int
    alpha: float
    floor: float
    rule: str


class HotspotsPublic(HotspotTest):
    units: list[HotspotPublic] = Field(description="flagged first, then by p_value")


class HotspotFeature(Feature):
    geometry: dict[str, Any] | None = Field(description="the grid's or the H3 cell's polygon "
                                            "(null: a grid no longer among the caller's)")
    properties: HotspotPublic  # type: ignore[assignment]


class HotspotsGeoJSON(FeatureCollection, HotspotTest):
    """``format=geojson``: every unit as a feature, and the test's parameters beside them."""

    features: list[HotspotFeature]  # type: ignore[assignment]


@router.get("/incidents/kpis", response_model=list[KpiPublic], responses={
    200: {"content": {"text/csv": {"schema": {"type": "string"}}},
          "description": "indicators per unit (and period); CSV with format=csv"},
    422: {"description": "a bad parameter; since not before until; since or until outside "
                         "1970–2200"}})
def get_kpis(
    request: Request, conn: ConnDep, caller: ReadsIncidents,
    by: Annotated[Unit, Query(description="the unit of a row")] = "grid",
    period: Annotated[Period | None, Query(description="one row per unit and calendar day, "
                                           "week or month; none: one per unit")] = None,
    since: Moment = None, until: Moment = None,
    format_: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
) -> Any:
    """Performance indicators (绩效) of the caller's cases reported in ``[since, until)``
    (default: all until now), per grid, worker (``by=worker``: a worker performance table),
    community, township or category, and optionally per day, week or month: cases, closure
    rate (结案率), on-time closure rate (按期结案率), median time per stage from the
    timelines, overdue and returned cases. Workers' names as the caller's role may see them
    (analysts: 张*)."""
    calendar = request.app.state.workflow.calendar
    start, end = _moment(since, calendar.zone, "since"), _moment(until, calendar.zone, "until")
    if start is not None and end is not None and start >= end:
        raise HTTPException(422, "since must be before until")
    cases = read_cases(conn, caller.scope, since=start, until=end)
    events = read_events(conn, caller.scope, since=start, until=end)
    table = kpis(cases, events, by=by, period=period, now=datetime.now(UTC), tz=calendar.tz)
    if by == "worker":
        table["name"] = _worker_names(request, caller, table["name"])
    if format_ == "csv":
        return Response(rows_to_csv(table), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="incident-kpis-{by}.csv"'})
    return [_kpi(row) for row in table.to_dict("records")]


@router.get("/incidents/hotspots", response_model=HotspotsPublic, responses={
    200: {"content": {GEOJSON: content_of(HotspotsGeoJSON)},
          "description": "every unit with a case in the windows; GeoJSON with "
          "format=geojson"},
    422: {"description": "a bad parameter; until outside 1970–2200"}})
def get_hotspots(
    request: Request, conn: ConnDep, caller: ReadsIncidents,
    unit: Annotated[Literal["grid", "h3"], Query(description="grids or H3 cells")] = "grid",
    days: Annotated[int, Query(ge=1, le=366, description="the window's length")] = 7,
    history: Annotated[int, Query(ge=1, le=52, description="earlier windows making the "
                                  "baseline")] = 8,
    alpha: Annotated[float, Query(ge=MIN_ALPHA, le=0.5, allow_inf_nan=False,
                                  description="false-alarm probability per unit and "
                                  "window")] = 0.01,
    resolution: Annotated[int, Query(ge=5, le=12, description="H3 resolution "
                                     "(unit=h3)")] = 9,
    until: Moment = None,
    format_: Annotated[Literal["json", "geojson"], Query(alias="format")] = "json",
) -> Any:
    """Early warning: per grid or H3 cell of the caller's, the cases of the latest window
    ``[until − days, until)`` (default: the last 7 days) against the mean of the *history*
    windows before it. A unit is flagged when its count exceeds the Poisson ``1 − alpha``
    quantile of that mean (at least 0.5, so a first case or two in a quiet place does not
    flag): p-value ``P(X ≥ current)`` ≤ alpha. Each unit is tested alone: among *n* steady
    units about ``alpha · n`` are flagged by chance per window."""
    end = _moment(until, request.app.state.workflow.calendar.zone, "until") or datetime.now(UTC)
    window = timedelta(days=days)
    points = read_case_points(conn, caller.scope, since=end - window * (history + 1),
                              until=end)
    table = hotspots(points, unit=unit, window=window, history=history, now=end, alpha=alpha,
                     floor=FLOOR, resolution=resolution)
    if unit == "grid":
        shapes = read_grid_shapes(conn, table["unit"].tolist(), caller.scope)
        frame = hotspots_to_frame(table, unit="grid", grids=shapes)
    else:
        frame = hotspots_to_frame(table, unit="h3")
    answer = HotspotsPublic(
        unit=unit, resolution=resolution if unit == "h3" else None, window_start=end - window,
        window_end=end, days=days, history=history, alpha=alpha, floor=FLOOR,
        rule=f"flagged when current > poisson.ppf(1 - {alpha:g}, max(baseline_mean, "
             f"{FLOOR:g}))", units=[])
    if format_ == "geojson":
        body = json.loads(frame.to_json(drop_id=True, na="null"))
        body.update(answer.model_dump(mode="json", exclude={"units"}))
        return JSONResponse(body, media_type=GEOJSON)
    rows = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    answer.units = [HotspotPublic(**_clean(r)) for r in rows.to_dict("records")]
    return answer


# --- helpers -------------------------------------------------------------------------------

def _moment(value: datetime | None, zone: tzinfo, what: str) -> datetime | None:
    """An aware moment (a naive one is in the deployment's zone) within 1970–2200."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    if not EARLIEST <= value <= LATEST:
        raise HTTPException(422, f"{what} must lie between 1970 and 2200")
    return value


def _worker_names(request: Request, caller: Principal, names: pd.Series) -> pd.Series:
    """Workers' names as the caller may see them; a full view is audited."""
    how = caller.fields.worker_contact if caller.may(Resource.workers) else Show.hidden
    shown = names.map(lambda n: show(n, how, kind="name") if isinstance(n, str) else None)
    if how == Show.full and shown.notna().any():
        request.app.state.audit.read(caller, f"GET {request.url.path}", client_of(request),
                                     divisions=caller.divisions,
                                     row_count=int(shown.notna().sum()),
                                     detail=system_note("read_worker_names"))
    return shown


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    """NaN and NA as None."""
    return {k: None if (isinstance(v, float) and math.isnan(v)) or v is pd.NA else v
            for k, v in row.items()}


def _kpi(row: dict[str, Any]) -> KpiPublic:
    row = _clean(row)
    medians = {Stage(s): row.pop(f"median_hours_{s}") for s in TIMED_STAGES}
    return KpiPublic(**row, median_hours={s: h for s, h in medians.items() if h is not None})


