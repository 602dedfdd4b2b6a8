"""The API documentation page (Swagger UI) with its assets from npm, served locally:
``/docs`` works offline, and its Authorize button signs in with /auth/token. The page
declares the caller's language and its title is in it (Swagger UI's own controls have no
translations: they stay English)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from gridmap import i18n
from gridmap.api.errors import language_of
from gridmap.api.pages import NODE_MODULES

SWAGGER = NODE_MODULES / "swagger-ui-dist"
ASSETS = "/static/vendor/swagger-ui"


def install(app: FastAPI) -> None:
    """Add /docs (the app is made with ``docs_url=None``); call before the catch-all /static
    mount."""
    if not SWAGGER.exists():
        raise RuntimeError(f"front-end assets are missing ({SWAGGER}): run `make setup`")
    app.mount(ASSETS, StaticFiles(directory=SWAGGER), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    def swagger(request: Request) -> HTMLResponse:
        language = language_of(request)
        page = get_swagger_ui_html(
            openapi_url=str(app.openapi_url),
            title=i18n.gettext("{title} — API documentation", language, title=app.title),
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
            swagger_ui_parameters={"persistAuthorization": True})
        html = bytes(page.body).decode().replace("<html>", f'<html lang="{language}">', 1)
        return HTMLResponse(html, headers={"Content-Language": language})

