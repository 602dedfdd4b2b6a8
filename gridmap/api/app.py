"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Engine
from starlette.types import Receive, Scope, Send

from gridmap import __version__
from gridmap.access import AuditLog, Sessions, public_principal
from gridmap.api import (
    docs,
    errors,
    pages,
    routes_auth,
    routes_check,
    routes_coverage,
    routes_drafts,
    routes_emergency,
    routes_features,
    routes_health,
    routes_incident_stats,
    routes_incidents,
    routes_live,
    routes_locate,
    routes_ogc,
    routes_open311,
    routes_plans,
    routes_tiles,
    schemas,
)
from gridmap.api.locator import Locator
from gridmap.api.security import SecurityHeaders
from gridmap.domain.incidents import load_categories
from gridmap.drafts import DraftCache
from gridmap.incidents import OverdueJob, Workflow
from gridmap.places import PlaceIndex
from gridmap.reports import ReportCache, ReportPool, Reports
from gridmap.settings import Settings, get_settings
from gridmap.store.db import check_pooled, libpq_dsn
from gridmap.store.incidents import INTAKE_CONNECTION
from gridmap.store.listen import ChangeHub
from gridmap.store.photos import PhotoFiles
from gridmap.tiles.mvt import TileCache
from gridmap.tiles.store import SharedTiles, store_path

# how long a thread may keep the GIL while another waits for it (see the lifespan)
SWITCH_INTERVAL_S = 0.0005


