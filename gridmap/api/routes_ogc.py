"""OGC API - Features, Part 1 Core (with CQL2 text filters), under /ogc.

Readable by standard clients: GDAL's OAPIF driver (``ogrinfo OAPIF:http://host/ogc``),
OWSLib, QGIS. Geometry is GeoJSON in CRS84; paging with ``limit``/``offset`` and ``next``
links; ``numberMatched``/``numberReturned``; ``properties`` selects attributes; ``filter``
takes CQL2 text over the collection's queryables.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from gridmap.api.deps import ConnDep
from gridmap.store.ogc import COLLECTIONS, Collection, FilterError, extent, items

router = APIRouter(prefix="/ogc", tags=["OGC API Features"])
GEOJSON = "application/geo+json"
MAX_LIMIT = 10_000
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


def _collection(cid: str) -> Collection:
    if cid not in COLLECTIONS:
        raise HTTPException(404, f"unknown collection {cid!r}: choose one of "
                            f"{', '.join(COLLECTIONS)}")
    return COLLECTIONS[cid]


def _describe(request: Request, conn: ConnDep, c: Collection) -> dict[str, Any]:
    base = _base(request)
    box = extent(conn, c)
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
def collections(request: Request, conn: ConnDep) -> dict[str, Any]:
    """All collections."""
    base = _base(request)
    return {"links": [{"href": f"{base}/collections", "rel": "self",
                       "type": "application/json"}],
            "collections": [_describe(request, conn, c) for c in COLLECTIONS.values()]}


@router.get("/collections/{collection_id}")
def collection(request: Request, conn: ConnDep, collection_id: str) -> dict[str, Any]:
    """One collection."""
    return _describe(request, conn, _collection(collection_id))


@router.get("/collections/{collection_id}/queryables")
def queryables(request: Request, collection_id: str) -> JSONResponse:
    """The properties a CQL2 filter may use."""
    c = _collection(collection_id)
    return JSONResponse({
        "$schema": "https://json-schema.org/draft/2019-09/schema",
        "$id": f"{_base(request)}/collections/{c.id}/queryables", "type": "object",
        "properties": {p: {"title": p} for p in c.properties}},
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
    request: Request, conn: ConnDep, collection_id: str,
    limit: Annotated[int, Query(ge=1, description=f"1..{MAX_LIMIT}")] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy in lon/lat")] = None,
    properties: Annotated[str | None, Query(description="comma-separated properties to "
                                            "return")] = None,
    filter_: Annotated[str | None, Query(alias="filter", description="CQL2 text, e.g. "
                                         "kind = 'exclusive' AND version > 1")] = None,
    filter_lang: Annotated[str, Query(alias="filter-lang")] = "cql2-text",
) -> JSONResponse:
    """Features of a collection, a page at a time, as GeoJSON."""
    c = _collection(collection_id)
    if limit > MAX_LIMIT:
        raise HTTPException(400, f"limit may be at most {MAX_LIMIT}; page with offset")
    if filter_lang != "cql2-text":
        raise HTTPException(400, "filter-lang: only cql2-text is supported")
    props = None
    if properties is not None:
        props = [p for p in properties.split(",") if p]
        unknown = [p for p in props if p not in c.properties]
        if unknown:
            raise HTTPException(400, f"unknown properties {', '.join(unknown)}: choose from "
                                f"{', '.join(c.properties)}")
    try:
        features, matched = items(conn, c, limit=limit, offset=offset, bbox=_bbox(bbox),
                                  properties=props, cql2=filter_)
    except FilterError as exc:
        raise HTTPException(400, str(exc)) from exc
    base = f"{_base(request)}/collections/{c.id}/items"
    query = {k: v for k, v in request.query_params.items() if k not in ("offset",)}
    links = [{"href": str(request.url), "rel": "self", "type": GEOJSON},
             {"href": f"{_base(request)}/collections/{c.id}", "rel": "collection",
              "type": "application/json"}]

    def page(at: int) -> str:
        params = "&".join(f"{k}={v}" for k, v in {**query, "offset": at}.items())
        return f"{base}?{params}"

    if offset + len(features) < matched:
        links.append({"href": page(offset + limit), "rel": "next", "type": GEOJSON})
    if offset > 0:
        links.append({"href": page(max(offset - limit, 0)), "rel": "prev", "type": GEOJSON})
    return JSONResponse({"type": "FeatureCollection", "features": features,
                         "numberMatched": matched, "numberReturned": len(features),
                         "links": links}, media_type=GEOJSON)


@router.get("/collections/{collection_id}/items/{feature_id}", response_class=JSONResponse)
def get_item(request: Request, conn: ConnDep, collection_id: str, feature_id: str
             ) -> JSONResponse:
    """One feature."""
    c = _collection(collection_id)
    features, _ = items(conn, c, limit=1, offset=0, feature_id=feature_id)
    if not features:
        raise HTTPException(404, f"no feature {feature_id!r} in {c.id}")
    feature = features[0]
    feature["links"] = [
        {"href": str(request.url), "rel": "self", "type": GEOJSON},
        {"href": f"{_base(request)}/collections/{c.id}", "rel": "collection",
         "type": "application/json"}]
    return JSONResponse(feature, media_type=GEOJSON)
