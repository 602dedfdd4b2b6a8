"""Drafts, the use case: a planner redraws grids in a draft, sees live statistics after each
edit, validates, submits; a county planner (or an admin) approves; the draft is published
through the same one-transaction path as an import or a restore.

Called by the API (``api/routes_drafts.py``) and the CLI (``gridmap drafts …``). A draft
covers a community, or a township (boundary changes between its communities). Every change
to a draft raises its revision; a change sent with an older revision is refused
(:class:`StaleRevision`), so two planners editing one draft never overwrite each other
silently. Publishing checks that no community of the draft was published since the draft
was opened (:class:`StaleBase`): the draft would otherwise undo that publish.

The statistics need the households of the draft's area; a :class:`DraftCache` keeps them in
memory per area (the API keeps one per app and empties it on the store's change notices),
so an edit costs one read of the draft's grids and vectorised counting.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from dataclasses import replace as dataclass_replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry import shape
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from gridmap.access import Actor, Forbidden, NotSignedIn, NotVisible, Principal, audit_entry
from gridmap.analysis import drafting
from gridmap.analysis.drafting import DraftGrid, EditError, Households, Measure
from gridmap.domain.access import Role, code_prefix
from gridmap.domain.codes import division_level
from gridmap.domain.notes import Note
from gridmap.domain.notes import note as system_note
from gridmap.domain.standards import GridStandard
from gridmap.io.errors import ImportRejected
from gridmap.store import accounts, versions
from gridmap.store import drafts as store
from gridmap.store.listen import Change
from gridmap.store.load import GridDiff, publish_stage
from gridmap.store.read import division_exists

EDITORS = frozenset({Role.admin, Role.planner})
OPS = ("split", "merge", "move_vertex", "paint", "add_micro", "remove_micro",
       "assign_worker", "lock")
LIVE = ("open", "submitted", "approved")


class DraftError(ValueError):
    """A request that cannot be carried out as sent (422); the message says why."""


class StaleRevision(Exception):
    """The draft (or one grid of it, *etag*) changed since the caller read it (412)."""

    def __init__(self, message: str, revision: int, *, etag: str | None = None) -> None:
        super().__init__(message)
        self.revision = revision
        self.etag = etag


class RevisionRequired(Exception):
    """A change to a draft must say which revision it builds on (428)."""


class IllegalState(Exception):
    """The draft's status does not allow this step (409)."""


class StaleBase(Exception):
    """A community of the draft was published since the draft was opened (409)."""


# --- the households of an area, kept between edits ---------------------------------------

@dataclass
class AreaData:
    communities: list[str]
    households: Households
    stored_grid: np.ndarray  # the grid the store assigns each household now
    measure: Measure


class DraftCache:
    """The households and community boundaries of the areas being drafted, by area code.
    Emptied on any change to households or divisions (``apply``, a change-hub subscriber)."""

    def __init__(self, max_areas: int = 32) -> None:
        self._areas: dict[str, AreaData] = {}
        self._lock = threading.Lock()
        self.max_areas = max_areas

    def area(self, conn: Connection, area: str, communities: list[str]) -> AreaData:
        with self._lock:
            hit = self._areas.get(area)
        if hit is not None and hit.communities == communities:
            return hit
        frame = store.read_households(conn, communities)
        data = AreaData(communities, Households.from_frame(frame),
                        frame["grid_code"].map(lambda c: c.strip() if c else None)
                        .to_numpy(object),
                        Measure.of(store.read_communities(conn, communities)))
        with self._lock:
            if len(self._areas) >= self.max_areas:
                self._areas.pop(next(iter(self._areas)))
            self._areas[area] = data
        return data

    def apply(self, changes: list[Change]) -> None:
        if any(c.table in ("household", "division") for c in changes):
            with self._lock:
                self._areas.clear()


# --- what a draft looks like to its callers ----------------------------------------------

@dataclass
class Stats:
    grids: list[dict[str, Any]]  # a row per draft grid (drafting.draft_stats)
    defects: list[dict[str, Any]]  # partition defects, located in EPSG:4326
    households_outside: int
    blocking: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class DraftView:
    draft: dict[str, Any]
    communities: list[str]
    grids: dict[str, DraftGrid]
    workers: dict[str, dict[str, Any]]
    stats: Stats
    can_undo: bool
    can_redo: bool
    changed: list[str] = field(default_factory=list)  # codes the last edit touched

    @property
    def revision(self) -> int:
        return int(self.draft["revision"])


@dataclass
class DraftDiff:
    draft: int
    grids: list[tuple[str, str]]
    households: list[tuple[str, str | None, str | None]]
    incidents: list[tuple[str, str | None, str | None]]
    workers: list[tuple[str, str | None, str | None]]
    area: str = ""  # the draft's community or township


@dataclass
class Published:
    draft: int
    versions: int
    diff: GridDiff
    workers_moved: int


# --- who may do what ---------------------------------------------------------------------

def _editor(principal: Principal, what: str) -> None:
    if principal.role not in EDITORS:
        if not principal.signed_in:
            raise NotSignedIn(f"sign in to {what}")
        raise Forbidden(f"the {principal.role.value} role may not {what}")


def may_approve(principal: Principal, area: str) -> bool:
    """An admin, or a planner holding the county the area lies in."""
    if principal.role == Role.admin:
        return True
    return principal.role == Role.planner and any(
        len(code_prefix(d)) <= 6 and area.startswith(code_prefix(d))
        for d in principal.divisions if len(d) == 12)


def _draft(conn: Connection, principal: Principal, draft: int, *, whole: bool,
           for_update: bool = False) -> dict[str, Any]:
    row = store.read_draft(conn, draft, for_update=for_update)
    if row is None:
        raise NotVisible(f"no draft {draft} among yours")
    area = row["area_code"]
    if not (principal.scope.covers(area) if whole else principal.scope.overlaps(area)):
        raise NotVisible(f"no draft {draft} among yours")
    return row


