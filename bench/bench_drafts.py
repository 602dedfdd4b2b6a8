"""Draft edits with live statistics, server side, for a community of 5,000 households.

Run: .venv/bin/python bench/bench_drafts.py [--households 5000] [--rounds 10]

Works in a scratch database of the configured server (``bench.city.scratch_database``,
created and dropped). Loads the demo's divisions, grids and workers and N synthetic households
inside community 610199001001, opens a draft of it and measures, per edit, the whole
server-side call (``gridmap.drafts.edit``: lock the draft, read its grids, apply the edit,
write it and its undo record, recount and check the partition):

- split the community's largest grid by a line, then undo — ``rounds`` times each;
- paint 7 H3 cells across a shared edge, then undo.

Beside it, the obvious alternatives for the statistics part alone:

- *re-read*: the same statistics with the households read from PostGIS on every edit (no
  in-memory copy per draft);
- *PostGIS recount*: households, residents and vulnerable households per draft grid by a
  spatial join in PostGIS (``ST_Intersects`` on the GiST index) — counts only, without the
  partition check that the edit answer also carries.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import geopandas as gpd
import h3
import numpy as np
import shapely
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.city import scratch_database
from gridmap import drafts
from gridmap.access import CLI_PRINCIPAL
from gridmap.demodata import DEMO_DIR, DEMO_FILES
from gridmap.io.read import read_layer
from gridmap.settings import Settings
from gridmap.store.load import load_layer

COMMUNITY = "610199001001"
RECOUNT = """
SELECT g.code, count(h.id), coalesce(sum(h.residents), 0),
       count(*) FILTER (WHERE h.elderly_alone OR h.disabled OR h.left_behind_child
                        OR h.low_income)
FROM plan_draft_grid g LEFT JOIN household h ON ST_Intersects(g.geom, h.geom)
WHERE g.draft_id = :d GROUP BY g.code
"""


def households(n: int, boundary: shapely.Geometry, seed: int = 5) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = boundary.bounds
    pts: list[shapely.Point] = []
    while len(pts) < n:
        cand = shapely.points(rng.uniform(minx, maxx, n), rng.uniform(miny, maxy, n))
        pts += list(cand[shapely.contains(boundary, cand)])
    pts = pts[:n]
    return gpd.GeoDataFrame({
        "id": [f"B{i:06d}" for i in range(n)], "address": [f"测试路{i}号" for i in range(n)],
        "residents": rng.integers(1, 6, n), "elderly_alone": rng.random(n) < 0.05,
        "disabled": rng.random(n) < 0.02, "left_behind_child": rng.random(n) < 0.02,
        "low_income": rng.random(n) < 0.03}, geometry=pts, crs=4326)


def ms(values: list[float]) -> str:
    return (f"median {1000 * statistics.median(values):6.1f} ms, "
            f"max {1000 * max(values):6.1f} ms (n={len(values)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--households", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    settings = Settings()
    with scratch_database() as engine:
        with engine.begin() as conn:
            for layer in ("counties", "townships", "communities", "grids", "workers"):
                load_layer(conn, layer, read_layer(DEMO_DIR / DEMO_FILES[layer], layer).frame)
            com = gpd.read_postgis(text("SELECT geom FROM division WHERE code = :c"), conn,
                                   geom_col="geom", params={"c": COMMUNITY}).geometry.iloc[0]
            load_layer(conn, "households", households(args.households, com))
            from gridmap.store.assign import assign_layer

            assign_layer(conn, "households")
        draft = drafts.open_draft(engine, CLI_PRINCIPAL, COMMUNITY, title="bench",
                                  client="bench")
        cache = drafts.DraftCache()
        opts = {"standard": settings.standard, "tolerance": settings.check_tolerance_m,
                "min_area": settings.check_min_area_m2}
        start = time.perf_counter()
        with engine.connect() as conn:
            view = drafts.show(conn, CLI_PRINCIPAL, draft, cache, **opts)
        cold = time.perf_counter() - start
        total = sum(r["households"] for r in view.stats.grids if r["kind"] != "micro")
        assert total == args.households, total
        comp = [r for r in view.stats.grids if r["kind"] == "comprehensive"]
        big = str(max(comp, key=lambda r: r["households"])["code"])
        geom = view.grids[big].geom
        _, miny, _, maxy = geom.bounds
        mid = geom.representative_point().x
        line = {"type": "LineString", "coordinates": [[mid, miny - 1e-3], [mid, maxy + 1e-3]]}
        other = next(r["code"] for r in comp if r["code"] != big
                     and view.grids[r["code"]].geom.touches(geom))
        edge = shapely.intersection(geom, view.grids[other].geom).representative_point()
        cells = list(h3.grid_disk(h3.latlng_to_cell(edge.y, edge.x, 10), 1))

        timings: dict[str, list[float]] = {"split": [], "paint": [], "undo": []}
        stats_only: list[float] = []
        for _ in range(args.rounds):
            for op, params in (("split", {"grid": big, "line": line}),
                               ("paint", {"grid": big, "cells": cells})):
                start = time.perf_counter()
                view = drafts.edit(engine, CLI_PRINCIPAL, draft, op, params, cache,
                                   expected=None, client="bench", revision_required=False,
                                   **opts)
                timings[op].append(time.perf_counter() - start)
                stats_only.append(view.stats.seconds)
                assert not view.stats.blocking, view.stats.blocking
                assert sum(r["households"] for r in view.stats.grids
                           if r["kind"] != "micro") == args.households
                start = time.perf_counter()
                drafts.undo(engine, CLI_PRINCIPAL, draft, cache, expected=None,
                            client="bench", revision_required=False, **opts)
                timings["undo"].append(time.perf_counter() - start)

        reread: list[float] = []
        recount: list[float] = []
        with engine.connect() as conn:
            grids = drafts.store.read_grids(conn, draft)
            workers = drafts.store.read_workers(conn, draft)
            for _ in range(args.rounds):
                start = time.perf_counter()
                drafts._stats(conn, drafts.DraftCache(), COMMUNITY, [COMMUNITY], grids,
                              workers, **opts)
                reread.append(time.perf_counter() - start)
                start = time.perf_counter()
                rows = conn.execute(text(RECOUNT), {"d": draft}).fetchall()
                recount.append(time.perf_counter() - start)
            assert sum(r[1] for r in rows if r[0].strip() in grids
                       and grids[r[0].strip()].kind == "comprehensive") >= 0

        print(f"draft of community {COMMUNITY}: {args.households:,} households, "
              f"{len(view.grids)} grids; first statistics (households read) "
              f"{1000 * cold:.0f} ms")
        for op, values in timings.items():
            print(f"  edit {op:<6} whole call: {ms(values)}")
        print(f"  statistics inside an edit (kept households):   {ms(stats_only)}")
        print(f"  statistics re-reading households each edit:    {ms(reread)}")
        print(f"  PostGIS recount per draft grid (counts only):  {ms(recount)}")


if __name__ == "__main__":
    main()
