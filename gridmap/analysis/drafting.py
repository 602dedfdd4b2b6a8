"""Edits of a draft partition and its live statistics: pure functions on shapely geometry.

A draft holds the grids of a community (or of a township's communities) in EPSG:4326. Every
edit works on the stored coordinates themselves, never on a reprojected copy, so that the
grids an edit leaves alone and the grids it changes keep sharing their edges exactly:

- *split* cuts a grid with a line (``shapely.ops.split``): the two pieces share the cut;
- *merge* unions adjacent grids of one community;
- *move_vertex* moves a vertex in every grid that has it (a neighbour whose edge passes
  through the point without a vertex there gets one first, ``shapely.snap``), so both sides
  of a shared edge move together; a move that makes a grid cross itself, overlap a third
  grid or leave its community is refused;
- *paint* hands a region (H3 cells clipped to the community, or a drawn polygon such as a
  building or a household cluster) to one grid and cuts it out of the others, with the
  same region on both sides;
- *add_micro* draws a micro-grid (微网格) inside a grid, clipped to it and to its siblings.

An edit returns the grids it changes (``None``: the grid retires) or raises
:class:`EditError` naming what to fix; it never returns a partial change. Whether the result
still partitions the community is then measured by :func:`draft_stats` with
:func:`gridmap.analysis.partition.check_partition`, the same check publishing applies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from pyproj import CRS, Transformer
from shapely.ops import split as split_by

from gridmap.analysis.frames import utm_of_bounds
from gridmap.analysis.partition import partition_defects
from gridmap.domain.codes import grid_code, reading_order
from gridmap.domain.standards import GridStandard

# 1e-10 square degrees is about 1 m² at the latitudes of China: less is floating-point noise
NOISE_AREA_DEG2 = 1e-10
# a vertex the client sends back matches a stored one within about a centimetre
VERTEX_TOLERANCE_DEG = 1e-7
KEEP_SHARE = 0.8  # a piece keeping this share of a split grid keeps its code
BLOCKING = ("invalid", "gap", "overlap", "outside")


class EditError(ValueError):
    """An edit that cannot be made as asked; the message says what to fix."""


@dataclass(frozen=True)
class DraftGrid:
    code: str
    name: str
    kind: str
    community_code: str
    parent_grid_code: str | None
    locked: bool
    geom: shapely.Geometry  # MultiPolygon, EPSG:4326


Changes = dict[str, DraftGrid | None]  # code → the grid after the edit (None: retired)


@dataclass(frozen=True)
class Households:
    """The households of a draft's area, as arrays (one row per household)."""

    ids: NDArray[np.object_]
    lon: NDArray[np.float64]
    lat: NDArray[np.float64]
    residents: NDArray[np.int64]
    vulnerable: NDArray[np.bool_]  # any care flag

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> Households:
        """From columns id, lon, lat, residents, vulnerable."""
        return cls(frame["id"].to_numpy(object), frame["lon"].to_numpy(float),
                   frame["lat"].to_numpy(float), frame["residents"].to_numpy(np.int64),
                   frame["vulnerable"].to_numpy(bool))


def multi(geom: shapely.Geometry) -> shapely.Geometry:
    """*geom*'s polygons as one MultiPolygon, without noise: parts and holes under about a
    square metre (left by floating point where edges meet) are dropped."""
    polys = []
    for part in shapely.get_parts(shapely.make_valid(geom)):
        if part.geom_type == "MultiPolygon" or part.geom_type == "GeometryCollection":
            polys += [p for p in shapely.get_parts(part) if p.geom_type == "Polygon"]
        elif part.geom_type == "Polygon":
            polys.append(part)
    kept = []
    for poly in polys:
        if poly.area < NOISE_AREA_DEG2:
            continue
        holes = [r for r in poly.interiors if shapely.Polygon(r).area >= NOISE_AREA_DEG2]
        kept.append(shapely.Polygon(poly.exterior, holes))
    return shapely.MultiPolygon(kept)


def pieces(geom: shapely.Geometry) -> int:
    return len(shapely.get_parts(multi(geom)))


def next_codes(community: str, used: Iterable[str], geoms: Sequence[shapely.Geometry]
               ) -> list[str]:
    """Fresh codes for *geoms* (new grids of *community*): the sequences after the highest
    ever used, in reading order (rows north→south, each row west→east)."""
    if not geoms:
        return []
    mine = [int(c[12:]) for c in used if c.startswith(community) and len(c) == 15]
    start = max(mine, default=0) + 1
    if start + len(geoms) - 1 > 999:
        raise EditError(f"community {community} has no free grid sequence left (999 used)")
    cents = shapely.centroid(np.asarray(geoms, dtype=object))
    xs, ys = shapely.get_x(cents).tolist(), shapely.get_y(cents).tolist()
    sizes = np.sqrt(shapely.area(np.asarray(geoms, dtype=object)))
    order = reading_order(xs, ys, band=0.5 * float(np.median(sizes)))
    out = [""] * len(geoms)
    for offset, i in enumerate(order):
        out[i] = grid_code(community, start + offset)
    return out