def _expect(row: dict[str, Any], expected: int | None, *, required: bool) -> None:
    if expected is None:
        if required:
            raise RevisionRequired(f"say which revision of draft {row['id']} you change "
                                   f"(If-Match: the ETag of the draft; now revision "
                                   f"{row['revision']})")
        return
    if expected != row["revision"]:
        raise StaleRevision(f"draft {row['id']} is at revision {row['revision']} now, not "
                            f"{expected}: someone changed it since you read it — reload it "
                            "and make your change again", int(row["revision"]))


def _status(row: dict[str, Any], *allowed: str, doing: str) -> None:
    if row["status"] not in allowed:
        raise IllegalState(f"draft {row['id']} is {row['status']}: it cannot be {doing} "
                           f"(only when {' or '.join(allowed)})")


def _text(value: str, what: str, *, limit: int = 2000) -> str:
    value = value.strip()
    if not value or "\x00" in value or len(value) > limit:
        raise DraftError(f"{what}: 1 to {limit:,} characters, no NUL")
    return value


# --- reading ----------------------------------------------------------------------------

def _stats(conn: Connection, cache: DraftCache, area: str, communities: list[str],
           grids: Mapping[str, DraftGrid], workers: Mapping[str, Mapping[str, Any]], *,
           standard: GridStandard, tolerance: float, min_area: float) -> Stats:
    start = time.perf_counter()
    data = cache.area(conn, area, communities)
    rows, outside, defects = drafting.draft_stats(
        list(grids.values()), data.households, data.measure,
        workers={w: (v["grid"], v["role"]) for w, v in workers.items()},
        standard=standard, tolerance=tolerance, min_area=min_area)
    blocking = [f"{d['defect']} of {d['area_m2']:,.0f} m² in community "
                f"{d['community_code']}" + (f", grid {d['grid_code']}" if d["grid_code"] else "")
                + (f" with {d['other_code']}" if d["other_code"] else "")
                for d in defects if d["defect"] in drafting.BLOCKING]
    warnings = []
    for r in rows:
        if r["status"] in ("below", "above", "over_residents"):
            warnings.append(f"grid {r['code']} holds {r['households']} households, "
                            f"{r['residents']} residents: {r['status'].replace('_', ' ')} "
                            f"the standard ({r['band_low']}–{r['band_high']} households)")
        if r["kind"] == "comprehensive" and r["full_time_workers"] == 0:
            warnings.append(f"grid {r['code']} has no full-time grid worker")
    for d in defects:
        if d["defect"] not in drafting.BLOCKING:
            warnings.append(f"grid {d['grid_code']}: {d['defect']} ({d['detail']})")
    return Stats(rows, defects, outside, blocking, warnings, time.perf_counter() - start)


def _view(conn: Connection, row: dict[str, Any], cache: DraftCache, *,
          standard: GridStandard, tolerance: float, min_area: float,
          changed: Iterable[str] = (), communities: list[str] | None = None,
          grids: dict[str, DraftGrid] | None = None,
          workers: dict[str, dict[str, Any]] | None = None) -> DraftView:
    """The draft with its statistics (its parts read from the store unless given)."""
    draft = int(row["id"])
    communities = communities or sorted(store.bases(conn, draft))
    grids = grids if grids is not None else store.read_grids(conn, draft)
    workers = workers if workers is not None else store.read_workers(conn, draft)
    stats = _stats(conn, cache, row["area_code"], communities, grids, workers,
                   standard=standard, tolerance=tolerance, min_area=min_area)
    can_undo, can_redo = store.undo_state(conn, draft)
    return DraftView(row, communities, grids, workers, stats, can_undo=can_undo,
                     can_redo=can_redo, changed=list(changed))


def _applied(grids: Mapping[str, DraftGrid], workers: Mapping[str, dict[str, Any]],
             changes: Mapping[str, DraftGrid | None], moves: Mapping[str, str | None]
             ) -> tuple[dict[str, DraftGrid], dict[str, dict[str, Any]]]:
    """The draft's grids and workers after *changes* and worker *moves*."""
    out = {c: g for c, g in grids.items() if c not in changes}
    out.update({c: g for c, g in changes.items() if g is not None})
    staff = {w: ({**v, "grid": moves[w]} if w in moves else v) for w, v in workers.items()}
    return dict(sorted(out.items())), staff


def list_drafts(conn: Connection, principal: Principal, status: str | None = None
                ) -> list[dict[str, Any]]:
    _editor(principal, "see drafts")
    if status is not None and status not in (*LIVE, "published", "abandoned"):
        raise DraftError(f"unknown status {status!r}")
    return [r for r in store.list_drafts(conn, status)
            if principal.scope.overlaps(r["area_code"])]


def show(conn: Connection, principal: Principal, draft: int, cache: DraftCache, *,
         standard: GridStandard, tolerance: float = 0.1, min_area: float = 1.0) -> DraftView:
    _editor(principal, "see drafts")
    row = _draft(conn, principal, draft, whole=False)
    return _view(conn, row, cache, standard=standard, tolerance=tolerance, min_area=min_area)


def history(conn: Connection, principal: Principal, draft: int) -> list[dict[str, Any]]:
    _editor(principal, "see drafts")
    _draft(conn, principal, draft, whole=False)
    return store.edits(conn, draft)


# --- opening and editing ----------------------------------------------------------------

