"""Grid codes for a (re)drawn community: stable when a grid's shape changes, the next free
sequence for a new grid, a retired code never reused, numbering west→east then north→south."""

from __future__ import annotations

from collections.abc import Iterable

import geopandas as gpd
import numpy as np
import pandas as pd

from gridmap.domain.codes import grid_code, reading_order


def assign_grid_codes(new: gpd.GeoDataFrame, community_code: str, *,
                      previous: gpd.GeoDataFrame | None = None,
                      retired: Iterable[str] = (), keep_share: float = 0.8,
                      row_band: float | None = None) -> pd.Series:
    """Codes for the grids of one community.

    A grid that already has a ``code`` keeps it. Otherwise, a grid made up, for at least
    *keep_share* of its area, of one previous grid that it holds at least half of inherits
    that grid's code: a reshaped grid keeps its code, while a merged or split grid is a new
    grid (DESIGN.md §2). The rest get fresh
    sequences after the highest ever used (current, previous or *retired*), numbered in
    reading order: rows north→south, each row west→east (rows *row_band* metres tall,
    by default half the median grid width).

    Examples
    --------
    >>> import shapely
    >>> cells = [shapely.box(x, y, x + 100, y + 100) for y in (100, 0) for x in (0, 100)]
    >>> new = gpd.GeoDataFrame(geometry=cells[::-1], crs=32650)
    >>> assign_grid_codes(new, "610199001001").tolist()
    ['610199001001004', '610199001001003', '610199001001002', '610199001001001']
    """
    if new.crs is None:
        raise ValueError("the grids have no CRS")
    metric = new.to_crs(new.estimate_utm_crs()) if not new.crs.is_projected else new
    codes = (np.array(new["code"].astype(object).where(new["code"].notna(), None),
                      dtype=object)  # a copy: pandas may hand out a read-only view
             if "code" in new else np.full(len(new), None, dtype=object))
    for code in codes:
        if code is not None and not str(code).startswith(community_code):
            raise ValueError(f"grid code {code} does not belong to community {community_code}")
    used = {str(c) for c in codes if c is not None} | set(retired)
    if previous is not None and len(previous):
        prev = previous.to_crs(metric.crs)
        used |= set(prev["code"].astype(str))
        taken = set(used) & {str(c) for c in codes if c is not None}
        pairs = gpd.overlay(
            gpd.GeoDataFrame({"i": range(len(metric))}, geometry=metric.geometry.values,
                             crs=metric.crs),
            gpd.GeoDataFrame({"code": prev["code"].astype(str).to_numpy()},
                             geometry=prev.geometry.values, crs=metric.crs),
            how="intersection", keep_geom_type=True)
        if len(pairs):
            pairs["shared"] = pairs.geometry.area
            pairs["new_area"] = metric.geometry.area.to_numpy()[pairs["i"].to_numpy()]
            prev_area = dict(zip(prev["code"].astype(str), prev.geometry.area, strict=True))
            pairs["old_area"] = pairs["code"].map(prev_area)
            pairs = pairs[(pairs["shared"] >= keep_share * pairs["new_area"])
                          & (pairs["shared"] > 0.5 * pairs["old_area"])]
            for row in pairs.sort_values("shared", ascending=False).itertuples():
                if codes[row.i] is None and row.code not in taken:
                    codes[row.i] = row.code
                    taken.add(row.code)
    fresh = np.flatnonzero([c is None for c in codes])
    if len(fresh):
        cents = metric.geometry.centroid
        band = row_band or 0.5 * float(np.median(np.sqrt(metric.geometry.area.to_numpy())))
        order = reading_order(cents.x.to_numpy()[fresh].tolist(),
                              cents.y.to_numpy()[fresh].tolist(), band=band)
        mine = [int(c[12:]) for c in used if c.startswith(community_code) and len(c) == 15]
        start = max(mine, default=0) + 1
        for offset, j in enumerate(order):
            codes[fresh[j]] = grid_code(community_code, start + offset)
    return pd.Series(codes, index=new.index, name="code", dtype=object)
