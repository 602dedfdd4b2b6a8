"""Shared test helpers: a fingerprint of the whole store, to prove a failed import changed
nothing, and a CLI runner bound to one database."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner, Result

from gridmap.cli import app

TABLES = ("division", "grid", "grid_version", "grid_history", "grid_worker", "household",
          "facility", "incident", "building", "street_edge")


def fingerprint(url: str) -> dict[str, Any]:
    """Row count and an md5 of every row of every table."""
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        out = {}
        for table in TABLES:
            out[table] = conn.execute(text(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"
                f" FROM {table} t")).one()
    engine.dispose()
    return out


def token_for(url: str, name: str, role: str = "admin",
              divisions: tuple[str, ...] = ()) -> str:
    """An account (made unless it exists) and a fresh access token for it."""
    from gridmap import access
    from gridmap.settings import Settings
    from gridmap.store import accounts

    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as conn:
        user = accounts.find_user(conn, name) or access.add_user(
            conn, name, role, divisions, "correct horse battery", actor=access.CLI)
        token = access.issue_token(conn, user, Settings(database_url=url), "test").token
    engine.dispose()
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def run_cli(url: str, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env={"GRIDMAP_DATABASE_URL": url, **(env or {})},
                              catch_exceptions=False)


def import_layer(url: str, layer: str, path: Any = None, *args: str) -> Result:
    """Import a demo layer (or the file *path*) through the CLI, as loading data does: grids
    are published (``--publish``), where a planner's import stops at drafts."""
    from gridmap.demodata import DEMO_DIR, DEMO_FILES

    file = path if path is not None else DEMO_DIR / DEMO_FILES[layer]
    return run_cli(url, "import", layer, str(file),
                   *(("--publish",) if layer == "grids" else ()), *args)


def neighbours_in_community(grids: Any, nth: int) -> tuple[Any, Any]:
    """The *nth* comprehensive grid and one grid of its community that shares an edge."""
    comp = grids[grids["kind"] == "comprehensive"]
    a = comp.iloc[nth]
    b = comp[comp.geometry.touches(a.geometry) & (comp["code"].str[:12] == a["code"][:12])]
    return a, b.iloc[0]


def import_merged(url: str, grids: Any, keep: Any, drop: Any, path: Any) -> Result:
    """Redraw: merge grid *drop* into *keep* (its code retires) and import the result."""
    import shapely

    merged = grids.drop(index=drop.name)
    merged.loc[keep.name, "geometry"] = shapely.MultiPolygon(shapely.get_parts(
        shapely.coverage_union_all([keep.geometry, drop.geometry])))
    merged.loc[merged["parent_grid_code"] == drop["code"], "parent_grid_code"] = keep["code"]
    merged.to_file(path)
    return run_cli(url, "import", "grids", str(path), "--replace", "--publish")


def wait_for_notice(app: Any, timeout: float = 5.0) -> None:
    """Until the server's listening connection has a change notice to read. A commit returns
    before another PostgreSQL process sends the notice; the request after it arrives must see
    the change (a test that does not wait races the notice)."""
    import select

    conn = app.state.changes.listener._conn
    assert conn is not None, "the server's listener is not connected"
    assert select.select([conn.fileno()], [], [], timeout)[0], f"no notice within {timeout} s"


def size_check(where: str, controls: str) -> str:
    """A page script (for ``page.evaluate``) listing what breaks the elderly-friendly sizes
    in the elements matching *where*: visible text under 16 px (``small``), controls
    matching *controls* under 44 px high (``low``), and whether the page scrolls sideways.
    Drawings (SVG charts) are left out: their labels are sized with the drawing."""
    return """() => {
  const small = [], low = [];
  for (const e of document.querySelectorAll(WHERE)) {
    const box = e.getBoundingClientRect();
    if (!box.width || !box.height || e.closest('svg')) continue;
    const text = [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (text && parseFloat(getComputedStyle(e).fontSize) < 16)
      small.push(`${e.tagName}.${e.className}`);
    if (e.matches(CONTROLS) && box.height < 44)
      low.push(`${e.tagName}#${e.id}.${e.className} ${box.height}`);
  }
  const root = document.documentElement;
  return {small, low, scrolls: root.scrollWidth > root.clientWidth};
}""".replace("WHERE", json.dumps(where)).replace("CONTROLS", json.dumps(controls))


