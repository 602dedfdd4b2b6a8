"""Re-assignment writes: storing the grid of 1M households, gridmap's Python path (look-up
in the grid index, only changed rows sent by binary COPY and rewritten) vs the SQL path
(`gridmap assign --engine postgis`: join in PostGIS, then UPDATE), full and after a redraw.

Run: .venv/bin/python bench/bench_reassign.py [--points 1000000] [--grids 260]

On the generated city of bench/bench_assign.py, in a fresh database migrated to head:
0. the import, which stores each household's grid as it loads them (its assignment phase
   printed);
1. first assignment of every household (every row changes), each path from the same
   unassigned state (as before imports assigned);
2. full re-assignment when nothing changed (both paths);
3. a redraw — two neighbouring grids of one community merged, published as a new version
   the way an import or a draft is — whose re-assignment looks only at the households in
   the changed grids' area; then a full re-assignment by each path for the same state.
Every path is checked to store the same grid for every household.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import shapely
from sqlalchemy import Engine

from bench.city import make_city, make_points, merge_neighbours, scratch_database, store_city
from gridmap.store.assign import assign_layer
from gridmap.store.load import load_layer


def stored(engine: Engine) -> dict[str, str | None]:
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        return dict(raw.execute("SELECT id, grid_code FROM household").fetchall())


def timed(engine: Engine, label: str, n: int, fn) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        start = time.perf_counter()
        changed = fn(conn)
        seconds = time.perf_counter() - start
    print(f"{label}: {seconds:6.2f} s, {changed:,} rows written = "
          f"{n / seconds / 1e6:.2f} M households/s")
    return seconds, changed


def unassign(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.connection.driver_connection.execute("UPDATE household SET grid_code = NULL")
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        raw.autocommit = True
        raw.execute("VACUUM ANALYZE household")
        raw.autocommit = False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--grids", type=int, default=260)
    args = parser.parse_args()
    n = args.points
    grids = make_city(args.grids).to_crs(4326)
    grids["geometry"] = shapely.set_precision(grids.geometry.values, 0)
    points = make_points(grids, n)
    with scratch_database() as engine:
        start = time.perf_counter()
        imported = store_city(engine, grids, points)
        print(f"city: {len(grids)} grids, {n:,} households")
        print(f"0. import of the households, each stored with its grid as it is loaded: "
              f"{time.perf_counter() - start:6.2f} s with the divisions and grids, of which "
              f"the assignment {imported.phases['assign']:.2f} s and the grid counts "
              f"{imported.phases['grid counts']:.2f} s — instead of a first assignment "
              f"after the import (1.)")
        unassign(engine)
        print("1. first assignment (every row changes)")
        sql_s, _ = timed(engine, "   SQL join + UPDATE (--engine postgis)", n,
                         lambda c: assign_layer(c, "households", engine="postgis").changed)
        by_sql = stored(engine)
        unassign(engine)
        py_s, _ = timed(engine, "   gridmap (index, changed rows by COPY)", n,
                        lambda c: assign_layer(c, "households").changed)
        same = stored(engine) == by_sql
        print(f"   gridmap / SQL: {sql_s / py_s:.1f}x")
        print("2. full re-assignment, nothing changed")
        sql_s, _ = timed(engine, "   SQL join + UPDATE (--engine postgis)", n,
                         lambda c: assign_layer(c, "households", engine="postgis").changed)
        py_s, _ = timed(engine, "   gridmap (index, changed rows by COPY)", n,
                        lambda c: assign_layer(c, "households").changed)
        print(f"   gridmap / SQL: {sql_s / py_s:.1f}x")
        community, redrawn = merge_neighbours(grids)
        print(f"3. redraw: two grids of community {community} merged and published")
        with engine.begin() as conn:
            start = time.perf_counter()
            result = load_layer(conn, "grids", redrawn, replace=True)
            publish_s = time.perf_counter() - start
        assert result.diff is not None
        moved = result.diff.moved["households"]
        print(f"   publish with incremental re-assignment (partition check, version, "
              f"re-assignment of the changed area): {publish_s:6.2f} s, {moved:,} "
              f"households moved = {n / publish_s / 1e6:.2f} M households/s of the store")
        after_publish = stored(engine)
        py_s, changed = timed(engine, "   full re-assignment afterwards, gridmap", n,
                              lambda c: assign_layer(c, "households").changed)
        same = same and changed == 0
        sql_s, changed = timed(engine, "   full re-assignment afterwards, SQL", n,
                               lambda c: assign_layer(c, "households",
                                                      engine="postgis").changed)
        same = same and changed == 0 and stored(engine) == after_publish
        print(f"every path stores the same grid for every household: {same}")
        if not same:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
