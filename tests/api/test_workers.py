"""`gridmap serve --workers N`: each process keeps its own index and tile cache (in front of a
store of tiles they share), and every one of them follows the database, so whichever process
takes the request after a redraw sees it."""

from __future__ import annotations

import json
import math
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import httpx
import pytest

from gridmap.demodata import DEMO_DIR, DEMO_FILES
from tests.helpers import import_merged, neighbours_in_community

GRIDMAP = str(Path(sys.executable).parent / "gridmap")


@pytest.fixture(scope="module")
def server(grids_db: str, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[str, Path]]:
    """Two worker processes, both started: a process that starts empties the tile store they
    share (notices sent before it listened are lost), so a test must not begin while the
    second is still starting — on a busy machine it came up after the first had served
    (and stored) a tile, and the tile was a miss again."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen([GRIDMAP, "serve", "--workers", "2", "--port", str(port),
                                 "--log-level", "info"], stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "GRIDMAP_DATABASE_URL": grids_db})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # two processes on a busy machine
        while log.read_text().count("Application startup complete") < 2:
            assert time.monotonic() < deadline and proc.poll() is None, "serve did not start"
            time.sleep(0.2)
        assert httpx.get(base + "/api/standard", timeout=10).status_code == 200
        yield base, log
    finally:
        proc.terminate()
        proc.wait(20)


@pytest.fixture(scope="module")
def served(server: tuple[str, Path]) -> str:
    """The base address of :func:`server`."""
    return server[0]


def fresh_get(url: str, **params: object) -> httpx.Response:
    """A request on a new connection, so that any worker process may take it."""
    with httpx.Client(timeout=10) as client:
        return client.get(url, params=params)  # type: ignore[arg-type]


def test_every_worker_sees_a_redraw(served: str, grids_db: str, tmp_path: Path) -> None:
    grids = gpd.read_file(DEMO_DIR / DEMO_FILES["grids"])
    a, b = neighbours_in_community(grids, 33)
    p = b.geometry.buffer(-0.0005).representative_point()
    n = 2**14
    tile = (f"/tiles/grids/14/{int((p.x + 180) / 360 * n)}/"
            f"{int((1 - math.asinh(math.tan(math.radians(p.y))) / math.pi) / 2 * n)}.mvt")
    for _ in range(12):  # warm both processes: index built, tile cached
        assert fresh_get(served + "/api/locate", lon=p.x, lat=p.y).json()["grid"]["code"] \
            == b["code"]
        fresh_get(served + tile)
    before = [fresh_get(served + tile) for _ in range(12)]
    # one process rendered the tile, the other took it from the store they share
    assert [t.headers["X-Tile-Cache"] for t in before].count("miss") == 0
    etag = before[0].headers["ETag"]
    assert {t.headers["ETag"] for t in before} == {etag}
    with httpx.Client(timeout=10) as client:
        assert client.get(served + tile, headers={"If-None-Match": etag}).status_code == 304
    assert import_merged(grids_db, grids, a, b, tmp_path / "merged.geojson").exit_code == 0
    after = [fresh_get(served + "/api/locate", lon=p.x, lat=p.y).json()["grid"]["code"]
             for _ in range(16)]
    assert set(after) == {a["code"]}
    tiles = [fresh_get(served + tile) for _ in range(16)]
    assert tiles[0].headers["X-Tile-Cache"] == "miss"
    assert [t.headers["X-Tile-Cache"] for t in tiles].count("miss") <= 2  # one per process
    assert {t.content for t in tiles} == {tiles[0].content}
    assert {t.headers["ETag"] for t in tiles} == {tiles[0].headers["ETag"]} != {etag}
    with httpx.Client(timeout=10) as client:  # the browser's copy is stale: the new tile
        assert client.get(served + tile, headers={"If-None-Match": etag}).status_code == 200
    assert b["code"].encode() not in tiles[0].content and a["code"].encode() in tiles[0].content


def _answers(sock: socket.socket, n: int) -> list[tuple[list[str], dict[str, str], bytes]]:
    """*n* HTTP/1.1 answers read off *sock*: status line and headers, and body (by its
    Content-Length)."""
    data, out = b"", []
    while len(out) < n:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            lines = head.decode("latin-1").split("\r\n")
            headers = dict(line.lower().split(": ", 1) for line in lines[1:])
            size = int(headers["content-length"])
            if len(rest) >= size:
                out.append((lines[0].split(" ", 2), headers, rest[:size]))
                data = rest[size:]
                continue
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection before answering"
        data += chunk
    assert data == b""
    return out


def test_the_protocol_answers_a_locate_as_the_framework_does(server: tuple[str, Path]) -> None:
    """`gridmap serve` answers a plain locate in its HTTP protocol (gridmap.api.fastproto),
    without the ASGI machinery: the same answer as the framework's, in order with the
    requests pipelined around it, with the server's headers, keeping or closing the
    connection as HTTP/1.1 and 1.0 say; a proxy's forwarded client goes the ASGI way. Both
    ways write uvicorn's access line."""
    served, log = server
    grids = gpd.read_file(DEMO_DIR / DEMO_FILES["grids"])
    p = grids[grids["kind"] == "comprehensive"].iloc[50].geometry.representative_point()
    target = f"/api/locate?lon={p.x:.7f}&lat={p.y:.7f}"
    host, port = served.removeprefix("http://").split(":")
    get = "GET {} HTTP/1.1\r\nHost: x\r\n{}\r\n"
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall("".join([get.format(target, ""), get.format(target + "&via=asgi", ""),
                              get.format("/healthz", ""),
                              get.format(target, "X-Forwarded-For: 10.1.2.3\r\n")]).encode())
        answers = _answers(sock, 4)
        sock.sendall((get.format(target, "") + get.format(target, "Connection: close\r\n"))
                     .encode())
        answers += _answers(sock, 2)
        assert sock.recv(1) == b""  # closed after the answer to "Connection: close"
    assert [status[1] for status, _, _ in answers] == ["200"] * 6
    fast, framework, health, forwarded, _, last = answers
    assert json.loads(fast[2]) == json.loads(framework[2]) == json.loads(forwarded[2]) \
        == json.loads(last[2])
    assert json.loads(fast[2])["inside"] and "status" in json.loads(health[2])
    for _, headers, _ in (fast, last):
        assert headers["content-type"] == "application/json" and "date" in headers
        assert headers["x-content-type-options"] == "nosniff"
    assert "connection" not in fast[1] and last[1]["connection"] == "close"
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.0\r\n\r\n".encode())
        ((status, _, body),) = _answers(sock, 1)
        assert status[1] == "200" and json.loads(body) == json.loads(fast[2])
        assert sock.recv(1) == b""  # HTTP/1.0 without keep-alive: closed
    lines = log.read_text().splitlines()
    for path in (target, target + "&via=asgi"):
        assert any(re.fullmatch(rf'INFO: +127\.0\.0\.1:\d+ - "GET {re.escape(path)} '
                                r'HTTP/1\.1" 200 OK', line) for line in lines), path


def test_serve_takes_the_protocol_only_on_a_uvicorn_it_was_tested_with(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    from gridmap.api.fastproto import LocateProtocol, http_protocol

    # the installed uvicorn is a tested one: if this fails, check fastproto against it
    assert http_protocol() is LocateProtocol
    monkeypatch.setattr(uvicorn, "__version__", "0.99.0")
    assert http_protocol() == "auto"
