"""Vector tiles and TileJSON."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from gridmap.access import Principal
from gridmap.api.deps import CallerDep
from gridmap.api.schemas import error
from gridmap.domain.access import Resource, Scope
from gridmap.store.basemap import basemap_extent
from gridmap.store.ogc import COLLECTIONS, extent
from gridmap.tiles.mvt import BASEMAP, LAYERS, MAX_ZOOM, view_of

router = APIRouter(tags=["tiles"])
MVT = "application/vnd.mapbox-vector-tile"
FIELDS = {
    "townships": ["code", "name", "urban_rural", "population", "parent_code"],
    "communities": ["code", "name", "urban_rural", "population", "parent_code"],
    "grids": ["code", "name", "kind", "community_code", "urban_rural", "version", "households",
              "residents", "band_low", "band_high"],
    "facilities": ["id", "type", "name", "capacity", "grid_code"],
    "incidents": ["id", "category", "status", "reported_at", "grid_code"],
    "streets": ["id", "length_m"],
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


@router.get("/tiles/{layer}/{z}/{x}/{y}.mvt", response_class=Response, responses={
    200: {"content": {MVT: {}}, "description": "the tile"},
    204: {"description": "nothing of the layer in this tile"},
    404: error("no such layer, or no such tile at this zoom (x or y ≥ 2^z)")})
async def get_tile(request: Request, caller: CallerDep, layer: str, z: Zoom, x: Index,
                   y: Index) -> Response:
    """One Mapbox vector tile of a layer (townships, communities, grids, facilities,
    incidents), holding the caller's divisions only (grids carry household counts for
    callers who may read counts); or of the basemap (streets, buildings from zoom 13), the
    same for everyone who may see the boundaries. Cached per view; a change in the database
    evicts exactly the tiles it touches."""
    _layer(caller, layer)
    cache = request.app.state.tiles
    view = view_of(caller.scope, counts=caller.may(Resource.counts), layer=layer)
    tile, hit = await cache.get(layer, z, x, y, view)  # TileError: errors.py
    headers = {"X-Tile-Cache": "hit" if hit else "miss"}
    if not tile:
        return Response(status_code=204, headers=headers)
    return Response(tile, media_type=MVT, headers=headers)


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
          "grids": ("grid_labels", ["code", "name", "kind"])}


def _vector_layers(layer: str) -> list[tuple[str, list[str]]]:
    return [(layer, FIELDS[layer]), *([LABELS[layer]] if layer in LABELS else [])]
