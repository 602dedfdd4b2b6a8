"""Drafts in the store (tables plan_draft, plan_draft_base, plan_draft_grid,
plan_draft_worker, plan_draft_edit): open one from the published grids, read and write its
grids and workers, the edit log, and the revision that guards against lost updates."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely
from sqlalchemy import text
from sqlalchemy.engine import Connection

from gridmap.analysis.drafting import DraftGrid

DRAFT_COLUMNS = ("id, area_code, title, status, revision, author, created_at, updated_at, "
                 "submitted_by, submitted_at, submit_note, approved_by, approved_at, "
                 "published_by, published_at, closing_note")


def _strip(row: Any) -> dict[str, Any]:
    return {k: (v.strip() if isinstance(v, str) and k.endswith("code") else v)
            for k, v in row.items()}


def communities_of(conn: Connection, area: str) -> list[str]:
    """The communities a draft of *area* (a community or a township) holds."""
    rows = conn.execute(text(
        "SELECT code FROM division WHERE level = 'community' AND (code = :a OR parent_code = "
        ":a) ORDER BY code"), {"a": area})
    return [str(c).strip() for c in rows.scalars()]


def insert_draft(conn: Connection, area: str, title: str, author: str,
                 communities: Sequence[str]) -> int:
    """A new draft of *area* holding the communities' published grids and their workers."""
    draft = conn.execute(text(
        "INSERT INTO plan_draft (area_code, title, author) VALUES (:a, :t, :u) RETURNING id"),
        {"a": area, "t": title, "u": author}).scalar_one()
    params = {"d": draft, "c": list(communities)}
    conn.execute(text(
        "INSERT INTO plan_draft_base (draft_id, community_code, version) "
        "SELECT :d, c, (SELECT max(version) FROM grid_version v WHERE v.community_code = c "
        "AND v.valid_to IS NULL) FROM unnest(CAST(:c AS text[])) AS c"), params)
    conn.execute(text(
        "INSERT INTO plan_draft_grid (draft_id, code, name, kind, community_code, "
        "parent_grid_code, geom) SELECT :d, code, name, kind, community_code, "
        "parent_grid_code, geom FROM grid WHERE community_code = ANY(:c)"), params)
    conn.execute(text(
        "INSERT INTO plan_draft_worker (draft_id, worker_id, base_grid_code, grid_code) "
        "SELECT :d, w.id, w.grid_code, w.grid_code FROM grid_worker w "
        "WHERE left(w.grid_code, 12) = ANY(:c) OR (w.grid_code IS NULL AND "
        "w.division_code = ANY(:c))"), params)
    return int(draft)


def read_draft(conn: Connection, draft: int, *, for_update: bool = False
               ) -> dict[str, Any] | None:
    lock = " FOR UPDATE" if for_update else ""
    row = conn.execute(text(f"SELECT {DRAFT_COLUMNS} FROM plan_draft WHERE id = :d{lock}"),
                       {"d": draft}).mappings().first()
    return _strip(row) if row else None


def list_drafts(conn: Connection, status: str | None) -> list[dict[str, Any]]:
    rows = conn.execute(text(
        f"SELECT {DRAFT_COLUMNS} FROM plan_draft WHERE CAST(:s AS text) IS NULL OR status = :s "
        "ORDER BY id DESC"), {"s": status})
    return [_strip(r) for r in rows.mappings()]


def bases(conn: Connection, draft: int) -> dict[str, int | None]:
    rows = conn.execute(text("SELECT community_code, version FROM plan_draft_base WHERE "
                             "draft_id = :d"), {"d": draft})
    return {str(c).strip(): v for c, v in rows}


def read_grids(conn: Connection, draft: int) -> dict[str, DraftGrid]:
    rows = conn.execute(text(
        "SELECT code, name, kind, community_code, parent_grid_code, locked, ST_AsBinary(geom) "
        "FROM plan_draft_grid WHERE draft_id = :d ORDER BY code"), {"d": draft})
    out = {}
    for code, name, kind, com, parent, locked, wkb in rows:
        code = code.strip()
        out[code] = DraftGrid(code, name, kind, com.strip(), parent.strip() if parent else None,
                              bool(locked), shapely.from_wkb(bytes(wkb)))
    return out


def read_workers(conn: Connection, draft: int) -> dict[str, dict[str, Any]]:
    rows = conn.execute(text(
        "SELECT w.id, w.name, w.role, d.base_grid_code, d.grid_code FROM plan_draft_worker d "
        "JOIN grid_worker w ON w.id = d.worker_id WHERE d.draft_id = :d ORDER BY w.id"),
        {"d": draft})
    return {i: {"name": n, "role": r, "base": b.strip() if b else None,
                "grid": g.strip() if g else None} for i, n, r, b, g in rows}