def _editable(grids: Mapping[str, DraftGrid], code: str) -> DraftGrid:
    grid = grids.get(code)
    if grid is None:
        raise EditError(f"the draft has no grid {code}")
    if grid.locked:
        raise EditError(f"grid {code} is locked: unlock it first")
    return grid


def _children_to(grids: Mapping[str, DraftGrid], old: Iterable[str],
                 new: Mapping[str, DraftGrid], changes: Changes) -> None:
    """Micro- and exclusive grids under retired grids go to the new grid that holds most of
    them."""
    old = set(old)
    for child in grids.values():
        if child.parent_grid_code in old and child.code not in changes:
            best = max(new.values(), key=lambda g: shapely.intersection(g.geom,
                                                                        child.geom).area)
            changes[child.code] = replace(child, parent_grid_code=best.code)


def _noded(geom: shapely.Geometry, others: Iterable[shapely.Geometry],
           tol: float = VERTEX_TOLERANCE_DEG) -> shapely.Geometry:
    """*geom* with a vertex wherever a vertex of *others* lies on its boundary (a
    T-junction becomes a shared vertex), so a later move of either side keeps them joined."""
    near = [o for o in others if shapely.distance(o, geom) <= tol]
    if not near:
        return geom
    points = shapely.multipoints(np.vstack([shapely.get_coordinates(o) for o in near]))
    return shapely.snap(geom, points, tol)


def node_neighbours(grids: Mapping[str, DraftGrid], changes: Changes,
                    tol: float = VERTEX_TOLERANCE_DEG) -> Changes:
    """*changes* plus the neighbours that need the changed grids' new vertices on their
    shared edges (their shape is the same; only a vertex is added)."""
    out = dict(changes)
    new = [g.geom for g in changes.values() if g is not None]
    for code, grid in grids.items():
        if code in changes or grid.kind == "micro":
            continue
        noded = _noded(grid.geom, new, tol)
        if noded is not grid.geom and len(shapely.get_coordinates(noded)) != len(
                shapely.get_coordinates(grid.geom)):
            out[code] = replace(grid, geom=multi(noded))
    return out


def split(grids: Mapping[str, DraftGrid], code: str, line: shapely.Geometry, *,
          used: Iterable[str]) -> Changes:
    """Cut grid *code* in two along *line*. A piece holding 80 % of the grid keeps its
    code; otherwise both pieces are new grids with the next free codes (the grid retires)."""
    grid = _editable(grids, code)
    if line.geom_type != "LineString" or not line.is_valid or line.length == 0:
        raise EditError("the split line must be a LineString of two or more distinct points")
    if not line.intersects(grid.geom):
        raise EditError(f"the split line does not reach grid {code}: draw it across the grid")
    parts = [p for p in shapely.get_parts(split_by(grid.geom, line))
             if p.area >= NOISE_AREA_DEG2]
    if len(parts) < 2:
        raise EditError(f"the split line does not cross grid {code} from one edge to "
                        "another: extend both ends beyond the grid")
    if len(parts) > 2:
        raise EditError(f"the split line cuts grid {code} into {len(parts)} pieces: draw a "
                        "line that crosses it once, into two")
    parts.sort(key=lambda p: -p.area)
    total = grid.geom.area
    keep = parts[0].area >= KEEP_SHARE * total
    fresh = parts[1:] if keep else parts
    codes = next_codes(grid.community_code, set(used) | set(grids), fresh)
    changes: Changes = {}
    new: dict[str, DraftGrid] = {}
    if keep:
        new[code] = replace(grid, geom=multi(parts[0]))
    else:
        changes[code] = None
    for i, (c, part) in enumerate(zip(codes, fresh, strict=True)):
        name = grid.name if (not keep and i == 0) else f"{grid.name}-{c[-3:]}"
        new[c] = DraftGrid(c, name, grid.kind, grid.community_code, grid.parent_grid_code,
                           False, multi(part))
    changes.update(new)
    if not keep:
        _children_to(grids, [code], new, changes)
    return node_neighbours(grids, changes)


