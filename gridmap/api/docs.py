"""The API documentation page (Swagger UI) with its assets from npm, served locally:
``/docs`` works offline, and its Authorize button signs in with /auth/token."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

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
    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=str(app.openapi_url), title=f"{app.title} — API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
            swagger_ui_parameters={"persistAuthorization": True})

