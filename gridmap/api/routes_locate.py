"""The dispatcher's calls: locate a point, search an address."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from gridmap.api.deps import ConnDep
from gridmap.store.search import search_addresses

router = APIRouter(prefix="/api", tags=["locate"])


@router.get("/locate")
async def locate(
    request: Request,
    lon: Annotated[float, Query(ge=-180, le=180, description="longitude (x)")],
    lat: Annotated[float, Query(ge=-90, le=90, description="latitude (y)")],
    crs: Annotated[Literal["wgs84", "cgcs2000", "gcj02", "bd09"], Query(
        description="coordinate system of lon/lat: gcj02 and bd09 are what Chinese web "
        "maps and geocoders return")] = "wgs84",
) -> Any:
    """Township, community, grid (exclusive grids first) and the grid's workers with their
    phones for a point; the distance to the nearest grid edge and, within the margin
    (default 10 m), the other candidate grids. Outside every grid: ``inside`` false."""
    request.app.state.changes.poll()
    return JSONResponse(request.app.state.locator.locate(lon, lat, crs))


@router.get("/search")
def search(
    request: Request,
    conn: ConnDep,
    q: Annotated[str, Query(min_length=2, max_length=200,
                            description="an address or part of one, typos allowed")],
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> list[dict[str, Any]]:
    """Households whose address matches, best first, with their location, grid, community,
    township and the grid's workers with their phones (``workers`` is empty for a household
    outside every grid)."""
    request.app.state.changes.poll()
    locator = request.app.state.locator
    return [{**hit, **locator.describe(hit["grid_code"])}
            for hit in search_addresses(conn, q.strip(), limit=limit)]