def merge(grids: Mapping[str, DraftGrid], codes: Sequence[str], *, used: Iterable[str]
          ) -> Changes:
    """Merge adjacent grids of one community into a new grid (the next free code)."""
    codes = list(dict.fromkeys(codes))
    if len(codes) < 2:
        raise EditError("name two or more grids to merge")
    members = [_editable(grids, c) for c in codes]
    communities = {g.community_code for g in members}
    if len(communities) > 1:
        raise EditError("grids of different communities cannot be merged: "
                        + ", ".join(f"{g.code} is in {g.community_code}" for g in members))
    kinds = {g.kind for g in members}
    if len(kinds) > 1:
        raise EditError(f"grids of different kinds cannot be merged ({', '.join(kinds)})")
    union = multi(shapely.union_all([g.geom for g in members]))
    if len(shapely.get_parts(union)) > 1:
        raise EditError(f"grids {', '.join(codes)} do not all share an edge: merge "
                        "neighbours only")
    first = members[0]
    (new_code,) = next_codes(first.community_code, set(used) | set(grids), [union])
    merged = DraftGrid(new_code, first.name, first.kind, first.community_code,
                       first.parent_grid_code, False, union)
    changes: Changes = {c: None for c in codes}
    changes[new_code] = merged
    _children_to(grids, codes, {new_code: merged}, changes)
    return changes


def _has_vertex(geom: shapely.Geometry, at: shapely.Point, tol: float) -> bool:
    xy = shapely.get_coordinates(geom)
    return bool(np.any(np.hypot(xy[:, 0] - at.x, xy[:, 1] - at.y) <= tol))


def move_vertex(grids: Mapping[str, DraftGrid], boundaries: Mapping[str, shapely.Geometry],
                at: tuple[float, float], to: tuple[float, float], *,
                tol: float = VERTEX_TOLERANCE_DEG) -> Changes:
    """Move the vertex at *at* to *to* in every grid that has it (and in every grid whose
    edge runs through it), so neighbours stay neighbours."""
    if not (np.isfinite(at).all() and np.isfinite(to).all()):
        raise EditError("vertex coordinates must be finite numbers")
    point, target = shapely.Point(at), shapely.Point(to)
    if shapely.distance(point, target) <= tol:
        raise EditError("the vertex is already there")
    owners = [g for g in grids.values() if _has_vertex(g.geom, point, tol)]
    if not owners:
        raise EditError(f"no draft grid has a vertex at {at[0]:.7f}, {at[1]:.7f}: pick a "
                        "vertex of the drawn grids")
    for code, boundary in boundaries.items():
        if shapely.distance(boundary.boundary, point) <= tol:
            raise EditError(f"the vertex lies on the boundary of community {code}: moving it "
                            "would open a gap or cross into the next community (change "
                            "community boundaries with the boundary data)")
    touching = [g for g in grids.values() if g not in owners
                and shapely.distance(g.geom.boundary, point) <= tol]
    changes: Changes = {}
    for grid in [*owners, *touching]:
        if grid.locked:
            raise EditError(f"grid {grid.code} shares the vertex and is locked: unlock it "
                            "first")
        geom = grid.geom if grid in owners else shapely.snap(grid.geom, point, tol)
        geom = _noded(geom, [g.geom for g in grids.values() if g.code != grid.code], tol)

        def move(xy: NDArray[np.float64]) -> NDArray[np.float64]:
            hit = np.hypot(xy[:, 0] - at[0], xy[:, 1] - at[1]) <= tol
            xy = xy.copy()
            xy[hit] = to
            return xy

        moved = shapely.transform(geom, move)
        if not moved.is_valid:
            raise EditError(f"moving the vertex there makes grid {grid.code} cross itself "
                            f"({shapely.is_valid_reason(moved)}): move it less far")
        home = boundaries.get(grid.community_code)
        if home is not None and shapely.difference(moved, home).area >= NOISE_AREA_DEG2:
            raise EditError(f"moving the vertex there takes grid {grid.code} outside its "
                            "community")
        changes[grid.code] = replace(grid, geom=multi(moved))
    moved_codes = set(changes)
    for code, new in changes.items():
        assert new is not None
        for other in grids.values():
            if (other.code in moved_codes or new.kind != "comprehensive"
                    or other.kind != "comprehensive"):
                continue
            if shapely.intersection(new.geom, other.geom).area >= NOISE_AREA_DEG2:
                raise EditError(f"moving the vertex there makes grid {code} overlap grid "
                                f"{other.code}: move it less far")
    return changes


def cells_to_region(cells: Sequence[str]) -> tuple[shapely.Geometry, list[shapely.Geometry]]:
    """The union of H3 cells (and each cell's polygon), lon/lat."""
    polys = []
    for cell in cells:
        if not isinstance(cell, str) or not h3.is_valid_cell(cell):
            raise EditError(f"{cell!r} is not an H3 cell index")
        ring = [(lng, lat) for lat, lng in h3.cell_to_boundary(cell)]
        polys.append(shapely.Polygon(ring))
    if not polys:
        raise EditError("name at least one H3 cell to paint")
    return shapely.union_all(polys), polys