def used_codes(conn: Connection, communities: Sequence[str]) -> set[str]:
    """Every code ever published in the communities (current or retired)."""
    rows = conn.execute(text(
        "SELECT code FROM grid WHERE community_code = ANY(:c) UNION SELECT code FROM "
        "grid_history WHERE left(code, 12) = ANY(:c)"), {"c": list(communities)})
    return {str(c).strip() for c in rows.scalars()}


def grid_to_json(grid: DraftGrid | None) -> dict[str, Any] | None:
    if grid is None:
        return None
    return {"name": grid.name, "kind": grid.kind, "community_code": grid.community_code,
            "parent_grid_code": grid.parent_grid_code, "locked": grid.locked,
            "wkb": shapely.to_wkb(grid.geom, hex=True)}


def grid_from_json(code: str, row: Mapping[str, Any] | None) -> DraftGrid | None:
    if row is None:
        return None
    return DraftGrid(code, row["name"], row["kind"], row["community_code"],
                     row["parent_grid_code"], bool(row["locked"]),
                     shapely.from_wkb(row["wkb"]))


def write_grids(conn: Connection, draft: int, changes: Mapping[str, DraftGrid | None]) -> None:
    gone = [c for c, g in changes.items() if g is None]
    if gone:
        conn.execute(text("DELETE FROM plan_draft_grid WHERE draft_id = :d AND code = ANY(:c)"),
                     {"d": draft, "c": gone})
    rows = [{"d": draft, "code": g.code, "name": g.name, "kind": g.kind,
             "com": g.community_code, "parent": g.parent_grid_code, "locked": g.locked,
             "wkb": shapely.to_wkb(g.geom)} for g in changes.values() if g is not None]
    if rows:
        conn.execute(text(
            "INSERT INTO plan_draft_grid (draft_id, code, name, kind, community_code, "
            "parent_grid_code, locked, geom) VALUES (:d, :code, :name, :kind, :com, :parent, "
            ":locked, ST_Multi(ST_GeomFromWKB(:wkb, 4326))) ON CONFLICT (draft_id, code) DO "
            "UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind, parent_grid_code = "
            "EXCLUDED.parent_grid_code, locked = EXCLUDED.locked, geom = EXCLUDED.geom"), rows)


def write_workers(conn: Connection, draft: int, changes: Mapping[str, str | None]) -> None:
    if changes:
        conn.execute(text("UPDATE plan_draft_worker SET grid_code = :g WHERE draft_id = :d "
                          "AND worker_id = :w"),
                     [{"d": draft, "w": w, "g": g} for w, g in changes.items()])


def bump(conn: Connection, draft: int, **fields: Any) -> int:
    """The next revision of *draft* (the caller holds its row lock), with *fields* set."""
    allowed = {"status", "submitted_by", "submitted_at", "submit_note", "approved_by",
               "approved_at", "published_by", "published_at", "closing_note"}
    if not set(fields) <= allowed:
        raise ValueError(f"cannot set {set(fields) - allowed}")
    sets = "".join(f", {k} = :{k}" for k in sorted(fields))  # keys from the allowlist
    return int(conn.execute(text(
        f"UPDATE plan_draft SET revision = revision + 1, updated_at = clock_timestamp(){sets} "
        "WHERE id = :d RETURNING revision"), {"d": draft, **fields}).scalar_one())


def log_edit(conn: Connection, draft: int, op: str, params: Mapping[str, Any],
             before: Mapping[str, Any], after: Mapping[str, Any], author: str | None) -> int:
    """Append an edit; the edits undone before it can no longer be redone."""
    conn.execute(text("DELETE FROM plan_draft_edit WHERE draft_id = :d AND undone"),
                 {"d": draft})
    return int(conn.execute(text(
        "INSERT INTO plan_draft_edit (draft_id, seq, op, params, before, after, author) "
        "SELECT :d, coalesce(max(seq), 0) + 1, :op, CAST(:p AS jsonb), CAST(:b AS jsonb), "
        "CAST(:a AS jsonb), :u FROM plan_draft_edit WHERE draft_id = :d RETURNING seq"),
        {"d": draft, "op": op, "p": json.dumps(params), "b": json.dumps(before),
         "a": json.dumps(after), "u": author}).scalar_one())


def undo_target(conn: Connection, draft: int, *, redo: bool) -> dict[str, Any] | None:
    """The edit an undo (the last one done) or a redo (the first one undone) applies to."""
    query = ("SELECT seq, op, before, after FROM plan_draft_edit WHERE draft_id = :d AND "
             + ("undone ORDER BY seq LIMIT 1" if redo else
                "NOT undone ORDER BY seq DESC LIMIT 1"))
    row = conn.execute(text(query), {"d": draft}).mappings().first()
    return dict(row) if row else None


def mark_undone(conn: Connection, draft: int, seq: int, undone: bool) -> None:
    conn.execute(text("UPDATE plan_draft_edit SET undone = :u WHERE draft_id = :d AND seq = "
                      ":s"), {"d": draft, "s": seq, "u": undone})


