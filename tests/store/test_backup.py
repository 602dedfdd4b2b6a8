"""`gridmap db backup` and `gridmap db restore` (issue 12): a backup restored into a fresh
database holds every row of every table; a database holding rows is not overwritten
unless forced."""

from __future__ import annotations

from pathlib import Path

import psycopg
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from gridmap.store.backup import data_rows
from gridmap.store.db import libpq_dsn
from tests.helpers import fingerprint, run_cli


def _all_tables(url: str) -> dict[str, tuple[int, str]]:
    """Count and md5 of the rows of every table of the public schema."""
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        names = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = "
                                  "'public' ORDER BY tablename")).scalars().all()
        out = {name: tuple(conn.execute(text(
            f'SELECT count(*), md5(coalesce(string_agg(t::text, \'|\' ORDER BY t::text), \'\'))'
            f' FROM "{name}" t')).one()) for name in names}
    engine.dispose()
    return out


def test_a_backup_restores_every_row_into_a_fresh_database(
        grids_db: str, fresh_db: str, tmp_path: Path) -> None:
    with psycopg.connect(libpq_dsn(grids_db), autocommit=True) as conn:  # awkward text too
        conn.execute("UPDATE grid SET name = name || ' ''引号'' & 空格' WHERE code = "
                     "(SELECT min(code) FROM grid)")
    before = _all_tables(grids_db)
    assert before["grid"][0] == 295 and before["division"][0] > 0
    file = tmp_path / "gridmap.dump"
    result = run_cli(grids_db, "db", "backup", str(file))
    assert result.exit_code == 0, result.output
    assert file.stat().st_size > 0

    assert not data_rows(fresh_db)  # migrated, no rows
    result = run_cli(fresh_db, "db", "restore", str(file))
    assert result.exit_code == 0, result.output
    assert _all_tables(fresh_db) == before
    assert fingerprint(fresh_db) == fingerprint(grids_db)

    # again into the database that now holds rows: refused, nothing changed
    result = run_cli(fresh_db, "db", "restore", str(file))
    assert result.exit_code != 0
    assert "not empty" in result.output and "--force" in result.output
    assert _all_tables(fresh_db) == before
    # forced: replaced by the backup's rows (the same here), still every row once
    result = run_cli(fresh_db, "db", "restore", "--force", str(file))
    assert result.exit_code == 0, result.output
    assert _all_tables(fresh_db) == before


def test_restore_of_a_missing_file_says_so(fresh_db: str, tmp_path: Path) -> None:
    result = run_cli(fresh_db, "db", "restore", str(tmp_path / "none.dump"))
    assert result.exit_code != 0 and "no backup file" in result.output
