"""Vector tiles: gridmap vs tipg serving the same grid table over HTTP, in the same run.

Run: .venv/bin/python bench/bench_tiles.py [--zooms 12 13 14 15] [--seconds 8]

Needs wrk (Debian package wrk). tipg is installed from PyPI into a virtualenv of its own
(.gridmap/bench-tipg) so its pins do not touch gridmap's. Both servers read the demo district
in the local database. gridmap's grid tiles carry more (household and resident counts, the
standard's band) than tipg's plain table tiles.

1. uncached: every tile of the district at the given zooms, requested once each by 8
   concurrent clients from freshly started servers — tiles/s for both;
2. cached: wrk with 8 connections over the same tiles on gridmap (tipg has no cache) —
   tiles/s and latency percentiles.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_locate import free_port, run_wrk, wait

ROOT = Path(__file__).resolve().parent.parent
TIPG_ENV = ROOT / ".gridmap" / "bench-tipg"


def tiles_over(bounds: tuple[float, float, float, float], zooms: list[int]
               ) -> list[tuple[int, int, int]]:
    west, south, east, north = bounds
    out = []
    for z in zooms:
        n = 2**z

        def tx(lon: float, n: int = n) -> int:
            return int((lon + 180) / 360 * n)

        def ty(lat: float, n: int = n) -> int:
            return int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)

        out += [(z, x, y) for x in range(tx(west), tx(east) + 1)
                for y in range(ty(north), ty(south) + 1)]
    return out


def fetch_all(base: str, paths: list[str], clients: int = 8) -> tuple[float, int]:
    with httpx.Client(base_url=base, timeout=60) as client:
        start = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            sizes = list(pool.map(lambda p: len(client.get(p).content), paths))
        return time.perf_counter() - start, sum(sizes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--zooms", type=int, nargs="+", default=[12, 13, 14, 15])
    parser.add_argument("--seconds", type=int, default=8)
    args = parser.parse_args()
    gridmap = str(ROOT / ".venv" / "bin" / "gridmap")
    subprocess.run([gridmap, "load-demo"], check=True, capture_output=True)
    url = subprocess.run([gridmap, "db", "url"], check=True, capture_output=True,
                         text=True).stdout.strip()
    if not (TIPG_ENV / "bin" / "uvicorn").exists():
        subprocess.run([sys.executable, "-m", "venv", str(TIPG_ENV)], check=True)
        subprocess.run([str(TIPG_ENV / "bin" / "pip"), "install", "-q", "tipg", "uvicorn"],
                       check=True)
    import geopandas as gpd

    bounds = tuple(gpd.read_file(ROOT / "data" / "boundaries" / "counties.geojson").total_bounds)
    tiles = tiles_over(bounds, args.zooms)  # type: ignore[arg-type]
    ours = [f"/tiles/grids/{z}/{x}/{y}.mvt" for z, x, y in tiles]
    theirs = [f"/collections/public.grid/tiles/WebMercatorQuad/{z}/{x}/{y}" for z, x, y in tiles]
    servers = {
        "gridmap": ([gridmap, "serve", "--port", "{port}"], {"GRIDMAP_DATABASE_URL": url}),
        "tipg": ([str(TIPG_ENV / "bin" / "uvicorn"), "tipg.main:app", "--port", "{port}",
                  "--log-level", "warning"],
                 {"DATABASE_URL": url.replace("postgresql+psycopg", "postgresql")}),
    }
    results: dict[str, tuple[float, int]] = {}
    cached: dict[str, float] = {}
    for name, (cmd, env) in servers.items():
        port = free_port()
        proc = subprocess.Popen([c.replace("{port}", str(port)) for c in cmd],
                                env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            wait(port)
            paths = ours if name == "gridmap" else theirs
            results[name] = fetch_all(f"http://127.0.0.1:{port}", paths)
            if name == "gridmap":
                with tempfile.TemporaryDirectory() as tmp:
                    script = Path(tmp) / "tiles.lua"
                    body = ",".join(f'"{p}"' for p in ours)
                    script.write_text(f"local paths = {{{body}}}\nlocal i = 0\n"
                                      "request = function()\n  i = i % #paths + 1\n"
                                      "  return wrk.format('GET', paths[i])\nend\n")
                    cached = run_wrk(port, script, args.seconds, 8)
        finally:
            proc.terminate()
            proc.wait(10)
    print(f"{len(tiles)} tiles of the demo district at zooms {args.zooms}, 8 clients:")
    for name, (seconds, size) in results.items():
        print(f"  uncached {name:8s} {len(tiles) / seconds:8.0f} tiles/s  "
              f"({size / 1e6:.1f} MB in {seconds:.2f} s)")
    ratio = results["tipg"][0] / results["gridmap"][0]
    print(f"  uncached gridmap / tipg: {ratio:.1f}x")
    print(f"  cached   gridmap  {cached['rps']:8.0f} tiles/s  p50 {cached['p50']:.2f} ms  "
          f"p99 {cached['p99']:.2f} ms  errors {cached['errors']:.0f}")


if __name__ == "__main__":
    main()
