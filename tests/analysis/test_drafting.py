"""Draft edits keep the partition: after each edit the grids still cover the community with
no gap or overlap (checked by the same function publishing uses), the land is conserved, and
bad edits raise EditError without a partial change."""

from __future__ import annotations

import geopandas as gpd
import h3
import numpy as np
import pytest
import shapely

from gridmap.analysis import drafting
from gridmap.analysis.drafting import DraftGrid, EditError, Households, Measure

COM = "610199001001"
X0, Y0, D = 109.0, 34.2, 0.01


def community() -> tuple[dict[str, DraftGrid], Measure]:
    """A 2 × 2 grid of squares partitioning a square community, with one interior vertex
    shared by all four."""
    boundary = shapely.box(X0, Y0, X0 + 2 * D, Y0 + 2 * D)
    grids = {}
    for i, (x, y) in enumerate([(0, 1), (1, 1), (0, 0), (1, 0)], start=1):
        code = f"{COM}{i:03d}"
        grids[code] = DraftGrid(code, f"G{i}", "comprehensive", COM, None, False,
                                shapely.MultiPolygon([shapely.box(X0 + x * D, Y0 + y * D,
                                                                  X0 + (x + 1) * D,
                                                                  Y0 + (y + 1) * D)]))
    frame = gpd.GeoDataFrame({"code": [COM], "urban_rural": ["urban"]},
                             geometry=[boundary], crs=4326)
    return grids, Measure.of(frame)


def apply(grids: dict[str, DraftGrid], changes: drafting.Changes) -> dict[str, DraftGrid]:
    out = {c: g for c, g in grids.items() if c not in changes}
    out.update({c: g for c, g in changes.items() if g is not None})
    return out


def households(n: int = 2000) -> Households:
    rng = np.random.default_rng(3)
    return Households(np.arange(n).astype(object), rng.uniform(X0, X0 + 2 * D, n),
                      rng.uniform(Y0, Y0 + 2 * D, n), rng.integers(1, 5, n),
                      rng.random(n) < 0.1)


def assert_partition(grids: dict[str, DraftGrid], measure: Measure) -> None:
    rows, outside, defects = drafting.draft_stats(list(grids.values()), households(),
                                                  measure)
    assert [d for d in defects if d["defect"] in drafting.BLOCKING] == []
    assert outside == 0
    assert sum(r["households"] for r in rows) == 2000
    area = shapely.union_all([g.geom for g in grids.values()]).area
    assert area == pytest.approx((2 * D) ** 2, rel=1e-9)


def test_a_sequence_of_edits_never_opens_a_gap_or_an_overlap() -> None:
    grids, measure = community()
    used: set[str] = set(grids)
    line = shapely.LineString([(X0 + 0.3 * D, Y0 + D - 0.001), (X0 + 0.6 * D, Y0 + 2 * D + 1e-3)])
    changes = drafting.split(grids, f"{COM}001", line, used=used)
    assert changes[f"{COM}001"] is None  # two new grids, numbered W→E
    assert sorted(c for c in changes if c not in grids) == [f"{COM}005", f"{COM}006"]
    # the neighbour below gets the cut's end as a vertex of its edge, its shape unchanged
    assert changes[f"{COM}003"] is not None
    assert changes[f"{COM}003"].geom.equals(grids[f"{COM}003"].geom)
    grids = apply(grids, changes)
    assert_partition(grids, measure)

    grids = apply(grids, drafting.merge(grids, [f"{COM}006", f"{COM}002"], used=used))
    assert_partition(grids, measure)

    merged = next(c for c in grids if c > f"{COM}006")
    target = grids[f"{COM}004"]
    cell = h3.latlng_to_cell(Y0 + 0.5 * D, X0 + D, 11)  # on the edge of grids 003 and 004
    region, polys = drafting.cells_to_region(list(h3.grid_disk(cell, 1)))
    changes = drafting.paint(grids, measure.boundaries, target.code, region, cells=polys,
                             labels=["c"] * len(polys))
    assert f"{COM}003" in changes
    grids = apply(grids, changes)
    assert_partition(grids, measure)

    # the cut's end, moved deep into a grid that does not share it, would overlap it
    cut = next(tuple(xy) for xy in shapely.get_coordinates(grids[f"{COM}005"].geom)
               if abs(xy[1] - (Y0 + D)) < 1e-12 and xy[0] > X0 + 1e-9)
    with pytest.raises(EditError, match=r"cross itself|overlap"):
        drafting.move_vertex(grids, measure.boundaries, cut, (X0 + 1.5 * D, Y0 + 0.5 * D))
    # the centre vertex: every grid that meets there moves with it
    centre = (X0 + D, Y0 + D)
    changes = drafting.move_vertex(grids, measure.boundaries, centre,
                                   (X0 + 1.2 * D, Y0 + 0.9 * D))
    assert len(changes) >= 3
    grids = apply(grids, changes)
    assert_partition(grids, measure)
    assert merged in grids


