"""Security headers on every answer (a pure ASGI middleware: no per-request task or copy)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

COMMON = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"),
          (b"x-frame-options", b"DENY")]
# gridmap's own pages run no inline script; MapLibre draws in blob: workers
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data: blob:; worker-src 'self' blob:; child-src blob:; "
            "connect-src 'self'; font-src 'self' data:; frame-ancestors 'none'; "
            "base-uri 'self'; form-action 'self'")
# folium pages and the API docs are built with inline scripts
INLINE_CSP = PAGE_CSP.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'")
# encoded once: every answer carries them
PAGE_HEADERS = [*COMMON, (b"content-security-policy", PAGE_CSP.encode())]
INLINE_HEADERS = [*COMMON, (b"content-security-policy", INLINE_CSP.encode())]


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        extra = INLINE_HEADERS if path.startswith(("/maps/", "/docs")) else PAGE_HEADERS

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)
