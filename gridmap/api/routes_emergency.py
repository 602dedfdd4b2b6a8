"""The emergency view: everyone inside a drawn area (or a radius around a point), by grid,
with the grids' workers and the vulnerable households — JSON, CSV or GeoJSON."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator
from pydantic.json_schema import JsonDict
from pydantic_core import to_json

from gridmap import emergency
from gridmap.access import Forbidden, Principal
from gridmap.api.deps import ConnDep, ReadsHouseholds, client_of
from gridmap.api.schemas import GEOJSON, FeatureCollection, content_of
from gridmap.domain.layers import CARE_FLAGS
from gridmap.domain.notes import note
from gridmap.io.write import rows_to_csv

router = APIRouter(prefix="/api", tags=["emergency"])

CareFlag = Literal["elderly_alone", "disabled", "left_behind_child", "low_income"]
Lon = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
Lat = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]


_POSITION: JsonDict = {"type": "array", "minItems": 2, "maxItems": 3,
                       "items": {"type": "number"}}
_RINGS: JsonDict = {"type": "array", "minItems": 1,
                    "items": {"type": "array", "minItems": 4, "items": _POSITION}}
_POLYGONS: list[JsonValue] = [
    {"type": "object", "required": ["type", "coordinates"],
     "properties": {"type": {"const": "Polygon"}, "coordinates": _RINGS}},
    {"type": "object", "required": ["type", "coordinates"],
     "properties": {"type": {"const": "MultiPolygon"},
                    "coordinates": {"type": "array", "minItems": 1, "items": _RINGS}}}]
# what area_from_geojson takes, said in the OpenAPI; whether the rings make a valid polygon
# of the allowed size is said by a 422
AREA_SCHEMA: JsonDict = {"type": "object", "oneOf": [*_POLYGONS, {
    "type": "object", "required": ["type", "geometry"], "properties": {
        "type": {"const": "Feature"}, "geometry": {"oneOf": _POLYGONS}}}]}


class EmergencyQuery(BaseModel):
    """An area: a polygon, or a radius around a point."""

    # the either/or the validator enforces, said in the schema too
    model_config = ConfigDict(extra="forbid", json_schema_extra={"oneOf": [
        {"required": ["area"], "properties": {"area": AREA_SCHEMA},
         "not": {"anyOf": [{"required": ["point"]},
                                                  {"required": ["radius_m"]}]}},
        {"required": ["point", "radius_m"],
         "properties": {"point": {"type": "array"}, "radius_m": {"type": "number"}},
         "not": {"required": ["area"]}}]})

    area: dict[str, Any] | None = Field(None, description=(
        "a GeoJSON Polygon or MultiPolygon (or a Feature holding one), in WGS84 unless "
        f"crs says otherwise; at most {emergency.MAX_VERTICES} vertices and "
        f"{emergency.MAX_AREA_KM2:g} km²"), json_schema_extra=AREA_SCHEMA)
    point: tuple[Lon, Lat] | None = Field(None, description="[lon, lat] of a circle's centre")
    radius_m: float | None = Field(None, ge=emergency.RADIUS_M[0], le=emergency.RADIUS_M[1],
                                   allow_inf_nan=False, description="the circle's radius")
    crs: emergency.Crs = Field("wgs84", description="coordinate system of point (and area): "
                               "gcj02 and bd09 are what Chinese web maps return")

    @model_validator(mode="after")
    def _one_area(self) -> EmergencyQuery:
        if (self.area is None) == (self.point is None):
            raise ValueError("send either area (a GeoJSON polygon) or point with radius_m")
        if self.point is not None and self.radius_m is None:
            raise ValueError("a point needs radius_m (metres)")
        if self.area is not None and self.radius_m is not None:
            raise ValueError("radius_m goes with a point, not with an area")
        return self


class FlagCounts(BaseModel):
    households: int
    residents: int


class Counts(BaseModel):
    households: int
    residents: int
    vulnerable_households: int = Field(description="households with any care flag")
    vulnerable_residents: int = Field(description="the residents of those households")
    by_flag: dict[CareFlag, FlagCounts] = Field(description="households with the flag, and "
                                                "their residents")


class TotalsPublic(Counts):
    grids: int = Field(description="grids with households inside the area")


class WorkerPublic(BaseModel):
    id: str
    name: str | None
    phone: str | None = Field(description="as the caller's role may see it (138****5678)")
    role: str


class EmergencyGridPublic(Counts):
    code: str | None = Field(description="null: households outside every grid")
    name: str | None
    kind: str | None
    community_code: str | None
    community_name: str | None
    workers: list[WorkerPublic] = Field(description="grid head first, then full-time, "
                                        "part-time and supervisors")


class VulnerableHouseholdPublic(BaseModel):
    id: str
    grid_code: str | None
    address: str | None
    head_name: str | None
    phone: str | None
    flags: list[CareFlag]
    lon: float
    lat: float


class AreaPublic(BaseModel):
    kind: Literal["polygon", "circle"]
    km2: float = Field(description="on the ellipsoid")
    center: tuple[float, float] | None = Field(description="the circle's centre in WGS84")
    radius_m: float | None
    description: str


class EmergencyPublic(BaseModel):
    """Everyone of the caller's divisions inside the area."""

    area: AreaPublic
    totals: TotalsPublic
    grids: list[EmergencyGridPublic] = Field(description="grids with households inside, "
                                             "by code")
    vulnerable_households: list[VulnerableHouseholdPublic] | None = Field(
        description="null: the caller's role sees care flags as counts only")