def test_bad_edits_raise_and_change_nothing() -> None:
    grids, measure = community()
    before = dict(grids)
    with pytest.raises(EditError, match="does not reach"):
        drafting.split(grids, f"{COM}001", shapely.LineString([(0, 0), (1, 1)]), used=())
    with pytest.raises(EditError, match="from one edge to another"):
        drafting.split(grids, f"{COM}001", shapely.LineString(
            [(X0 - 1e-3, Y0 + 1.5 * D), (X0 + 0.5 * D, Y0 + 1.5 * D)]), used=())
    with pytest.raises(EditError, match="share an edge"):
        drafting.merge(grids, [f"{COM}001", f"{COM}004"], used=())
    with pytest.raises(EditError, match="boundary of community"):
        drafting.move_vertex(grids, measure.boundaries, (X0, Y0), (X0 + 1e-3, Y0 + 1e-3))
    far, polys = drafting.cells_to_region([h3.latlng_to_cell(39.9, 116.4, 9)])
    with pytest.raises(EditError, match="outside community"):
        drafting.paint(grids, measure.boundaries, f"{COM}001", far, cells=polys,
                       labels=["far"])
    locked = {**grids, f"{COM}002": DraftGrid(**{**grids[f"{COM}002"].__dict__,
                                                 "locked": True})}
    with pytest.raises(EditError, match="locked"):
        drafting.merge(locked, [f"{COM}001", f"{COM}002"], used=())
    assert grids == before


def test_micro_grids_sit_inside_their_grid_coded_under_the_community() -> None:
    grids, measure = community()
    area = shapely.box(X0, Y0, X0 + 0.4 * D, Y0 + 0.4 * D)
    changes = drafting.add_micro(grids, f"{COM}003", area, used=set(grids))
    (code,) = changes
    micro = changes[code]
    assert micro is not None and micro.kind == "micro" and micro.parent_grid_code == f"{COM}003"
    assert code == f"{COM}005"
    grids = apply(grids, changes)
    with pytest.raises(EditError, match="outside grid"):
        drafting.add_micro(grids, f"{COM}003", area, used=set(grids))  # taken already
    rows, _, defects = drafting.draft_stats(list(grids.values()), households(), measure)
    by = {r["code"]: r for r in rows}
    assert by[code]["band_low"] == 50 and 0 < by[code]["households"] < by[f"{COM}003"][
        "households"]
    assert [d for d in defects if d["defect"] in drafting.BLOCKING] == []


