"""OGC API - Features, Part 1 Core (with CQL2 text filters) and Part 4 (Create, Replace,
Update, Delete) on the grids collection, under /ogc.

Readable by standard clients: GDAL's OAPIF driver (``ogrinfo OAPIF:http://host/ogc``),
OWSLib, QGIS. Geometry is GeoJSON in CRS84; paging with ``limit``/``offset`` and ``next``
links; ``numberMatched``/``numberReturned``; ``properties`` selects attributes; ``filter``
takes CQL2 text over the collection's queryables; ``datetime`` answers the grids as they
were at a past moment (from the published versions).

Writes go into a draft, never into the published grids: ``?draft=N`` names it (open one with
``POST /api/drafts``), and reads with the same parameter show the draft's grids, each with
an ``ETag``. A replace, update or delete sends that ETag back in ``If-Match`` (428 without
it; 412 when the grid changed since — two editors never overwrite each other silently).
Every write keeps the draft's partition whole, through the same drafting core as the map
editor: land a grid gains is cut out of its neighbours, land it gives up (or a deleted
grid's land) goes to the neighbour sharing the longest edge; what cannot be done that way
is refused with a 422 naming the problem. ``Gridmap-Changed`` lists every grid a write
changed. ``Content-Crs`` may name the request geometry's CRS (CRS84 by default; any EPSG
CRS, in its own axis order).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import shapely
from fastapi import APIRouter, Header, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from gridmap import drafts
from gridmap.access import Principal
from gridmap.analysis.drafting import DraftGrid
from gridmap.api.deps import CallerDep, ConnDep, client_of
from gridmap.api.routes_drafts import grid_feature
from gridmap.api.schemas import Feature, FeatureCollection, GeoJSONResponse, Link
from gridmap.domain.access import Show, show
from gridmap.store.ogc import COLLECTIONS, Collection, FilterError, as_of, extent, items

router = APIRouter(prefix="/ogc", tags=["OGC API Features"])
GEOJSON = "application/geo+json"
MAX_LIMIT = 10_000
MAX_OFFSET = 2**63 - 1  # PostgreSQL's OFFSET is a bigint
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/update",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/optimistic-locking-etags",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/features",
]
WRITABLE = "grids"  # the one collection Part 4 writes (into drafts)
DraftQuery = Annotated[int | None, Query(
    ge=1, le=2**63 - 1, description="A draft's number: read its grids instead of the "
    "published ones; required for writes, which go into the draft only")]
IfMatch = Annotated[str | None, Header(description="The grid's ETag from its GET with the "
                                       "same draft: a change over a newer one is a 412")]
ContentCrs = Annotated[str | None, Header(description="CRS of the request geometry: "
                                          "<http://www.opengis.net/def/crs/OGC/1.3/CRS84> "
                                          "(default) or an EPSG URI, in its axis order")]
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "no draft named, or a bad header"},
    404: {"description": "no such draft or grid among the caller's"},
    405: {"description": "the collection cannot be written"},
    409: {"description": "the draft is not open for edits"},
    412: {"description": "the grid changed since the caller read it (If-Match)"},
    422: {"description": "the feature cannot be written as sent (the detail says why); "
                         "nothing changed"},
    428: {"description": "If-Match is missing"}}
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/ogc"


def _collection(cid: str, caller: Principal) -> Collection:
    if cid not in COLLECTIONS:
        raise HTTPException(404, f"unknown collection {cid!r}: choose one of "
                            f"{', '.join(COLLECTIONS)}")
    caller.require(COLLECTIONS[cid].resource)
    return COLLECTIONS[cid]


def _how(caller: Principal, c: Collection) -> dict[str, tuple[Show, str]]:
    """How the caller sees each personal property of a collection."""
    return {prop: (getattr(caller.fields, rule), kind) for prop, rule, kind in c.personal}


def _visible(caller: Principal, c: Collection) -> tuple[str, ...]:
    how = _how(caller, c)
    return tuple(p for p in c.properties if how.get(p, (Show.full,))[0] != Show.hidden)


def _queryables(caller: Principal, c: Collection) -> tuple[str, ...]:
    """Properties a filter may use: those the caller sees whole (a filter on a masked value
    would reveal it)."""
    how = _how(caller, c)
    return tuple(p for p in c.properties if how.get(p, (Show.full,))[0] == Show.full)


def _present(caller: Principal, c: Collection, features: list[dict[str, Any]]) -> bool:
    """Mask the features' personal properties in place; True if any is shown whole."""
    how = {p: hk for p, hk in _how(caller, c).items() if hk[0] != Show.full}
    for feature in features:
        props = feature["properties"]
        for prop, (rule, kind) in how.items():
            if prop in props:
                props[prop] = show(props[prop], rule, kind=kind)
    whole = {p for p, (rule, _) in _how(caller, c).items() if rule == Show.full}
    return any(whole & set(f["properties"]) for f in features[:1])