def open_draft(engine: Engine, principal: Principal, area: str, *, title: str,
               client: str | None) -> int:
    """A new draft of a community or a township, starting from its published grids."""
    _editor(principal, "draw grids")
    title = _text(title, "title", limit=200)
    try:
        level = division_level(area)
    except ValueError as exc:
        raise DraftError(str(exc)) from exc
    if level not in ("community", "township"):
        raise DraftError(f"{area} is a {level}: open a draft for a community or a township")
    principal.require_code(area, whole=True)
    with engine.begin() as conn:
        if not division_exists(conn, area, level):
            raise NotVisible(f"no {level} {area} in the store")
        communities = store.communities_of(conn, area)
        if not communities:
            raise DraftError(f"township {area} has no communities in the store")
        draft = store.insert_draft(conn, area, title, principal.name or "cli", communities)
        accounts.insert_audit(conn, [audit_entry(
            Actor.of(principal, client), "write", f"draft {draft} open", divisions=[area],
            detail=title)])
    return draft


def _geometry(value: Any, what: str, kinds: tuple[str, ...]) -> shapely.Geometry:
    if not isinstance(value, Mapping):
        raise DraftError(f"{what} must be a GeoJSON geometry ({' or '.join(kinds)}) in "
                         "WGS84 longitude/latitude")
    try:
        geom = shape(value)
    except (ValueError, TypeError, KeyError, AttributeError, shapely.errors.GEOSException
            ) as exc:
        raise DraftError(f"{what} is not a readable GeoJSON geometry: {exc}") from exc
    if geom.geom_type not in kinds:
        raise DraftError(f"{what} must be a {' or '.join(kinds)}, not a {geom.geom_type}")
    xy = shapely.get_coordinates(geom)
    if not len(xy) or not np.isfinite(xy).all() or (np.abs(xy[:, 0]) > 180).any() \
            or (np.abs(xy[:, 1]) > 90).any():
        raise DraftError(f"{what} needs finite WGS84 longitude/latitude coordinates "
                         "(EPSG:4326, longitude first)")
    return geom


def _point(value: Any, what: str) -> tuple[float, float]:
    if (not isinstance(value, list | tuple) or len(value) != 2
            or not all(isinstance(v, int | float) for v in value)):
        raise DraftError(f"{what} must be [longitude, latitude]")
    x, y = float(value[0]), float(value[1])
    if not (np.isfinite([x, y]).all() and abs(x) <= 180 and abs(y) <= 90):
        raise DraftError(f"{what} must be a WGS84 longitude and latitude")
    return x, y


def _code(value: Any, what: str) -> str:
    if not isinstance(value, str) or len(value) != 15 or not value.isdigit():
        raise DraftError(f"{what} must be a 15-digit grid code")
    return value


def _grid_edit(op: str, params: Mapping[str, Any], grids: Mapping[str, DraftGrid],
               measure: Measure, used: set[str]) -> drafting.Changes:
    if op == "split":
        return drafting.split(grids, _code(params.get("grid"), "grid"),
                              _geometry(params.get("line"), "line", ("LineString",)), used=used)
    if op == "merge":
        codes = params.get("grids")
        if not isinstance(codes, list):
            raise DraftError("grids must be a list of grid codes")
        return drafting.merge(grids, [_code(c, "grids") for c in codes], used=used)
    if op == "move_vertex":
        return drafting.move_vertex(grids, measure.boundaries, _point(params.get("at"), "at"),
                                    _point(params.get("to"), "to"))
    if op == "paint":
        target = _code(params.get("grid"), "grid")
        cells = params.get("cells")
        if cells is not None:
            if not isinstance(cells, list) or not cells or len(cells) > 10_000:
                raise DraftError("cells must be a list of 1 to 10,000 H3 cell indexes")
            region, polys = drafting.cells_to_region(cells)
            return drafting.paint(grids, measure.boundaries, target, region, cells=polys,
                                  labels=[str(c) for c in cells])
        area = _geometry(params.get("area"), "area", ("Polygon", "MultiPolygon"))
        return drafting.paint(grids, measure.boundaries, target, area)
    if op == "add_micro":
        name = params.get("name")
        if name is not None and not isinstance(name, str):
            raise DraftError("name must be text")
        return drafting.add_micro(grids, _code(params.get("parent"), "parent"),
                                  _geometry(params.get("area"), "area", ("Polygon",
                                                                         "MultiPolygon")),
                                  used=used, name=name)
    if op == "remove_micro":
        return drafting.remove_micro(grids, _code(params.get("grid"), "grid"))
    if op == "lock":
        code = _code(params.get("grid"), "grid")
        locked = params.get("locked", True)
        if code not in grids:
            raise DraftError(f"the draft has no grid {code}")
        if not isinstance(locked, bool):
            raise DraftError("locked must be true or false")
        from dataclasses import replace

        return {code: replace(grids[code], locked=locked)}
    raise DraftError(f"unknown edit {op!r}: choose one of {', '.join(OPS)}")


def _follow(grids: Mapping[str, DraftGrid], changes: drafting.Changes,
            workers: Mapping[str, Mapping[str, Any]]) -> dict[str, str | None]:
    """Workers of a grid an edit retires go to the new grid that holds most of it (the
    parent, for a micro-grid removed)."""
    out: dict[str, str | None] = {}
    added = [g for c, g in changes.items() if g is not None and c not in grids]
    for wid, w in workers.items():
        code = w["grid"]
        if code is None or code not in changes or changes[code] is not None:
            continue
        old = grids[code]
        heirs = [g for g in added if g.community_code == old.community_code]
        if heirs:
            best = max(heirs, key=lambda g: shapely.intersection(g.geom, old.geom).area)
            out[wid] = best.code if shapely.intersects(best.geom, old.geom) else None
        else:
            out[wid] = old.parent_grid_code
    return out


