"""Soak: a mixed load on one `gridmap serve` for a long while (10 minutes by default).

Run: .venv/bin/python bench/bench_soak.py [--minutes 10] [--clients 4]

Loads the demo district into the local database if it is not there, starts `gridmap serve`
(one process, its report workers beside it), signs in an admin and drives it from
*clients* threads over keep-alive connections with the mix a dispatch centre makes:
mostly locate, then search, vector tiles and OGC items pages, now and then an incident
report (POST) and, rarely, a heavy report (coverage of a township at a distance drawn at
random, so the report cache does not answer it). Prints, per kind and in all: requests,
req/s, p50/p99 latency and errors (5xx or no answer), and the resident memory of the server
process and of its report workers at the start and at the end: a leak shows as growth.
Not part of the tests.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
MIX = (("locate", 60), ("search", 10), ("tile", 15), ("ogc items", 8), ("incident", 5),
       ("report", 2))
TOWNSHIPS = ("610199001000", "610199002000", "610199003000", "610199004000")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(proc: psutil.Process) -> tuple[float, float]:
    """(the server's RSS, its children's — the report workers — in all), MB."""
    children = proc.children(recursive=True)
    return (proc.memory_info().rss / 1e6,
            sum(c.memory_info().rss for c in children if c.is_running()) / 1e6)


def tile_path(lon: float, lat: float, z: int) -> str:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return f"/tiles/grids/{z}/{x}/{y}.mvt"


def request(http: httpx.Client, kind: str, rng: random.Random,
            box: tuple[float, float, float, float]) -> httpx.Response:
    lon, lat = rng.uniform(box[0], box[2]), rng.uniform(box[1], box[3])
    if kind == "locate":
        return http.get("/api/locate", params={"lon": lon, "lat": lat})
    if kind == "search":
        return http.get("/api/search", params={"q": rng.choice(["社区", "1号楼", "路", "小区"])})
    if kind == "tile":
        return http.get(tile_path(lon, lat, rng.randint(12, 16)))
    if kind == "ogc items":
        return http.get("/ogc/collections/households/items",
                        params={"limit": 100, "offset": rng.randint(0, 50_000)})
    if kind == "incident":
        return http.post("/api/incidents", json={
            "lon": lon, "lat": lat, "category": "部件/公用设施/井盖破损",
            "description": "soak"})
    return http.get("/api/coverage", params={
        "division": rng.choice(TOWNSHIPS), "type": "kindergarten", "level": "grid",
        "distance": rng.randint(200, 1000)}, timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    gridmap = str(Path(sys.executable).parent / "gridmap")  # beside this interpreter
    subprocess.run([gridmap, "load-demo"], check=True, capture_output=True)
    password = "soak-" + os.urandom(6).hex()
    env = {**os.environ, "GRIDMAP_PASSWORD": password}
    subprocess.run([gridmap, "user", "add", "bench-soak", "--role", "admin"],
                   capture_output=True, env=env)
    subprocess.run([gridmap, "user", "passwd", "bench-soak"], check=True, capture_output=True,
                   env=env)
    port = free_port()
    server = subprocess.Popen([gridmap, "serve", "--port", str(port), "--log-level",
                               "warning"], stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("gridmap serve did not become ready")
            time.sleep(0.5)
        token = httpx.post(f"{base}/auth/token", data={"username": "bench-soak",
                                                       "password": password}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        bounds = httpx.get(f"{base}/tiles/grids.json", headers=headers).json()["bounds"]
        box = (bounds[0], bounds[1], bounds[2], bounds[3])
        proc = psutil.Process(server.pid)
        start_rss = rss_mb(proc)
        seen: dict[str, list[float]] = defaultdict(list)
        errors: dict[str, int] = defaultdict(int)
        lock = threading.Lock()
        stop_at = time.monotonic() + args.minutes * 60
        kinds = [k for k, _ in MIX]
        weights = [w for _, w in MIX]

        def client(seed: int) -> None:
            rng = random.Random(seed)
            with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
                while time.monotonic() < stop_at:
                    kind = rng.choices(kinds, weights)[0]
                    start = time.perf_counter()
                    try:
                        failed = request(http, kind, rng, box).status_code >= 500
                    except httpx.TransportError:
                        failed = True
                    took = time.perf_counter() - start
                    with lock:
                        seen[kind].append(took)
                        errors[kind] += failed

        started = time.monotonic()
        threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        end_rss = rss_mb(proc)
    finally:
        server.terminate()
        server.wait(30)
    print(f"soak: {args.minutes:g} min, {args.clients} clients, one server process")
    every = [t for times in seen.values() for t in times]
    for kind in [*kinds, "all"]:
        times = every if kind == "all" else seen[kind]
        if len(times) < 2:
            continue
        failed = sum(errors.values()) if kind == "all" else errors[kind]
        p99 = statistics.quantiles(times, n=100)[98]
        print(f"  {kind:10s} {len(times):8d} req {len(times) / elapsed:8.1f} req/s   "
              f"p50 {statistics.median(times) * 1e3:7.1f} ms   p99 {p99 * 1e3:8.1f} ms   "
              f"errors {failed}")
    print(f"  server RSS {start_rss[0]:.0f} MB at start, {end_rss[0]:.0f} MB at the end; "
          f"report workers {start_rss[1]:.0f} MB → {end_rss[1]:.0f} MB")


if __name__ == "__main__":
    main()
