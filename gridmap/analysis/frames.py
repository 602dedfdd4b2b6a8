"""Which engine a frame belongs to: the analysis functions take pandas/geopandas frames and,
for the same call, dask(-geopandas) frames, which they process partition by partition."""

from __future__ import annotations


def is_dask(frame: object) -> bool:
    """True for a dask DataFrame, Series or dask-geopandas GeoDataFrame."""
    return type(frame).__module__.startswith("dask")
