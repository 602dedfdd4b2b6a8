"""Does a community's set of grids partition it? Gaps, overlaps, spill-over, grids in several
pieces, slivers and invalid shapes, each with its location and area.

Real boundaries carry centimetre-level noise (digitising, reprojection, rounding); a defect
counts only when it is wider than ``2 * tolerance`` metres (a morphological opening removes
anything thinner) and larger than ``min_area`` square metres.
"""

from __future__ import annotations

from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.analysis.frames import utm_crs

Defect = Literal["invalid", "gap", "overlap", "outside", "multipart", "sliver"]
COLUMNS = ["defect", "community_code", "grid_code", "other_code", "area_m2", "detail", "geometry"]


def _metric(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if frame.crs is None:
        raise ValueError("the layer has no CRS: set one before checking")
    if frame.crs.is_projected:
        return frame
    return frame.to_crs(utm_crs(frame))


def _significant(geom: shapely.Geometry, tolerance: float, min_area: float
                 ) -> list[shapely.Geometry]:
    """The parts of *geom* wider than 2*tolerance and larger than min_area."""
    if geom is None or geom.is_empty:
        return []
    polys = [g for g in shapely.get_parts(geom) if g.geom_type == "Polygon"]
    if not polys:
        return []
    opened = shapely.buffer(shapely.buffer(np.array(polys), -tolerance, join_style="mitre"),
                            tolerance, join_style="mitre")
    out = []
    for poly, core in zip(polys, opened, strict=True):
        if core.is_empty:
            continue
        part = poly.intersection(core.buffer(tolerance * 0.01))
        if part.area >= min_area:
            out.append(part)
    return out


def partition_defects(com_codes: np.ndarray, com_geoms: np.ndarray, codes: np.ndarray,
                      geoms: np.ndarray, *, tolerance: float = 0.1, min_area: float = 1.0,
                      sliver_compactness: float = 0.05, sliver_area: float = 2_000.0
                      ) -> list[dict[str, object]]:
    """The rows of :func:`check_partition` from plain arrays of communities and
    comprehensive grids, all in one metric CRS (no frames: the draft editor calls this
    after every edit)."""
    rows: list[dict[str, object]] = []

    def add(defect: Defect, com: str | None, grid: str | None, other: str | None,
            geom: shapely.Geometry, detail: str) -> None:
        rows.append({"defect": defect, "community_code": com, "grid_code": grid,
                     "other_code": other, "area_m2": round(float(geom.area), 2),
                     "detail": detail, "geometry": geom})

    valid = shapely.is_valid(geoms) & ~shapely.is_empty(geoms)
    for i in np.flatnonzero(~valid):
        reason = "empty" if shapely.is_empty(geoms[i]) else shapely.is_valid_reason(geoms[i])
        fixed = shapely.make_valid(geoms[i]) if not shapely.is_empty(geoms[i]) else geoms[i]
        add("invalid", codes[i][:12], codes[i], None, fixed, reason)
    geoms, codes = geoms[valid], codes[valid]

    # overlaps between any two grids (also of different communities)
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    pair = a < b
    for i, j in zip(a[pair], b[pair], strict=True):
        inter = shapely.intersection(geoms[i], geoms[j])
        for part in _significant(inter, tolerance, min_area):
            where = "grids of two communities" if codes[i][:12] != codes[j][:12] else "grids"
            add("overlap", codes[i][:12], codes[i], codes[j], part, f"{where} overlap")

    # per community: gaps, spill-over, pieces, slivers
    for com, boundary in zip(com_codes, com_geoms, strict=True):
        mine = np.flatnonzero(np.char.startswith(codes.astype(str), com))
        union = shapely.union_all(geoms[mine]) if len(mine) else shapely.Polygon()
        for part in _significant(shapely.difference(boundary, union), tolerance, min_area):
            add("gap", com, None, None, part, "no grid covers this part of the community")
        for i in mine:
            for part in _significant(shapely.difference(geoms[i], boundary), tolerance,
                                     min_area):
                add("outside", com, codes[i], None, part,
                    "the grid spills over its community's boundary")
            pieces = _significant(geoms[i], tolerance, min_area)
            if len(pieces) > 1:
                add("multipart", com, codes[i], None, geoms[i], f"{len(pieces)} separate pieces")
            area, perimeter = geoms[i].area, geoms[i].length
            compact = 4 * np.pi * area / perimeter**2 if perimeter else 0.0
            if area < sliver_area or compact < sliver_compactness:
                add("sliver", com, codes[i], None, geoms[i],
                    f"area {area:.0f} m², compactness {compact:.3f}")
    known = set(com_codes)
    for i in np.flatnonzero([c[:12] not in known for c in codes]):
        add("outside", codes[i][:12], codes[i], None, geoms[i],
            f"community {codes[i][:12]} (from the grid code) is not among the communities")
    return rows


def check_partition(communities: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, *,
                    tolerance: float = 0.1, min_area: float = 1.0,
                    sliver_compactness: float = 0.05, sliver_area: float = 2_000.0
                    ) -> gpd.GeoDataFrame:
    """Every partition defect of *grids* (comprehensive grids) against *communities*.

    Parameters
    ----------
    communities : ``code`` and geometry of the villages/communities to check
    grids : ``code`` (15 digits, community prefix), optional ``kind``, geometry
    tolerance : metres; thinner defects are noise
    min_area : square metres; smaller defects are noise
    sliver_compactness, sliver_area : a grid is a sliver when its Polsby-Popper compactness
        (4πA/P²) is below the first or its area (m²) below the second

    Returns
    -------
    GeoDataFrame with one row per defect (``defect``, ``community_code``, ``grid_code``,
    ``other_code``, ``area_m2``, ``detail``) located by its geometry, in the input CRS.

    Examples
    --------
    >>> import shapely
    >>> com = gpd.GeoDataFrame({"code": ["610199001001"]},
    ...     geometry=[shapely.box(0, 0, 100, 100)], crs=32650)
    >>> grids = gpd.GeoDataFrame({"code": ["610199001001001", "610199001001002"]},
    ...     geometry=[shapely.box(0, 0, 50, 100), shapely.box(60, 0, 100, 100)], crs=32650)
    >>> check_partition(com, grids)[["defect", "area_m2"]].to_dict("records")
    [{'defect': 'gap', 'area_m2': 1000.0}]
    """
    if grids.crs != communities.crs:
        raise ValueError("grids and communities are in different CRSs: reproject one of them")
    crs = grids.crs
    com_m = _metric(communities)
    grd_m = _metric(grids).to_crs(com_m.crs)
    if "kind" in grd_m:
        grd_m = grd_m[grd_m["kind"].fillna("comprehensive") == "comprehensive"]
    rows = partition_defects(
        com_m["code"].astype(str).to_numpy(), np.asarray(com_m.geometry.values, dtype=object),
        grd_m["code"].astype(str).to_numpy(), np.asarray(grd_m.geometry.values, dtype=object),
        tolerance=tolerance, min_area=min_area, sliver_compactness=sliver_compactness,
        sliver_area=sliver_area)
    table = pd.DataFrame(rows, columns=COLUMNS)
    for col in ("community_code", "grid_code", "other_code", "detail"):
        table[col] = table[col].astype(object).where(table[col].notna(), None)
    out = gpd.GeoDataFrame(table, geometry="geometry", crs=com_m.crs)
    return out.to_crs(crs).reset_index(drop=True)