def inside_grid(code: str) -> tuple[float, float]:
    """(lon, lat) of a point of the demo grid *code*, some 50 m from its edges: a report
    there is routed to that grid and no other."""
    import geopandas as gpd

    from gridmap.demodata import DEMO_DIR, DEMO_FILES

    grids = gpd.read_file(DEMO_DIR / DEMO_FILES["grids"]).set_index("code")
    inside = grids.loc[code].geometry.buffer(-0.0005).representative_point()
    return inside.x, inside.y


def demo_area(layer: str, *prefixes: str) -> Any:
    """The union (lon/lat) of the demo *layer*'s features whose code starts with one of
    *prefixes*: a community, a few, or a township's grids."""
    import geopandas as gpd

    from gridmap.demodata import DEMO_DIR, DEMO_FILES

    frame = gpd.read_file(DEMO_DIR / DEMO_FILES[layer])
    return frame[frame["code"].str.startswith(prefixes)].union_all()


def demo_households_within(area: Any, folder: Path) -> Path:
    """The demo's households inside *area*, as a file to import in their stead (a small
    district's households load and assign in a fraction of the time)."""
    import geopandas as gpd

    from gridmap.demodata import DEMO_DIR, DEMO_FILES

    path = folder / "households.parquet"
    households = gpd.read_parquet(DEMO_DIR / DEMO_FILES["households"])
    households[households.within(area)].to_parquet(path)
    return path


def assigned_district(server_url: str, template_db: str, area: Any, folder: Path
                      ) -> Iterator[str]:
    """A database of its own holding the demo's divisions, grids and workers and its
    households inside *area*, assigned to grids (what drafts and the editor work on)."""
    from tests.conftest import loaded_database

    households = demo_households_within(area, folder)
    yield from loaded_database(server_url, template_db, (
            "counties", "townships", "communities", "grids", "workers", "households"),
            {"households": households})


class _Chromium:
    """One Playwright driver and one headless chromium for the whole session, started by the
    first page test: each page gets a browser context of its own (its own cookies, storage,
    cache, viewport, touch and locale — what a browser started for it would give), without
    the seconds a driver and a browser take to start.

    The sync API marks its event loop as running in this thread while it is in use; between
    uses the mark is taken off (and put back before the next use), so that the tests that
    run in between may start event loops of their own (``asyncio.run``, nbclient)."""

    def __init__(self) -> None:
        self.playwright: Any = None
        self.browser: Any = None
        self.loop: Any = None
        self.depth = 0  # contexts open

    @contextmanager
    def context(self, executable: str, args: list[str], **options: Any) -> Iterator[Any]:
        """A new browser context with *options* (``Browser.new_context``), closed after."""
        import asyncio

        if self.depth == 0 and self.loop is not None:
            asyncio._set_running_loop(self.loop)  # as the sync API left it
        self.depth += 1
        try:
            if self.browser is None or not self.browser.is_connected():
                self._start(executable, args)
            context = self.browser.new_context(**options)
            try:
                yield context
            finally:
                context.close()
        finally:
            self.depth -= 1
            if self.depth == 0:
                asyncio._set_running_loop(None)

    def _start(self, executable: str, args: list[str]) -> None:
        import asyncio

        from playwright.sync_api import sync_playwright

        self.close()
        self.playwright = sync_playwright().start()
        self.loop = asyncio.get_running_loop()
        self.browser = self.playwright.chromium.launch(executable_path=executable, args=args)

    def close(self) -> None:
        """Stop the browser and the driver (at the end of the session)."""
        import asyncio

        playwright, self.playwright, self.browser = self.playwright, None, None
        if playwright is not None:
            asyncio._set_running_loop(self.loop)
            playwright.stop()  # closes the browser; the loop is closed and unmarked
        self.loop = None


chromium = _Chromium()


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    """(z, x, y) of the web-mercator tile holding a point."""
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


def migrate(url: str, direction: str, revision: str) -> None:
    """Alembic ``upgrade``/``downgrade`` of the database at *url* to *revision*."""
    from alembic import command

    from gridmap.store.db import alembic_config

    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            getattr(command, direction)(cfg, revision)
    finally:
        engine.dispose()


@contextmanager
def database_at(server_url: str, revision: str, prefix: str) -> Iterator[str]:
    """A database of its own (named *prefix* and a random suffix, dropped after) migrated to
    *revision*: the state a migration test starts from."""
    import uuid

    from pytest_postgresql.janitor import DatabaseJanitor
    from sqlalchemy import make_url

    url = make_url(server_url)
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with DatabaseJanitor(user=url.username or "postgres", host=url.host or "127.0.0.1",
                         port=url.port or 5432, password=url.password, dbname=name):
        db = url.set(database=name).render_as_string(hide_password=False)
        migrate(db, "upgrade", revision)
        yield db
