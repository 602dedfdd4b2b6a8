"""Web pages, and the front-end assets installed from npm (served locally, never a CDN).

Each page is a Jinja2 template under ``web/templates`` that extends ``page.html``, the one
source of what every page's head and script tags hold; the pages are rendered from the
templates alone (nothing of the request goes into them)."""

from __future__ import annotations

from pathlib import Path

import jinja2
from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from gridmap.settings import PROJECT_ROOT

WEB = Path(__file__).resolve().parent / "web"
NODE_MODULES = PROJECT_ROOT / "web" / "node_modules"  # npm ci --prefix web (make setup)
VENDOR = NODE_MODULES / "maplibre-gl" / "dist"
LEAFLET = NODE_MODULES / "leaflet" / "dist"
TERRA_DRAW = NODE_MODULES / "terra-draw" / "dist"  # drawing on the editor's map
TERRA_DRAW_MAPLIBRE = NODE_MODULES / "terra-draw-maplibre-gl-adapter" / "dist"

router = APIRouter(include_in_schema=False)
TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(WEB / "templates"), autoescape=True,
    undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    keep_trailing_newline=True)


def mount_assets(app: FastAPI) -> None:
    if not all(d.exists() for d in (VENDOR, LEAFLET, TERRA_DRAW, TERRA_DRAW_MAPLIBRE)):
        raise RuntimeError(f"front-end assets are missing ({NODE_MODULES}): run `make setup` "
                           f"(or `npm ci --prefix {NODE_MODULES.parent}`)")
    app.mount("/static/vendor/maplibre-gl", StaticFiles(directory=VENDOR), name="maplibre")
    app.mount("/static/vendor/leaflet", StaticFiles(directory=LEAFLET), name="leaflet")
    app.mount("/static/vendor/terra-draw", StaticFiles(directory=TERRA_DRAW), name="terra-draw")
    app.mount("/static/vendor/terra-draw-maplibre", StaticFiles(directory=TERRA_DRAW_MAPLIBRE),
              name="terra-draw-maplibre")
    app.mount("/static", StaticFiles(directory=WEB / "static"), name="static")


@router.get("/favicon.ico")
def favicon() -> Response:
    return Response(status_code=204)


def _page(name: str) -> HTMLResponse:
    return HTMLResponse(TEMPLATES.get_template(name).render())


@router.get("/", response_class=HTMLResponse)
def home() -> HTMLResponse:
    """The map: what it draws follows what the caller may read (GET /auth/me)."""
    return _page("index.html")


@router.get("/login", response_class=HTMLResponse)
def login() -> HTMLResponse:
    """The sign-in page: posts to /auth/session, then goes on to ``?next=`` (a path of
    this site only; the page's script checks it) or to the map."""
    return _page("login.html")


@router.get("/dispatch", response_class=HTMLResponse)
def dispatch() -> HTMLResponse:
    """The dispatcher's desk: the incident queue, a case with its timeline and next steps,
    intake and a map of the cases, kept current by ``GET /api/incidents/live``."""
    return _page("dispatch.html")


@router.get("/mine", response_class=HTMLResponse)
def mine() -> HTMLResponse:
    """The grid worker's phone page: my grid's open cases on a list and a small map, accept,
    feed back with a note and a photo, report at my position."""
    return _page("mine.html")


@router.get("/stats", response_class=HTMLResponse)
def stats() -> HTMLResponse:
    """Indicators (KPIs) per grid, worker, community, township or category, with charts, and
    the hotspot map (GET /api/incidents/kpis, /api/incidents/hotspots)."""
    return _page("stats.html")


@router.get("/editor", response_class=HTMLResponse)
def editor() -> HTMLResponse:
    """The planner's editor: a community's draft on a map (split, merge, move a shared
    vertex, paint, lock), its live statistics and defects, undo and redo, submit, approve
    and publish, the difference from the published grids, the history and restore
    (``/api/drafts``, ``/api/communities/{community}/versions|diff|restore``)."""
    return _page("editor.html")