# What an edit that takes land says when a neighbour cannot give it up: (the neighbour is
# locked, the neighbour would vanish); {code} is the grid the edit draws, {other} the neighbour.
TakesLand = Literal["paint", "reshape", "create"]
_REFUSALS: dict[TakesLand, tuple[str, str]] = {
    "paint": ("the painted area takes land of grid {other}, which is locked: unlock it or "
              "paint elsewhere",
              "the painted area takes all of grid {other}: merge the grids instead"),
    "reshape": ("the new shape of grid {code} takes land of grid {other}, which is locked: "
                "unlock it first",
                "the new shape of grid {code} takes all of grid {other}: merge the grids "
                "instead"),
    "create": ("the new grid takes land of grid {other}, which is locked: unlock it or draw "
               "elsewhere",
               "the new grid covers all of grid {other}: change that grid's shape instead"),
}


def _cut_out(grids: Mapping[str, DraftGrid], land: shapely.Geometry, *, community: str,
             edit: TakesLand, code: str) -> Changes:
    """The comprehensive grids of *community* (but grid *code*) that *land* overlaps, less
    *land*: the neighbours' side of an edit giving *land* to grid *code*. Refused, in the
    words of the *edit*, when one of them is locked or would be left with nothing."""
    locked, emptied = _REFUSALS[edit]
    changes: Changes = {}
    for other in grids.values():
        if (other.code == code or other.kind != "comprehensive"
                or other.community_code != community
                or shapely.intersection(other.geom, land).area < NOISE_AREA_DEG2):
            continue
        if other.locked:
            raise EditError(locked.format(code=code, other=other.code))
        rest = multi(shapely.difference(other.geom, land))
        if rest.is_empty:
            raise EditError(emptied.format(code=code, other=other.code))
        changes[other.code] = replace(other, geom=rest)
    return changes


def paint(grids: Mapping[str, DraftGrid], boundaries: Mapping[str, shapely.Geometry],
          target: str, region: shapely.Geometry, *,
          cells: Sequence[shapely.Geometry] = (), labels: Sequence[str] = ()) -> Changes:
    """Give *region* (clipped to the target's community) to grid *target*, cutting it out of
    the community's other comprehensive grids. Cells or a region outside the community are
    refused, as is a region that does not touch the target or takes a locked grid's land."""
    grid = _editable(grids, target)
    if grid.kind != "comprehensive":
        raise EditError(f"grid {target} is a {grid.kind} grid: paint comprehensive grids")
    if not region.is_valid:
        raise EditError(f"the painted area is not a valid polygon "
                        f"({shapely.is_valid_reason(region)})")
    home = boundaries[grid.community_code]
    outside = [label for poly, label in zip(cells, labels, strict=True)
               if shapely.intersection(poly, home).area < 0.01 * poly.area]
    if outside:
        raise EditError(f"cell(s) {', '.join(outside[:10])} lie outside community "
                        f"{grid.community_code}: paint inside it")
    clipped = shapely.intersection(region, home)
    if clipped.area < NOISE_AREA_DEG2:
        raise EditError(f"the painted area lies outside community {grid.community_code}: "
                        "paint inside it")
    if not cells and shapely.difference(region, home).area >= max(NOISE_AREA_DEG2,
                                                                   0.01 * region.area):
        raise EditError(f"part of the painted area lies outside community "
                        f"{grid.community_code}: paint inside it")
    grown = multi(shapely.union(grid.geom, clipped))
    if len(shapely.get_parts(grown)) > 1:
        raise EditError(f"the painted area does not touch grid {target}: paint next to it")
    changes: Changes = {target: replace(grid, geom=grown)}
    changes.update(_cut_out(grids, clipped, community=grid.community_code, edit="paint",
                            code=target))
    if len(changes) == 1 and grown.equals(grid.geom):
        raise EditError(f"the painted area is in grid {target} already")
    return node_neighbours(grids, changes)


