"""Read layers out of the store as GeoDataFrames (what analysts load in notebooks)."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
from sqlalchemy import Select, select
from sqlalchemy.engine import Connection

from gridmap.domain.layers import LAYERS
from gridmap.store import tables

_TABLES = {
    "division": tables.division,
    "grid": tables.grid,
    "household": tables.household,
    "facility": tables.facility,
    "incident": tables.incident,
    "grid_worker": tables.grid_worker,
}


def layer_query(layer_name: str) -> Select:
    """The SELECT of one layer, without generated columns."""
    spec = LAYERS[layer_name]
    table = _TABLES[spec.table]
    cols = [c for c in table.columns if c.name != "geom_3857"]
    query = select(*cols)
    if spec.division_level:
        query = query.where(table.c.level == spec.division_level)
    return query.order_by(table.c[spec.key])


def read_layer(conn: Connection, layer_name: str) -> gpd.GeoDataFrame | pd.DataFrame:
    """One layer as a GeoDataFrame in EPSG:4326 (workers: a DataFrame)."""
    spec = LAYERS[layer_name]
    query = layer_query(layer_name)
    if spec.geometry == "none":
        return pd.read_sql(query, conn)
    return gpd.read_postgis(query, conn, geom_col="geom", crs=4326)