def edit(engine: Engine, principal: Principal, draft: int, op: str, params: Mapping[str, Any],
         cache: DraftCache, *, expected: int | None, client: str | None,
         standard: GridStandard, tolerance: float = 0.1, min_area: float = 1.0,
         revision_required: bool = True) -> DraftView:
    """Apply one edit to an open draft and return the draft with its new statistics."""
    _editor(principal, "draw grids")
    if op not in OPS:
        raise DraftError(f"unknown edit {op!r}: choose one of {', '.join(OPS)}")
    if "\\u0000" in json.dumps(params):
        raise DraftError("the edit contains a NUL character: remove it")
    with engine.begin() as conn:
        row = _draft(conn, principal, draft, whole=True, for_update=True)
        _expect(row, expected, required=revision_required)
        _status(row, "open", doing="edited")
        communities = sorted(store.bases(conn, draft))
        grids = store.read_grids(conn, draft)
        workers = store.read_workers(conn, draft)
        data = cache.area(conn, row["area_code"], communities)
        worker_changes: dict[str, str | None] = {}
        try:
            if op == "assign_worker":
                wid, code = params.get("worker"), params.get("grid")
                if not isinstance(wid, str) or wid not in workers:
                    raise DraftError(f"no grid worker {wid!r} in this draft's area")
                if code is not None and _code(code, "grid") not in grids:
                    raise DraftError(f"the draft has no grid {code}")
                if workers[wid]["grid"] == code:
                    raise DraftError(f"worker {wid} is in grid {code} already")
                changes: drafting.Changes = {}
                worker_changes = {wid: code}
            else:
                changes = _grid_edit(op, params, grids, data.measure,
                                     store.used_codes(conn, communities))
                worker_changes = _follow(grids, changes, workers)
        except EditError as exc:
            raise DraftError(str(exc)) from exc
        return _commit(conn, principal, row, op, params, cache, client=client,
                       communities=communities, grids=grids, workers=workers,
                       changes=changes, worker_changes=worker_changes, standard=standard,
                       tolerance=tolerance, min_area=min_area)


def _commit(conn: Connection, principal: Principal, row: dict[str, Any], op: str,
            params: Mapping[str, Any], cache: DraftCache, *, client: str | None,
            communities: list[str], grids: dict[str, DraftGrid],
            workers: dict[str, dict[str, Any]], changes: drafting.Changes,
            worker_changes: dict[str, str | None], standard: GridStandard, tolerance: float,
            min_area: float) -> DraftView:
    """Write one edit of a draft (its row locked): the grids and workers it changes, the
    log entry that undoes it, the next revision, the audit; the draft as it is now."""
    draft = int(row["id"])
    before = {"grids": {c: store.grid_to_json(grids.get(c)) for c in changes},
              "workers": {w: workers[w]["grid"] for w in worker_changes}}
    after = {"grids": {c: store.grid_to_json(g) for c, g in changes.items()},
             "workers": worker_changes}
    store.write_grids(conn, draft, changes)
    store.write_workers(conn, draft, worker_changes)
    store.log_edit(conn, draft, op, dict(params), before, after, principal.name)
    row["revision"] = store.bump(conn, draft)
    accounts.insert_audit(conn, [audit_entry(
        Actor.of(principal, client), "write", f"draft {draft} {op}",
        divisions=[row["area_code"]], row_ids=sorted(changes) or sorted(worker_changes))])
    grids, workers = _applied(grids, workers, changes, worker_changes)
    return _view(conn, row, cache, standard=standard, tolerance=tolerance,
                 min_area=min_area, changed=sorted(changes), communities=communities,
                 grids=grids, workers=workers)


def undo(engine: Engine, principal: Principal, draft: int, cache: DraftCache, *,
         redo: bool = False, expected: int | None, client: str | None,
         standard: GridStandard, tolerance: float = 0.1, min_area: float = 1.0,
         revision_required: bool = True) -> DraftView:
    """Undo the last edit (or redo the last one undone)."""
    _editor(principal, "draw grids")
    what = "redo" if redo else "undo"
    with engine.begin() as conn:
        row = _draft(conn, principal, draft, whole=True, for_update=True)
        _expect(row, expected, required=revision_required)
        _status(row, "open", doing="edited")
        target = store.undo_target(conn, draft, redo=redo)
        if target is None:
            raise IllegalState(f"draft {draft} has nothing to {what}")
        state = target["after"] if redo else target["before"]
        changes = {c: store.grid_from_json(c, g) for c, g in state["grids"].items()}
        store.write_grids(conn, draft, changes)
        store.write_workers(conn, draft, state["workers"])
        store.mark_undone(conn, draft, int(target["seq"]), not redo)
        store.bump(conn, draft)
        accounts.insert_audit(conn, [audit_entry(
            Actor.of(principal, client), "write", f"draft {draft} {what}",
            divisions=[row["area_code"]],
            detail=system_note("draft_edit", seq=target["seq"], edit_op=target["op"]))])
        row = _draft(conn, principal, draft, whole=True)
        return _view(conn, row, cache, standard=standard, tolerance=tolerance,
                     min_area=min_area, changed=sorted(changes))


# --- the draft's grids as features (OGC API Features Part 4) -----------------------------

FEATURE_EDITS = ("create", "replace", "update", "delete")
FEATURE_PROPERTIES = ("code", "name", "kind", "community_code", "parent_grid_code", "locked")
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


def feature_tag(draft: int, grid: DraftGrid) -> str:
    """The ETag of one grid of a draft: it changes whenever the grid does (its shape,
    name, kind, parent or lock), and only then."""
    digest = hashlib.sha256(json.dumps(store.grid_to_json(grid), sort_keys=True).encode()
                            ).hexdigest()[:20]
    return f'"g{draft}-{grid.code}-{digest}"'


def draft_features(conn: Connection, principal: Principal, draft: int) -> dict[str, DraftGrid]:
    """The grids of a draft the caller may see (planners and admins)."""
    _editor(principal, "see drafts")
    _draft(conn, principal, draft, whole=False)
    return {c: g for c, g in store.read_grids(conn, draft).items()
            if principal.scope.covers(g.community_code)}


def feature_geometry(value: Any, crs: str | None) -> shapely.Geometry:
    """A GeoJSON Polygon or MultiPolygon in *crs* (a CRS URI or EPSG code, as a
    ``Content-Crs`` header names it; CRS84 when None), as lon/lat EPSG:4326. Coordinates
    follow the CRS's own axis order (EPSG:4326 and EPSG:4490 are latitude first)."""
    name = (crs or CRS84).strip().strip("<>").strip()
    if name in (CRS84, "OGC:CRS84"):
        return _geometry(value, "geometry", ("Polygon", "MultiPolygon"))
    try:
        source = CRS.from_user_input(name)
    except CRSError as exc:
        raise DraftError(f"Content-Crs {crs!r} is not a coordinate reference system this "
                         f"server knows: send {CRS84} or an EPSG URI such as "
                         "http://www.opengis.net/def/crs/EPSG/0/4490") from exc
    if not isinstance(value, Mapping):
        raise DraftError("geometry must be a GeoJSON Polygon or MultiPolygon")
    try:
        raw = shape(value)
    except (ValueError, TypeError, KeyError, AttributeError, shapely.errors.GEOSException
            ) as exc:
        raise DraftError(f"geometry is not a readable GeoJSON geometry: {exc}") from exc
    to_lonlat = Transformer.from_crs(source, CRS.from_user_input("OGC:CRS84"))
    xy = shapely.get_coordinates(raw)
    if not len(xy) or not np.isfinite(xy).all():
        raise DraftError("geometry needs finite coordinates")
    moved = shapely.transform(raw, lambda a: np.column_stack(to_lonlat.transform(a[:, 0],
                                                                               a[:, 1])))
    return _geometry(shapely.geometry.mapping(moved), "geometry", ("Polygon", "MultiPolygon"))


def _match(draft: int, grid: DraftGrid, if_match: str | None) -> None:
    now = feature_tag(draft, grid)
    if if_match is None or if_match.strip() in ("", "*"):
        raise RevisionRequired(f"say which version of grid {grid.code} you change: send "
                               f"If-Match with the ETag its GET answered (now {now})")
    tags = [t.strip().removeprefix("W/") for t in if_match.split(",")]
    if now not in tags:
        raise StaleRevision(f"grid {grid.code} of draft {draft} changed since you read it "
                            f"(its ETag is {now} now): read it again and make your change "
                            "again", -1, etag=now)


def _feature_properties(properties: Mapping[str, Any], grid: DraftGrid | None
                        ) -> dict[str, Any]:
    """The properties a client sent, checked: known ones only; code, kind, community and
    parent of an existing grid cannot change (merge or split it through the drafts API)."""
    unknown = sorted(set(properties) - set(FEATURE_PROPERTIES))
    if unknown:
        raise DraftError(f"unknown properties {', '.join(unknown)}: a grid has "
                         f"{', '.join(FEATURE_PROPERTIES)}")
    out = dict(properties)
    name = out.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()
                             or len(name) > 200):
        raise DraftError("name is 1 to 200 characters of text")
    if "locked" in out and not isinstance(out["locked"], bool):
        raise DraftError("locked must be true or false")
    for key in ("kind", "community_code", "parent_grid_code"):
        if out.get(key) is not None and not isinstance(out[key], str):
            raise DraftError(f"{key} must be text")
    if grid is None:
        if out.get("code") is not None:
            raise DraftError("the server gives a new grid its code (the next free sequence "
                             "of its community): leave code out")
        return out
    for key in ("code", "kind", "community_code", "parent_grid_code"):
        if key in out and out[key] != getattr(grid, key):
            raise DraftError(f"{key} of grid {grid.code} is {getattr(grid, key)!r}: it cannot "
                             f"change to {out[key]!r} here (merge, split or make a new grid)")
    return out


def _home(measure: Measure, geom: shapely.Geometry) -> str:
    inside = geom.representative_point()
    for code, boundary in measure.boundaries.items():
        if boundary.covers(inside):
            return code
    raise DraftError("the new grid lies in none of the draft's communities "
                     f"({', '.join(sorted(measure.boundaries))})")


def _no_new_blocking(conn: Connection, cache: DraftCache, area: str, communities: list[str],
                     grids: dict[str, DraftGrid], workers: dict[str, dict[str, Any]],
                     changes: drafting.Changes, **options: Any) -> None:
    """Refuse a change that would add a gap, an overlap, spill-over or an invalid grid to
    the draft (as measured for publishing, in metres)."""
    def blocking(state: Mapping[str, DraftGrid]) -> set[tuple[str, str | None]]:
        stats = _stats(conn, cache, area, communities, state, workers, **options)
        return {(d["defect"], d["grid_code"]) for d in stats.defects
                if d["defect"] in drafting.BLOCKING}

    after, _ = _applied(grids, workers, changes, {})
    new = blocking(after) - blocking(grids)
    if new:
        raise DraftError("the change would leave the draft with "
                         + "; ".join(f"{what} at grid {code}" if code else what
                                     for what, code in sorted(new, key=str))
                         + ": draw it differently (nothing was changed)")