class LandingPublic(BaseModel):
    """The OGC API landing page."""

    title: str
    description: str
    links: list[Link]


class ConformancePublic(BaseModel):
    conformsTo: list[str] = Field(description="the conformance classes implemented")


class SpatialExtent(BaseModel):
    bbox: list[list[float]] = Field(description="[minx, miny, maxx, maxy] of the caller's "
                                    "features; empty: none")
    crs: str


class Extent(BaseModel):
    spatial: SpatialExtent


class CollectionPublic(BaseModel):
    id: str
    title: str
    itemType: Literal["feature"]
    crs: list[str]
    extent: Extent
    links: list[Link]


class CollectionsPublic(BaseModel):
    links: list[Link]
    collections: list[CollectionPublic] = Field(description="those the caller may read")


def _describe(request: Request, conn: ConnDep, caller: Principal, c: Collection
              ) -> dict[str, Any]:
    base = _base(request)
    box = extent(conn, c, scope=caller.scope)
    return {
        "id": c.id, "title": c.title, "itemType": "feature", "crs": [CRS84],
        "extent": {"spatial": {"bbox": [box] if box else [], "crs": CRS84}},
        "links": [
            {"href": f"{base}/collections/{c.id}", "rel": "self", "type": "application/json"},
            {"href": f"{base}/collections/{c.id}/items", "rel": "items", "type": GEOJSON},
            {"href": f"{base}/collections/{c.id}/queryables",
             "rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables",
             "type": "application/schema+json"},
        ],
    }


@router.get("", response_model=LandingPublic, response_model_exclude_unset=True)
def landing(request: Request) -> dict[str, Any]:
    """Landing page."""
    base = _base(request)
    root = str(request.base_url).rstrip("/")
    return {"title": "gridmap", "description": "Divisions, grids, households, facilities and "
            "incidents of grid-based community governance",
            "links": [
                {"href": base, "rel": "self", "type": "application/json"},
                {"href": f"{root}/openapi.json", "rel": "service-desc",
                 "type": "application/vnd.oai.openapi+json;version=3.0"},
                {"href": f"{root}/docs", "rel": "service-doc", "type": "text/html"},
                {"href": f"{base}/conformance", "rel": "conformance",
                 "type": "application/json"},
                {"href": f"{base}/collections", "rel": "data", "type": "application/json"}]}


@router.get("/conformance", response_model=ConformancePublic)
def conformance() -> dict[str, list[str]]:
    """The conformance classes implemented."""
    return {"conformsTo": CONFORMANCE}


@router.get("/collections", response_model=CollectionsPublic,
             response_model_exclude_unset=True)
def collections(request: Request, conn: ConnDep, caller: CallerDep) -> dict[str, Any]:
    """The collections the caller may read."""
    base = _base(request)
    return {"links": [{"href": f"{base}/collections", "rel": "self",
                       "type": "application/json"}],
            "collections": [_describe(request, conn, caller, c) for c in COLLECTIONS.values()
                            if caller.may(c.resource)]}


@router.get("/collections/{collection_id}", response_model=CollectionPublic,
             response_model_exclude_unset=True)
