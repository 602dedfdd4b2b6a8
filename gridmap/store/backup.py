"""Backups of the database: ``pg_dump --format=custom``, and ``pg_restore``'s script run by
``psql``.

A restore goes into an empty database (one holding no rows in gridmap's tables: a new one,
or one just migrated) and refuses a non-empty one unless forced. It runs in one transaction:
a failure leaves the database as it was.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy import make_url

from gridmap.store.cluster import ClusterError, find_postgres
from gridmap.store.db import libpq_dsn

# the tables whose rows are not the user's data
NOT_DATA = frozenset({"alembic_version", "spatial_ref_sys"})
# Run first in a restore's transaction: the partitioned tables (households by county) go
# whole, partitions with them. pg_restore's --clean drops a partition's key on its own, which
# PostgreSQL refuses ("cannot drop inherited constraint") while the parent's stands.
DROP_PARTITIONED = """DO $$
DECLARE
    t text;
BEGIN
    FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind = 'p' AND NOT c.relispartition LOOP
        EXECUTE format('DROP TABLE public.%I', t);
    END LOOP;
END $$;
"""


class BackupError(Exception):
    """A backup or restore that failed or was refused; the message says why."""


def _tool(name: str) -> str:
    try:
        candidate = find_postgres().bindir / name
        if candidate.exists():
            return str(candidate)
    except ClusterError:
        pass
    found = shutil.which(name)
    if not found:
        raise BackupError(f"{name} is not installed: install the PostgreSQL client "
                          "(apt-get install postgresql-client)")
    return found


def _run(database_url: str, tool: str, *args: str) -> None:
    """Run *tool* against the database; the password goes in the environment, never on the
    command line."""
    url = make_url(database_url)
    env = {**os.environ}
    if url.password:
        env["PGPASSWORD"] = url.password
    dsn = libpq_dsn(url.set(password=None).render_as_string(hide_password=False))
    res = subprocess.run([_tool(tool), f"--dbname={dsn}", *args], capture_output=True,
                         text=True, env=env)
    if res.returncode:
        raise BackupError(f"{tool} failed: {(res.stderr or res.stdout).strip()}")


def data_rows(database_url: str) -> dict[str, int]:
    """Tables of the public schema that hold rows, and how many."""
    with psycopg.connect(libpq_dsn(database_url)) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
            "ORDER BY 1")]  # a partitioned table counts its partitions' rows
        counts = {}
        for table in tables:
            if table in NOT_DATA:
                continue
            n = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
                sql.Identifier(table))).fetchone()
            if n and n[0]:
                counts[table] = int(n[0])
    return counts


def backup(database_url: str, path: Path) -> None:
    """Write the whole database to *path* (pg_dump's custom format)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _run(database_url, "pg_dump", "--format=custom", "--no-owner", f"--file={path}")


def restore(database_url: str, path: Path, *, force: bool = False) -> None:
    """Restore *path* into the database, replacing its schema. Refuses a database holding
    rows in any table unless *force* (what it holds is then replaced)."""
    if not path.is_file():
        raise BackupError(f"no backup file {path}")
    held = data_rows(database_url)
    if held and not force:
        shown = ", ".join(f"{table} ({n:,})" for table, n in sorted(held.items())[:6])
        raise BackupError(f"the database is not empty ({shown}{', …' if len(held) > 6 else ''}):"
                          " restore into a new database, or add --force to replace what it "
                          "holds")
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "restore.sql"
        res = subprocess.run([_tool("pg_restore"), "--clean", "--if-exists", "--no-owner",
                              f"--file={script}", str(path)], capture_output=True, text=True)
        if res.returncode:
            raise BackupError(f"pg_restore failed: {(res.stderr or res.stdout).strip()}")
        first = Path(tmp) / "partitioned.sql"
        first.write_text(DROP_PARTITIONED, encoding="utf-8")
        # one transaction (BEGIN before the first file, COMMIT after the last), stopped by
        # the first error: a failed restore leaves the database as it was
        _run(database_url, "psql", "--no-psqlrc", "--quiet", "--single-transaction",
             "--set=ON_ERROR_STOP=1", f"--file={first}", f"--file={script}")