def edit_feature(engine: Engine, principal: Principal, draft: int, op: str,
                 cache: DraftCache, *, code: str | None = None,
                 geometry: shapely.Geometry | None = None,
                 properties: Mapping[str, Any] | None = None, if_match: str | None = None,
                 client: str | None, standard: GridStandard, tolerance: float = 0.1,
                 min_area: float = 1.0) -> tuple[DraftView, str]:
    """One grid of an open draft created, replaced, updated (only what is sent) or deleted
    (retired in the draft), keeping the partition whole (:func:`drafting.create`,
    :func:`drafting.reshape`, :func:`drafting.retire`). A change to an existing grid names
    the grid's ETag in *if_match* (428 without, 412 when it changed meanwhile). Returns the
    draft after the edit and the grid's code (the new one for *create*)."""
    _editor(principal, "draw grids")
    if op not in FEATURE_EDITS:
        raise DraftError(f"unknown feature edit {op!r}")
    props = dict(properties or {})
    if "\\u0000" in json.dumps(props):
        raise DraftError("the feature contains a NUL character: remove it")
    with engine.begin() as conn:
        row = _draft(conn, principal, draft, whole=False, for_update=True)
        communities = sorted(store.bases(conn, draft))
        grids = store.read_grids(conn, draft)
        grid = grids.get(code) if code is not None else None
        if code is not None and (grid is None
                                 or not principal.scope.covers(grid.community_code)):
            raise NotVisible(f"draft {draft} has no grid {code} among yours")
        if grid is not None:
            _match(draft, grid, if_match)
        props = _feature_properties(props, grid)
        _status(row, "open", doing="edited")
        workers = store.read_workers(conn, draft)
        data = cache.area(conn, row["area_code"], communities)
        worker_changes: dict[str, str | None] = {}
        try:
            if grid is None:
                assert geometry is not None
                community = props.get("community_code") or _home(data.measure, geometry)
                if community not in communities:
                    raise DraftError(f"community {community!r} is not in draft {draft}: a "
                                     f"new grid goes in {', '.join(communities)}")
                principal.require_code(community, whole=True)
                changes = drafting.create(
                    grids, data.measure.boundaries, community=community,
                    kind=props.get("kind") or "comprehensive", geom=geometry,
                    name=props.get("name") or "", parent=props.get("parent_grid_code"),
                    used=store.used_codes(conn, communities))
                code = next(c for c, g in changes.items() if g is not None and c not in grids)
            elif op == "delete":
                changes, heir = drafting.retire(grids, grid.code)
                worker_changes = {w: heir for w, v in workers.items() if v["grid"] == grid.code}
            else:
                changes = ({} if geometry is None or shapely.symmetric_difference(
                    geometry, grid.geom).area < drafting.NOISE_AREA_DEG2
                    else drafting.reshape(grids, data.measure.boundaries, grid.code,
                                          geometry))
                now = changes.get(grid.code) or grid
                named = dataclass_replace(now, name=props.get("name", now.name).strip(),
                                          locked=props.get("locked", now.locked))
                if named != grid:
                    changes[grid.code] = named
        except EditError as exc:
            raise DraftError(str(exc)) from exc
        assert code is not None
        if changes:
            _no_new_blocking(conn, cache, row["area_code"], communities, grids, workers,
                             changes, standard=standard, tolerance=tolerance,
                             min_area=min_area)
        if not changes and not worker_changes:
            return _view(conn, row, cache, standard=standard, tolerance=tolerance,
                         min_area=min_area, communities=communities, grids=grids,
                         workers=workers), code
        params = {"grid": code, "properties": props,
                  "crs84": shapely.to_geojson(geometry) if geometry is not None else None}
        view = _commit(conn, principal, row, f"feature_{op}", params, cache, client=client,
                       communities=communities, grids=grids, workers=workers,
                       changes=changes, worker_changes=worker_changes, standard=standard,
                       tolerance=tolerance, min_area=min_area)
        return view, code


def draft_from_suggestion(engine: Engine, principal: Principal, community: str,
                          shapes: list[shapely.Geometry], cache: DraftCache, *, title: str,
                          client: str | None, locked: Iterable[str] = (),
                          standard: GridStandard, tolerance: float = 0.1,
                          min_area: float = 1.0) -> DraftView:
    """A new draft of *community* holding a suggested partition (lon/lat *shapes*) in
    place of its comprehensive grids, the *locked* ones kept (and locked in the draft):
    the planner edits it further. The suggestion is the draft's first edit (undoable)."""
    draft = open_draft(engine, principal, community, title=title, client=client)
    with engine.begin() as conn:
        row = _draft(conn, principal, draft, whole=True, for_update=True)
        communities = sorted(store.bases(conn, draft))
        grids = store.read_grids(conn, draft)
        workers = store.read_workers(conn, draft)
        keep = set(locked)
        grids = {c: dataclass_replace(g, locked=c in keep) for c, g in grids.items()}
        data = cache.area(conn, row["area_code"], communities)
        try:
            changes = drafting.replace_partition(
                grids, data.measure.boundaries, community, shapes,
                used=store.used_codes(conn, communities), name="网格")
        except EditError as exc:
            store.bump(conn, draft, status="abandoned", closing_note=str(exc)[:2000])
            conn.commit()  # the empty draft is closed, saying why
            raise DraftError(str(exc)) from exc
        changes.update({c: grids[c] for c in keep if c in grids and c not in changes})
        return _commit(conn, principal, row, "suggest", {"grids": len(shapes),
                                                         "locked": sorted(keep)},
                       cache, client=client, communities=communities, grids=grids,
                       workers=workers, changes=changes,
                       worker_changes=_follow(grids, changes, workers), standard=standard,
                       tolerance=tolerance, min_area=min_area)


# --- validate, submit, approve, publish ---------------------------------------------------

