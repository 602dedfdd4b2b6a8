"""Straight-line coverage speed: gridmap's kernel vs scipy's cKDTree on the same data.

Run: .venv/bin/python bench/bench_coverage.py [--households 1000000] [--facilities 1000]

Households cluster like a city (denser centre) over 20 km x 20 km; facilities of 5 types are
spread over the same area. Figures are single-threaded and count the index build from the
facilities. Both methods must agree household for household.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from scipy.spatial import cKDTree

from bench.timing import best
from gridmap.analysis.coverage import CoverageIndex, covered_within

TYPES = 5
DISTANCES = (300.0, 500.0, 1000.0)


def city(n: int, rng: np.random.Generator, size: float = 20_000.0) -> tuple[np.ndarray, ...]:
    centre = rng.normal(size / 2, size / 6, size=(n, 2))
    uniform = rng.uniform(0, size, size=(n, 2))
    pick = rng.random(n) < 0.6
    xy = np.clip(np.where(pick[:, None], centre, uniform), 0, size)
    return xy[:, 0] + 400_000.0, xy[:, 1] + 3_500_000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--households", type=int, default=1_000_000)
    parser.add_argument("--facilities", type=int, default=1_000)
    args = parser.parse_args()
    rng = np.random.default_rng(3)
    hx, hy = city(args.households, rng)
    fac = [city(args.facilities, rng) for _ in range(TYPES)]
    n = args.households
    covered_within(hx[:10], hy[:10], fac[0][0], fac[0][1], 500.0)  # compile once

    d = 500.0
    ours_s, ours = best(lambda: covered_within(hx, hy, fac[0][0], fac[0][1], d), repeat=5)

    def kdtree() -> np.ndarray:
        tree = cKDTree(np.column_stack(fac[0]))
        dist, _ = tree.query(np.column_stack([hx, hy]), k=1, distance_upper_bound=d * 1.0001)
        return dist <= d

    kd_s, theirs = best(kdtree, repeat=2)
    agree = bool((ours == theirs).all())
    print(f"{n:,} households x {args.facilities:,} facilities, one type at {d:.0f} m "
          f"({ours.mean():.1%} covered), index build included:")
    print(f"  gridmap:  {n / ours_s / 1e6:8.1f} M households/s ({ours_s * 1000:.1f} ms)")
    print(f"  cKDTree:  {n / kd_s / 1e6:8.1f} M households/s ({kd_s * 1000:.1f} ms)")
    print(f"  ratio:    {kd_s / ours_s:.1f}x; agree household for household: {agree}")

    grid = rng.integers(0, 500, n)
    residents = rng.integers(1, 6, n)

    def all_of_it() -> np.ndarray:
        bounds = (float(hx.min()), float(hy.min()), float(hx.max()), float(hy.max()))
        total = np.bincount(grid, weights=residents, minlength=500)
        shares = []
        for fx, fy in fac:
            for dist in DISTANCES:
                ok = CoverageIndex.build(fx, fy, dist, bounds).covered(hx, hy)
                shares.append(np.bincount(grid, weights=residents * ok, minlength=500) / total)
        return np.array(shares)

    def all_kd() -> np.ndarray:
        total = np.bincount(grid, weights=residents, minlength=500)
        shares = []
        pts = np.column_stack([hx, hy])
        for fx, fy in fac:
            tree = cKDTree(np.column_stack([fx, fy]))
            dist, _ = tree.query(pts, k=1, distance_upper_bound=max(DISTANCES) * 1.0001)
            for d_ in DISTANCES:
                ok = dist <= d_
                shares.append(np.bincount(grid, weights=residents * ok, minlength=500) / total)
        return np.array(shares)

    all_s, ours_all = best(all_of_it, repeat=3)
    kd_all_s, kd_all = best(all_kd, repeat=1)
    print(f"{TYPES} types x {len(DISTANCES)} distances + per-grid resident shares, "
          f"{n:,} households:")
    print(f"  gridmap:  {all_s * 1000:8.0f} ms")
    print(f"  cKDTree:  {kd_all_s * 1000:8.0f} ms")
    print(f"  agree: {bool(np.array_equal(ours_all, kd_all))}")
    if not agree or not np.array_equal(ours_all, kd_all):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