def add_micro(grids: Mapping[str, DraftGrid], parent: str, area: shapely.Geometry, *,
              used: Iterable[str], name: str | None = None) -> Changes:
    """A micro-grid (微网格) inside grid *parent*: *area* clipped to the parent and kept clear
    of the parent's other micro-grids, coded with the community's next free sequence."""
    grid = grids.get(parent)
    if grid is None:
        raise EditError(f"the draft has no grid {parent}")
    if grid.kind != "comprehensive":
        raise EditError(f"grid {parent} is a {grid.kind} grid: micro-grids go inside "
                        "comprehensive grids")
    if not area.is_valid:
        raise EditError(f"the micro-grid is not a valid polygon "
                        f"({shapely.is_valid_reason(area)})")
    siblings = [g.geom for g in grids.values()
                if g.kind == "micro" and g.parent_grid_code == parent]
    free = shapely.difference(grid.geom, shapely.union_all(siblings)) if siblings else grid.geom
    clipped = multi(shapely.intersection(area, free))
    if clipped.is_empty:
        raise EditError(f"the micro-grid lies outside grid {parent} (or on its other "
                        "micro-grids): draw it inside")
    if len(shapely.get_parts(clipped)) > 1:
        raise EditError("the micro-grid falls apart into pieces once clipped to its grid: "
                        "draw one piece")
    (code,) = next_codes(grid.community_code, set(used) | set(grids), [clipped])
    label = (name or f"{grid.name}微网格{code[-3:]}").strip()
    if not label or "\x00" in label or len(label) > 200:
        raise EditError("a grid name is 1 to 200 characters, without NUL")
    return {code: DraftGrid(code, label, "micro", grid.community_code, parent, False, clipped)}


def remove_micro(grids: Mapping[str, DraftGrid], code: str) -> Changes:
    grid = _editable(grids, code)
    if grid.kind != "micro":
        raise EditError(f"grid {code} is a {grid.kind} grid: only micro-grids are removed "
                        "this way (merge comprehensive grids)")
    return {code: None}


# --- whole-feature edits (standard clients: OGC API Features Part 4) ---------------------

def _heir(grids: Mapping[str, DraftGrid], piece: shapely.Geometry, grid: DraftGrid,
          skip: Iterable[str] = ()) -> DraftGrid | None:
    """The comprehensive grid of *grid*'s community (not *grid*, not *skip*) sharing the
    longest edge with *piece*: the one that takes land *grid* gives up."""
    skip = {grid.code, *skip}
    best, longest = None, 0.0
    for other in grids.values():
        if (other.code in skip or other.kind != "comprehensive"
                or other.community_code != grid.community_code):
            continue
        shared = shapely.intersection(other.geom.boundary, piece.boundary).length
        if shared > longest:
            best, longest = other, shared
    return best


def reshape(grids: Mapping[str, DraftGrid], boundaries: Mapping[str, shapely.Geometry],
            code: str, geom: shapely.Geometry) -> Changes:
    """Grid *code* takes the shape *geom*, and the partition stays whole: land it gains is
    cut out of its neighbours (as :func:`paint` does), land it gives up goes to the
    neighbour sharing the longest edge with each piece. Refused when that is not possible:
    the shape leaves the community, gives up a piece no neighbour touches, or takes a locked
    grid's land or all of a grid. A micro- or exclusive grid takes the shape clipped to its
    parent (micro) or community (exclusive) without changing any other grid."""
    grid = _editable(grids, code)
    if not geom.is_valid:
        raise EditError(f"the new shape of grid {code} is not a valid polygon "
                        f"({shapely.is_valid_reason(geom)})")
    home = boundaries.get(grid.community_code)
    if home is None:
        raise EditError(f"community {grid.community_code} of grid {code} is not in the draft")
    if shapely.difference(geom, home).area >= max(NOISE_AREA_DEG2, 0.001 * geom.area):
        raise EditError(f"the new shape of grid {code} reaches outside its community "
                        f"{grid.community_code}: keep it inside")
    if grid.kind != "comprehensive":
        return {code: _inside(grids, grid, geom, home)}
    new = multi(shapely.intersection(geom, home))
    if len(shapely.get_parts(new)) != 1:
        raise EditError(f"the new shape of grid {code} is {pieces(new)} pieces: a grid is one "
                        "piece")
    # the land it gains, cut out of its neighbours
    changes = _cut_out(grids, new, community=grid.community_code, edit="reshape", code=code)
    work = {**grids, **{c: g for c, g in changes.items() if g is not None}}
    lost = multi(shapely.difference(grid.geom, new))
    for piece in shapely.get_parts(lost):  # the land it gives up, to a neighbour each
        heir = _heir(work, piece, grid)
        if heir is None or shapely.intersection(heir.geom.boundary, piece.boundary
                                                ).length == 0:
            at = piece.representative_point()
            raise EditError(f"the new shape of grid {code} gives up land at {at.x:.6f}, "
                            f"{at.y:.6f} that no neighbouring grid touches: it would be a gap")
        if heir.locked:
            raise EditError(f"the land grid {code} gives up goes to grid {heir.code}, which "
                            "is locked: unlock it first")
        changes[heir.code] = work[heir.code] = replace(
            heir, geom=multi(shapely.union(heir.geom, piece)))
    changes[code] = replace(grid, geom=new)
    return node_neighbours(grids, changes)


