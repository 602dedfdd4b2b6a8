"""Which engine a frame belongs to: the analysis functions take pandas/geopandas frames and,
for the same call, dask(-geopandas) frames, which they process partition by partition."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import geopandas as gpd
import numpy as np
from pyproj import CRS


def is_dask(frame: object) -> bool:
    """True for a dask DataFrame, Series or dask-geopandas GeoDataFrame."""
    return type(frame).__module__.startswith("dask")


def utm_crs(frame: gpd.GeoDataFrame | gpd.GeoSeries) -> CRS:
    """The metric CRS to measure *frame* in: its own when projected, else the WGS 84 UTM
    zone of the centre of its bounds — the zone geopandas' ``estimate_utm_crs`` picks,
    without its query of the PROJ database (over a second each time).

    >>> import shapely
    >>> utm_crs(gpd.GeoSeries([shapely.box(108.9, 34.2, 109.0, 34.3)], crs=4326)).to_epsg()
    32649
    """
    if frame.crs is None:
        raise ValueError("the layer has no CRS: set one before measuring it")
    crs = CRS.from_user_input(frame.crs)
    if crs.is_projected:
        return crs
    west, south, east, north = frame.to_crs(4326).total_bounds if not crs.equals(
        CRS.from_epsg(4326)) else frame.total_bounds
    if not np.all(np.isfinite([west, south, east, north])):
        raise ValueError("the layer is empty: there is nothing to measure")
    return utm_of_bounds((west, south, east, north))


def utm_of_bounds(bounds: Sequence[float]) -> CRS:
    """The WGS 84 / UTM zone of the middle of *bounds* (west, south, east, north in lon/lat).

    >>> utm_of_bounds((108.9, 34.2, 109.0, 34.3)).to_epsg()
    32649
    """
    west, south, east, north = (float(b) for b in bounds)
    return _utm_zone(int((((west + east) / 2 + 180) % 360) // 6) + 1, (south + north) / 2 < 0)


@cache
def _utm_zone(zone: int, south: bool) -> CRS:
    return CRS.from_epsg((32700 if south else 32600) + zone)