def collection(request: Request, conn: ConnDep, caller: CallerDep, collection_id: str
               ) -> dict[str, Any]:
    """One collection."""
    return _describe(request, conn, caller, _collection(collection_id, caller))


class SchemaJSONResponse(JSONResponse):
    media_type = "application/schema+json"


@router.get("/collections/{collection_id}/queryables", response_class=SchemaJSONResponse,
            responses={200: {"description": "a JSON Schema of the filterable properties",
                             "content": {SchemaJSONResponse.media_type: {"schema": {
                                 "type": "object", "required": ["$id", "type", "properties"],
                                 "properties": {
                                     "$schema": {"type": "string"}, "$id": {"type": "string"},
                                     "type": {"const": "object"},
                                     "properties": {"type": "object"}}}}}}})
def queryables(request: Request, caller: CallerDep, collection_id: str) -> JSONResponse:
    """The properties a CQL2 filter may use (those the caller sees unmasked)."""
    c = _collection(collection_id, caller)
    return SchemaJSONResponse({
        "$schema": "https://json-schema.org/draft/2019-09/schema",
        "$id": f"{_base(request)}/collections/{c.id}/queryables", "type": "object",
        "properties": {p: {"title": p} for p in _queryables(caller, c)}})


def _bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError as exc:
        raise HTTPException(400, f"bbox must be four numbers minx,miny,maxx,maxy (lon/lat), "
                            f"not {text!r}") from exc
    if len(values) != 4:
        raise HTTPException(400, f"bbox takes four numbers (minx,miny,maxx,maxy), got "
                            f"{len(values)}")
    minx, miny, maxx, maxy = values
    if not (-180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= 90
            and -90 <= maxy <= 90):
        raise HTTPException(400, "bbox is in longitude/latitude: x within ±180, y within ±90")
    if minx > maxx or miny > maxy:
        raise HTTPException(400, f"bbox is inverted: give minx,miny,maxx,maxy, not {text}")
    return minx, miny, maxx, maxy


@router.get("/collections/{collection_id}/items", response_class=GeoJSONResponse,
             responses={200: {"model": FeatureCollection}})
def get_items(
    request: Request, conn: ConnDep, caller: CallerDep, collection_id: str,
    limit: Annotated[int, Query(ge=1, description=f"1..{MAX_LIMIT}",
                                json_schema_extra={"maximum": MAX_LIMIT})] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy in lon/lat")] = None,
    properties: Annotated[str | None, Query(description="comma-separated properties to "
                                            "return")] = None,
    filter_: Annotated[str | None, Query(alias="filter", description="CQL2 text, e.g. "
                                         "kind = 'exclusive' AND version > 1")] = None,
    filter_lang: Annotated[str, Query(alias="filter-lang")] = "cql2-text",
    datetime_: Annotated[str | None, Query(
        alias="datetime", description="grids: as they were at this moment (RFC 3339 date or "
        "date-time; without an offset, the deployment's time zone)")] = None,
    draft: DraftQuery = None,
) -> JSONResponse:
    """Features of a collection in the caller's divisions, a page at a time, as GeoJSON;
    personal properties as the caller's role may see them. Grids: ``datetime`` gives them
    as of a past moment, ``draft`` those of a draft."""
    c = _collection(collection_id, caller)
    if draft is not None:
        _drafted(c)
        if datetime_ is not None or filter_ is not None:
            raise HTTPException(400, "draft cannot be combined with datetime or filter")
    if datetime_ is not None:
        c = as_of(_temporal(c), _instant(request, datetime_))
    visible = _visible(caller, c) if draft is None else drafts.FEATURE_PROPERTIES
    if limit > MAX_LIMIT:
        raise HTTPException(400, f"limit may be at most {MAX_LIMIT}; page with offset")
    if filter_lang != "cql2-text":
        raise HTTPException(400, "filter-lang: only cql2-text is supported")
    props = None
    if properties is not None:
        props = [p for p in properties.split(",") if p]
        unknown = [p for p in props if p not in visible]
        if unknown:
            raise HTTPException(400, f"unknown properties {', '.join(unknown)}: choose from "
                                f"{', '.join(visible)}")
    if draft is not None:
        features, matched = _draft_page(conn, caller, draft, limit=limit, offset=offset,
                                        bbox=_bbox(bbox), properties=props)
    else:
        try:
            features, matched = items(
                conn, c, scope=caller.scope, limit=limit, offset=offset, bbox=_bbox(bbox),
                properties=props if props is not None else list(visible), cql2=filter_,
                queryables=_queryables(caller, c))
        except FilterError as exc:
            raise HTTPException(400, str(exc)) from exc
    if _present(caller, c, features) and features:
        _audit(request, caller, c, features)
    base = f"{_base(request)}/collections/{c.id}/items"
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "offset"]
    links = [{"href": str(request.url), "rel": "self", "type": GEOJSON},
             {"href": f"{_base(request)}/collections/{c.id}", "rel": "collection",
              "type": "application/json"}]

    def page(at: int) -> str:
        return f"{base}?{urlencode([*query, ('offset', str(at))])}"

    if offset + len(features) < matched:
        links.append({"href": page(offset + limit), "rel": "next", "type": GEOJSON})
    if offset > 0:
        links.append({"href": page(max(offset - limit, 0)), "rel": "prev", "type": GEOJSON})
    return JSONResponse({"type": "FeatureCollection", "features": features,
                         "numberMatched": matched, "numberReturned": len(features),
                         "links": links}, media_type=GEOJSON)