class EmergencyGeoJSON(FeatureCollection):
    """``format=geojson``: a feature per grid (its polygon; counts flattened as
    ``<flag>_households`` / ``<flag>_residents``, workers as the role may see them) or, with
    ``rows=households``, per vulnerable household (a point); the area and the totals
    beside them."""

    area: AreaPublic
    totals: TotalsPublic


@router.post("/emergency", response_model=EmergencyPublic, responses={
    200: {"content": {"text/csv": {"schema": {"type": "string"}},
                      GEOJSON: content_of(EmergencyGeoJSON)},
          "description": "JSON; with format=csv or geojson, one row or feature per grid "
          "(rows=grids) or per vulnerable household (rows=households)"},
    403: {"description": "rows=households for a role that sees care flags as counts only"},
    422: {"description": "an invalid, empty or too large polygon, a bad radius, point or "
          "crs; the message says what is wrong"}})
def post_emergency(
    request: Request, conn: ConnDep, caller: ReadsHouseholds, body: EmergencyQuery,
    format_: Annotated[Literal["json", "csv", "geojson"], Query(alias="format")] = "json",
    rows: Annotated[Literal["grids", "households"], Query(
        description="csv and geojson: a row per grid, or per vulnerable household")] = "grids",
) -> Any:
    """Emergency mobilisation: everyone of the caller's divisions inside a drawn area (a
    polygon) or within ``radius_m`` of a point — per grid, the households and residents
    inside, the vulnerable among them (elderly living alone, disabled, left-behind children,
    low income; in all and per flag) and the grid's workers with their phones (as the role
    may see them); totals over the grids. Roles that see care flags (admin, planner, grid
    worker) also get the vulnerable households with names, phones and addresses; the others
    get counts only. Exports: CSV (UTF-8 with BOM) and GeoJSON."""
    if rows == "households" and format_ != "json" and not emergency.lists_households(caller):
        raise Forbidden(f"the {caller.role.value} role sees care flags only as counts per "
                        "grid: export rows=grids")
    try:
        if body.area is not None:
            area = emergency.area_from_geojson(body.area, crs=body.crs)
        else:
            assert body.point is not None and body.radius_m is not None
            area = emergency.area_around(*body.point, body.radius_m, crs=body.crs)
    except emergency.EmergencyError as exc:
        raise HTTPException(422, str(exc)) from exc
    found = emergency.survey(conn, caller, area,
                             with_shapes=format_ == "geojson" and rows == "grids")
    with_households = format_ == "json" or rows == "households"
    _audit(request, caller, found, with_households=with_households,
           with_workers=rows == "grids" or format_ == "json", export=format_)
    if format_ == "csv":
        table = _grid_rows(found) if rows == "grids" else _household_rows(found)
        return Response(rows_to_csv(table), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="emergency-{rows}.csv"'})
    if format_ == "geojson":
        return JSONResponse(_geojson(found, rows), media_type=GEOJSON)
    # the rows are the models' fields already: serialised directly, not validated again
    # (a district's answer holds some 10,000 households; the tests check it against the model)
    return Response(to_json({"area": _area(found.area).model_dump(), "totals": found.totals,
                             "grids": found.grids,
                             "vulnerable_households": found.households}),
                    media_type="application/json")


# --- helpers -------------------------------------------------------------------------------

def _audit(request: Request, caller: Principal, found: emergency.Survey, *,
           with_households: bool, with_workers: bool, export: str) -> None:
    """A read of names and phones in full (households listed, workers' contacts) is
    audited: the households by id, the workers by count."""
    listed = found.households is not None and with_households
    workers = found.workers_in_full if with_workers else 0
    if not (listed and found.households) and not workers:
        return
    said = [found.area.note()]
    said += [note("emergency_households", count=len(found.households or []))] if listed else []
    said += [note("emergency_worker_phones", count=workers)] if workers else []
    said.append(note("emergency_export", export=export))
    request.app.state.audit.read(
        caller, "POST /api/emergency", client_of(request),
        divisions=sorted({g["code"] for g in found.grids if g["code"]}) or caller.divisions,
        row_ids=found.household_ids if listed else None,
        row_count=None if listed else workers,
        detail=said)


def _area(area: emergency.Area) -> AreaPublic:
    return AreaPublic(kind="circle" if area.center is not None else "polygon",
                      km2=round(area.km2, 6), center=area.center, radius_m=area.radius_m,
                      description=area.describe())


def _flat_counts(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row[k] for k in emergency.COUNTS}
    for flag in CARE_FLAGS:
        for what in ("households", "residents"):
            out[f"{flag}_{what}"] = row["by_flag"][flag][what]
    return out


def _grid_rows(found: emergency.Survey) -> list[dict[str, Any]]:
    return [{"grid_code": g["code"], "grid_name": g["name"], "kind": g["kind"],
             "community_code": g["community_code"], "community_name": g["community_name"],
             **_flat_counts(g),
             "workers": "; ".join(f"{w['name']} {w['phone']} ({w['role']})"
                                  for w in g["workers"])} for g in found.grids]


def _household_rows(found: emergency.Survey) -> list[dict[str, Any]]:
    names = {g["code"]: g["name"] for g in found.grids}
    return [{"id": h["id"], "grid_code": h["grid_code"], "grid_name": names.get(h["grid_code"]),
             "address": h["address"], "head_name": h["head_name"], "phone": h["phone"],
             "flags": ";".join(h["flags"]), "lon": h["lon"], "lat": h["lat"]}
            for h in found.households or []]


def _geojson(found: emergency.Survey, rows: str) -> dict[str, Any]:
    if rows == "grids":
        features = [{"type": "Feature", "id": g["code"], "geometry": g.get("shape"),
                     "properties": {**{k: v for k, v in g.items()
                                       if k not in ("shape", "by_flag")},
                                    **_flat_counts(g)}} for g in found.grids]
    else:
        features = [{"type": "Feature", "id": h["id"],
                     "geometry": {"type": "Point", "coordinates": [h["lon"], h["lat"]]},
                     "properties": {k: v for k, v in h.items() if k not in ("lon", "lat")}}
                    for h in found.households or []]
    return {"type": "FeatureCollection", "features": features,
            "area": json.loads(_area(found.area).model_dump_json()),
            "totals": found.totals}
