"""The frames incident statistics are computed from (:mod:`gridmap.analysis.incidents`):
cases with their routing and deadlines, their timelines, and the grids' shapes — always
within a caller's scope and a time window of ``reported_at``."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

import geopandas as gpd
import pandas as pd
from sqlalchemy import Select, Text, cast, func, select
from sqlalchemy.engine import Connection

from gridmap.domain.access import Scope
from gridmap.store import tables
from gridmap.store.incidents import scope_column
from gridmap.store.scope import in_scope

incident_t, event_t = tables.incident, tables.incident_event


def _window(query: Select, scope: Scope, since: datetime | None, until: datetime | None
            ) -> Select:
    """Cases in *scope* reported in ``[since, until)`` (open ends: no bound)."""
    c = incident_t.c
    query = query.where(in_scope(scope_column(), scope))
    if since is not None:
        query = query.where(c.reported_at >= since)
    if until is not None:
        query = query.where(c.reported_at < until)
    return query


def read_cases(conn: Connection, scope: Scope, *, since: datetime | None = None,
               until: datetime | None = None) -> pd.DataFrame:
    """Cases in *scope* reported in ``[since, until)``, with the names of their grid,
    community, township and assigned worker (unmasked: the caller masks them). A case
    imported without its community and township (imports set only the grid) gets them from
    its grid."""
    c = incident_t.c
    grid, worker = tables.grid.alias("g"), tables.grid_worker.alias("w")
    community, township = tables.division.alias("cm"), tables.division.alias("tw")
    community_code = func.coalesce(c.community_code, grid.c.community_code)
    township_code = func.coalesce(c.township_code, community.c.parent_code)
    query = (select(
        c.id, c.category, c.status, c.reported_at, _text(c.grid_code, "grid_code"),
        _text(community_code, "community_code"), _text(township_code, "township_code"),
        c.assignee, c.urgent, c.dispatch_due, c.handle_due, c.verify_due, c.closed_at,
        grid.c.name.label("grid_name"), community.c.name.label("community_name"),
        township.c.name.label("township_name"), worker.c.name.label("assignee_name"))
        .select_from(incident_t
                     .outerjoin(grid, grid.c.code == c.grid_code)
                     .outerjoin(community, community.c.code == community_code)
                     .outerjoin(township, township.c.code == township_code)
                     .outerjoin(worker, worker.c.id == c.assignee)))
    query = _window(query, scope, since, until).order_by(c.reported_at, c.id)
    return _frame(conn, query, ("reported_at", "dispatch_due", "handle_due", "verify_due",
                                "closed_at"))


def read_events(conn: Connection, scope: Scope, *, since: datetime | None = None,
                until: datetime | None = None) -> pd.DataFrame:
    """The timelines of the cases :func:`read_cases` reads with the same arguments."""
    e = event_t.c
    query = (select(e.id, e.incident_id, e.at, e.action, e.from_stage, e.to_stage)
             .select_from(event_t.join(incident_t, incident_t.c.id == e.incident_id)))
    query = _window(query, scope, since, until).order_by(e.incident_id, e.at, e.id)
    return _frame(conn, query, ("at",))


def read_case_points(conn: Connection, scope: Scope, *, since: datetime | None = None,
                     until: datetime | None = None) -> pd.DataFrame:
    """Cases in *scope* reported in ``[since, until)``: ``id``, ``reported_at``,
    ``grid_code`` and their WGS84 ``lon`` / ``lat`` (for hotspots)."""
    c = incident_t.c
    query = select(c.id, c.reported_at, _text(c.grid_code, "grid_code"),
                   func.ST_X(c.geom).label("lon"), func.ST_Y(c.geom).label("lat"))
    query = _window(query, scope, since, until).order_by(c.reported_at, c.id)
    return _frame(conn, query, ("reported_at",))


def read_grid_shapes(conn: Connection, codes: Collection[str], scope: Scope
                     ) -> gpd.GeoDataFrame:
    """The current polygons (EPSG:4326) of the grids *codes* that lie in *scope*:
    ``code``, ``name``, geometry."""
    g = tables.grid.c
    query = (select(_text(g.code, "code"), g.name, g.geom)
             .where(g.code.in_(sorted(codes)), in_scope(g.code, scope)).order_by(g.code))
    return gpd.read_postgis(query, conn, geom_col="geom", crs=4326)


def _text(column: Any, name: str) -> Any:
    """A fixed-width code as text (without the padding ``char(n)`` would keep)."""
    return cast(column, Text).label(name)


def _frame(conn: Connection, query: Select, times: tuple[str, ...]) -> pd.DataFrame:
    frame = pd.read_sql(query, conn)
    for column in times:
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame
