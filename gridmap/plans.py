"""Plans, the use case: a community's published grid versions, what changed between two of
them, and undoing a publish by restoring an earlier version.

Called by the API (``api/routes_plans.py``) and the CLI (``gridmap grids …``). A restore
publishes a new version equal to the old one through the same path as an import: the
partition is checked, the version is kept with its note and author, and households,
facilities and incidents are re-assigned in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from gridmap import i18n
from gridmap.access import Actor, Forbidden, NotSignedIn, NotVisible, Principal, audit_entry
from gridmap.domain.access import Role
from gridmap.io.errors import ImportRejected
from gridmap.store import accounts, versions
from gridmap.store.load import GridDiff, restore_version
from gridmap.store.read import division_exists

EDITORS = frozenset({Role.admin, Role.planner})  # who may change a community's grids


class StaleVersion(Exception):
    """The community was published again since the caller looked (412)."""


class PlanError(ValueError):
    """A request that cannot be carried out as sent (422); the message says why."""


@dataclass
class VersionDiff:
    community: str
    from_version: int
    to_version: int
    grids: list[tuple[str, str]] = field(default_factory=list)  # (code, change)
    households: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    incidents: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    workers: list[str] = field(default_factory=list)  # ids of workers of retired grids


def _community(conn: Connection, principal: Principal, community: str, *, whole: bool
               ) -> None:
    principal.require_code(community, whole=whole)
    if not division_exists(conn, community, "community"):
        raise NotVisible(f"no village/community {community} in the store")


def history(conn: Connection, principal: Principal, community: str, *,
            language: i18n.Language | None = None) -> list[dict[str, Any]]:
    """The versions of *community*, newest first, each ``note`` for a reader of *language*
    (what gridmap wrote — an import, a draft's publishing — in that language, a person's
    note as written)."""
    _community(conn, principal, community, whole=False)
    rows = versions.versions(conn, community)
    for row in rows:
        row["note"] = i18n.render_notes(row.pop("note_notes"), row["note"], language)
    return rows


def diff(conn: Connection, principal: Principal, community: str, a: int, b: int | None
         ) -> VersionDiff:
    """What changed from version *a* to version *b* (the current one if None): grids, the
    households and incidents whose grid differs, the workers of retired grids."""
    _community(conn, principal, community, whole=False)
    known = {v["version"] for v in versions.versions(conn, community)}
    b = b if b is not None else versions.current_version(conn, community)
    for v in (a, b):
        if v not in known:
            raise NotVisible(f"community {community} has no version {v}")
    assert b is not None
    out = VersionDiff(community, a, b, versions.grid_changes(conn, community, a, b))
    out.households = versions.moved_points(conn, community, a, b, "household")
    out.incidents = versions.moved_points(conn, community, a, b, "incident")
    retired = [code for code, change in out.grids if change == "retired"]
    if retired:
        from sqlalchemy import select

        from gridmap.store import tables

        w = tables.grid_worker.c
        out.workers = [str(i) for i in conn.execute(
            select(w.id).where(w.grid_code.in_(retired)).order_by(w.id)).scalars()]
    return out


def restore(engine: Engine, principal: Principal, community: str, version: int, *,
            note: str, expected: int | None, client: str | None,
            tolerance: float = 0.1, min_area: float = 1.0) -> tuple[int, GridDiff]:
    """Publish a new version of *community* equal to *version* ("undo a publish"). The
    caller must hold the whole community and may edit grids; *expected* is the current
    version they saw (a restore over a newer publish is refused: 412)."""
    if principal.role not in EDITORS:
        if not principal.signed_in:
            raise NotSignedIn("sign in to restore a version")
        raise Forbidden(f"the {principal.role.value} role may not change grids")
    note = note.strip()
    if not note or "\x00" in note or len(note) > 2000:
        raise PlanError("say why in note (1 to 2,000 characters, no NUL)")
    with engine.begin() as conn:
        _community(conn, principal, community, whole=True)
        current = versions.current_version(conn, community)
        if expected is not None and expected != current:
            raise StaleVersion(f"community {community} is at version {current} now, not "
                               f"{expected}: look at its history again")
        try:
            published, changes = restore_version(
                conn, community, version, note=note, author=principal.name or "cli",
                tolerance=tolerance, min_area=min_area)
        except LookupError as exc:
            raise NotVisible(str(exc)) from exc
        except ImportRejected as exc:
            raise PlanError(str(exc)) from exc
        accounts.insert_audit(conn, [audit_entry(
            Actor.of(principal, client), "write", f"restore {community} version {version}",
            divisions=[community], row_ids=[code for code, _ in changes.grids] or None,
            detail=note)])
    return published, changes
