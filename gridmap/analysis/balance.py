"""Are grids balanced? Households and residents per grid against the standard bands,
households per full-time worker, and compactness."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from gridmap.analysis.frames import utm_crs
from gridmap.domain.standards import GridStandard


def grid_balance(grids: gpd.GeoDataFrame, households: pd.DataFrame, *,
                 communities: pd.DataFrame | None = None, workers: pd.DataFrame | None = None,
                 standard: GridStandard | None = None) -> gpd.GeoDataFrame:
    """One row per grid with its load against the standard.

    Parameters
    ----------
    grids : ``code``, optional ``kind``, geometry
    households : ``grid_code`` (from :func:`gridmap.analysis.assign.assign_to_grids`) and
        ``residents``
    communities : ``code`` and ``urban_rural``; grids of unknown communities count as urban
    workers : ``grid_code`` and ``role``; full-time workers carry the household load
    standard : the bands (defaults of DESIGN.md §2)

    Returns
    -------
    GeoDataFrame: ``households``, ``residents``, ``band_low``, ``band_high``,
    ``max_residents``, ``status`` (below / within / above / over_residents), ``excess``
    (households beyond the band: negative below it), ``residents_excess``,
    ``households_per_worker``, ``area_km2``, ``compactness`` (Polsby-Popper, 1 = a circle).

    Examples
    --------
    >>> import shapely
    >>> grids = gpd.GeoDataFrame({"code": ["610199001001001"]},
    ...     geometry=[shapely.box(0, 0, 500, 500)], crs=32650)
    >>> hh = pd.DataFrame({"grid_code": ["610199001001001"] * 520, "residents": 3})
    >>> row = grid_balance(grids, hh).iloc[0]
    >>> row["status"], int(row["excess"])
    ('above', 20)
    """
    standard = standard or GridStandard()
    if grids.crs is None:
        raise ValueError("the grids have no CRS: set one before measuring them")
    for col in ("grid_code", "residents"):
        if col not in households:
            raise ValueError(f"households need a {col!r} column (assign them to grids first)")
    out = grids.copy()
    kind = out["kind"] if "kind" in out else pd.Series("comprehensive", index=out.index)
    load = households.groupby("grid_code").agg(households=("residents", "size"),
                                               residents=("residents", "sum"))
    out = out.join(load, on="code")
    out[["households", "residents"]] = out[["households", "residents"]].fillna(0).astype(int)
    urban_rural = pd.Series("urban", index=out.index)
    if communities is not None:
        lookup = communities.set_index("code")["urban_rural"]
        urban_rural = out["code"].str[:12].map(lookup).fillna("urban")
    out["urban_rural"] = urban_rural
    bands = [standard.band(u, k) for u, k in zip(urban_rural, kind, strict=True)]
    out["band_low"] = [b[0] for b in bands]
    out["band_high"] = [b[1] for b in bands]
    out["max_residents"] = [standard.max_residents(u) for u in urban_rural]
    hh = out["households"].to_numpy()
    out["excess"] = np.where(hh > out["band_high"], hh - out["band_high"],
                             np.where(hh < out["band_low"], hh - out["band_low"], 0))
    out["residents_excess"] = np.maximum(out["residents"] - out["max_residents"], 0)
    out["status"] = np.select(
        [out["residents_excess"] > 0, out["excess"] > 0, out["excess"] < 0],
        ["over_residents", "above", "below"], "within")
    if workers is not None and len(workers):
        full = workers[workers["role"] == "full_time"].groupby("grid_code").size()
        n = out["code"].map(full).fillna(0).to_numpy()
        out["workers"] = n.astype(int)
        out["households_per_worker"] = np.where(n > 0, hh / np.maximum(n, 1), np.nan)
    metric = out.to_crs(utm_crs(out)) if not out.crs.is_projected else out
    area = metric.geometry.area.to_numpy()
    perimeter = metric.geometry.length.to_numpy()
    out["area_km2"] = area / 1e6
    out["compactness"] = np.where(perimeter > 0, 4 * np.pi * area / perimeter**2, 0.0)
    return out