@router.get("/collections/{collection_id}/items/{feature_id}", response_class=GeoJSONResponse,
             responses={200: {"model": Feature}})
def get_item(request: Request, conn: ConnDep, caller: CallerDep, collection_id: str,
             feature_id: str, draft: DraftQuery = None) -> JSONResponse:
    """One feature (404 outside the caller's divisions, as for one that does not exist).
    With ``draft``: the draft's grid, with the ``ETag`` a write sends back in
    ``If-Match``."""
    c = _collection(collection_id, caller)
    _feature_id(feature_id)
    if draft is not None:
        _drafted(c)
        grid = _draft_grid(conn, caller, draft, feature_id)
        return _feature_answer(request, draft, grid)
    features, _ = items(conn, c, scope=caller.scope, limit=1, offset=0,
                        properties=list(_visible(caller, c)), feature_id=feature_id)
    if not features:
        raise HTTPException(404, f"no feature {feature_id!r} in {c.id}")
    if _present(caller, c, features):
        _audit(request, caller, c, features)
    feature = features[0]
    feature["links"] = [
        {"href": str(request.url), "rel": "self", "type": GEOJSON},
        {"href": f"{_base(request)}/collections/{c.id}", "rel": "collection",
         "type": "application/json"}]
    return JSONResponse(feature, media_type=GEOJSON)


def _audit(request: Request, caller: Principal, c: Collection,
           features: list[dict[str, Any]]) -> None:
    request.app.state.audit.read(caller, f"GET {request.url.path}", client_of(request),
                                 divisions=caller.divisions,
                                 row_ids=[f["id"] for f in features], detail=c.id)


# --- grids as of a past moment ----------------------------------------------------------

def _temporal(c: Collection) -> Collection:
    if c.id != "grids":
        raise HTTPException(400, f"datetime: collection {c.id} has no time; the grids "
                            "answer as of a moment")
    return c


def _instant(request: Request, text: str) -> datetime:
    if "/" in text:
        raise HTTPException(400, "datetime: the grids answer as of one moment (an RFC 3339 "
                            "date or date-time), not an interval")
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise HTTPException(400, f"datetime takes an RFC 3339 date or date-time such as "
                            f"2024-05-01T08:00:00Z, not {text!r}") from exc
    if at.tzinfo is None:
        at = at.replace(tzinfo=ZoneInfo(request.app.state.settings.time_zone))
    return at


# --- Part 4: grids of a draft ------------------------------------------------------------

