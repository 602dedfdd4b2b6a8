"""Stored assignment: only the rows whose grid changes are rewritten, and a publish looks
only at the households its redraw can move — with every count agreeing afterwards."""

from __future__ import annotations

import shapely
from sqlalchemy import create_engine

from bench.city import make_city, make_points, merge_neighbours, store_city
from gridmap.store.assign import assign_layer
from gridmap.store.load import load_layer

LOAD = "SELECT grid_code, households, residents FROM grid_load ORDER BY 1"
RECOUNT = ("SELECT grid_code, count(*), sum(residents) FROM household "
           "WHERE grid_code IS NOT NULL GROUP BY 1 ORDER BY 1")


def test_a_publish_rewrites_only_the_households_that_change_grid(fresh_db: str) -> None:
    grids = make_city(16).to_crs(4326)
    grids["geometry"] = shapely.set_precision(grids.geometry.values, 0)
    engine = create_engine(fresh_db)
    try:
        store_city(engine, grids, make_points(grids, 4000))
        with engine.begin() as conn:
            first = assign_layer(conn, "households")
        assert first.changed == first.inside > 2000
        with engine.begin() as conn:
            assert assign_layer(conn, "households").changed == 0  # nothing to write
            raw = conn.connection.driver_connection
            before = dict(raw.execute("SELECT id, (xmin::text, grid_code) FROM household"))
        community, redrawn = merge_neighbours(grids)
        with engine.begin() as conn:
            result = load_layer(conn, "grids", redrawn, replace=True)
            raw = conn.connection.driver_connection
            after = dict(raw.execute("SELECT id, (xmin::text, grid_code) FROM household"))
            assert result.diff is not None and result.diff.codes("retired")
            moved = {i for i in after if after[i][1] != before[i][1]}
            rewritten = {i for i in after if after[i][0] != before[i][0]}
            assert moved and rewritten == moved
            assert result.diff.moved["households"] == len(moved)
            assert all(after[i][1][:12] == community for i in moved)
            assert raw.execute(LOAD).fetchall() == raw.execute(RECOUNT).fetchall()
            # the incremental answer is the full one: a full pass finds nothing to change
            assert assign_layer(conn, "households").changed == 0
            assert assign_layer(conn, "households", engine="postgis").changed == 0
    finally:
        engine.dispose()
