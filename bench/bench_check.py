"""The cold whole-district check (``GET /api/check`` with no community): what it reads and how
it picks a metric CRS, gridmap's way beside the obvious one, in the same run.

Run: .venv/bin/python bench/bench_check.py DATABASE_URL [--repeat 3]

DATABASE_URL holds the demo district (``gridmap load-demo``). Prints, best of *repeat*:
the households read as GeoDataFrame with every column (``read_layer``: WKB parsed row by row)
beside two numbers and residents per household (``read_household_points``); the UTM zone
from geopandas' ``estimate_utm_crs`` (a PROJ database query) beside ``utm_crs``; and the
whole ``check_report``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from sqlalchemy import create_engine

from gridmap.analysis.frames import utm_crs
from gridmap.reports import check_report
from gridmap.store.read import read_household_points, read_layer


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("database_url")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    engine = create_engine(args.database_url)
    with engine.connect() as conn:
        points = read_household_points(conn)
        print(f"{len(points):,} households")
        layer = best(lambda: read_layer(conn, "households"), args.repeat)
        numbers = best(lambda: read_household_points(conn), args.repeat)
        print(f"read households  every column, WKB: {layer:7.2f} s   "
              f"gridmap x/y/residents: {numbers:7.2f} s")
        estimated = best(points.estimate_utm_crs, args.repeat)
        ours = best(lambda: utm_crs(points), args.repeat)
        print(f"metric CRS       estimate_utm_crs:  {estimated:7.2f} s   "
              f"gridmap utm_crs:       {ours:7.2f} s")
        report = best(lambda: check_report(conn), args.repeat)
        print(f"check_report (whole district, gridmap): {report:.2f} s")
    engine.dispose()


if __name__ == "__main__":
    main()