def _inside(grids: Mapping[str, DraftGrid], grid: DraftGrid, geom: shapely.Geometry,
            home: shapely.Geometry) -> DraftGrid:
    """*grid* (micro or exclusive) with *geom* clipped to where it may lie."""
    parent = grids.get(grid.parent_grid_code or "")
    room = parent.geom if grid.kind == "micro" and parent is not None else home
    clipped = multi(shapely.intersection(geom, room))
    if clipped.is_empty or clipped.area < 0.99 * geom.area:
        where = f"grid {parent.code}" if room is not home and parent else "its community"
        raise EditError(f"the new shape of {grid.kind} grid {grid.code} reaches outside "
                        f"{where}: keep it inside")
    return replace(grid, geom=clipped)


def retire(grids: Mapping[str, DraftGrid], code: str) -> tuple[Changes, str | None]:
    """Take grid *code* out of the draft; a comprehensive grid's land goes to the neighbour
    sharing the longest edge with it (which keeps its code), and its micro- and exclusive
    grids with it. Returns (the changes, the grid that took the land: None for a micro- or
    exclusive grid)."""
    grid = _editable(grids, code)
    if grid.kind != "comprehensive":
        return {code: None}, grid.parent_grid_code
    heir = _heir(grids, grid.geom, grid)
    if heir is None:
        raise EditError(f"grid {code} has no neighbouring grid in community "
                        f"{grid.community_code} to take its land: it is the last one")
    if heir.locked:
        raise EditError(f"grid {code}'s land would go to grid {heir.code}, which is locked: "
                        "unlock it first")
    grown = replace(heir, geom=multi(shapely.union(heir.geom, grid.geom)))
    changes: Changes = {code: None, heir.code: grown}
    _children_to(grids, [code], {heir.code: grown}, changes)
    return changes, heir.code


def create(grids: Mapping[str, DraftGrid], boundaries: Mapping[str, shapely.Geometry], *,
           community: str, kind: str, geom: shapely.Geometry, name: str,
           parent: str | None, used: Iterable[str]) -> Changes:
    """A new grid of *community* with the next free code: a comprehensive grid takes its
    land from the grids there now (as :func:`paint` does; none may vanish or be locked), a
    micro-grid goes inside *parent* (:func:`add_micro`), an exclusive grid lies inside a
    comprehensive one, on top of it."""
    home = boundaries.get(community)
    if home is None:
        raise EditError(f"community {community} is not in this draft: a new grid goes in "
                        f"one of {', '.join(sorted(boundaries))}")
    if not geom.is_valid:
        raise EditError(f"the new grid is not a valid polygon ({shapely.is_valid_reason(geom)})")
    if not name.strip() or "\x00" in name or len(name) > 200:
        raise EditError("a grid name is 1 to 200 characters, without NUL")
    if kind == "micro":
        if parent is None:
            raise EditError("a micro-grid needs parent_grid_code: the grid it lies in")
        return add_micro(grids, parent, geom, used=used, name=name)
    if shapely.difference(geom, home).area >= max(NOISE_AREA_DEG2, 0.001 * geom.area):
        raise EditError(f"the new grid reaches outside community {community}: keep it inside")
    shape_ = multi(shapely.intersection(geom, home))
    if len(shapely.get_parts(shape_)) != 1:
        raise EditError("the new grid is not one piece: draw one polygon")
    (code,) = next_codes(community, set(used) | set(grids), [shape_])
    if kind == "exclusive":
        hosts = [g for g in grids.values() if g.kind == "comprehensive"
                 and shapely.intersection(g.geom, shape_).area >= 0.99 * shape_.area]
        if parent is not None and parent not in {g.code for g in hosts}:
            raise EditError(f"the new exclusive grid does not lie inside grid {parent}")
        host = parent or (hosts[0].code if hosts else None)
        if host is None:
            raise EditError("an exclusive grid lies inside one comprehensive grid: draw it "
                            "inside one")
        return {code: DraftGrid(code, name.strip(), "exclusive", community, host, False,
                                shape_)}
    if kind != "comprehensive":
        raise EditError(f"kind is comprehensive, exclusive or micro, not {kind!r}")
    changes = _cut_out(grids, shape_, community=community, edit="create", code=code)
    changes[code] = DraftGrid(code, name.strip(), "comprehensive", community, None, False,
                              shape_)
    return node_neighbours(grids, changes)


