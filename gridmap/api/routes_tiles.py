"""Vector tiles and TileJSON."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response

from gridmap.access import Principal
from gridmap.api.deps import CallerDep
from gridmap.domain.access import Resource
from gridmap.tiles.mvt import LAYERS, MAX_ZOOM, TileError, view_of

router = APIRouter(tags=["tiles"])
MVT = "application/vnd.mapbox-vector-tile"
FIELDS = {
    "townships": ["code", "name", "urban_rural", "population", "parent_code"],
    "communities": ["code", "name", "urban_rural", "population", "parent_code"],
    "grids": ["code", "name", "kind", "community_code", "urban_rural", "version", "households",
              "residents", "band_low", "band_high"],
    "facilities": ["id", "type", "name", "capacity", "grid_code"],
    "incidents": ["id", "category", "status", "reported_at", "grid_code"],
}


# the resource each tile layer shows
READS = {"townships": Resource.boundaries, "communities": Resource.boundaries,
         "grids": Resource.boundaries, "facilities": Resource.facilities,
         "incidents": Resource.incidents}


def _layer(caller: Principal, layer: str) -> None:
    if layer not in LAYERS:
        raise HTTPException(404, f"unknown layer {layer!r}: choose one of {', '.join(LAYERS)}")
    caller.require(READS[layer])


@router.get("/tiles/{layer}/{z}/{x}/{y}.mvt", responses={200: {"content": {MVT: {}}}})
async def get_tile(request: Request, caller: CallerDep, layer: str, z: int, x: int, y: int
                   ) -> Response:
    """One Mapbox vector tile of a layer (townships, communities, grids, facilities,
    incidents), holding the caller's divisions only (grids carry household counts for
    callers who may read counts). Cached per view; a change in the database evicts exactly
    the tiles it touches."""
    _layer(caller, layer)
    cache = request.app.state.tiles
    view = view_of(caller.scope, counts=caller.may(Resource.counts))
    try:
        tile, hit = await cache.get(layer, z, x, y, view)
    except TileError as exc:
        status = 404 if "unknown layer" in str(exc) else 400
        raise HTTPException(status, str(exc)) from exc
    headers = {"X-Tile-Cache": "hit" if hit else "miss"}
    if not tile:
        return Response(status_code=204, headers=headers)
    return Response(tile, media_type=MVT, headers=headers)


@router.get("/tiles/{layer}.json")
async def get_tilejson(request: Request, caller: CallerDep, layer: str) -> dict[str, Any]:
    """TileJSON 3.0 of a layer."""
    _layer(caller, layer)
    base = str(request.base_url).rstrip("/")
    return {"tilejson": "3.0.0", "name": layer,
            "tiles": [f"{base}/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt"],
            "minzoom": 0, "maxzoom": MAX_ZOOM,
            "vector_layers": [{"id": layer, "fields": dict.fromkeys(FIELDS[layer], "")}]}
