"""Vector tiles and TileJSON."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Receive, Send
from starlette.types import Scope as AsgiScope

from gridmap.access import Principal
from gridmap.api.deps import CallerDep, caller_in_memory
from gridmap.api.errors import error
from gridmap.domain.access import Resource, Scope
from gridmap.store.basemap import basemap_extent
from gridmap.store.ogc import COLLECTIONS, extent
from gridmap.tiles.mvt import BASEMAP, LAYERS, MAX_ZOOM, Source, TileError, view_of
from gridmap.tiles.store import Tile

router = APIRouter(tags=["tiles"])
MVT = "application/vnd.mapbox-vector-tile"
FIELDS = {
    "townships": ["code", "name", "urban_rural", "population", "parent_code"],
    "communities": ["code", "name", "urban_rural", "population", "parent_code"],
    "grids": ["code", "name", "kind", "community_code", "urban_rural", "version", "households",
              "residents", "band_low", "band_high"],
    "facilities": ["id", "type", "name", "capacity", "grid_code"],
    "incidents": ["id", "category", "status", "reported_at", "grid_code"],
    "streets": ["id", "length_m", "name"],
    "buildings": ["id", "name"],
}


# the resource each tile layer shows
READS = {"townships": Resource.boundaries, "communities": Resource.boundaries,
         "grids": Resource.boundaries, "facilities": Resource.facilities,
         "incidents": Resource.incidents, "streets": Resource.boundaries,
         "buildings": Resource.boundaries}


def _layer(caller: Principal, layer: str) -> None:
    if layer not in LAYERS:
        raise HTTPException(404, f"unknown layer {layer!r}: choose one of {', '.join(LAYERS)}")
    caller.require(READS[layer])


class VectorLayer(BaseModel):
    id: str
    fields: dict[str, str]


class TileJSON(BaseModel):
    tilejson: str = "3.0.0"
    name: str
    tiles: list[str]
    minzoom: int
    maxzoom: int
    bounds: list[float] = Field(description="west, south, east, north (lon/lat) of what the "
                                "caller may see of the layer; the whole world when empty")
    center: list[float] = Field(description="lon, lat, zoom")
    vector_layers: list[VectorLayer]


Zoom = Annotated[int, Path(ge=0, le=MAX_ZOOM)]
Index = Annotated[int, Path(ge=0, le=2**MAX_ZOOM - 1, description="0 .. 2^z - 1")]
WORLD = [-180.0, -85.0511, 180.0, 85.0511]


def answer(tile: Tile, source: Source, *, public: bool, if_none_match: str | None
           ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers and body of a tile's answer: 304 when the client holds this tile
    (``If-None-Match``), 204 for an empty one. Clients revalidate every time (``no-cache``):
    a tile changes with the data, and an unchanged one costs a 304 without its bytes."""
    headers = [(b"etag", tile.etag.encode()),
               (b"cache-control", PUBLIC_CACHING if public else PRIVATE_CACHING),
               (b"vary", b"Authorization, Cookie"), (b"x-tile-cache", source.encode())]
    if if_none_match is not None and _matches(if_none_match, tile.etag):
        return 304, headers, b""
    if not tile.data:
        return 204, headers, b""
    return 200, [(b"content-type", MVT.encode()),
                 (b"content-length", str(len(tile.data)).encode()), *headers], tile.data


PUBLIC_CACHING = b"public, no-cache"
PRIVATE_CACHING = b"private, no-cache"


def _matches(if_none_match: str, etag: str) -> bool:
    """Whether an If-None-Match header names *etag* (weak comparison, RFC 9110 13.1.2)."""
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return etag in tags or "*" in tags


@router.get("/tiles/{layer}/{z}/{x}/{y}.mvt", response_class=Response, responses={
    200: {"content": {MVT: {}}, "description": "the tile", "headers": {
        "ETag": {"description": "a digest of the tile's bytes", "schema": {"type": "string"}}}},
    204: {"description": "nothing of the layer in this tile"},
    304: {"description": "the tile named in If-None-Match is still the tile"},
    404: error("no such layer, or no such tile at this zoom (x or y ≥ 2^z)")})
