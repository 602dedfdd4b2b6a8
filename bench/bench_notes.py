"""What keeping the routing warnings as keys and values (migration 0018) costs the intake
statement, beside the obvious alternative: the same statement storing the English text only.

Run: .venv/bin/python bench/bench_notes.py [--reports 2000] [--rounds 4]

Works in a database of its own on the local cluster (created, loaded with the demo's
divisions, grids and workers, and dropped at the end). Sends *reports* reports through
``intake.sql`` as gridmap runs it (prepared, autocommit, one round trip: the first timeline
entry's text and its notes) and as many through the same statement with the notes left
NULL (what it wrote before), alternating in *rounds* blocks so that both see the same
machine; a third of the points are corners shared by grids (the notes are built), the rest
inside one grid (the notes' expression runs and gives NULL).
Prints the median, p90 and p99 per report of each, with the machine's load average.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_incidents import CATEGORY, GRIDMAP, ROOT, pct, points_in_grids


def without_notes(statement: str) -> str:
    """``intake.sql`` with the notes of the first timeline entry left NULL (its text kept):
    the statement as it was before migration 0018."""
    out, n = re.subn(r",\s*(?:--[^\n]*\n\s*)?\(SELECT jsonb_agg\(n\).*?WHERE n IS NOT NULL\)",
                     ", NULL", statement, flags=re.DOTALL)
    assert n == 1, "intake.sql changed: update the benchmark's cut"
    return out


def awkward_points(n: int) -> np.ndarray:
    """*n* points where grids meet: vertices of the demo's grids inside the district (a
    coverage shares most vertices exactly: those lie on two grids or more), the reports
    whose first step carries a warning. (The demo's grids cover its townships: no point is
    outside every grid.)"""
    import geopandas as gpd
    import shapely

    grids = gpd.read_file(ROOT / "data" / "boundaries" / "grids.geojson")
    inner = grids.union_all().buffer(-1e-6)
    corners = np.unique(shapely.get_coordinates(grids.geometry.boundary), axis=0)
    shared = corners[shapely.contains_xy(inner, corners[:, 0], corners[:, 1])]
    return shared[np.random.default_rng(2).integers(len(shared), size=n)]


def timed(conn: Any, statement: bytes, points: np.ndarray, prefix: str) -> list[float]:
    """Milliseconds per report of *statement* (prepared) over *points*."""
    from psycopg.rows import dict_row

    from gridmap.store.incidents import _intake_params

    out = []
    cur = conn.cursor(row_factory=dict_row)
    for k, (x, y) in enumerate(points):
        now = datetime.now(UTC)
        values = _intake_params({
            "lon": float(x), "lat": float(y), "scope": None, "id_prefix": f"{prefix}{k:07d}",
            "category": CATEGORY, "description": "bench", "at": now, "reporter": None,
            "urgent": False, "dispatch_due": now + timedelta(minutes=30), "actor": "bench",
            "role": "dispatcher", "client": "bench", "target": "POST /api/incidents"}, [])
        t = time.perf_counter()
        cur.execute(statement, values, prepare=True)
        row = cur.fetchone()
        out.append((time.perf_counter() - t) * 1e3)
        assert row is not None and row["id"] is not None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports", type=int, default=2000, help="per statement")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    import psycopg
    from sqlalchemy import make_url

    from gridmap.demodata import DEMO_DIR, DEMO_FILES
    from gridmap.settings import Settings
    from gridmap.store.db import create_database, database_url, drop_database, libpq_dsn
    from gridmap.store.incidents import _intake_statement

    server = database_url(Settings())
    dbname = f"gridmap_bench_notes_{uuid.uuid4().hex[:8]}"
    url = make_url(server).set(database=dbname).render_as_string(hide_password=False)
    total = 2 * args.reports + 50  # both statements, and the warm-up
    inside = points_in_grids(total * 2 // 3)
    points = np.vstack([inside, awkward_points(total - len(inside))])
    np.random.default_rng(3).shuffle(points)
    statements: dict[str, bytes] = {"gridmap (text + notes)": _intake_statement()}
    statements["alternative (text only)"] = without_notes(
        _intake_statement().decode()).encode()
    create_database(server, dbname)
    times: dict[str, list[float]] = {name: [] for name in statements}
    try:
        env = {**os.environ, "GRIDMAP_DATABASE_URL": url}
        for layer in ("counties", "townships", "communities", "grids", "workers"):
            subprocess.run([GRIDMAP, "import", layer, str(DEMO_DIR / DEMO_FILES[layer]),
                            *(["--publish"] if layer == "grids" else [])],
                           env=env, check=True, capture_output=True)
        block = args.reports // args.rounds
        with psycopg.connect(libpq_dsn(url), autocommit=True) as conn:
            for name, statement in statements.items():  # warm: plans, caches
                timed(conn, statement, points[:50], f"W{len(name)}")
            at = 50
            for r in range(args.rounds):
                order = list(statements.items())
                for name, statement in order if r % 2 == 0 else order[::-1]:
                    times[name] += timed(conn, statement, points[at:at + block],
                                         f"R{r}{len(name) % 10}")
                    at += block
            noted = conn.execute("SELECT count(*) FILTER (WHERE notes IS NOT NULL), count(*) "
                                 "FROM incident_event").fetchone()
    finally:
        drop_database(server, dbname)
    print(f"intake.sql per report, {args.reports} reports each, alternated in {args.rounds} "
          f"blocks (load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores):")
    for name, ms in times.items():
        print(f"  {name:25s} p50 {pct(ms, 50):6.3f} ms   p90 {pct(ms, 90):6.3f} ms   "
              f"p99 {pct(ms, 99):6.3f} ms")
    assert noted is not None
    print(f"  first steps with notes: {noted[0]} of {noted[1]} (the rest inside one grid)")


if __name__ == "__main__":
    main()
