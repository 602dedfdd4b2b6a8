"""Vector tiles and TileJSON."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response

from gridmap.tiles.mvt import LAYERS, MAX_ZOOM, TileError

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


@router.get("/tiles/{layer}/{z}/{x}/{y}.mvt", responses={200: {"content": {MVT: {}}}})
async def get_tile(request: Request, layer: str, z: int, x: int, y: int) -> Response:
    """One Mapbox vector tile of a layer (townships, communities, grids, facilities,
    incidents). Cached; a change in the database evicts exactly the tiles it touches."""
    request.app.state.changes.poll()
    cache = request.app.state.tiles
    try:
        tile, hit = await cache.get(layer, z, x, y)
    except TileError as exc:
        status = 404 if "unknown layer" in str(exc) else 400
        raise HTTPException(status, str(exc)) from exc
    headers = {"X-Tile-Cache": "hit" if hit else "miss"}
    if not tile:
        return Response(status_code=204, headers=headers)
    return Response(tile, media_type=MVT, headers=headers)


@router.get("/tiles/{layer}.json")
def get_tilejson(request: Request, layer: str) -> dict[str, Any]:
    """TileJSON 3.0 of a layer."""
    if layer not in LAYERS:
        raise HTTPException(404, f"unknown layer {layer!r}: choose one of {', '.join(LAYERS)}")
    base = str(request.base_url).rstrip("/")
    return {"tilejson": "3.0.0", "name": layer,
            "tiles": [f"{base}/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt"],
            "minzoom": 0, "maxzoom": MAX_ZOOM,
            "vector_layers": [{"id": layer, "fields": dict.fromkeys(FIELDS[layer], "")}]}
