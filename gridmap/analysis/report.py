"""The check report of communities: partition defects and grid balance, from the same
functions an analyst calls (what `gridmap check` and `/api/check` show)."""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import pandas as pd

from gridmap.analysis.assign import assign_to_grids
from gridmap.analysis.balance import grid_balance
from gridmap.analysis.partition import check_partition
from gridmap.domain.standards import GridStandard

BALANCE_COLUMNS = ["code", "urban_rural", "households", "residents", "band_low", "band_high",
                   "status", "excess", "residents_excess", "workers", "households_per_worker",
                   "area_km2", "compactness"]


@dataclass
class CheckReport:
    defects: gpd.GeoDataFrame
    balance: gpd.GeoDataFrame
    outside_households: int

    @property
    def unbalanced(self) -> pd.DataFrame:
        return self.balance[self.balance["status"] != "within"]


def check_communities(communities: gpd.GeoDataFrame, grids: gpd.GeoDataFrame,
                      households: gpd.GeoDataFrame, *, workers: pd.DataFrame | None = None,
                      standard: GridStandard | None = None, tolerance: float = 0.1,
                      min_area: float = 1.0) -> CheckReport:
    """Partition defects and balance of the comprehensive grids of *communities*."""
    defects = check_partition(communities, grids, tolerance=tolerance, min_area=min_area)
    comp = grids[grids["kind"] == "comprehensive"] if "kind" in grids else grids
    assigned = assign_to_grids(households, grids) if len(households) else households.assign(
        grid_code=pd.Series(dtype=object), outside=pd.Series(dtype=bool))
    balance = grid_balance(comp, assigned, communities=communities, workers=workers,
                           standard=standard)
    cols = [c for c in BALANCE_COLUMNS if c in balance] + [balance.geometry.name]
    return CheckReport(defects, balance[cols], int(assigned["outside"].sum()))
