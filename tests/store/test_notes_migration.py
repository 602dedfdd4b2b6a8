"""Migration 0018: the notes gridmap writes as keys and values (``incident_event.notes``,
``audit_log.detail_notes``). Up keeps every row as it was (old rows have no keys: their text
is shown as is); down drops the keys and keeps the English text of each row."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import NullPool

from gridmap.store.db import alembic_config
from tests.helpers import database_at, migrate

AUDIT = "SELECT id, action, target, detail FROM audit_log ORDER BY id"
COLUMNS = ("SELECT table_name || '.' || column_name FROM information_schema.columns "
           "WHERE column_name IN ('notes', 'detail_notes') ORDER BY 1")


def _before_0018() -> str:
    down = ScriptDirectory.from_config(alembic_config()).get_revision("0018").down_revision
    assert isinstance(down, str)
    return down


@pytest.fixture
def db_before(server_url: str) -> Iterator[str]:
    """A database of its own, migrated to the revision before 0018."""
    with database_at(server_url, _before_0018(), "gridmap_notes") as db:
        yield db



def _rows(url: str, query: str, values: dict[str, Any] | None = None) -> list[Any]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            return [tuple(r) for r in conn.execute(text(query), values or {})]
    finally:
        engine.dispose()


def test_the_migration_keeps_every_row_both_ways(db_before: str) -> None:
    _rows(db_before, "INSERT INTO audit_log (user_name, role, action, target, divisions, "
                     "detail) VALUES ('li', 'admin', 'write', 'user add', '{}', "
                     "'role planner') RETURNING id")
    before = _rows(db_before, AUDIT)
    assert _rows(db_before, COLUMNS) == []

    migrate(db_before, "upgrade", "0018")
    assert _rows(db_before, COLUMNS) == [("audit_log.detail_notes",),
                                         ("incident_event.notes",)]
    assert _rows(db_before, AUDIT) == before
    assert _rows(db_before, "SELECT detail_notes FROM audit_log") == [(None,)]  # shown as is
    said = [{"key": "user_role", "values": {"role": "dispatcher"}}]
    _rows(db_before, "INSERT INTO audit_log (user_name, role, action, target, divisions, "
                     "detail, detail_notes) VALUES ('li', 'admin', 'write', 'user add', '{}', "
                     "'role dispatcher', CAST(:n AS jsonb)) RETURNING id",
          {"n": json.dumps(said)})
    with pytest.raises(IntegrityError, match="detail_notes"):  # a list of notes, or nothing
        _rows(db_before, "INSERT INTO audit_log (action, target, divisions, detail_notes) "
                         "VALUES ('write', 'x', '{}', CAST('{\"key\": 1}' AS jsonb))")
    after = _rows(db_before, AUDIT)

    migrate(db_before, "downgrade", "-1")
    assert _rows(db_before, COLUMNS) == []
    assert _rows(db_before, AUDIT) == after  # the English text of each note stays
    migrate(db_before, "upgrade", "head")
    assert _rows(db_before, AUDIT) == after
