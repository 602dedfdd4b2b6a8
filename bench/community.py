"""A deterministic synthetic community for the suggested-partition benchmark and tests: an
irregular boundary, households living in apartment buildings of 10–120 households (with
empty land between them: a park, a school yard), in WGS84 near Xi'an."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

METRIC = "EPSG:32649"
ORIGIN = (300_000.0, 3_790_000.0)  # about 108.8° E, 34.2° N


def make_community(households: int = 5_000, *, seed: int = 7, size: float = 1_600.0
                   ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """(community, households) in EPSG:4326; the community is about *size* metres across
    and has code ``610199001001``; households carry ``residents``."""
    rng = np.random.default_rng(seed)
    x0, y0 = ORIGIN
    angles = np.sort(rng.uniform(0, 2 * np.pi, 9))
    radius = size / 2 * rng.uniform(0.75, 1.0, len(angles))
    boundary = shapely.Polygon(np.c_[x0 + radius * np.cos(angles),
                                     y0 + radius * 0.8 * np.sin(angles)])
    park = shapely.Point(x0 + size * 0.15, y0 - size * 0.1).buffer(size * 0.12)
    # buildings on a jittered lattice, skipping the park
    step = 45.0
    gx, gy = np.meshgrid(np.arange(x0 - size, x0 + size, step),
                         np.arange(y0 - size, y0 + size, step))
    bx = gx.ravel() + rng.normal(0, 6, gx.size)
    by = gy.ravel() + rng.normal(0, 6, gy.size)
    keep = shapely.contains_xy(boundary, bx, by) & ~shapely.contains_xy(park, bx, by)
    bx, by = bx[keep], by[keep]
    weight = rng.gamma(1.5, 1.0, len(bx))
    which = rng.choice(len(bx), size=households, p=weight / weight.sum())
    px = bx[which] + rng.uniform(-12, 12, households)
    py = by[which] + rng.uniform(-8, 8, households)
    inside = shapely.contains_xy(boundary, px, py)
    px, py = np.where(inside, px, bx[which]), np.where(inside, py, by[which])
    homes = gpd.GeoDataFrame(
        {"id": [f"H{i:06d}" for i in range(households)],
         "residents": rng.integers(1, 6, households)},
        geometry=gpd.points_from_xy(px, py), crs=METRIC).to_crs(4326)
    community = gpd.GeoDataFrame({"code": ["610199001001"], "name": ["test community"]},
                                 geometry=[boundary], crs=METRIC).to_crs(4326)
    return community, homes