def undo_state(conn: Connection, draft: int) -> tuple[bool, bool]:
    """(an edit can be undone, an edit can be redone)."""
    row = conn.execute(text("SELECT bool_or(NOT undone), bool_or(undone) FROM "
                            "plan_draft_edit WHERE draft_id = :d"), {"d": draft}).one()
    return bool(row[0]), bool(row[1])


def edits(conn: Connection, draft: int) -> list[dict[str, Any]]:
    rows = conn.execute(text("SELECT seq, op, params, author, at, undone FROM plan_draft_edit "
                             "WHERE draft_id = :d ORDER BY seq"), {"d": draft})
    return [dict(r) for r in rows.mappings()]


def read_households(conn: Connection, communities: Sequence[str]) -> pd.DataFrame:
    """The households inside *communities*: id, lon, lat, residents, vulnerable (any care
    flag) and the grid the store assigns them now."""
    return pd.read_sql_query(text(
        "SELECT DISTINCT ON (h.id) h.id, ST_X(h.geom) AS lon, ST_Y(h.geom) AS lat, "
        "h.residents::bigint AS residents, (h.elderly_alone OR h.disabled OR "
        "h.left_behind_child OR h.low_income) AS vulnerable, h.grid_code FROM division d "
        "JOIN household h ON ST_Intersects(d.geom, h.geom) WHERE d.code = ANY(:c) "
        "ORDER BY h.id"),
        conn, params={"c": list(communities)})


def read_incidents(conn: Connection, communities: Sequence[str]) -> pd.DataFrame:
    return pd.read_sql_query(text(
        "SELECT DISTINCT ON (i.id) i.id, ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat, "
        "i.status, i.grid_code FROM division d JOIN incident i ON ST_Intersects(d.geom, "
        "i.geom) WHERE d.code = ANY(:c) ORDER BY i.id"), conn, params={"c": list(communities)})


def read_communities(conn: Connection, communities: Sequence[str]) -> gpd.GeoDataFrame:
    return gpd.read_postgis(text(
        "SELECT code, coalesce(urban_rural, 'urban') AS urban_rural, geom FROM division "
        "WHERE code = ANY(:c) ORDER BY code"), conn, geom_col="geom", crs=4326,
        params={"c": list(communities)}).assign(code=lambda f: f["code"].str.strip())


def published_grids(conn: Connection, communities: Sequence[str]) -> dict[str, DraftGrid]:
    rows = conn.execute(text(
        "SELECT code, name, kind, community_code, parent_grid_code, ST_AsBinary(geom) FROM "
        "grid WHERE community_code = ANY(:c)"), {"c": list(communities)})
    return {code.strip(): DraftGrid(code.strip(), name, kind, com.strip(),
                                    parent.strip() if parent else None, False,
                                    shapely.from_wkb(bytes(wkb)))
            for code, name, kind, com, parent, wkb in rows}


def stage_draft(conn: Connection, draft: int) -> None:
    """The draft's grids as the stage table that publishing reads (gm_stage)."""
    stage_drafts(conn, [draft])


def stage_drafts(conn: Connection, drafts: Sequence[int]) -> None:
    """The grids of *drafts* (of distinct communities) as the stage table publishing reads."""
    conn.execute(text("DROP TABLE IF EXISTS gm_stage"))
    conn.execute(text("CREATE TEMP TABLE gm_stage ON COMMIT DROP AS SELECT code, name, kind, "
                      "community_code, parent_grid_code, geom FROM grid WITH NO DATA"))
    conn.execute(text("INSERT INTO gm_stage SELECT code, name, kind, community_code, "
                      "parent_grid_code, geom FROM plan_draft_grid WHERE draft_id = ANY(:d)"),
                 {"d": list(drafts)})


def publish_workers(conn: Connection, draft: int) -> int:
    """Put the workers where the draft has them, where that differs from where they were
    when the draft was opened; the number of workers moved."""
    return conn.execute(text(
        "UPDATE grid_worker w SET grid_code = d.grid_code FROM plan_draft_worker d "
        "WHERE d.draft_id = :d AND d.worker_id = w.id AND d.grid_code IS DISTINCT FROM "
        "d.base_grid_code AND (d.grid_code IS NULL OR EXISTS (SELECT 1 FROM grid g WHERE "
        "g.code = d.grid_code))"), {"d": draft}).rowcount


def take_staged(conn: Connection, draft: int, community: str) -> None:
    """The draft's grids become what a staged import gives the community (gm_next)."""
    conn.execute(text("DELETE FROM plan_draft_grid WHERE draft_id = :d"), {"d": draft})
    conn.execute(text(
        "INSERT INTO plan_draft_grid (draft_id, code, name, kind, community_code, "
        "parent_grid_code, geom) SELECT :d, code, name, kind, community_code, "
        "parent_grid_code, geom FROM gm_next WHERE community_code = :c"),
        {"d": draft, "c": community})


def drop_stage(conn: Connection) -> None:
    conn.execute(text("DROP TABLE IF EXISTS gm_next, gm_changed, gm_stage"))