def replace_partition(grids: Mapping[str, DraftGrid], boundaries: Mapping[str, shapely.Geometry],
                      community: str, shapes: Sequence[shapely.Geometry], *,
                      used: Iterable[str], name: str) -> Changes:
    """The community's unlocked comprehensive grids replaced by *shapes* (a suggested
    partition, lon/lat), clipped to the community and clear of the locked grids. A shape
    keeps the code of the grid it shares most of its land with, both ways (each holds over
    half of the other); the rest take the next free codes. Micro- and exclusive grids go to
    the new grid holding most of them."""
    home = boundaries.get(community)
    if home is None:
        raise EditError(f"community {community} is not in this draft")
    mine = [g for g in grids.values() if g.community_code == community
            and g.kind == "comprehensive"]
    locked = [g.geom for g in mine if g.locked]
    room = shapely.difference(home, shapely.union_all(locked)) if locked else home
    clipped = [multi(shapely.intersection(s, room)) for s in shapes]
    clipped = [c for c in clipped if not c.is_empty]
    if not clipped:
        raise EditError(f"the suggestion holds no land of community {community}")
    old = [g for g in mine if not g.locked]
    kept: dict[int, str] = {}
    for g in old:
        shares = [shapely.intersection(g.geom, c).area for c in clipped]
        best = int(np.argmax(shares))
        if (best not in kept and shares[best] > 0.5 * g.geom.area
                and shares[best] > 0.5 * clipped[best].area):
            kept[best] = g.code
    fresh = [i for i in range(len(clipped)) if i not in kept]
    codes = dict(zip(fresh, next_codes(community, set(used) | set(grids),
                                       [clipped[i] for i in fresh]), strict=True))
    changes: Changes = {g.code: None for g in old}
    new: dict[str, DraftGrid] = {}
    for i, geom in enumerate(clipped):
        code = kept.get(i) or codes[i]
        label = grids[code].name if code in grids else f"{name}{code[-3:]}"
        new[code] = DraftGrid(code, label, "comprehensive", community, None, False, geom)
    changes.update(new)
    _children_to(grids, [g.code for g in old], new, changes)
    return changes


# --- statistics -------------------------------------------------------------------------

@dataclass
class Measure:
    """What a draft's statistics need besides its grids, kept per open draft: a metric CRS
    and the communities in it (lon/lat and metric)."""

    crs: CRS
    to_metric: Transformer
    to_lonlat: Transformer
    codes: NDArray[np.str_]
    metric_geoms: NDArray[np.object_]
    urban_rural: dict[str, str]
    boundaries: dict[str, shapely.Geometry]  # code → lon/lat geometry

    @classmethod
    def of(cls, communities: gpd.GeoDataFrame) -> Measure:
        """From a frame of ``code``, ``urban_rural`` and geometry in EPSG:4326."""
        crs = utm_of_bounds(communities.total_bounds)
        to_metric = Transformer.from_crs(4326, crs, always_xy=True)
        to_lonlat = Transformer.from_crs(crs, 4326, always_xy=True)
        codes = communities["code"].astype(str).to_numpy()
        geoms = np.asarray(communities.geometry.values, dtype=object)
        out = cls(crs, to_metric, to_lonlat, codes, geoms,
                  dict(zip(codes, communities["urban_rural"], strict=True)),
                  dict(zip(codes, geoms, strict=True)))
        out.metric_geoms = out.metric(list(geoms))
        return out

    def metric(self, geoms: Sequence[shapely.Geometry]) -> NDArray[np.object_]:
        return _project(np.asarray(geoms, dtype=object), self.to_metric)

    def lonlat(self, geoms: Sequence[shapely.Geometry]) -> NDArray[np.object_]:
        return _project(np.asarray(geoms, dtype=object), self.to_lonlat)


def _project(geoms: NDArray[np.object_], transformer: Transformer) -> NDArray[np.object_]:
    out: NDArray[np.object_] = shapely.transform(geoms, lambda xy: np.column_stack(
        transformer.transform(xy[:, 0], xy[:, 1])))
    return out


def assign_points(grids: Sequence[DraftGrid], households: Households) -> NDArray[np.object_]:
    """The grid of each household by the store's rule (a point in the closed polygon; an
    exclusive grid before a comprehensive one, then the lowest code); None outside."""
    return _assign(grids, households)[0]


def _assign(grids: Sequence[DraftGrid], households: Households
            ) -> tuple[NDArray[np.object_], NDArray[np.int64]]:
    """(the grid code of each household, the position in *grids*: -1 outside)."""
    order = sorted((i for i, g in enumerate(grids) if g.kind != "micro"),
                   key=lambda i: (grids[i].kind != "exclusive", grids[i].code))
    where = np.full(len(households.ids), -1, dtype=np.int64)
    free = np.ones(len(where), dtype=bool)
    for i in order:
        geom = grids[i].geom
        minx, miny, maxx, maxy = geom.bounds
        idx = np.flatnonzero(free & (households.lon >= minx) & (households.lon <= maxx)
                             & (households.lat >= miny) & (households.lat <= maxy))
        if not len(idx):
            continue
        shapely.prepare(geom)
        hit = idx[shapely.intersects_xy(geom, households.lon[idx], households.lat[idx])]
        where[hit] = i
        free[hit] = False
    codes = np.array([g.code for g in grids] + [None], dtype=object)[where]
    return codes, where


