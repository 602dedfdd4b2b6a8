"""Address search over households (pg_trgm)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from gridmap.domain.access import Scope
from gridmap.store.scope import scope_param
from gridmap.store.sqlfiles import read_sql


def search_addresses(conn: Connection, query: str, *, scope: Scope, limit: int = 10,
                     threshold: float = 0.3) -> list[dict[str, Any]]:
    """Ranked households whose address matches *query* (partial, typo-tolerant: in Chinese
    one wrong character breaks three trigrams, so a short query with a typo shares only
    about a third of its trigrams with the address it means — hence 0.3), within *scope*."""
    conn.execute(text("SELECT set_config('pg_trgm.word_similarity_threshold', :t, true)"),
                 {"t": str(threshold)})
    rows = conn.execute(text(read_sql("search_addresses.sql")),
                        {"q": query, "limit": limit, "scope": scope_param(scope)}).mappings().all()
    return [{**dict(r), "grid_code": r["grid_code"].strip() if r["grid_code"] else None,
             "score": round(float(r["score"]), 3)} for r in rows]
