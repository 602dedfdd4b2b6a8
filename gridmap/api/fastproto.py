"""Locate answered by the HTTP protocol itself: uvicorn's httptools protocol with a plain
``GET /api/locate`` answered where its message completes — no ASGI task, no request cycle,
the status line, headers and body in one write.

A request is answered here only when :func:`~gridmap.api.routes_locate.fast_answer` answers it
(the same function the app's own fast path uses, so the same answer, masking and audit) and
nothing else about it needs the server's ASGI machinery: no body, no upgrade, no request in
flight before it on the connection, no forwarded client to work out (a proxy's
``X-Forwarded-For`` goes the ASGI way, where uvicorn's proxy-headers middleware reads it).
Everything else is handed on, untouched, to the protocol it extends: the parsed request is
given to uvicorn's own ``on_headers_complete`` as if this class were not there.

``gridmap serve`` runs with it (``uvicorn.run(..., http=LocateProtocol)``); uvicorn's own
command line takes no protocol class, and serves the app the ASGI way."""

from __future__ import annotations

from typing import Any, cast

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

from gridmap.api import routes_locate
from gridmap.api.app import Gridmap

# the uvicorn releases whose protocol internals this class was tested against: another
# release is served by uvicorn's own protocol (the framework's fast path still answers)
TESTED_UVICORN = ("0.54.",)


def http_protocol() -> type[HttpToolsProtocol] | str:
    """What ``gridmap serve`` gives uvicorn as ``http``: this module's protocol on a tested
    uvicorn, uvicorn's own ("auto") on any other, so an upgrade cannot break serving."""
    return LocateProtocol if uvicorn.__version__.startswith(TESTED_UVICORN) else "auto"


PATH = b"/api/locate"
# what a fast answer cannot be: a body to read, a client to take from a proxy's headers
NOT_PLAIN = frozenset({b"content-length", b"transfer-encoding", b"x-forwarded-for",
                       b"x-forwarded-proto", b"upgrade", b"expect"})
# encoded once: the answer's own headers (type, security), as HTTP/1.1 header lines
HEADER_LINES = b"".join(name + b": " + value + b"\r\n"
                        for name, value in routes_locate.FAST_HEADERS)


def _gridmap_app(app: object) -> object | None:
    """The gridmap app under uvicorn's wrappers (proxy headers, message logger)."""
    for _ in range(8):
        if isinstance(app, Gridmap):
            return app
        app = getattr(app, "app", None)
    return None


class LocateProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, answering a plain locate itself (see the module)."""

    _fast_query: bytes | None = None
    _gridmap: object | None = None

    def on_headers_complete(self) -> None:
        if self._plain_locate():
            return  # answered (or handed on) when the message completes
        super().on_headers_complete()

    def _plain_locate(self) -> bool:
        parser = self.parser
        if parser.get_method() != b"GET" or parser.get_http_version() != "1.1" \
                or self.pipeline or parser.should_upgrade() or self.root_path \
                or (self.cycle is not None and not self.cycle.response_complete):
            return False
        url = httptools.parse_url(self.url)
        if url.path != PATH or any(name in NOT_PLAIN for name, _ in self.headers):
            return False
        if self._gridmap is None:
            self._gridmap = _gridmap_app(self.app)
        if self._gridmap is None:
            return False
        self._fast_query = url.query or b""
        return True

    def on_message_complete(self) -> None:
        query, self._fast_query = self._fast_query, None
        if query is None:
            super().on_message_complete()
            return
        scope = cast(dict[str, Any], self.scope)
        scope.update(method="GET", path=PATH.decode(), raw_path=PATH, query_string=query,
                     app=self._gridmap)
        body = routes_locate.fast_answer(scope)
        if body is None:  # the ASGI way, as uvicorn would have gone from the start
            super().on_headers_complete()
            super().on_message_complete()
            return
        keep_alive = self.parser.should_keep_alive()
        if self.access_log:
            self.access_logger.info('%s - "%s %s HTTP/%s" %d', get_client_addr(self.scope),
                                    "GET", get_path_with_query_string(self.scope), "1.1", 200)
        self.transport.write(b"".join([
            STATUS_LINE[200],
            *(name + b": " + value + b"\r\n" for name, value in
              self.server_state.default_headers),
            HEADER_LINES, b"content-length: %d\r\n" % len(body),
            b"" if keep_alive else b"connection: close\r\n", b"\r\n", body]))
        if not keep_alive:
            self.transport.close()
        self.on_response_complete()  # counts the request, arms the keep-alive timeout