async def get_tile(request: Request, caller: CallerDep, layer: str, z: Zoom, x: Index,
                   y: Index, if_none_match: Annotated[str | None, Header()] = None
                   ) -> Response:
    """One Mapbox vector tile of a layer (townships, communities, grids, facilities,
    incidents), holding the caller's divisions only (grids carry household counts for
    callers who may read counts); or of the basemap (streets, buildings from zoom 13), the
    same for everyone who may see the boundaries. Cached per view and shared by the
    server's processes; a change in the database evicts exactly the tiles it touches. Every
    answer carries an ``ETag``: send it back in ``If-None-Match`` to get a 304 while the
    tile is unchanged."""
    _layer(caller, layer)
    cache = request.app.state.tiles
    view = view_of(caller.scope, counts=caller.may(Resource.counts), layer=layer)
    tile, source = await cache.get(layer, z, x, y, view)  # TileError: errors.py
    status, headers, body = answer(tile, source, public=caller.name is None,
                                   if_none_match=if_none_match)
    response = Response(body, status_code=status)
    response.raw_headers = headers
    return response


TILE_PATH = re.compile(r"/tiles/([a-z]+)/(\d{1,2})/(\d{1,7})/(\d{1,7})\.mvt")


class CachedTiles:
    """Cached tiles without the framework: a pure ASGI middleware that answers a GET of a
    tile this process holds in memory, for a caller known without I/O (the public, or a
    signed-in session already resolved) who may read the layer. Everything else — a miss,
    a token to check, a refusal, a bad path — goes on to :func:`get_tile`, which answers it
    (and caches the tile for next time)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        match = TILE_PATH.fullmatch(scope["path"]) if scope["type"] == "http" \
            and scope["method"] == "GET" else None
        found = match and self._cached(scope, match)
        if not found:
            await self.app(scope, receive, send)
            return
        status, headers, body = found
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _cached(scope: AsgiScope, match: re.Match[str]
                ) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        state = scope["app"].state
        headers = dict(scope["headers"])
        state.changes.poll()  # revocations, new grants and evictions first
        caller = caller_in_memory(state, headers.get(b"authorization"),
                                  headers.get(b"cookie"))
        layer = match[1]
        if caller is None or layer not in READS or not caller.may(READS[layer]):
            return None
        z, x, y = int(match[2]), int(match[3]), int(match[4])
        view = view_of(caller.scope, counts=caller.may(Resource.counts), layer=layer)
        try:
            tile = state.tiles.cached(layer, z, x, y, view)
        except TileError:
            return None
        if tile is None:
            return None
        inm = headers.get(b"if-none-match")
        return answer(tile, "hit", public=caller.name is None,
                      if_none_match=None if inm is None else inm.decode("latin-1"))


def _bounds(request: Request, layer: str, scope: Scope) -> list[float]:
    with request.app.state.engine.connect() as conn:
        if layer in BASEMAP:
            return basemap_extent(conn, layer) or WORLD
        return extent(conn, COLLECTIONS[layer], scope=scope) or WORLD


@router.get("/tiles/{layer}.json", response_model=TileJSON, responses={
    404: error("no such layer")})
async def get_tilejson(request: Request, caller: CallerDep, layer: str) -> TileJSON:
    """TileJSON 3.0 of a layer, with the bounds of what the caller may see of it."""
    _layer(caller, layer)
    base = str(request.base_url).rstrip("/")
    west, south, east, north = await run_in_threadpool(_bounds, request, layer, caller.scope)
    return TileJSON(name=layer, tiles=[f"{base}/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt"],
                    minzoom=0, maxzoom=MAX_ZOOM, bounds=[west, south, east, north],
                    center=[(west + east) / 2, (south + north) / 2, 12 if east - west < 1 else 8],
                    vector_layers=[VectorLayer(id=name, fields=dict.fromkeys(fields, ""))
                                   for name, fields in _vector_layers(layer)])


# the layers with a name carry a second layer of one point per feature for its label
LABELS = {"townships": ("townships_labels", ["code", "name", "population"]),
          "communities": ("communities_labels", ["code", "name", "population"]),
          "grids": ("grid_labels", ["code", "name", "kind"]),
          "streets": ("street_labels", ["name"])}


def _vector_layers(layer: str) -> list[tuple[str, list[str]]]:
    return [(layer, FIELDS[layer]), *([LABELS[layer]] if layer in LABELS else [])]
