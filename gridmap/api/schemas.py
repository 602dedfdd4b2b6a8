"""Response models shared by several routers (GeoJSON, errors), and the answer of a report
made by the report workers."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import Request, Response
from pydantic import BaseModel, ConfigDict, Field

from gridmap.access import Principal
from gridmap.api.deps import client_of
from gridmap.reports import Job

GEOJSON = "application/geo+json"


class ErrorPublic(BaseModel):
    detail: str | list[Any] = Field(description="what is wrong and what to do about it "
                                    "(a list for a request that does not fit the schema)")


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


def error(description: str) -> dict[str, Any]:
    return {"model": ErrorPublic, "description": description}


REPORT_ERRORS: dict[int | str, dict[str, Any]] = {
    404: error("no such division, or none among the caller's; no households there"),
    413: error("the answer would be larger than allowed: ask for a smaller page"),
    503: error("every report worker is busy, or the database is unavailable (Retry-After)"),
    504: error("the report ran past its time limit and was stopped: narrow it"),
}


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