def submit(engine: Engine, principal: Principal, draft: int, cache: DraftCache, *,
           note: str | None, acknowledge: bool, expected: int | None, client: str | None,
           one_step: bool, standard: GridStandard, tolerance: float = 0.1,
           min_area: float = 1.0) -> DraftView:
    """Submit an open draft for approval (approve it too when approval is one step). Gaps,
    overlaps and spill-over block; band violations and grids without a full-time worker
    must be acknowledged with a note."""
    _editor(principal, "submit drafts")
    with engine.begin() as conn:
        row = _draft(conn, principal, draft, whole=True, for_update=True)
        _expect(row, expected, required=False)
        _status(row, "open", doing="submitted")
        view = _view(conn, row, cache, standard=standard, tolerance=tolerance,
                     min_area=min_area)
        if view.stats.blocking:
            raise DraftError(f"draft {draft} does not partition its communities: "
                             + "; ".join(view.stats.blocking[:20]))
        clean_note = _text(note, "note") if note else None
        if view.stats.warnings and not (acknowledge and clean_note):
            raise DraftError(f"draft {draft} has {len(view.stats.warnings)} warning(s) "
                             "(acknowledge them with a note saying why): "
                             + "; ".join(view.stats.warnings[:20]))
        now = datetime.now(UTC)
        fields: dict[str, Any] = {"status": "submitted", "submitted_by": principal.name or "cli",
                                  "submitted_at": now, "submit_note": clean_note}
        if one_step:
            fields.update(status="approved", approved_by=principal.name or "cli",
                          approved_at=now)
        store.bump(conn, draft, **fields)
        accounts.insert_audit(conn, [audit_entry(
            Actor.of(principal, client), "write", f"draft {draft} submit",
            divisions=[row["area_code"]], detail=clean_note)])
        row = _draft(conn, principal, draft, whole=True)
        return _view(conn, row, cache, standard=standard, tolerance=tolerance,
                     min_area=min_area)


def decide(engine: Engine, principal: Principal, draft: int, *, approve: bool,
           note: str | None, expected: int | None, client: str | None) -> dict[str, Any]:
    """Approve a submitted draft, or send it back to its author (open again, with a note).
    By an admin or a planner holding the county; not by the one who submitted it."""
    _editor(principal, "approve drafts")
    with engine.begin() as conn:
        row = _draft(conn, principal, draft, whole=False, for_update=True)
        _expect(row, expected, required=False)
        _status(row, "submitted", doing="approved" if approve else "sent back")
        if not may_approve(principal, row["area_code"]):
            raise Forbidden("drafts are approved by an admin or a planner holding the county")
        if principal.name is not None and principal.name == row["submitted_by"]:
            raise Forbidden(f"you submitted draft {draft}: another person approves it")
        clean = _text(note, "note") if note else None
        if not approve and clean is None:
            raise DraftError("say in note why the draft goes back")
        if approve:
            store.bump(conn, draft, status="approved", approved_by=principal.name or "cli",
                       approved_at=datetime.now(UTC), closing_note=clean)
        else:
            store.bump(conn, draft, status="open", closing_note=clean)
        accounts.insert_audit(conn, [audit_entry(
            Actor.of(principal, client), "write",
            f"draft {draft} {'approve' if approve else 'send back'}",
            divisions=[row["area_code"]], detail=clean)])
        out = store.read_draft(conn, draft)
        assert out is not None
        return out


def _check_base(conn: Connection, draft: int) -> None:
    for community, base in store.bases(conn, draft).items():
        now = versions.current_version(conn, community)
        if now != base:
            raise StaleBase(
                f"community {community} was published as version {now} after this draft was "
                f"opened from version {base}: publishing would undo that publish. Abandon "
                "this draft, open a new one and make the edits again (the edit list of this "
                "one shows them)")


def publish(engine: Engine, principal: Principal, draft: int, cache: DraftCache, *,
            expected: int | None, client: str | None, standard: GridStandard,
            tolerance: float = 0.1, min_area: float = 1.0) -> Published:
    """Publish an approved draft in one transaction: a new version of each community it
    changes (note, author, approver), stable codes, the points re-assigned where the
    geometry changed, the workers moved as the draft has them."""
    _editor(principal, "publish drafts")
    with engine.begin() as conn:
        row = _draft(conn, principal, draft, whole=True, for_update=True)
        _expect(row, expected, required=False)
        _status(row, "approved", doing="published")
        _check_base(conn, draft)
        view = _view(conn, row, cache, standard=standard, tolerance=tolerance,
                     min_area=min_area)
        if view.stats.blocking:
            raise DraftError(f"draft {draft} does not partition its communities: "
                             + "; ".join(view.stats.blocking[:20]))
        store.stage_draft(conn, draft)
        said = (system_note("version_draft_noted", draft=draft, title=row["title"],
                            note=row["submit_note"]) if row["submit_note"] else
                system_note("version_draft", draft=draft, title=row["title"]))
        try:
            published, diff = publish_stage(
                conn, source=f"draft {draft}", note=said, author=row["author"],
                approver=row["approved_by"], tolerance=tolerance, min_area=min_area)
        except ImportRejected as exc:
            raise DraftError(str(exc)) from exc
        moved = store.publish_workers(conn, draft)
        store.bump(conn, draft, status="published", published_by=principal.name or "cli",
                   published_at=datetime.now(UTC))
        accounts.insert_audit(conn, [audit_entry(
            Actor.of(principal, client), "write", f"draft {draft} publish",
            divisions=[row["area_code"]], row_ids=[c for c, _ in diff.grids] or None,
            detail=said)])
    return Published(draft, published, diff, moved)