class Gridmap(FastAPI):
    """The app: FastAPI with a plain locate answered first
    (:func:`~gridmap.api.routes_locate.answer_fast`), before the framework's telemetry check,
    error middleware and the middlewares — each a cost on the dispatchers' hot path."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/api/locate" \
                and scope["method"] == "GET":
            scope["app"] = self  # as Starlette sets it
            if await routes_locate.answer_fast(scope, send):
                return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings, *, engine: Engine | None = None) -> FastAPI:
    """Build the app. The lifespan opens (or adopts) the engine and disposes of it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if engine is None:
            from gridmap.store.db import open_database

            app.state.engine = open_database(settings)
        else:
            app.state.engine = engine
        url = app.state.engine.url.render_as_string(hide_password=False)
        app.state.changes = ChangeHub(url)
        app.state.sessions = Sessions(app.state.engine, settings)
        app.state.audit = AuditLog(app.state.engine)
        # bound to this app's event loop (a module-level one would be shared between apps)
        app.state.intake = asyncio.Semaphore(routes_incidents.INTAKE_SLOTS)
        # reports without photos: a prepared statement on the event loop (see incidents);
        # a report waits its turn under load (a tile gives up after 3 s, a report after 15)
        app.state.intake_pool = AsyncConnectionPool(
            libpq_dsn(url), min_size=routes_incidents.INTAKE_SLOTS,
            max_size=routes_incidents.INTAKE_SLOTS, open=False,
            kwargs=INTAKE_CONNECTION, timeout=15,
            check=check_pooled)
        await app.state.intake_pool.open()
        app.state.overdue = OverdueJob(app.state.engine, interval=settings.overdue_interval_s,
                                       warn_minutes=settings.overdue_warn_minutes,
                                       tz=settings.time_zone)
        app.state.overdue.start()
        app.state.locator = Locator(app.state.engine, margin_m=settings.locate_margin_m)
        app.state.places = PlaceIndex(app.state.engine)
        dsn = libpq_dsn(url)
        app.state.tiles = TileCache(dsn, settings.standard,
                                    max_tiles=settings.tile_cache_tiles,
                                    connections=settings.tile_connections,
                                    shared=SharedTiles(store_path(settings.data_dir, dsn)))
        await app.state.tiles.open()
        # heavy reports run in worker processes of their own, kept until the data changes
        app.state.reports = Reports(
            ReportPool(url, workers=settings.report_workers,
                       timeout_s=settings.report_timeout_s),
            ReportCache(max_bytes=int(settings.report_cache_mb * 1e6)))
        app.state.reports.pool.start()
        # The start-up heap (libraries, the locate index: ~270k objects) never becomes
        # garbage; freezing it keeps full collections from pausing requests for ~100 ms.
        gc.collect()
        gc.freeze()
        # Threads beside the event loop (the audit writer's COPY, the tile cache's eviction,
        # the change listener) hold the GIL for up to the switch interval before the loop
        # may take it back: 5 ms by default, a request's whole budget. 0.5 ms bounds the wait.
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        # each is told of every change; one that fails holds up none of the others
        app.state.changes.subscribe(app.state.locator.apply, name="the locate index")
        app.state.changes.subscribe(app.state.tiles.apply, name="the tile cache")
        app.state.changes.subscribe(app.state.sessions.apply, name="the session cache")
        app.state.changes.subscribe(app.state.places.apply, name="the place names")
        app.state.changes.subscribe(app.state.drafts.apply, name="the drafts' households")
        app.state.changes.subscribe(app.state.reports.cache.apply, name="the report cache")
        # last: a page hears of a change after the caches above have taken it in
        app.state.live = routes_live.Feed()
        app.state.live.start(app.state.changes)
        yield
        await app.state.live.stop()
        app.state.overdue.stop()
        app.state.reports.close()
        app.state.audit.close()
        await app.state.tiles.close()
        await app.state.intake_pool.close()
        app.state.changes.close()
        app.state.engine.dispose()

    app = Gridmap(title="gridmap", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None,
                  description="Grid-based community governance: divisions, grids, households, "
                  "facilities and incidents.")
    app.state.settings = settings
    app.state.public = public_principal(settings)
    app.state.drafts = DraftCache()
    app.state.workflow = Workflow(load_categories(settings.incident_categories),
                                  settings.work_calendar(), PhotoFiles(settings.photo_folder()))
    errors.install(app)
    routes_health.install(app)  # a lost database connection: 503 with Retry-After
    # the hot paths first: a request is matched against the routes in order
    app.include_router(routes_locate.router)
    app.include_router(routes_tiles.router)
    app.include_router(routes_auth.router)
    # before the incidents router: its /api/incidents/{incident_id} would take "kpis"
    app.include_router(routes_incident_stats.router)
    app.include_router(routes_live.router)  # before /api/incidents/{incident_id} too
    app.include_router(routes_incidents.router)
    app.include_router(routes_features.router)
    app.include_router(routes_check.router)
    app.include_router(routes_plans.router)
    app.include_router(routes_drafts.router)
    app.include_router(routes_coverage.router)
    app.include_router(routes_ogc.router)
    app.include_router(routes_open311.router)
    app.include_router(routes_health.router)
    app.include_router(routes_emergency.router)
    app.include_router(pages.router)
    docs.install(app)
    errors.document(app)  # the errors common to every route, in the OpenAPI
    schemas.document(app)  # the models of answers in a second media type (GeoJSON)
    routes_incidents.document_categories(app)  # the category codes, as loaded
    pages.mount_assets(app)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_credentials=False, allow_methods=["GET", "POST", "PATCH"],
                           allow_headers=["Authorization", "Content-Type"])
    # cached tiles are answered before the framework, inside the security headers (plain
    # locates before that: Gridmap.__call__)
    app.add_middleware(routes_tiles.CachedTiles)
    app.add_middleware(SecurityHeaders)
    return app


def app_from_environment() -> FastAPI:
    """The app with settings from the environment: the factory each worker process calls
    (``gridmap serve --workers N``; ``uvicorn --factory gridmap.api.app:app_from_environment``).
    Every process keeps its own locate index and tile cache, each following the database's
    change notices, so any process answers the request after a change with the change; the
    processes share the tiles they render (:mod:`gridmap.tiles.store`)."""
    return create_app(get_settings())