def test_whole_feature_edits_keep_the_partition() -> None:
    """What a standard client sends (OGC API Features Part 4): a new grid, a replaced shape
    that gains from one neighbour and gives up to another, a deleted grid."""
    grids, measure = community()
    home = measure.boundaries
    g1, g2, g3 = (f"{COM}{i:03d}" for i in (1, 2, 3))
    # a new comprehensive grid in the middle takes land from all four
    middle = shapely.box(X0 + 0.5 * D, Y0 + 0.5 * D, X0 + 1.5 * D, Y0 + 1.5 * D)
    made = drafting.create(grids, home, community=COM, kind="comprehensive", geom=middle,
                           name="中", parent=None, used=grids)
    new = next(c for c in made if c not in grids)
    assert new == f"{COM}005" and len(made) == 5
    grids = apply(grids, made)
    assert_partition(grids, measure)
    # a hole in G1 that no neighbour touches would be a gap: refused
    hole = shapely.box(X0 + 0.2 * D, Y0 + 1.7 * D, X0 + 0.3 * D, Y0 + 1.8 * D)
    with pytest.raises(EditError, match="gap"):
        drafting.reshape(grids, home, g1, shapely.difference(grids[g1].geom, hole))
    # grows east into G2, gives its south-west corner to G3 (the neighbour touching it)
    shape_ = shapely.difference(shapely.box(X0, Y0 + 1.1 * D, X0 + 1.2 * D, Y0 + 2 * D),
                                middle)
    changes = drafting.reshape(grids, home, g1, shape_)
    assert {g1, g2, g3} <= set(changes)
    grids = apply(grids, changes)
    assert_partition(grids, measure)
    assert shapely.equals(grids[g1].geom, drafting.multi(shape_))
    # outside the community, or swallowing a neighbour: refused
    with pytest.raises(EditError, match="outside"):
        drafting.reshape(grids, home, g1, shapely.box(X0 - D, Y0, X0 + D, Y0 + 2 * D))
    with pytest.raises(EditError, match="all of grid"):
        drafting.reshape(grids, home, g1, shapely.union(grids[g1].geom, grids[new].geom))
    # deleting the middle grid hands its land to the neighbour sharing the longest edge
    changes, heir = drafting.retire(grids, new)
    assert changes[new] is None and heir in changes
    grids = apply(grids, changes)
    assert new not in grids
    assert_partition(grids, measure)


def test_edits_that_take_land_refuse_a_locked_or_swallowed_neighbour_in_their_words() -> None:
    """Paint, a new shape and a new grid cut land out of the neighbours the same way; each
    refuses a locked neighbour and one it would leave with nothing, in its own words, which
    the catalogue carries in Chinese."""
    from gridmap import i18n

    grids, measure = community()
    home = measure.boundaries
    g1, g2 = f"{COM}001", f"{COM}002"
    into_g2 = shapely.box(X0 + 0.9 * D, Y0 + 1.2 * D, X0 + 1.3 * D, Y0 + 1.8 * D)
    all_g2 = shapely.union(grids[g2].geom, shapely.box(X0 + 0.9 * D, Y0 + D, X0 + D, Y0 + 2 * D))
    locked = {**grids, g2: DraftGrid(**{**grids[g2].__dict__, "locked": True})}
    refusals = [
        (lambda g, area: drafting.paint(g, home, g1, area),
         "the painted area takes land of grid {g2}, which is locked: unlock it or paint "
         "elsewhere", "the painted area takes all of grid {g2}: merge the grids instead"),
        (lambda g, area: drafting.reshape(g, home, g1, shapely.union(g[g1].geom, area)),
         "the new shape of grid {g1} takes land of grid {g2}, which is locked: unlock it "
         "first", "the new shape of grid {g1} takes all of grid {g2}: merge the grids instead"),
        (lambda g, area: drafting.create(g, home, community=COM, kind="comprehensive",
                                         geom=area, name="新", parent=None, used=g),
         "the new grid takes land of grid {g2}, which is locked: unlock it or draw elsewhere",
         "the new grid covers all of grid {g2}: change that grid's shape instead"),
    ]
    for edit, when_locked, when_swallowed in refusals:
        for frame, area, expected in ((locked, into_g2, when_locked),
                                      (grids, all_g2, when_swallowed)):
            with pytest.raises(EditError) as refused:
                edit(frame, area)
            message = str(refused.value)
            assert message == expected.format(g1=g1, g2=g2)
            chinese = i18n.translate(message, "zh-CN")
            assert chinese != message and g2 in chinese, chinese
    changes = drafting.paint(grids, home, g1, into_g2)  # unlocked: G2 gives the land up
    assert set(changes) == {g1, g2}
    assert_partition(apply(grids, changes), measure)
