"""Suggested partition: time and quality on a generated 5,000-household community, gridmap's
max-p + re-split beside plain contiguous k-means (spopt RegionKMeansHeuristic with the band's
midpoint deciding the number of grids) on the same H3 blocks.

Run: .venv/bin/python bench/bench_suggest.py [--households 5000] [--seed 0]

Times are CPU seconds of the suggestion after spopt is imported (its import is printed apart);
the target is ≤ 10 s.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench.community import make_community


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--households", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.process_time()
    import spopt.region  # noqa: F401

    from gridmap.analysis import suggest as sg
    print(f"import spopt: {time.process_time() - start:.1f} s CPU")
    band = (300, 500)
    community, households = make_community(args.households)

    start = time.process_time()
    result = sg.suggest_partition(community, households, band=band, seed=args.seed)
    ours = time.process_time() - start
    print(f"gridmap max-p + re-split: {ours:.2f} s CPU")
    for line in result.report.lines():
        print("  " + line)

    # the obvious alternative: contiguous k-means into round(households / midpoint) regions
    from spopt.region import RegionKMeansHeuristic

    metric = sg._metric_crs(community)
    region = sg._region(community, None, metric)
    start = time.process_time()
    units, _ = sg._blocks(region, households.to_crs(metric), None, metric, band=band,
                            resolution=None)
    neighbours = sg._neighbours_of(units)
    k = max(1, round(len(households) / (sum(band) / 2)))
    model = RegionKMeansHeuristic(units[["x", "y"]].to_numpy(), k,
                                  sg._weights(neighbours, np.arange(len(units))),
                                  seed=args.seed)
    model.solve()
    grids = sg._measure(sg._dissolve(units, np.asarray(model.labels_), metric), band)
    theirs = time.process_time() - start
    in_band = int((grids["status"] == "within").sum())
    print(f"contiguous k-means (k={k}): {theirs:.2f} s CPU")
    print(f"  {in_band} of {len(grids)} grids within {band[0]}–{band[1]}; largest "
          f"deviation {grids['deviation'].abs().max():.0f}; compactness min "
          f"{grids['compactness'].min():.2f}, mean {grids['compactness'].mean():.2f}")
    print(f"in-band share: gridmap {result.report.in_band / result.report.grids:.0%}, "
          f"k-means {in_band / len(grids):.0%}")


if __name__ == "__main__":
    main()