class FeatureIn(BaseModel):
    """A GeoJSON Feature: a grid's geometry and properties (name; kind, community_code and
    parent_grid_code for a new grid; locked)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "type": "Feature", "properties": {"name": "东区", "kind": "comprehensive"},
        "geometry": {"type": "Polygon", "coordinates": [
            [[109.0, 34.2], [109.01, 34.2], [109.01, 34.21], [109.0, 34.21], [109.0, 34.2]]]}}]})
    type: Literal["Feature"]
    id: str | int | None = None
    geometry: dict[str, Any] | None = Field(description="GeoJSON Polygon or MultiPolygon")
    properties: dict[str, Any] | None = None


class FeaturePatch(BaseModel):
    """What an update changes: properties present replace theirs, a geometry replaces the
    shape; what is left out stays."""

    model_config = ConfigDict(extra="allow")
    type: Literal["Feature"] | None = None
    id: str | int | None = None
    geometry: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None


def _writable(c: Collection) -> Collection:
    if c.id != WRITABLE:
        raise HTTPException(405, f"collection {c.id} is read-only: only {WRITABLE} are "
                            "edited (in a draft)", headers={"Allow": "GET"})
    return c


def _drafted(c: Collection) -> None:
    if c.id != WRITABLE:
        raise HTTPException(400, f"draft: collection {c.id} has no drafts; only {WRITABLE} "
                            "do")


def _feature_id(feature_id: str) -> None:
    if "\x00" in feature_id:
        raise HTTPException(400, "a feature id never contains a NUL character (\\x00): "
                            "remove it")


def _need_draft(draft: int | None) -> int:
    if draft is None:
        raise HTTPException(400, "writes go into a draft, never into the published grids: "
                            "add ?draft=N (open a draft with POST /api/drafts)")
    return draft


def _draft_grid(conn: ConnDep, caller: Principal, draft: int, code: str) -> DraftGrid:
    grid = drafts.draft_features(conn, caller, draft).get(code)
    if grid is None:
        raise HTTPException(404, f"draft {draft} has no grid {code!r} among yours")
    return grid


def _draft_page(conn: ConnDep, caller: Principal, draft: int, *, limit: int, offset: int,
                bbox: tuple[float, float, float, float] | None,
                properties: list[str] | None) -> tuple[list[dict[str, Any]], int]:
    grids = list(drafts.draft_features(conn, caller, draft).values())
    if bbox is not None:
        box = shapely.box(*bbox)
        grids = [g for g in grids if shapely.intersects(g.geom, box)]
    features = [grid_feature(g) for g in grids[offset:offset + limit]]
    if properties is not None:
        for f in features:
            f["properties"] = {p: f["properties"][p] for p in properties}
    return features, len(grids)


def _feature_answer(request: Request, draft: int, grid: DraftGrid, *, status: int = 200,
                    changed: list[str] | None = None) -> JSONResponse:
    feature = grid_feature(grid)
    link = f"{_base(request)}/collections/{WRITABLE}/items/{grid.code}?draft={draft}"
    feature["links"] = [
        {"href": link, "rel": "self", "type": GEOJSON},
        {"href": f"{_base(request)}/collections/{WRITABLE}", "rel": "collection",
         "type": "application/json"}]
    headers = {"ETag": drafts.feature_tag(draft, grid)}
    if status == 201:
        headers["Location"] = link
    if changed is not None:
        headers["Gridmap-Changed"] = ",".join(changed)
    return JSONResponse(feature, status_code=status, media_type=GEOJSON, headers=headers)


def _options(request: Request) -> dict[str, Any]:
    s = request.app.state.settings
    return {"standard": s.standard, "tolerance": s.check_tolerance_m,
            "min_area": s.check_min_area_m2}


def _no_nul(body: BaseModel) -> None:
    if "\\u0000" in json.dumps(body.model_dump(mode="json")):
        raise HTTPException(422, "the feature contains a NUL character (\\u0000): remove it")


async def _write(request: Request, caller: Principal, draft: int, op: str, *,
                 code: str | None = None, body: FeatureIn | FeaturePatch | None = None,
                 crs: str | None = None, if_match: str | None = None,
                 status: int = 200) -> Response:
    geometry = None
    if body is not None:
        _no_nul(body)
        if body.geometry is not None:
            geometry = drafts.feature_geometry(body.geometry, crs)
        elif op in ("create", "replace"):
            raise HTTPException(422, "a grid needs a geometry (GeoJSON Polygon or "
                                "MultiPolygon)")
        if code is not None and body.id is not None and str(body.id) != code:
            raise HTTPException(422, f"the feature's id {body.id!r} is not {code!r}, the "
                                "one in the path")
    state = request.app.state
    view, written = await run_in_threadpool(
        drafts.edit_feature, state.engine, caller, draft, op, state.drafts, code=code,
        geometry=geometry, properties=(body.properties or {}) if body is not None else {},
        if_match=if_match, client=client_of(request), **_options(request))
    if op == "delete":
        return Response(status_code=204, headers={"Gridmap-Changed": ",".join(view.changed)})
    return _feature_answer(request, draft, view.grids[written], status=status,
                           changed=view.changed)


@router.post("/collections/{collection_id}/items", status_code=201, response_class=GeoJSONResponse,
             responses={**WRITE_ERRORS, 201: {"model": Feature,
                                               "description": "the new grid (Location, ETag)"}})
async def create_item(request: Request, caller: CallerDep, collection_id: str,
                      body: FeatureIn, draft: DraftQuery = None,
                      content_crs: ContentCrs = None) -> Response:
    """A new grid in the draft, coded with its community's next free sequence; a
    comprehensive grid takes its land from the grids there (none may vanish)."""
    _writable(_collection(collection_id, caller))
    return await _write(request, caller, _need_draft(draft), "create", body=body,
                        crs=content_crs, status=201)


@router.put("/collections/{collection_id}/items/{feature_id}", response_class=GeoJSONResponse,
            responses={**WRITE_ERRORS, 200: {"model": Feature}})
async def replace_item(request: Request, caller: CallerDep, collection_id: str,
                       feature_id: str, body: FeatureIn, draft: DraftQuery = None,
                       if_match: IfMatch = None, content_crs: ContentCrs = None
                       ) -> Response:
    """Replace a grid of the draft (its shape and name; neighbours give or take the land
    that changes hands)."""
    _writable(_collection(collection_id, caller))
    _feature_id(feature_id)
    return await _write(request, caller, _need_draft(draft), "replace", code=feature_id,
                        body=body, crs=content_crs, if_match=if_match)


@router.patch("/collections/{collection_id}/items/{feature_id}", response_class=GeoJSONResponse,
              responses={**WRITE_ERRORS, 200: {"model": Feature}})
async def update_item(request: Request, caller: CallerDep, collection_id: str,
                      feature_id: str, body: FeaturePatch, draft: DraftQuery = None,
                      if_match: IfMatch = None, content_crs: ContentCrs = None
                      ) -> Response:
    """Change part of a grid of the draft: the properties sent, the geometry if sent."""
    _writable(_collection(collection_id, caller))
    _feature_id(feature_id)
    return await _write(request, caller, _need_draft(draft), "update", code=feature_id,
                        body=body, crs=content_crs, if_match=if_match)


@router.delete("/collections/{collection_id}/items/{feature_id}", status_code=204,
               responses=WRITE_ERRORS)
async def delete_item(request: Request, caller: CallerDep, collection_id: str,
                      feature_id: str, draft: DraftQuery = None, if_match: IfMatch = None
                      ) -> Response:
    """Retire a grid in the draft: its land (and its workers, micro- and exclusive grids)
    go to the neighbour sharing the longest edge. Published grids retire when the draft
    is published."""
    _writable(_collection(collection_id, caller))
    _feature_id(feature_id)
    return await _write(request, caller, _need_draft(draft), "delete", code=feature_id,
                        if_match=if_match)
