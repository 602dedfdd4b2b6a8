"""The access log's lines are uvicorn's, word for word, written for less."""

from __future__ import annotations

import logging

import pytest
import uvicorn.config
import uvicorn.logging

from gridmap.api.logs import AccessFormatter

FORMAT = uvicorn.config.LOGGING_CONFIG["formatters"]["access"]["fmt"]


def _record(client: str, path: str, status: int, level: int = logging.INFO
            ) -> logging.LogRecord:
    return logging.LogRecord("uvicorn.access", level, __file__, 1,
                             '%s - "%s %s HTTP/%s" %d', (client, "GET", path, "1.1", status),
                             None)


@pytest.mark.parametrize("colours", [False, True])
@pytest.mark.parametrize(("client", "path", "status", "level"), [
    ("127.0.0.1:5555", "/api/locate?lon=108.95&lat=34.25", 200, logging.INFO),
    ("[::1]:443", "/api/search?q=%E7%8E%8B%E6%9B%B2", 404, logging.INFO),
    ("10.0.0.7:80", "/tiles/grids/12/3344/1650.pbf", 304, logging.WARNING),
    ("10.0.0.7:80", "/x", 599, logging.ERROR),  # a status without a phrase
])
def test_an_access_line_reads_as_uvicorns(colours: bool, client: str, path: str,
                                          status: int, level: int) -> None:
    ours = AccessFormatter(FORMAT, use_colors=colours)
    theirs = uvicorn.logging.AccessFormatter(FORMAT, use_colors=colours)
    record = _record(client, path, status, level)
    line = ours.format(record)
    assert line == theirs.format(_record(client, path, status, level))
    assert record.args == (client, "GET", path, "1.1", status)  # the record is left as it was
    if not colours:
        assert line.startswith(logging.getLevelName(level) + ":") and f"{status}" in line

