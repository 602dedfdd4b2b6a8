"""Households are partitioned by county (migration 0015): the partition key an import writes,
the partitions it needs, and the rows whose county changed.

Why partitions are made on demand rather than kept in a DEFAULT partition: a county's rows
would pile up in the default one, and adding the county's partition later means moving them
out under a lock on the whole table. Here every row lands in its own county's partition from
the start; the import creates the ones missing inside its own transaction, so a failed
import leaves none behind, and creating one (``ATTACH PARTITION``) does not stop readers or
writers of the other counties. A point in no county the store holds goes to the partition
``000000``, made by the migration.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import shapely
from psycopg import sql
from sqlalchemy.engine import Connection

from gridmap.analysis.counties import NO_COUNTY, points_to_counties
from gridmap.store.sqlfiles import read_sql

# tables partitioned by a code column, and that column
PARTITION_KEYS = {"household": "county_code"}


def _raw(conn: Connection) -> psycopg.Connection:
    raw = conn.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    return raw


def read_counties(conn: Connection) -> gpd.GeoDataFrame:
    """The counties in the store (code, polygon), in EPSG:4326."""
    return gpd.read_postgis("SELECT code, geom FROM division WHERE level = 'county' "
                            "ORDER BY code", conn, geom_col="geom", crs=4326)


def ensure_partitions(conn: Connection, counties: list[str]) -> int:
    """Create the household partitions of *counties* that do not exist yet, in the caller's
    transaction; returns how many were created."""
    row = _raw(conn).execute("SELECT gridmap_household_partitions(%s::text[])",
                             (sorted(set(counties)),)).fetchone()
    return int(row[0]) if row else 0


def with_partition_key(conn: Connection, table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """*frame* (rows for *table*, points in EPSG:4326) with its partition key: each point's
    county (``000000`` outside every county), and the partitions those counties need
    created. A table that is not partitioned gets *frame* back unchanged."""
    key = PARTITION_KEYS.get(table)
    if key is None:
        return frame
    assert isinstance(frame, gpd.GeoDataFrame), f"{table} rows are points"
    xy = shapely.get_coordinates(np.asarray(frame.geometry.values))
    if len(xy) != len(frame):  # an empty point: the table's check refuses it, by its key
        codes = np.full(len(frame), NO_COUNTY, dtype=object)
    else:
        codes = points_to_counties(read_counties(conn), xy[:, 0], xy[:, 1])
    ensure_partitions(conn, [NO_COUNTY, *pd.unique(codes)])
    return frame.assign(**{key: pd.array(codes, dtype="string")})


def conflict_key(table: str, key: str) -> list[str]:
    """The columns of *table*'s primary key: *key*, and the partition key if it has one."""
    return [key, PARTITION_KEYS[table]] if table in PARTITION_KEYS else [key]


def move_changed_partitions(conn: Connection, table: str, key: str, columns: list[str],
                            stage: str, *, points: bool) -> int:
    """Rows of *table* whose staged version (in *stage*; with *points*, ``geom`` staged as
    ``gx``, ``gy``) has another partition key: moved there with the staged values of every
    column (PostgreSQL moves a row whose partition key an UPDATE changes), so that the
    upsert that follows finds them and *key* stays unique across partitions. Returns how
    many moved."""
    part = PARTITION_KEYS.get(table)
    if part is None:
        return 0
    values = sql.SQL(", ").join(
        sql.SQL("ST_SetSRID(ST_MakePoint(s.gx, s.gy), 4326)") if c == "geom" and points
        else sql.SQL("s.{}").format(sql.Identifier(c)) for c in columns)
    query = sql.SQL("UPDATE {t} AS t SET ({cols}) = ({values}) FROM {s} AS s "
                    "WHERE t.{k} = s.{k} AND t.{p} IS DISTINCT FROM s.{p}").format(
        t=sql.Identifier(table), cols=sql.SQL(", ").join(map(sql.Identifier, columns)),
        values=values, s=sql.Identifier(stage), k=sql.Identifier(key),
        p=sql.Identifier(part))
    return _raw(conn).execute(query).rowcount


def place_households_in_counties(conn: Connection) -> int:
    """Move the households that lay in no county (partition ``000000``) into the counties
    the store now holds, after a counties import; returns how many moved."""
    raw = _raw(conn)
    raw.execute("DROP TABLE IF EXISTS gm_rehome")
    raw.execute(read_sql("household_counties.sql"))
    counties = [str(c) for (c,) in raw.execute(
        "SELECT DISTINCT county_code FROM gm_rehome").fetchall()]
    moved = 0
    if counties:
        ensure_partitions(conn, counties)
        moved = raw.execute("UPDATE household AS h SET county_code = r.county_code "
                            "FROM gm_rehome AS r WHERE h.county_code = '000000' "
                            "AND h.id = r.id").rowcount
    raw.execute("DROP TABLE gm_rehome")
    return moved
