"""Response models shared by several routers (GeoJSON, errors), and the answer of a report
made by the report workers."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from gridmap.access import Principal
from gridmap.api.deps import client_of
from gridmap.api.errors import error
from gridmap.reports import Job

GEOJSON = "application/geo+json"


class GeoJSONResponse(JSONResponse):
    media_type = GEOJSON


class Link(BaseModel):
    href: str
    rel: str
    type: str | None = None
    title: str | None = None


class Feature(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Literal["Feature"]
    id: str | int | None = None
    geometry: dict[str, Any] | None
    properties: dict[str, Any] | None


class FeatureCollection(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Literal["FeatureCollection"]
    features: list[Feature]
    numberMatched: int | None = Field(default=None, description="features in all pages")
    numberReturned: int | None = Field(default=None, description="features in this page")
    links: list[Link] | None = None


# models of answers in a second media type (GeoJSON beside JSON): FastAPI documents one model
# per answer, so these are added to the components by document()
_OTHER_MEDIA: dict[str, type[BaseModel]] = {}


def content_of(model: type[BaseModel]) -> dict[str, Any]:
    """The ``content`` entry of an answer in another media type than the route's own (e.g.
    ``application/geo+json`` with ``format=geojson``), its schema *model*'s."""
    _OTHER_MEDIA[model.__name__] = model
    return {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}


def document(app: FastAPI) -> None:
    """Add the models named by :func:`content_of` (and the models they hold) to the
    OpenAPI's components; a name FastAPI gave another schema is an error, not a silent
    swap."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        spec = generate()
        components = spec.setdefault("components", {}).setdefault("schemas", {})
        _, top = models_json_schema([(m, "serialization") for m in _OTHER_MEDIA.values()],
                                    ref_template="#/components/schemas/{model}")
        for name, schema in top.get("$defs", {}).items():
            if _shape(components.setdefault(name, schema)) != _shape(schema):
                raise RuntimeError(f"two response schemas are named {name}: rename one")
        # an error answer is JSON whatever the route answers with (FastAPI files a GeoJSON
        # route's error models under its media type)
        for methods in spec["paths"].values():
            for operation in methods.values():
                for status, answer in operation.get("responses", {}).items():
                    content = answer.get("content", {})
                    if status.startswith(("4", "5")) and GEOJSON in content:
                        content.setdefault("application/json", content.pop(GEOJSON))
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


def _shape(schema: Any) -> Any:
    """A schema without its defaults (FastAPI leaves out ``"default": null``)."""
    if isinstance(schema, dict):
        return {k: _shape(v) for k, v in schema.items() if k != "default"}
    if isinstance(schema, list):
        return [_shape(v) for v in schema]
    return schema


def link(path: str, method: str, description: str, parameters: dict[str, str]
         ) -> dict[str, Any]:
    """An OpenAPI link from an answer to the operation *method* *path*, its *parameters*
    (``path.name``, ``header.If-Match``…) taken from the answer (``$response.body#/id``,
    ``$response.header.ETag``): how a client — or a stateful test — goes on from it."""
    pointer = path.replace("~", "~0").replace("/", "~1")
    return {"operationRef": f"#/paths/{pointer}/{method}", "description": description,
            "parameters": parameters}


REPORT_ERRORS: dict[int | str, dict[str, Any]] = {
    404: error("no such division, or none among the caller's; no households there"),
    413: error("the answer would be larger than allowed: ask for a smaller page"),
    503: error("every report worker is busy, the database is unavailable, or the worker "
               "stopped while making the report", retry_after=True),
    504: error("the report ran past its time limit and was stopped: narrow it"),
}


class DivisionRef(BaseModel):
    code: str | None
    name: str | None


class GridRef(BaseModel):
    code: str
    name: str | None
    kind: str | None = Field(description="comprehensive or exclusive")


class Candidate(GridRef):
    distance_m: float | None = Field(None, description="from the point to this grid")


class LocatePublic(BaseModel):
    """Where a point lies: ``GET /api/locate``. The route returns it prebuilt (no
    validation on the hot path); this model is its documented shape."""

    model_config = ConfigDict(extra="forbid")

    lon: float = Field(description="WGS 84 longitude (converted from crs)")
    lat: float
    crs: str
    inside: bool = Field(description="whether the point lies in a grid")
    message: str | None = Field(None, description="why the point is in no grid")
    at: str | None = Field(None, description="the moment asked for (with ``at``)")
    version: int | None = Field(None, description="the grid version valid then")
    township: DivisionRef | None = None
    community: DivisionRef | None = None
    grid: GridRef | None = None
    workers: list[dict[str, Any]] = Field([], description="the grid's workers as the "
                                          "caller's role may see them")
    edge_distance_m: float | None = Field(None, description="to the grid's nearest edge")
    near_edge: bool | None = Field(None, description="within the margin of an edge: check "
                                   "the candidates")
    candidates: list[Candidate] = Field([], description="other grids within the margin")


class SearchHit(BaseModel):
    """A household (or, for a role that sees addresses to the building, a building) found
    by ``GET /api/search``; a field the caller's role does not see is left out."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(description="the household; null: a building of several")
    address: str | None = Field(None, description="whole, or masked to the building")
    head_name: str | None = Field(None, description="masked or whole, as the role may see")
    phone: str | None = None
    residents: int | None = None
    elderly_alone: bool | None = None
    disabled: bool | None = None
    left_behind_child: bool | None = None
    low_income: bool | None = None
    grid_code: str | None = Field(description="null: outside every grid")
    grid_name: str | None
    lon: float
    lat: float
    score: float = Field(description="word similarity of the query to the address, 0 to 1")
    township: DivisionRef | None
    community: DivisionRef | None
    grid: GridRef | None
    workers: list[dict[str, Any]] = Field(description="the grid's workers as the caller's "
                                          "role may see them")


async def report_output(request: Request, caller: Principal, job: Job) -> Response:
    """The report *job* from the cache or a report worker, as a response; a read of
    personal rows shown whole is audited."""
    output = await request.app.state.reports.get(job)
    if output.row_ids:
        divisions = getattr(job, "division", None) or getattr(job, "community", None)
        request.app.state.audit.read(
            caller, f"GET {request.url.path}", client_of(request),
            divisions=[divisions] if divisions else caller.divisions,
            row_ids=list(output.row_ids), detail=output.detail)
    return Response(output.body, media_type=output.media_type)
