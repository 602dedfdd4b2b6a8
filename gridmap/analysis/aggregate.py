"""Counts and sums of a point layer per H3 cell, and per grid / community / township, as
GeoDataFrames ready to map. Accepts dask-geopandas frames too."""

from __future__ import annotations

from typing import Any, Literal

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import shapely

from gridmap.analysis.frames import is_dask

Level = Literal["grid", "community", "township"]


def lonlat_to_h3(lon: np.ndarray, lat: np.ndarray, resolution: int) -> np.ndarray:
    """H3 cells of WGS84 points (h3 takes latitude first: wrapped once, here)."""
    return np.array([h3.latlng_to_cell(la, lo, resolution)
                     for lo, la in zip(lon.tolist(), lat.tolist(), strict=True)], dtype=object)


def h3_to_polygons(cells: np.ndarray) -> np.ndarray:
    """Cell boundaries as shapely polygons (lon, lat)."""
    return np.array([shapely.Polygon([(lo, la) for la, lo in h3.cell_to_boundary(c)])
                     for c in cells], dtype=object)


def polygon_to_h3(polygon: shapely.Geometry, resolution: int) -> list[str]:
    """H3 cells that overlap a WGS84 (lon, lat) polygon or multipolygon, even partly."""
    shape = h3.geo_to_h3shape(polygon)
    return sorted(h3.h3shape_to_cells_experimental(shape, resolution, contain="overlap"))


def _check(points: Any, values: list[str], resolution: int | None = None) -> None:
    if resolution is not None and not 0 <= resolution <= 15:
        raise ValueError(f"H3 resolution must be 0..15, not {resolution}")
    if points.crs is None or points.crs.to_epsg() not in (4326, 4490):
        raise ValueError("H3 needs WGS84 (EPSG:4326) points: reproject them first")
    missing = [v for v in values if v not in points.columns]
    if missing:
        raise ValueError(f"no column(s) {', '.join(missing)} to sum")


def _cells_frame(part: pd.DataFrame, resolution: int, values: list[str]) -> pd.DataFrame:
    geoms = part.geometry.values
    cells = lonlat_to_h3(shapely.get_x(geoms), shapely.get_y(geoms), resolution)
    frame = pd.DataFrame({"h3_cell": cells, "count": 1}, index=part.index)
    for v in values:
        frame[v] = part[v].to_numpy()
    return frame


def aggregate_h3(points: Any, resolution: int, *, values: list[str] | tuple[str, ...] = ()
                 ) -> gpd.GeoDataFrame:
    """Per H3 cell: ``count`` of points and the sum of each column in *values*.

    *points* is a GeoDataFrame or a dask-geopandas GeoDataFrame in EPSG:4326.

    Examples
    --------
    >>> pts = gpd.GeoDataFrame({"residents": [2, 3, 1]},
    ...     geometry=gpd.points_from_xy([109.0, 109.0, 110.0], [34.0, 34.0, 34.0]), crs=4326)
    >>> aggregate_h3(pts, 8, values=["residents"])[["count", "residents"]].to_dict("list")
    {'count': [2, 1], 'residents': [5, 1]}
    """
    values = list(values)
    _check(points, values, resolution)
    meta = pd.DataFrame({"h3_cell": pd.Series(dtype=object), "count": pd.Series(dtype="int64"),
                         **{v: pd.Series(dtype=points[v].dtype) for v in values}})
    if is_dask(points):
        cells = points.map_partitions(_cells_frame, resolution, values, meta=meta)
        table = cells.groupby("h3_cell").sum().compute()
    else:
        table = _cells_frame(points, resolution, values).groupby("h3_cell").sum()
    table = table.sort_index()
    return gpd.GeoDataFrame(table.reset_index(),
                            geometry=h3_to_polygons(table.index.to_numpy()), crs=4326)


def aggregate_by_division(points: Any, level: Level, shapes: gpd.GeoDataFrame, *,
                          values: list[str] | tuple[str, ...] = ()) -> gpd.GeoDataFrame:
    """Per grid, community or township: ``count`` and sums, with *shapes*' geometry.

    *points* must carry ``grid_code`` (see :func:`gridmap.analysis.assign.assign_to_grids`);
    *shapes* has ``code`` and geometry of the level asked for. Units with no point get 0.
    Points outside every grid are counted under the code ``None`` and dropped from the map
    only after being reported in ``outside`` (``attrs``).
    """
    values = list(values)
    if "grid_code" not in points.columns:
        raise ValueError("points need a 'grid_code' column: assign them to grids first")
    width = {"grid": 15, "community": 12, "township": 9}[level]
    suffix = "" if level != "township" else "000"

    def per(part: pd.DataFrame) -> pd.DataFrame:
        key = part["grid_code"].astype("string").str.slice(0, width) + suffix
        frame = pd.DataFrame({"code": key.fillna("outside").astype(object), "count": 1},
                             index=part.index)
        for v in values:
            frame[v] = part[v].to_numpy()
        return frame

    if is_dask(points):
        meta = pd.DataFrame({"code": pd.Series(dtype=object), "count": pd.Series(dtype="int64"),
                             **{v: pd.Series(dtype=points[v].dtype) for v in values}})
        table = points.map_partitions(per, meta=meta).groupby("code").sum().compute()
    else:
        table = per(points).groupby("code").sum()
    outside = int(table.loc["outside", "count"]) if "outside" in table.index else 0
    out = shapes[["code", shapes.geometry.name]].merge(
        table, left_on="code", right_index=True, how="left")
    cols = ["count", *values]
    out[cols] = out[cols].fillna(0)
    out["count"] = out["count"].astype(int)
    out.attrs["outside"] = outside
    return gpd.GeoDataFrame(out, geometry=shapes.geometry.name, crs=shapes.crs)

