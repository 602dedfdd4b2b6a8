"""Locate with a country's grids in the in-process index: ≥ 2 M grids, single-point locate
p50/p99 (the Locator's own ``locate``: index lookup, the candidates within the margin, the
edge distance) beside the obvious alternative (an STRtree query with the rule), and the
memory the index takes.

Run: .venv/bin/python bench/bench_locate_index.py [--copies 23] [--points 20000]
     [--band-grids 100000]

The grids: the generated province's 88 counties (gridmap.province, ~88,000 grids) in
EPSG:4326, laid out *copies* times side by side (6 per row, each copy shifted by the
province's extent and given its own province code) — 23 copies are 2.02 M grids over
~20° x 12°, about the country's ~2 M grids. Points: uniform over the grids' extent, so
some fall outside every grid (gaps between copies).
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.analysis.assign import GridIndex
from gridmap.api.locator import Locator, index_what_can_be
from gridmap.province import county_grids, province_counties

PROVINCE_CODES = ["11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34",
                  "35", "36", "37", "41", "42", "43", "44", "45", "46", "50", "51", "52",
                  "53", "54", "61", "62", "63", "64", "65"]


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class FrameLocator(Locator):
    """The API's Locator, indexing frames instead of reading the database."""

    def __init__(self, grids: gpd.GeoDataFrame, margin_m: float = 10.0,
                 band_grids: int = 100_000) -> None:
        self.frames, self.band_grids = grids, band_grids
        super().__init__(engine=None, margin_m=margin_m)  # type: ignore[arg-type]

    def reload(self) -> None:
        built = index_what_can_be(self.frames, band_grids=self.band_grids)
        self.index, self.left_out, self.problem = built.index, built.left_out, built.problem
        self.context, self.stored, self.loaded_at = {}, len(self.frames), time.time()


def country_grids(copies: int) -> gpd.GeoDataFrame:
    start = time.perf_counter()
    province = pd.concat([county_grids(c) for c in province_counties()], ignore_index=True)
    province = gpd.GeoDataFrame(province, geometry="geometry", crs=province.crs).to_crs(4326)
    province["geometry"] = shapely.set_precision(province.geometry.values, 1e-7)
    xmin, ymin, xmax, ymax = province.total_bounds
    w, h = xmax - xmin + 0.05, ymax - ymin + 0.05
    parts = []
    for k in range(copies):
        dx, dy = (k % 6) * w - xmin + 100.0, (k // 6) * h - ymin + 22.0
        geoms = shapely.transform(province.geometry.values,
                                  lambda xy, dx=dx, dy=dy: xy + np.array([dx, dy]))
        codes = PROVINCE_CODES[k] + province["code"].str[2:]
        parents = province["parent_grid_code"].where(province["parent_grid_code"].isna(),
                                                     PROVINCE_CODES[k]
                                                     + province["parent_grid_code"].str[2:])
        parts.append(gpd.GeoDataFrame({"code": codes, "kind": province["kind"],
                                       "parent_grid_code": parents}, geometry=geoms, crs=4326))
    grids = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=4326)
    print(f"{len(grids):,} grids ({copies} copies of the {len(province):,}-grid province) "
          f"generated in {time.perf_counter() - start:.1f} s")
    return grids


def peak_mib() -> float:
    """The process's peak RSS since the last :func:`reset_peak` (VmHWM)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> None:
    """Start measuring the peak RSS afresh (Linux: 5 → /proc/self/clear_refs)."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


def percentiles(seconds: list[float]) -> str:
    ms = np.array(seconds) * 1000
    return (f"p50 {np.percentile(ms, 50):.3f} ms, p99 {np.percentile(ms, 99):.3f} ms, "
            f"max {ms.max():.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--copies", type=int, default=23)
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--band-grids", type=int, default=100_000,
                        help="grids per band of the build (a huge number: one band, the "
                        "build before bands, for its peak)")
    args = parser.parse_args()
    grids = country_grids(args.copies)
    gc.collect()
    before = rss_mib()
    reset_peak()
    start = time.perf_counter()
    locator = FrameLocator(grids, band_grids=args.band_grids)
    build_s = time.perf_counter() - start
    index = locator.index
    assert isinstance(index, GridIndex), locator.problem
    peak = peak_mib()
    gc.collect()
    gc.freeze()  # as the server does after start-up: the index is never garbage
    after = rss_mib()
    print(f"locate index over {len(index.codes):,} grids built in {build_s:.1f} s: raster "
          f"{index.shape[1]:,} x {index.shape[0]:,} ({index.labels.nbytes / 2**20:.0f} MiB, "
          f"{index.boundary_share:.1%} boundary cells); process RSS {before:,.0f} MiB with "
          f"the grids loaded → {after:,.0f} MiB (+{after - before:,.0f} MiB: the index, its "
          f"STRtree and prepared geometries); peak while building {peak:,.0f} MiB "
          f"(+{peak - before:,.0f} MiB over the grids); whole run's peak "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB; "
          f"load {os.getloadavg()[0]:.1f}")

    rng = np.random.default_rng(3)
    xmin, ymin, xmax, ymax = grids.total_bounds
    xs = rng.uniform(xmin, xmax, args.points)
    ys = rng.uniform(ymin, ymax, args.points)
    for x, y in zip(xs[:200], ys[:200], strict=True):  # warm up
        locator.locate(float(x), float(y))
    ours, inside = [], 0
    for x, y in zip(xs, ys, strict=True):
        t = time.perf_counter()
        answer = locator.locate(float(x), float(y))
        ours.append(time.perf_counter() - t)
        inside += answer["inside"]
    print(f"Locator.locate, one point per call ({inside:,} of {args.points:,} inside a grid): "
          f"{percentiles(ours)}")

    geoms, tree = index.geoms, index.tree
    theirs, agree = [], 0
    for x, y in zip(xs, ys, strict=True):
        t = time.perf_counter()
        hit = tree.query(shapely.Point(x, y), predicate="intersects")
        pos = int(hit.min()) if len(hit) else -1  # rule order: lowest position wins
        theirs.append(time.perf_counter() - t)
        agree += pos == int(index.lookup(np.array([x]), np.array([y]))[0])
    print(f"alternative, STRtree query + the rule only (no candidates, no edge distance): "
          f"{percentiles(theirs)}")
    lookups = []
    for x, y in zip(xs, ys, strict=True):
        t = time.perf_counter()
        index.lookup(np.array([x]), np.array([y]))
        lookups.append(time.perf_counter() - t)
    print(f"GridIndex.lookup alone: {percentiles(lookups)}")
    print(f"index and STRtree agree on {agree:,} of {args.points:,} points; "
          f"target p99 ≤ 2 ms: {'met' if np.percentile(ours, 99) <= 0.002 else 'MISSED'}")
    del geoms
    if agree != args.points:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
