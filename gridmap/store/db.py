"""Engines, database creation and migrations."""

from __future__ import annotations

import select
from importlib.resources import files
from typing import Any

import psycopg
from alembic import command
from alembic.config import Config
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.engine import Connection

from gridmap.settings import Settings
from gridmap.store.cluster import ClusterError, LocalCluster


async def check_pooled(conn: psycopg.AsyncConnection[Any]) -> None:
    """The check of a pooled connection before use, without a round trip when nothing
    says it is broken.

    An idle connection has nothing to read: a server that shut down or ended the session
    wrote its last message and closed the socket, which then reads as ready. Only then is
    the connection pinged (psycopg_pool's check, which raises if it is dead and the pool
    takes another). Pinging every checkout cost a round trip and ~0.2 ms of the event
    loop per report. A connection cut silently (no FIN) fails on use instead, as it would
    between a ping and the query.
    """
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("the connection is closed")
    socket = select.poll()  # not select(): a server past 1,024 open files has fds beyond it
    socket.register(conn.fileno(), select.POLLIN)
    if socket.poll(0):
        await AsyncConnectionPool.check_connection(conn)


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(files("gridmap.store").joinpath("migrations")))
    return cfg


def migrate(conn: Connection) -> None:
    """Bring the schema to the newest migration (``alembic upgrade head``) on *conn*."""
    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")


def current_revision(conn: Connection) -> str | None:
    exists = conn.execute(text("SELECT to_regclass('alembic_version') IS NOT NULL")).scalar()
    if not exists:
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def libpq_dsn(database_url: str, *, database: str | None = None) -> str:
    """The SQLAlchemy URL as a libpq connection string for psycopg (optionally another
    database on the same server)."""
    url = make_url(database_url).set(drivername="postgresql")
    if database:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


def create_database(server_url: str, dbname: str, *, template: str | None = None) -> bool:
    """Create *dbname* on the server of *server_url* unless it exists; True if created."""
    with psycopg.connect(libpq_dsn(server_url, database="postgres"), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone():
            return False
        query = psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(dbname))
        if template:
            query += psycopg.sql.SQL(" TEMPLATE {}").format(psycopg.sql.Identifier(template))
        conn.execute(query)
        return True


def drop_database(server_url: str, dbname: str) -> None:
    with psycopg.connect(libpq_dsn(server_url, database="postgres"), autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            psycopg.sql.Identifier(dbname)))


def database_url(settings: Settings) -> str:
    """The URL to use: the configured one, or the local cluster's (started if needed)."""
    if settings.database_url:
        return settings.database_url
    cluster = LocalCluster(settings)
    cluster.start()
    url = cluster.url(settings.local_db_name)
    create_database(url, settings.local_db_name)
    return url


def make_engine(url: str) -> Engine:
    # an unreachable host fails in 5 s instead of the operating system's TCP timeout
    return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 5})


def open_database(settings: Settings) -> Engine:
    """Engine on a migrated database: starts the local cluster when none is configured."""
    engine = make_engine(database_url(settings))
    try:
        with engine.begin() as conn:
            migrate(conn)
    except Exception as exc:
        if "postgis" in str(exc).lower() and "extension" in str(exc).lower():
            raise ClusterError(
                f"PostGIS is not available in the database {engine.url.database!r}: "
                "install postgresql-<version>-postgis-3 on its server "
                f"(database error: {str(exc).splitlines()[0]})"
            ) from exc
        raise
    return engine
