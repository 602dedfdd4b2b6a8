"""Shared test helpers: a fingerprint of the whole store, to prove a failed import changed
nothing, and a CLI runner bound to one database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner, Result

from gridmap.cli import app

TABLES = ("division", "grid", "grid_version", "grid_history", "grid_worker", "household",
          "facility", "incident")


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


def run_cli(url: str, *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"GRIDMAP_DATABASE_URL": url},
                              catch_exceptions=False)
