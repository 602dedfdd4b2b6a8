"""Vector tiles: gridmap vs tipg serving the same grid table over HTTP, in the same run.

Run: .venv/bin/python bench/bench_tiles.py [--zooms 12 13 14 15] [--seconds 8]

Needs wrk (Debian package wrk). tipg is installed from PyPI into a virtualenv of its own
(.gridmap/bench-tipg, with uvicorn[standard] as gridmap has) so its pins do not touch
gridmap's. Both servers read the demo district in the local database, one uvicorn process
each, access log off. gridmap's grid tiles carry more (household and resident counts, the
standard's band) than tipg's plain table tiles.

wrk with 8 connections cycles over every tile of the district at the given zooms:
1. uncached: gridmap with its tile cache off (GRIDMAP_TILE_CACHE_TILES=0) and tipg (which
   has none), so every request renders — tiles/s, latency and the server's CPU time per
   tile (psutil over its processes; PostgreSQL's rendering is not in it) for both, run in turn for
   several rounds (the order alternating) so that the machine's load, which swings, weighs
   on both alike: each round's ratio and their median;
2. cached: gridmap with its cache (`serve --workers N` for 1, 2, 4 processes as the cores
   allow), after one pass over the tiles; and the revalidation of a tile a browser holds
   (If-None-Match → 304);
3. PostGIS alone: the same grid tile statements, prepared, from 8 psycopg connections in
   threads with no HTTP — what the database can give, the ceiling for any tile server here.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_locate import run_wrk, running

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


def paths_script(folder: Path, paths: list[str]) -> Path:
    """A wrk script that cycles over *paths*."""
    folder.mkdir(exist_ok=True)
    script = folder / "tiles.lua"
    body = ",".join(f'"{p}"' for p in paths)
    script.write_text(f"local paths = {{{body}}}\nlocal i = 0\n"
                      "request = function()\n  i = i % #paths + 1\n"
                      "  return wrk.format('GET', paths[i])\nend\n")
    return script


def postgis_alone(url: str, tiles: list[tuple[int, int, int]], seconds: float,
                  connections: int = 8) -> float:
    """Grid tiles/s rendered by PostGIS over *connections* connections, no HTTP."""
    import psycopg

    from gridmap.domain.standards import GridStandard
    from gridmap.store.db import libpq_dsn
    from gridmap.tiles.mvt import tile_statement

    done = [0] * connections
    stop = time.perf_counter() + seconds

    def work(k: int) -> None:
        with psycopg.connect(libpq_dsn(url), autocommit=True) as conn:
            i = k
            while time.perf_counter() < stop:
                z, x, y = tiles[i % len(tiles)]
                conn.execute(*tile_statement("grids", z, x, y, GridStandard()),
                             prepare=True).fetchone()
                done[k] += 1
                i += connections

    threads = [threading.Thread(target=work, args=(k,)) for k in range(connections)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--zooms", type=int, nargs="+", default=[12, 13, 14, 15])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    gridmap = str(ROOT / ".venv" / "bin" / "gridmap")
    subprocess.run([gridmap, "load-demo"], check=True, capture_output=True)
    url = subprocess.run([gridmap, "db", "url"], check=True, capture_output=True,
                         text=True).stdout.strip()
    if not list(TIPG_ENV.glob("lib/python*/site-packages/uvloop")):
        subprocess.run([sys.executable, "-m", "venv", str(TIPG_ENV)], check=True)
        subprocess.run([str(TIPG_ENV / "bin" / "pip"), "install", "-q", "tipg",
                        "uvicorn[standard]"], check=True)
    import geopandas as gpd

    bounds = tuple(gpd.read_file(ROOT / "data" / "boundaries" / "counties.geojson").total_bounds)
    tiles = tiles_over(bounds, args.zooms)  # type: ignore[arg-type]
    ours = [f"/tiles/grids/{z}/{x}/{y}.mvt" for z, x, y in tiles]
    theirs = [f"/collections/public.grid/tiles/WebMercatorQuad/{z}/{x}/{y}" for z, x, y in tiles]
    serve = [gridmap, "serve", "--port", "{port}", "--log-level", "warning"]
    tipg = [str(TIPG_ENV / "bin" / "uvicorn"), "tipg.main:app", "--port", "{port}",
            "--log-level", "warning"]
    tipg_env = {"DATABASE_URL": url.replace("postgresql+psycopg", "postgresql")}
    workers = [w for w in (1, 2, 4) if w <= (os.cpu_count() or 1)]
    servers = {
        "uncached gridmap": (serve, {"GRIDMAP_DATABASE_URL": url,
                                     "GRIDMAP_TILE_CACHE_TILES": "0"}, ours),
        "uncached tipg": (tipg, tipg_env, theirs),
        **{f"cached gridmap, {w} worker(s)": ([*serve, "--workers", str(w)],
                                              {"GRIDMAP_DATABASE_URL": url}, ours)
           for w in workers},
    }
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        ports = {name: stack.enter_context(running(cmd, env)) for name, (cmd, env, _)
                 in servers.items()}
        scripts = {name: paths_script(Path(tmp) / name.replace(" ", "_"), paths)
                   for name, (_, _, paths) in servers.items()}
        for name, port in ports.items():  # warm up (and fill gridmap's caches)
            run_wrk(port, scripts[name], 2, 8)
        print(f"{len(tiles)} grid tiles of the demo district at zooms {args.zooms}, wrk with "
              f"8 connections, {args.seconds} s per run; uncached gridmap and tipg "
              f"interleaved, {args.rounds} rounds:")
        ratios = []
        for k in range(args.rounds):
            pair = ["uncached gridmap", "uncached tipg"]
            got = {name: run_wrk(ports[name], scripts[name], args.seconds, 8)
                   for name in (pair if k % 2 == 0 else pair[::-1])}
            ratios.append(got[pair[0]]["rps"] / got[pair[1]]["rps"])
            print(f"  round {k + 1}: " + "; ".join(
                  f"{name} {got[name]['rps']:.0f} tiles/s p99 {got[name]['p99']:.2f} ms "
                  f"CPU {got[name]['cpu_us']:.0f} µs/tile"
                  for name in pair) + f"; ratio {ratios[-1]:.1f}x (load "
                  f"{os.getloadavg()[0]:.1f})")
        print(f"  uncached gridmap / tipg, median of {args.rounds} rounds: "
              f"{statistics.median(ratios):.1f}x (range {min(ratios):.1f}–{max(ratios):.1f}x)")
        cached = {}
        for name in servers:
            if name.startswith("cached"):
                r = cached[name] = run_wrk(ports[name], scripts[name], args.seconds, 8)
                print(f"  {name}  {r['rps']:8.0f} tiles/s   p50 {r['p50']:.2f} ms   "
                      f"p99 {r['p99']:.2f} ms   server CPU {r['cpu_us']:.0f} µs/tile   "
                      f"errors {r['errors']:.0f}")
        if len(cached) > 1:
            one, *more = cached.values()
            print("  cached scaling per worker process: " + ", ".join(
                f"{r['rps'] / one['rps']:.2f}x" for r in more) + f" of one worker on "
                f"{os.cpu_count()} cores (wrk and PostgreSQL share them)")
        with_etag = f"If-None-Match: {etag_of(ports['cached gridmap, 1 worker(s)'], ours[0])}"
        r = run_wrk(ports["cached gridmap, 1 worker(s)"], paths_script(Path(tmp), ours[:1]),
                    args.seconds, 8, (with_etag,))
        print(f"  revalidation (If-None-Match → 304), 1 worker: {r['rps']:8.0f} req/s   "
              f"p99 {r['p99']:.2f} ms   server CPU {r['cpu_us']:.0f} µs/req")
    print(f"  PostGIS alone (8 psycopg connections, prepared, no HTTP): "
          f"{postgis_alone(url, tiles, args.seconds):8.0f} tiles/s")


def etag_of(port: int, path: str) -> str:
    import httpx

    return str(httpx.get(f"http://127.0.0.1:{port}{path}").headers["ETag"])


if __name__ == "__main__":
    main()
