"""Assignment speed: points → grids on a generated city, gridmap vs geopandas.sjoin vs
shapely STRtree vs PostGIS, all checked to agree point for point.

Run: .venv/bin/python bench/bench_assign.py [--points 850000] [--grids 260] [--no-postgis]

The city (bench/city.py) has, by default, 260 irregular grids with 100+ vertices each and a
few exclusive grids, and 850,000 points (the size of a real city's household layer); 2,000 of
the points sit exactly on vertices or edge midpoints. Besides the raw look-up it times the
calls the README shows — ``assign_to_grids(households, index)`` (grid, kind and the
community/township/county chain as categorical columns) and ``points_to_grids`` — and the
index build's memory peak (tracemalloc). Every method applies the
same rule (closed polygons; exclusive first; lowest code). Timings are single-threaded
(numpy, GEOS and PostGIS with parallel workers off all use one core); best of 3 where cheap.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from bench.city import city_database, make_city, make_points
from bench.timing import best
from gridmap.analysis.assign import assign_to_grids, build_grid_index, points_to_grids


def rule_winner(point_idx: np.ndarray, grid_rank: np.ndarray, n: int) -> np.ndarray:
    best_rank = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(best_rank, point_idx, grid_rank)
    return np.where(best_rank == np.iinfo(np.int64).max, -1, best_rank)


def postgis(grids: gpd.GeoDataFrame, points: gpd.GeoSeries, codes_in_rule_order: np.ndarray
            ) -> tuple[float, float, float, np.ndarray]:
    from gridmap.store.assign import assign_query, join_query
    with city_database(grids, points) as engine:
        timings = []
        with engine.connect() as conn:
            raw = conn.connection.driver_connection
            raw.autocommit = True
            raw.execute("UPDATE household SET grid_code = NULL")  # the import assigned them
            raw.execute("VACUUM ANALYZE household")
            join = join_query("household").as_string(raw)
            for workers in (0, 2):  # the rule's join: grids outer, then the planner's default
                raw.execute(f"SET max_parallel_workers_per_gather = {workers}")
                start = time.perf_counter()
                raw.execute(f"CREATE TEMP TABLE gm_join AS {join}")
                timings.append(time.perf_counter() - start)
                raw.execute("DROP TABLE gm_join")
            raw.execute("RESET max_parallel_workers_per_gather")
        with engine.begin() as conn:
            raw = conn.connection.driver_connection
            start = time.perf_counter()
            raw.execute(assign_query("household").as_string(raw))
            timings.append(time.perf_counter() - start)
            rows = raw.execute("SELECT id::bigint, grid_code FROM household").fetchall()
        got = pd.Series(dict(rows)).sort_index()
        position = {c: i for i, c in enumerate(codes_in_rule_order)}
        answer = np.array([-1 if pd.isna(c) else position[c] for c in got.to_numpy()])
        return timings[0], timings[1], timings[2], answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=850_000)
    parser.add_argument("--grids", type=int, default=260)
    parser.add_argument("--no-postgis", action="store_true")
    parser.add_argument("--memory-points", type=int, default=5_000_000)
    args = parser.parse_args()
    n = args.points
    grids = make_city(args.grids).to_crs(4326)
    grids["geometry"] = shapely.set_precision(grids.geometry.values, 0)  # as stored
    points = make_points(grids, n)
    x, y = shapely.get_x(points.values), shapely.get_y(points.values)
    comp = grids[grids["kind"] == "comprehensive"]
    verts = np.median(shapely.get_num_coordinates(comp.geometry.values))
    print(f"city: {len(comp)} comprehensive + {len(grids) - len(comp)} exclusive grids, "
          f"median {verts:.0f} vertices; {n:,} points")

    tracemalloc.start()
    build_grid_index(grids)
    build_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    build_s, index = best(lambda: build_grid_index(grids))
    lookup_s, ours = best(lambda: index.lookup(x, y))
    print(f"gridmap index build: {build_s * 1000:.0f} ms ({index.shape[1]}x{index.shape[0]} "
          f"cells, {index.boundary_share:.2%} boundary), memory peak "
          f"{build_peak / 2**20:.0f} MiB")
    rate = n / lookup_s
    print(f"gridmap lookup (index built):  {rate / 1e6:8.2f} M points/s")
    print(f"gridmap build + lookup:        {n / (build_s + lookup_s) / 1e6:8.2f} M points/s")
    households = gpd.GeoDataFrame({"id": np.arange(n), "residents": 3}, geometry=points)
    call_s, assigned = best(lambda: assign_to_grids(households, index))
    codes_s, codes = best(lambda: points_to_grids(households, index))
    print(f"assign_to_grids(households, index) (README call: grid, kind, community, "
          f"township, county): {n / call_s / 1e6:8.2f} M points/s")
    print(f"points_to_grids(households, index) (grid codes only): "
          f"{n / codes_s / 1e6:8.2f} M points/s")

    rank_of = {c: i for i, c in enumerate(index.codes)}
    grid_rank = np.array([rank_of[c] for c in grids["code"]])
    pts = gpd.GeoDataFrame(geometry=points)

    def sjoin() -> np.ndarray:
        joined = gpd.sjoin(pts, grids, predicate="intersects", how="inner")
        return rule_winner(joined.index.to_numpy(), grid_rank[joined["index_right"].to_numpy()], n)

    sjoin_s, theirs = best(sjoin, repeat=1)
    print(f"geopandas.sjoin:               {n / sjoin_s / 1e6:8.2f} M points/s")
    print(f"README call vs sjoin: {sjoin_s / call_s:.1f}x with the index built, "
          f"{sjoin_s / (build_s + call_s):.1f}x counting the build; points_to_grids "
          f"{sjoin_s / codes_s:.1f}x")
    expected = np.where(theirs >= 0, index.codes[np.maximum(theirs, 0)], None)
    same = (assigned["grid_code"].astype(object).where(assigned["grid_code"].notna(), None)
            .to_numpy() == expected).all() and (codes.astype(object).where(
                codes.notna(), None).to_numpy() == expected).all()

    def strtree() -> np.ndarray:
        geoms = grids.geometry.values
        tree = shapely.STRtree(geoms)
        shapely.prepare(geoms)
        pi, gi = tree.query(points.values)
        hit = shapely.intersects_xy(geoms[gi], x[pi], y[pi])
        return rule_winner(pi[hit], grid_rank[gi[hit]], n)

    tree_s, tree_ans = best(strtree, repeat=1)
    print(f"shapely STRtree + prepared:    {n / tree_s / 1e6:8.2f} M points/s")
    agree = (ours == theirs).all() and (ours == tree_ans).all() and bool(same)

    if not args.no_postgis:
        pg_s, pg_par_s, pg_store_s, pg_ans = postgis(grids, points, index.codes)
        print(f"PostGIS join (grids outer, 1 core): {n / pg_s / 1e6:8.2f} M points/s")
        print(f"PostGIS join (planner default, 2 workers): {n / pg_par_s / 1e6:8.2f} M points/s")
        print(f"PostGIS join + storing grid_code (gridmap assign --engine postgis): "
              f"{n / pg_store_s / 1e6:.2f} M points/s")
        agree = agree and bool((ours == pg_ans).all())

    tracemalloc.start()
    big = make_points(grids, args.memory_points, seed=9, on_edges=0)
    bx, by = shapely.get_x(big.values), shapely.get_y(big.values)
    del big
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    index.lookup(bx, by)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    print(f"extra memory for {args.memory_points:,} points: {peak / 2**20:.0f} MiB "
          f"(index itself: {index.labels.nbytes / 2**20:.0f} MiB)")
    print(f"all methods agree point for point: {agree}")
    if not agree:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
