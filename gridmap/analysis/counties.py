"""Which county each point lies in: the key households are partitioned by in the store.

The rule is the grids' (:mod:`gridmap.analysis.assign`): a point belongs to the counties
whose closed polygon contains it, and the lowest code wins on a shared edge (or where sloppy
boundaries overlap). The store's ``gridmap_county_of`` applies the same rule in SQL.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
from numpy.typing import ArrayLike, NDArray

from gridmap.analysis.assign import build_grid_index

NO_COUNTY = "000000"  # the partition key of a point that lies in no county


def points_to_counties(counties: gpd.GeoDataFrame, x: ArrayLike, y: ArrayLike, *,
                       max_cells: int | None = None) -> NDArray[np.object_]:
    """The 6-digit county code of each point (x, y in the CRS of *counties*), or
    :data:`NO_COUNTY` for a point outside every county.

    *counties* has a ``code`` column (the 12-digit division codes, or their first 6 digits)
    and their polygons. The look-up is the assignment index's (a label raster, exact tests
    near the edges only), so a million points take a fraction of a second; the raster has
    *max_cells* cells, by default in proportion to the points (a few points are tested
    exactly rather than paying for a fine raster). Exact at any raster size.

    Examples
    --------
    >>> import shapely
    >>> counties = gpd.GeoDataFrame({"code": ["610113000000", "610112000000"]},
    ...     geometry=[shapely.box(1, 0, 2, 1), shapely.box(0, 0, 1, 1)], crs=4326)
    >>> points_to_counties(counties, [0.5, 1.0, 1.5, 5.0], [0.5, 0.5, 0.5, 0.5]).tolist()
    ['610112', '610112', '610113', '000000']
    """
    x = np.asarray(x, dtype=np.float64)
    out = np.full(x.shape, NO_COUNTY, dtype=object)
    if counties.empty or not x.size:
        return out
    # all as "exclusive": ties and overlaps go to the lowest code, none is refused
    frame = counties.assign(code=counties["code"].astype(str).str.slice(0, 6),
                            kind="exclusive")
    cells = max_cells if max_cells is not None else int(np.clip(4 * x.size, 10_000, 4_000_000))
    index = build_grid_index(frame, kinds=("exclusive",), max_cells=cells)
    pos = index.lookup(x, y)
    inside = pos >= 0
    out[inside] = index.codes[pos[inside]].astype(object)
    return out
