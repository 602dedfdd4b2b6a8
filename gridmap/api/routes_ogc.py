"""OGC API - Features, Part 1 Core (with CQL2 text filters), under /ogc.

Readable by standard clients: GDAL's OAPIF driver (``ogrinfo OAPIF:http://host/ogc``),
OWSLib, QGIS. Geometry is GeoJSON in CRS84; paging with ``limit``/``offset`` and ``next``
links; ``numberMatched``/``numberReturned``; ``properties`` selects attributes; ``filter``
takes CQL2 text over the collection's queryables.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from gridmap.access import Principal
from gridmap.api.deps import CallerDep, ConnDep, client_of
from gridmap.domain.access import Show, show
from gridmap.store.ogc import COLLECTIONS, Collection, FilterError, extent, items

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
]
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


@router.get("")
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


@router.get("/conformance")
def conformance() -> dict[str, list[str]]:
    """The conformance classes implemented."""
    return {"conformsTo": CONFORMANCE}


@router.get("/collections")
def collections(request: Request, conn: ConnDep, caller: CallerDep) -> dict[str, Any]:
    """The collections the caller may read."""
    base = _base(request)
    return {"links": [{"href": f"{base}/collections", "rel": "self",
                       "type": "application/json"}],
            "collections": [_describe(request, conn, caller, c) for c in COLLECTIONS.values()
                            if caller.may(c.resource)]}


@router.get("/collections/{collection_id}")
def collection(request: Request, conn: ConnDep, caller: CallerDep, collection_id: str
               ) -> dict[str, Any]:
    """One collection."""
    return _describe(request, conn, caller, _collection(collection_id, caller))


@router.get("/collections/{collection_id}/queryables")
def queryables(request: Request, caller: CallerDep, collection_id: str) -> JSONResponse:
    """The properties a CQL2 filter may use (those the caller sees unmasked)."""
    c = _collection(collection_id, caller)
    return JSONResponse({
        "$schema": "https://json-schema.org/draft/2019-09/schema",
        "$id": f"{_base(request)}/collections/{c.id}/queryables", "type": "object",
        "properties": {p: {"title": p} for p in _queryables(caller, c)}},
        media_type="application/schema+json")


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


@router.get("/collections/{collection_id}/items", response_class=JSONResponse)
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
) -> JSONResponse:
    """Features of a collection in the caller's divisions, a page at a time, as GeoJSON;
    personal properties as the caller's role may see them."""
    c = _collection(collection_id, caller)
    visible = _visible(caller, c)
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
    try:
        features, matched = items(conn, c, scope=caller.scope, limit=limit, offset=offset,
                                  bbox=_bbox(bbox),
                                  properties=props if props is not None else list(visible),
                                  cql2=filter_, queryables=_queryables(caller, c))
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


@router.get("/collections/{collection_id}/items/{feature_id}", response_class=JSONResponse)
def get_item(request: Request, conn: ConnDep, caller: CallerDep, collection_id: str,
             feature_id: str) -> JSONResponse:
    """One feature (404 outside the caller's divisions, as for one that does not exist)."""
    c = _collection(collection_id, caller)
    if "\x00" in feature_id:
        raise HTTPException(400, "a feature id never contains a NUL character (\\x00): "
                            "remove it")
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
