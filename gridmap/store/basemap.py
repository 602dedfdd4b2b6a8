"""The basemap in the store: building footprints (the streets are the walking network,
:mod:`gridmap.store.network`)."""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection

from gridmap.i18n import _
from gridmap.store.load import copy_into
from gridmap.store.sqlfiles import read_sql
from gridmap.store.tables import building, street_edge

BUILDING_COLUMNS = ["id", "name", "address", "geom"]


@dataclass(frozen=True)
class BuildingsSaved:
    added: int
    changed: int
    unchanged: int

    def __str__(self) -> str:
        return _("buildings: {added} added, {changed} changed, {unchanged} unchanged",
                 added=self.added, changed=self.changed, unchanged=self.unchanged)


def save_buildings(conn: Connection, buildings: gpd.GeoDataFrame, *, source: str
                   ) -> BuildingsSaved:
    """Upsert building footprints (columns ``id``, ``name``, ``address``, polygons) on their
    id, in the caller's transaction. Importing the same buildings again changes nothing;
    buildings not in *buildings* stay."""
    frame = buildings.to_crs(4326)
    for column in ("name", "address"):
        if column not in frame:
            frame[column] = None
    conn.execute(text("CREATE TEMP TABLE building_stage (id text, name text, address text, "
                      "geom text) ON COMMIT DROP"))
    copy_into(conn, "building_stage", frame, BUILDING_COLUMNS)
    row = conn.execute(text(read_sql("save_buildings.sql")), {"source": source}).one()
    conn.execute(text("DROP TABLE building_stage"))
    return BuildingsSaved(int(row.added), int(row.changed),
                          len(frame) - int(row.added) - int(row.changed))


def basemap_extent(conn: Connection, layer: str) -> list[float] | None:
    """West, south, east, north of the basemap's ``streets`` or ``buildings``; None when
    the store holds none."""
    geom = {"streets": street_edge, "buildings": building}[layer].c.geom
    box = func.ST_Extent(geom)
    row = conn.execute(select(func.ST_XMin(box), func.ST_YMin(box), func.ST_XMax(box),
                              func.ST_YMax(box))).one()
    return None if row[0] is None else [float(v) for v in row]
