"""Test fixtures: a real PostGIS, a database created for the session from the migrations.

The server is the one ``GRIDMAP_DATABASE_URL`` names, or else gridmap's own local cluster
(started if needed, exactly as the CLI does). A template database is migrated once with
``alembic upgrade head``; the session database and every ``fresh_db`` are copies of it.
Library tests run in a transaction that is rolled back. In CI a skipped test fails the run.
"""

from __future__ import annotations

import itertools
import os
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pytest_postgresql.janitor import DatabaseJanitor
from sqlalchemy import Engine, create_engine, make_url
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from gridmap.settings import Settings
from gridmap.store.cluster import LocalCluster
from gridmap.store.db import migrate

# The suite's servers and CLI answer in English (their messages are what the tests read);
# the Chinese default is tested where the language is the point (tests/test_i18n.py,
# tests/api/test_browser.py), by asking for it.
os.environ.setdefault("GRIDMAP_LANGUAGE", "en")

_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    helpers = sys.modules.get("tests.helpers")
    if helpers is not None:
        helpers.chromium.close()  # the page tests' browser, if they ran
    if os.environ.get("CI") and _skipped:
        print(f"\nCI: {len(_skipped)} skipped test(s) count as failures: {_skipped[:5]}")
        session.exitstatus = 1


@pytest.fixture(scope="session")
def server_url() -> str:
    settings = Settings()
    if settings.database_url:
        return settings.database_url
    cluster = LocalCluster(settings)
    cluster.start()
    return cluster.url("postgres")


def _janitor(server_url: str, dbname: str, **kwargs: object) -> DatabaseJanitor:
    url = make_url(server_url)
    return DatabaseJanitor(user=url.username or "postgres", host=url.host or "127.0.0.1",
                           port=url.port or 5432, password=url.password, dbname=dbname,
                           **kwargs)  # type: ignore[arg-type]


def _url(server_url: str, dbname: str) -> str:
    return make_url(server_url).set(database=dbname).render_as_string(hide_password=False)


# template databases holding demo layers imported through the CLI, by the migrated template
# they were copied from and the layers (in order): see loaded_database
_LOADED: dict[str, dict[tuple[str, ...], DatabaseJanitor]] = {}


@pytest.fixture(scope="session")
def template_db(server_url: str) -> Iterator[str]:
    name = f"gridmap_tmpl_{uuid.uuid4().hex[:8]}"
    with _janitor(server_url, name, as_template=True):
        engine = create_engine(_url(server_url, name), poolclass=NullPool)
        with engine.begin() as conn:
            migrate(conn)
        engine.dispose()
        yield name
        for janitor in reversed(list(_LOADED.pop(name, {}).values())):  # copies of it
            janitor.drop()


def _fresh(server_url: str, template_db: str) -> Iterator[str]:
    name = f"gridmap_test_{uuid.uuid4().hex[:10]}"
    with _janitor(server_url, name, template_dbname=template_db):
        yield _url(server_url, name)


@pytest.fixture(scope="session")
def db_url(server_url: str, template_db: str) -> Iterator[str]:
    yield from _fresh(server_url, template_db)


@pytest.fixture
def fresh_db(server_url: str, template_db: str) -> Iterator[str]:
    """A database of its own (for CLI tests that commit)."""
    yield from _fresh(server_url, template_db)


@pytest.fixture(scope="session")
def engine(db_url: str) -> Iterator[Engine]:
    eng = create_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def conn(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that is rolled back after the test."""
    with engine.connect() as connection:
        trans = connection.begin()
        yield connection
        trans.rollback()


@pytest.fixture(scope="session")
def demo_db(server_url: str, template_db: str) -> Iterator[str]:
    """A database with the whole demo district loaded, as `gridmap load-demo` does."""
    from gridmap.demodata import load_demo_files

    for url in _fresh(server_url, template_db):
        eng = create_engine(url, poolclass=NullPool)
        list(load_demo_files(eng))
        eng.dispose()
        yield url


def copy_of(server_url: str, url: str) -> Iterator[str]:
    """A database of its own copied from the one at *url* (which nobody may be using at that
    moment), dropped afterwards: for a test that writes into the demo."""
    yield from _fresh(server_url, make_url(url).database or "")


def serve_in_thread(database_url: str, **settings: Any) -> Iterator[str]:
    """gridmap's app on a free loopback port, in a thread; yields its base URL. *settings*
    override the defaults (e.g. ``photo_dir``)."""
    import socket
    import threading
    import time

    import uvicorn

    from gridmap.api.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(Settings(database_url=database_url, **settings))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def _import(url: str, layers: tuple[str, ...], files: dict[str, object]) -> None:
    from gridmap.demodata import DEMO_DIR, DEMO_FILES
    from tests.helpers import import_layer

    for layer in layers:
        path = files.get(layer, DEMO_DIR / DEMO_FILES[layer])
        result = import_layer(url, layer, path)
        assert result.exit_code == 0, result.output


def _loaded_template(server_url: str, template_db: str, layers: tuple[str, ...]) -> str:
    """A template database holding the demo's *layers* imported through the CLI, made once
    per session: a copy of the longest run of them already made, with the rest imported.
    The boundaries up to the grids, which most callers start with, are kept on their own."""
    made = _LOADED.setdefault(template_db, {})
    if layers not in made:
        if "grids" in layers[:-1]:
            _loaded_template(server_url, template_db, layers[:layers.index("grids") + 1])
        done = max((k for k in made if layers[:len(k)] == k), key=len, default=())
        name = f"gridmap_tmpl_{uuid.uuid4().hex[:8]}"
        janitor = _janitor(server_url, name, as_template=True,
                           template_dbname=made[done].dbname if done else template_db)
        janitor.init()
        try:
            _import(_url(server_url, name), layers[len(done):], {})
        except BaseException:
            janitor.drop()
            raise
        made[layers] = janitor  # dropped with template_db
    return made[layers].dbname


def loaded_database(server_url: str, template_db: str, layers: tuple[str, ...],
                    files: dict[str, object] | None = None) -> Iterator[str]:
    """A database of its own with demo *layers* imported through the CLI (a file per layer
    from *files* instead of the demo's, where given). The layers before the first one from
    *files* are imported once per session into a template, which each caller copies."""
    files = files or {}
    demo = tuple(itertools.takewhile(lambda layer: layer not in files, layers))
    source = _loaded_template(server_url, template_db, demo) if demo else template_db
    for url in _fresh(server_url, source):
        _import(url, layers[len(demo):], files)
        yield url


@pytest.fixture(scope="module")
def photo_server(grids_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """gridmap served over the module's grids database, with a photo folder of its own (the
    pages that file reports and steps with photos)."""
    yield from serve_in_thread(grids_db, photo_dir=tmp_path_factory.mktemp("photos"))


@pytest.fixture(scope="module")
def grids_db(server_url: str, template_db: str) -> Iterator[str]:
    """A database of the test module's own holding the demo's divisions, grids and workers
    (enough to locate; tests may redraw in it)."""
    yield from loaded_database(server_url, template_db, (
        "counties", "townships", "communities", "grids", "workers"))
