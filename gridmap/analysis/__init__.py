"""Pure GeoDataFrame analysis: assignment to grids, partition checks, coverage."""
