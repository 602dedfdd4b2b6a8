"""Locate over HTTP on loopback: gridmap's in-process index vs a PostGIS query per request.

Run: .venv/bin/python bench/bench_locate.py [--seconds 10] [--connections 1 2 4 8]
[--rate 2000] [--no-pin]

Needs wrk (Debian package wrk). Loads the demo district into the local database if it is not
there, starts `gridmap serve` and, for comparison, the same endpoint answered by PostGIS
(`store/sql/locate_point.sql`, one round trip per request), both one uvicorn process with the
access log off, and drives both with wrk over 2,000 random points of the district at each
number of connections. Prints requests/s and the latency percentiles: the load a dispatch
centre can put on one process at a given p99, and on `serve --workers N` for the N the cores
allow (how it scales per core), and the server's CPU time per request (psutil, over its
processes) — the figure a loaded machine disturbs least. gridmap is measured twice: as the public
(grid and names, no workers) and as a signed-in dispatcher of the county (bearer token,
workers with phones, each answer an entry of the audit log), each on one process and on
`--workers N`. Points outside every grid are 404 for the dispatcher ("none of your divisions'
grids"), so every line uses the points inside a grid only: the places a dispatcher locates.

Two things keep the figures about the server rather than the machine: a one-process server
runs on core 0 and wrk on core 1 (taskset; `--no-pin` to leave them to the scheduler), so the
two do not take turns on one core — with more server processes than cores left over they are
not pinned —; and besides the closed loops (each connection sends its next request the moment
an answer arrives, so at 8 connections 8 requests are always queued and the median latency is
about 8 × the time per request), a paced line: 8 connections sending about `--rate` requests
a second in all, the latency a dispatch centre at that load sees.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import psutil
import shapely

ROOT = Path(__file__).resolve().parent.parent
POSTGIS_APP = '''
from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse
from sqlalchemy import create_engine
from gridmap.store.assign import locate
engine = create_engine({url!r}, pool_size=8)
app = FastAPI()
@app.get("/api/locate")
def by_postgis(lon: float = Query(ge=-180, le=180), lat: float = Query(ge=-90, le=90)):
    with engine.connect() as conn:
        return JSONResponse({{"grids": locate(conn, lon, lat)}})
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(port: int) -> None:
    for _ in range(1200):  # a busy machine takes a while to start several processes
        try:  # any answer: a process serves (a connection alone may wait in the backlog)
            httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"server on {port} did not start")


# the server process started for each port, to read its CPU time
SERVERS: dict[int, psutil.Process] = {}


@contextlib.contextmanager
def running(cmd: list[str], env: dict[str, str], cwd: str | None = None) -> Iterator[int]:
    """A server started with *cmd* ({port} filled in) and *env* (over the environment):
    its port, while it runs."""
    port = free_port()
    proc = subprocess.Popen([c.replace("{port}", str(port)) for c in cmd], cwd=cwd,
                            env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    SERVERS[port] = psutil.Process(proc.pid)
    try:
        wait(port)
        yield port
    finally:
        SERVERS.pop(port, None)
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cpu_seconds(port: int) -> float:
    """User + system CPU seconds used so far by the server on *port* and its worker
    processes (NaN when it was not started by :func:`running`)."""
    proc = SERVERS.get(port)
    if proc is None:
        return math.nan
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def settled(port: int, *, timeout: float = 60.0) -> None:
    """Wait until the server on *port* has finished starting: its helper processes (the
    report workers, which import gridmap and take seconds of CPU, on the same pinned core as
    the server) idle for a second. Measured before that, the first line ran beside their
    start-up (p90 ~7 ms where the same server settled gives ~1.2 ms)."""
    proc = SERVERS.get(port)
    if proc is None:
        return
    deadline = time.monotonic() + timeout
    before = cpu_seconds(port)
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = cpu_seconds(port)
        if now - before < 0.05:
            return
        before = now


def run_wrk(port: int, script: Path, seconds: int, connections: int,
            headers: tuple[str, ...] = (), pin: list[str] | None = None) -> dict[str, float]:
    """Requests/s, latency percentiles (ms), non-2xx/3xx answers, and the server's CPU
    time per request in µs (its processes only: not wrk's, not PostgreSQL's) — the figure
    the machine's load disturbs least. *pin*: the taskset prefix wrk runs under."""
    extra = [arg for h in headers for arg in ("-H", h)]
    cpu = cpu_seconds(port)
    out = subprocess.run([*(pin or []), "wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
                          "--latency", *extra, "-s", str(script), f"http://127.0.0.1:{port}"],
                         capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(port) - cpu
    unit = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    lat = {p: float(v) * unit[u] for p, v, u in
           re.findall(r"^\s+(50|90|99)%\s+([\d.]+)(us|ms|s)$", out, re.M)}
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return {"rps": rps, "p50": math.nan, "p90": math.nan, "p99": math.nan,
            **{f"p{k}": v for k, v in lat.items()},
            "errors": float(errors.group(1)) if errors else 0.0,
            "cpu_us": cpu / max(requests, 1) * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--rate", type=int, default=2000, help="the paced line's total "
                        "requests/s over 8 connections (0: no paced line)")
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=True,
                        help="one-process servers on core 0, wrk on core 1 (taskset), so "
                        "they do not take turns on one core")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk")
    gridmap = str(ROOT / ".venv" / "bin" / "gridmap")
    subprocess.run([gridmap, "load-demo"], check=True, capture_output=True)
    url = subprocess.run([gridmap, "db", "url"], check=True, capture_output=True,
                         text=True).stdout.strip()
    import geopandas as gpd

    grids = gpd.read_file(ROOT / "data" / "boundaries" / "grids.geojson")
    xmin, ymin, xmax, ymax = grids.total_bounds
    rng = np.random.default_rng(1)
    pts = rng.uniform([xmin, ymin], [xmax, ymax], size=(2000, 2))
    inside = shapely.contains_xy(grids.union_all(), pts[:, 0], pts[:, 1])
    password = "bench-" + os.urandom(6).hex()
    subprocess.run([gridmap, "user", "add", "bench-dispatcher", "--role", "dispatcher",
                    "--division", "610199000000"], capture_output=True,
                   env={**os.environ, "GRIDMAP_PASSWORD": password})
    subprocess.run([gridmap, "user", "passwd", "bench-dispatcher"], check=True,
                   capture_output=True, env={**os.environ, "GRIDMAP_PASSWORD": password})
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "points.lua"
        paths = ",".join(f'"/api/locate?lon={x:.7f}&lat={y:.7f}"' for x, y in pts[inside])
        script.write_text(f"local paths = {{{paths}}}\nlocal i = 0\n"
                          "request = function()\n  i = i % #paths + 1\n"
                          "  return wrk.format('GET', paths[i])\nend\n")
        # the same requests, each connection pausing between its requests so that 8 send
        # about --rate a second: the latency a dispatch centre at that load sees, without the
        # queue a closed loop at full speed builds (the pause is from an answer to the next
        # request, so ~0.5 ms of answer is left out of it; wrk's pauses are whole
        # milliseconds: alternate the two around the pause wanted). The line prints the rate
        # it reached.
        paced = Path(tmp) / "paced.lua"
        pause = max(8 / max(args.rate, 1) * 1000 - 0.5, 0)
        low = math.floor(pause)
        paced.write_text(script.read_text() + f"local n = 0\ndelay = function()\n"
                         f"  n = n + 1\n  if (n * {pause - low:.3f}) % 1 < {pause - low:.3f} "
                         f"then return {low + 1} end\n  return {low}\nend\n")
        app_file = Path(tmp) / "postgis_app.py"
        app_file.write_text(POSTGIS_APP.format(url=url))
        results: dict[tuple[str, int], dict[str, float]] = {}
        env = {**os.environ, "GRIDMAP_DATABASE_URL": url}
        serve = [gridmap, "serve", "--port", "{port}", "--log-level", "warning"]
        workers = [w for w in (2, 4) if w <= (os.cpu_count() or 1)]
        pinned = args.pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset")
        server_pin = ["taskset", "-c", "0"] if pinned else []
        wrk_pin = ["taskset", "-c", "1"] if pinned else None
        lines = [("gridmap (in-process index)", [*server_pin, *serve], wrk_pin)]
        lines += [(f"gridmap, {w} worker processes", [*serve, "--workers", str(w)], None)
                  for w in workers]
        lines += [("gridmap as a dispatcher", [*server_pin, *serve], wrk_pin)]
        lines += [(f"dispatcher, {w} worker processes", [*serve, "--workers", str(w)], None)
                  for w in workers]
        lines += [("PostGIS per request", [*server_pin, sys.executable, "-m", "uvicorn",
                                           "postgis_app:app", "--port", "{port}",
                                           "--log-level", "warning"], wrk_pin)]
        for name, cmd, pin in lines:
            with running(cmd, env, cwd=tmp) as port:
                headers: tuple[str, ...] = ()
                if "dispatcher" in name:
                    token = httpx.post(f"http://127.0.0.1:{port}/auth/token", data={
                        "username": "bench-dispatcher", "password": password}).json()
                    headers = (f"Authorization: Bearer {token['access_token']}",)
                settled(port)
                # warm up (every worker process resolves the token once)
                run_wrk(port, script, 2, 8, headers, pin)
                for c in args.connections:
                    results[name, c] = run_wrk(port, script, args.seconds, c, headers, pin)
                if args.rate and not name.startswith("PostGIS"):
                    results[name, -8] = run_wrk(port, paced, args.seconds, 8, headers, pin)
    print(f"{inside.sum()} random points inside the district's grids, wrk for {args.seconds} s "
          f"per line; one-process servers {'on core 0, wrk on core 1' if pinned else 'unpinned'}"
          f"; paced: 8 connections at about {args.rate} req/s in all:")
    for (name, c), r in results.items():
        conns = f"{c} conn" if c > 0 else "paced "
        print(f"  {name:33s} {conns} {r['rps']:8.0f} req/s   p50 {r['p50']:.2f} ms   "
              f"p90 {r['p90']:.2f} ms   p99 {r['p99']:.2f} ms   server CPU "
              f"{r['cpu_us']:5.0f} µs/req   errors {r['errors']:.0f}")
    c = max(args.connections)
    ours, theirs = results["gridmap (in-process index)", c], results["PostGIS per request", c]
    print(f"  server CPU per request at {c} connections: gridmap {ours['cpu_us']:.0f} µs, "
          f"PostGIS per request {theirs['cpu_us']:.0f} µs in its app process (its "
          f"database's work on top): {theirs['cpu_us'] / ours['cpu_us']:.1f}x")
    them = results["gridmap as a dispatcher", c]
    print(f"  the dispatcher (workers' phones, each answer audited) at {c} connections: "
          f"{them['cpu_us']:.0f} µs CPU per request, {them['rps'] / ours['rps']:.2f}x the "
          f"public's requests/s")
    one = ours["rps"]
    for w in workers:
        print(f"  {w} worker processes at {c} connections: "
              f"{results[f'gridmap, {w} worker processes', c]['rps'] / one:.2f}x one process "
              f"on {os.cpu_count()} cores (shared with wrk and PostgreSQL); load "
              f"{os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
