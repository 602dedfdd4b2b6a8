"""A province on a cluster: gridmap's county-by-county dask pipeline beside the single-process
in-memory path and the previous dask path (``from_geopandas``), on the same generated files,
checked to give the same per-grid totals and coverage counts.

Run: .venv/bin/python bench/bench_province.py [--prefecture 3901] [--sample 0]
     [--type kindergarten --type primary_school --type health_centre] [--workers 1 2]

What it sizes: by default one prefecture fully (3901: 8 counties, ~2.85 M households, ~8,000
grids) with coverage for one facility type per life-circle level, so it finishes in a few
minutes on a 2-core machine; ``--sample 1`` adds one county drawn from each other prefecture
(the province by sampling: 18 counties), ``--type`` repeated chooses the coverage types (all 11
when given ``--type all``). The whole province (`gridmap province generate DIR`) is 88
counties, 88,000+ grids and 31.7 M households.

The three paths, each timed from files on disk to per-grid counts in the client:
- in memory: read every file in one process, one grid index, assign, total, coverage;
- gridmap on dask: ``dask_geopandas.read_parquet`` (one partition per county, read by the
  worker that processes it), the county's grid index built on that worker, only counts
  return (``gridmap.province.run_province``), on LocalClusters of 1 and 2 single-threaded
  worker processes;
- previous dask path: the households read in the client, shipped with ``from_geopandas``
  (8 partitions), one index over all grids and the facilities travelling with the graph
  (``assign_to_grids`` / ``household_coverage`` / ``coverage_by`` on dask frames).

Scaling model (printed with this run's figures): a county costs ``a + b·households``
core-seconds (``a``: reading the grids and facilities around it and building its index;
``b``: assignment, totals and coverage per household), independent of the other counties;
tasks share nothing but the files, so W workers finish in ``Σ cost / (W·e)`` plus the longest
single county, where ``e`` is the parallel efficiency measured here from 1 to 2 workers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import pandas as pd

from gridmap.analysis.coverage import thresholds_for
from gridmap.province import (
    ProvinceRun,
    dask_client,
    generate_province,
    run_in_memory,
    run_previous,
    run_province,
)

COUNTRY_HOUSEHOLDS = 500e6
COUNTRY_COMMUNITIES = 600_000
COUNTRY_COUNTIES = 2_850  # county-level divisions


def load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def print_run(name: str, run: ProvinceRun) -> None:
    print(f"\n{name}: {run.households:,} households in {run.wall_s:.1f} s wall = "
          f"{run.households / run.wall_s / 1e6:.3f} M households/s (load {load()})")
    print("  county  worker                   households  read+index  assign  totals  "
          "coverage  total s  k hh/core-s")
    for f in run.figures:
        print(f"  {f.county}  {f.worker:24s} {f.households:10,}  "
              f"{f.read_near_s + f.index_s:10.2f}  {f.assign_s:6.2f}  {f.totals_s:6.2f}  "
              f"{f.coverage_s:8.2f}  {f.compute_s:7.2f}  {f.households / f.compute_s / 1e3:11.1f}")
    table = run.per_worker()
    for worker, row in table.iterrows():
        print(f"  worker {worker}: {int(row['partitions'])} partitions, "
              f"{int(row['households']):,} households, busy {row['busy_s']:.1f} s = "
              f"{row['households_per_s'] / 1e3:.1f} k households per busy second")


def same(a: tuple[pd.DataFrame, pd.DataFrame], b: tuple[pd.DataFrame, pd.DataFrame]) -> bool:
    try:
        pd.testing.assert_frame_equal(a[0], b[0], check_dtype=False)
        pd.testing.assert_frame_equal(a[1], b[1], check_dtype=False)
    except AssertionError as exc:
        print(f"  DIFFERENT: {str(exc)[:300]}")
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", type=Path, help="reuse or keep the generated files here")
    parser.add_argument("--prefecture", action="append", default=None)
    parser.add_argument("--sample", type=int, default=0)
    parser.add_argument("--type", action="append", default=None, dest="types")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no-previous", action="store_true")
    args = parser.parse_args()
    prefectures = args.prefecture or ["3901"]
    types = None if args.types == ["all"] else (
        args.types or ["kindergarten", "primary_school", "health_centre"])
    thresholds = thresholds_for(types)
    folder = args.folder or Path(tempfile.mkdtemp(prefix="gridmap_province_"))
    print(f"machine: {os.cpu_count()} cores, load {load()}; coverage of "
          f"{', '.join(f'{t}@{d[0]:g}' for t, d in thresholds.items())}")

    start = time.perf_counter()
    written = generate_province(folder, full=prefectures, sample=args.sample)
    gen_s = time.perf_counter() - start
    n_hh = sum(w.households for w in written)
    print(f"generated {len(written)} counties (prefecture {', '.join(prefectures)} fully"
          f"{f', {args.sample} sampled per other prefecture' if args.sample else ''}): "
          f"{sum(w.grids for w in written):,} grids, {n_hh:,} households, "
          f"{sum(w.facilities for w in written):,} facilities in {gen_s:.1f} s "
          f"({n_hh / gen_s / 1e6:.2f} M households/s written)")

    start = time.perf_counter()
    memory_totals, memory_cov, steps = run_in_memory(folder, thresholds=thresholds)
    mem_s = time.perf_counter() - start
    print(f"\nin memory (1 process): {mem_s:.1f} s = {n_hh / mem_s / 1e6:.3f} M households/s "
          f"(load {load()}; " + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items()) + ")")
    expected = (memory_totals, memory_cov)

    runs: dict[int, ProvinceRun] = {}
    for workers in args.workers:
        with dask_client(None, workers=workers) as client:
            runs[workers] = run = run_province(folder, client, thresholds=thresholds)
        print_run(f"gridmap on dask, LocalCluster of {workers} worker process(es)", run)
        print(f"  same per-grid totals and coverage as in memory: "
              f"{same((run.totals, run.coverage), expected)}")

    if not args.no_previous:
        workers = max(args.workers)
        with dask_client(None, workers=workers) as client:
            totals, cov, prev_s, ship_s = run_previous(folder, client, thresholds=thresholds)
        print(f"\nprevious dask path (from_geopandas, 8 partitions, {workers} workers): "
              f"{prev_s:.1f} s = {n_hh / prev_s / 1e6:.3f} M households/s, of which "
              f"{ship_s:.1f} s reading in the client (load {load()})")
        print(f"  same as in memory: {same((totals, cov), expected)}")

    print("\nsummary (M households/s, files → per-grid counts):")
    print(f"  in memory, 1 process:     {n_hh / mem_s / 1e6:.3f}")
    for workers, run in runs.items():
        print(f"  gridmap dask, {workers} worker(s):  {run.households / run.wall_s / 1e6:.3f}  "
              f"({mem_s / run.wall_s:.2f}x in memory)")
    if not args.no_previous:
        print(f"  previous dask path:       {n_hh / prev_s / 1e6:.3f}")
    if 1 in runs and len(runs) > 1:
        w = max(runs)
        speedup = runs[1].wall_s / runs[w].wall_s
        print(f"  {w} workers vs 1: {speedup:.2f}x ({speedup / w:.0%} per core) — with the "
              f"machine's load average at {load()} the cores are shared with other work")
    model(runs)
    if not args.folder:
        shutil.rmtree(folder, ignore_errors=True)


def model(runs: dict[int, ProvinceRun]) -> None:
    figures = [f for run in runs.values() for f in run.figures]
    fixed = np.array([f.read_near_s + f.index_s for f in figures])
    per_hh = np.array([(f.assign_s + f.totals_s + f.coverage_s) / f.households for f in figures])
    a, b = float(np.median(fixed)), float(np.median(per_hh))
    eff = 1.0
    if 1 in runs and len(runs) > 1:
        w = max(runs)
        eff = min(runs[1].wall_s / runs[w].wall_s / w, 1.0)
    core_s = COUNTRY_COUNTIES * a + COUNTRY_HOUSEHOLDS * b
    print(f"\nscaling model from this run's partitions: a county costs {a:.2f} core-s "
          f"(read around + index) + {b * 1e6:.2f} core-µs per household (assign, totals, "
          f"these coverage types); parallel efficiency e = {eff:.0%} measured 1 → "
          f"{max(runs)} workers")
    hh_per_county = COUNTRY_HOUSEHOLDS / COUNTRY_COUNTIES
    print(f"  the country: {COUNTRY_COUNTIES:,} county partitions, ~{COUNTRY_COMMUNITIES:,} "
          f"communities, {COUNTRY_HOUSEHOLDS / 1e6:.0f} M households "
          f"(~{hh_per_county / 1e3:.0f} k per county) = {core_s / 3600:.1f} core-hours")
    for workers in (2, 16, 64, 256):
        wall = core_s / (workers * eff) + a + hh_per_county * 3 * b  # + the largest county
        print(f"  on {workers:3d} single-threaded workers: ~{wall / 60:6.1f} min "
              f"(~{COUNTRY_HOUSEHOLDS / wall / 1e6:.2f} M households/s)")
    print("  per worker memory: one county's households (~360 k: ~60 MB as a GeoDataFrame) "
          "+ its grid index (4 M cells: 16 MB int16 labels, ~100 MB while building)")


if __name__ == "__main__":
    main()