def publish_imported(engine: Engine, principal: Principal, drafts: list[int],
                     cache: DraftCache, *, note: str | Note, client: str | None,
                     standard: GridStandard, tolerance: float = 0.1, min_area: float = 1.0
                     ) -> Published:
    """Publish the drafts an import made, all in one transaction, when every one of them
    partitions its communities: submitted and approved with *note* (the command line's
    ``--publish`` says the warnings were read), then one publish of all their communities.
    Nothing is published when one is refused; the drafts stay open to be fixed. A *note*
    gridmap composed (an import's) is kept as a note, read in the reader's language."""
    _editor(principal, "publish drafts")
    clean = _text(note if isinstance(note, str) else note.english(), "note")
    said = clean[:2000] if isinstance(note, str) else note
    with engine.begin() as conn:
        blocking = []
        rows = []
        for draft in drafts:
            row = _draft(conn, principal, draft, whole=True, for_update=True)
            _status(row, "open", doing="published")
            _check_base(conn, draft)
            view = _view(conn, row, cache, standard=standard, tolerance=tolerance,
                         min_area=min_area)
            blocking += [f"draft {draft}: {b}" for b in view.stats.blocking]
            rows.append(row)
        if blocking:
            raise DraftError("the grids would not partition their communities, nothing was "
                             "published (the drafts stay open): " + "; ".join(blocking[:20]))
        store.stage_drafts(conn, drafts)
        try:
            published, changes = publish_stage(
                conn, source=f"drafts {', '.join(map(str, drafts))}", note=said,
                author=principal.name or "cli", approver=principal.name or "cli",
                tolerance=tolerance, min_area=min_area)
        except ImportRejected as exc:
            raise DraftError(str(exc)) from exc
        moved = 0
        now = datetime.now(UTC)
        who = principal.name or "cli"
        for row in rows:
            draft = int(row["id"])
            moved += store.publish_workers(conn, draft)
            store.bump(conn, draft, status="published", submitted_by=who, submitted_at=now,
                       submit_note=clean[:2000], approved_by=who, approved_at=now,
                       published_by=who, published_at=now)
        accounts.insert_audit(conn, [audit_entry(
            Actor.of(principal, client), "write", f"draft {int(r['id'])} publish",
            divisions=[r["area_code"]], detail=said) for r in rows])
    return Published(drafts[0] if len(drafts) == 1 else 0, published, changes, moved)


def abandon(engine: Engine, principal: Principal, draft: int, *, note: str | None,
            expected: int | None, client: str | None) -> dict[str, Any]:
    _editor(principal, "abandon drafts")
    with engine.begin() as conn:
        row = _draft(conn, principal, draft, whole=True, for_update=True)
        _expect(row, expected, required=False)
        _status(row, *LIVE, doing="abandoned")
        clean = _text(note, "note") if note else None
        store.bump(conn, draft, status="abandoned", closing_note=clean)
        accounts.insert_audit(conn, [audit_entry(
            Actor.of(principal, client), "write", f"draft {draft} abandon",
            divisions=[row["area_code"]], detail=clean)])
        out = store.read_draft(conn, draft)
        assert out is not None
        return out


# --- the draft against the published grids -----------------------------------------------

def diff(conn: Connection, principal: Principal, draft: int, cache: DraftCache) -> DraftDiff:
    """What publishing the draft would change: grids added, retired, reshaped or renamed;
    the households and incidents that would change grid; the workers that would move."""
    _editor(principal, "see drafts")
    row = _draft(conn, principal, draft, whole=False)
    communities = sorted(store.bases(conn, draft))
    mine = store.read_grids(conn, draft)
    now = store.published_grids(conn, communities)
    grids = []
    for code in sorted(set(mine) | set(now)):
        a, b = now.get(code), mine.get(code)
        if a is None:
            grids.append((code, "added"))
        elif b is None:
            grids.append((code, "retired"))
        elif not shapely.equals(a.geom, b.geom):
            grids.append((code, "reshaped"))
        elif (a.name, a.kind, a.parent_grid_code) != (b.name, b.kind, b.parent_grid_code):
            grids.append((code, "renamed"))
    data = cache.area(conn, row["area_code"], communities)
    drafted = drafting.assign_points(list(mine.values()), data.households)
    households = [(str(i), f, t) for i, f, t in zip(data.households.ids, data.stored_grid,
                                                     drafted, strict=True) if f != t]
    incidents_frame = store.read_incidents(conn, communities)
    incidents = []
    if len(incidents_frame):
        points = Households(incidents_frame["id"].to_numpy(object),
                            incidents_frame["lon"].to_numpy(float),
                            incidents_frame["lat"].to_numpy(float),
                            np.zeros(len(incidents_frame), np.int64),
                            np.zeros(len(incidents_frame), bool))
        drafted_incidents = drafting.assign_points(list(mine.values()), points)
        stored = [c.strip() if c else None for c in incidents_frame["grid_code"]]
        incidents = [(str(i), f, t) for i, f, t in zip(points.ids, stored, drafted_incidents,
                                                       strict=True) if f != t]
    workers = [(w, v["base"], v["grid"]) for w, v in store.read_workers(conn, draft).items()
               if v["base"] != v["grid"]]
    return DraftDiff(draft, grids, households, incidents, workers, row["area_code"])


def import_drafts(engine: Engine, principal: Principal, frame: Any, cache: DraftCache, *,
                  source: str, replace: bool, client: str | None, dry_run: bool = False
                  ) -> list[DraftDiff]:
    """A draft per community a grids file would change — the file's grids, and the
    community's others unless *replace* says the file holds it whole — with what publishing
    it would change; nothing is published. The import is the draft's first edit (undoable).
    *dry_run*: the same answer, and nothing is kept."""
    _editor(principal, "import grids")
    from gridmap.store.load import stage_grids

    with engine.connect() as conn, conn.begin() as transaction:
        try:
            communities = stage_grids(conn, frame, source=source, replace=replace)
        except ImportRejected as exc:
            raise DraftError(str(exc)) from exc
        out = []
        for community in communities:
            principal.require_code(community, whole=True)
            draft = store.insert_draft(conn, community, f"import {source}"[:200],
                                       principal.name or "cli", [community])
            before = store.read_grids(conn, draft)
            store.take_staged(conn, draft, community)
            after = store.read_grids(conn, draft)
            codes = sorted(set(before) | set(after))
            store.log_edit(conn, draft, "import", {"source": source, "replace": replace},
                           {"grids": {c: store.grid_to_json(before.get(c)) for c in codes},
                            "workers": {}},
                           {"grids": {c: store.grid_to_json(after.get(c)) for c in codes},
                            "workers": {}}, principal.name)
            store.bump(conn, draft)
            accounts.insert_audit(conn, [audit_entry(
                Actor.of(principal, client), "write", f"draft {draft} import",
                divisions=[community], detail=source)])
            out.append(diff(conn, principal, draft, cache))
        store.drop_stage(conn)
        if dry_run:
            transaction.rollback()
    return out