def draft_stats(grids: Sequence[DraftGrid], households: Households, measure: Measure, *,
                workers: Mapping[str, tuple[str | None, str]] | None = None,
                standard: GridStandard | None = None, tolerance: float = 0.1,
                min_area: float = 1.0) -> tuple[list[dict[str, Any]], int, list[dict[str, Any]]]:
    """Per draft grid: households, residents, vulnerable households (any care flag),
    workers, band and status, compactness, area; and the partition defects of the draft.

    *workers* maps a worker id to (draft grid, role). Returns (a row per grid, the number
    of households in no grid, the defects as
    :func:`~gridmap.analysis.partition.partition_defects` gives them, located in EPSG:4326).

    Examples
    --------
    >>> com = gpd.GeoDataFrame({"code": ["610199001001"], "urban_rural": ["urban"]},
    ...     geometry=[shapely.box(109, 34, 109.01, 34.01)], crs=4326)
    >>> grids = [DraftGrid("610199001001001", "A", "comprehensive", "610199001001", None,
    ...     False, shapely.MultiPolygon([shapely.box(109, 34, 109.005, 34.01)]))]
    >>> hh = Households(np.array(["h1"], dtype=object), np.array([109.001]),
    ...     np.array([34.001]), np.array([3]), np.array([True]))
    >>> rows, outside, defects = draft_stats(grids, hh, Measure.of(com))
    >>> [(r["code"], r["households"], r["status"]) for r in rows], outside
    ([('610199001001001', 1, 'below')], 0)
    >>> [d["defect"] for d in defects]
    ['gap']
    """
    standard = standard or GridStandard()
    grids = list(grids)
    n_grids = len(grids)
    _, where = _assign(grids, households)
    inside = where >= 0
    counts = np.bincount(where[inside], minlength=n_grids)
    residents = np.bincount(where[inside], weights=households.residents[inside],
                            minlength=n_grids)
    vulnerable = np.bincount(where[inside], weights=households.vulnerable[inside],
                             minlength=n_grids)
    for i, g in enumerate(grids):  # micro-grids count what lies in them, below their parent
        if g.kind == "micro":
            shapely.prepare(g.geom)
            hit = shapely.intersects_xy(g.geom, households.lon, households.lat)
            counts[i], residents[i] = hit.sum(), households.residents[hit].sum()
            vulnerable[i] = households.vulnerable[hit].sum()
    metric = measure.metric([g.geom for g in grids])
    area = shapely.area(metric)
    perimeter = shapely.length(metric)
    staff: dict[str, list[str]] = {}
    for code, role in (workers or {}).values():
        if code is not None:
            staff.setdefault(code, []).append(role)
    rows = []
    for i, g in enumerate(grids):
        n, res = int(counts[i]), int(residents[i])
        urban = measure.urban_rural.get(g.community_code)
        low, high = standard.band(urban, g.kind)
        most = standard.max_residents(urban)
        status = ("not_banded" if g.kind == "exclusive" else "over_residents"
                  if res > most and g.kind == "comprehensive" else "above" if n > high
                  else "below" if n < low else "within")
        roles = staff.get(g.code, [])
        rows.append({
            "code": g.code, "name": g.name, "kind": g.kind,
            "community_code": g.community_code, "parent_grid_code": g.parent_grid_code,
            "locked": g.locked, "households": n, "residents": res,
            "vulnerable": int(vulnerable[i]), "workers": len(roles),
            "full_time_workers": roles.count("full_time"), "band_low": low,
            "band_high": high, "max_residents": most, "status": status,
            "area_km2": float(area[i]) / 1e6,
            "compactness": float(4 * np.pi * area[i] / perimeter[i] ** 2)
            if perimeter[i] else 0.0})
    comp = np.array([g.kind == "comprehensive" for g in grids], dtype=bool)
    defects = partition_defects(
        measure.codes, measure.metric_geoms,
        np.array([g.code for g in grids], dtype=str)[comp] if n_grids else
        np.array([], dtype=str), metric[comp] if n_grids else metric,
        tolerance=tolerance, min_area=min_area)
    if defects:
        located = measure.lonlat([d["geometry"] for d in defects])
        for d, geom in zip(defects, located, strict=True):
            d["geometry"] = geom
    return rows, int((~inside).sum()), defects
