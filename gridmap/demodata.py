"""The demo district: generated deterministically from a seed, committed in data/boundaries.

Everything is fictional (names, codes, people) but drawn to the standards in DESIGN.md §2:
a county-level district ``610199`` (a code not used in the GB/T 2260 list) with two urban
sub-districts and two rural towns, ~74 communities and villages, comprehensive grids of
300-500 households (urban) or ~300 (rural) numbered west→east then north→south, a few
exclusive grids, ~100k households (each with a fictional head of household and mobile
number), life-circle facilities, grid workers and incidents; and a basemap: streets along
the grids' edges (the walking network; each street named, and each apartment compound
addressed on a named street along its grid's edge, numbered along it) and a footprint for
every building the households live in (apartment blocks named and addressed, village
houses).

The partition is exact by construction: all grids are cells of one Voronoi diagram (outer
dummy seeds bound it, so nothing is clipped), communities are unions of their grids, townships
unions of their communities and the district the union of all. Shared edges are the same
vertices on both sides.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from sqlalchemy import Engine

from gridmap.domain.codes import grid_code, reading_order
from gridmap.domain.lifecircle import FACILITY_TYPES

COUNTY = "610199"
UTM = "EPSG:32649"
CENTRE_LONLAT = (109.05, 34.20)
URBAN_RADIUS = 3500.0
RURAL_AXES = (11000.0, 8000.0)

_SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
_GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国红梅志强春燕海波玉兰"
_STEMS = ["翠华", "长乐", "金桥", "明德", "兴庆", "永宁", "安仁", "丰裕", "和平", "文景",
          "曲江", "雁鸣", "太白", "含光", "朱雀", "青龙", "白鹿", "清凉", "乐游", "芙蓉",
          "大雁", "昆明", "南窑", "北池", "东仪", "西影", "紫薇", "广丰", "新兴", "育才",
          "光华", "锦园", "嘉园", "枫林", "桃园", "柳巷", "杏园", "梅苑", "竹园", "松涛",
          "鹤鸣", "龙首", "凤栖", "麟德", "崇仁", "宣平", "胜业", "道政", "常乐", "靖恭",
          "新昌", "升平", "修行", "晋昌", "通善", "通济", "昭国", "进昌", "安德", "敦化",
          "立政", "曲池", "青门", "灞柳", "浐河", "杜陵", "樊川", "韦曲", "郭杜", "细柳",
          "王曲", "五台", "鸣犊", "引镇", "大峪", "小峪", "太乙", "子午", "斗门", "高桥"]
_ROADS = ["长安路", "含光路", "朱雀大街", "太白路", "雁塔路", "曲江大道", "南二环",
          "电子正街", "科技路", "高新路", "丈八北路", "西影路", "翠华路", "友谊路"]
_INCIDENTS = [
    ("事件/市容环境/暴露垃圾", 0.22), ("事件/街面秩序/占道经营", 0.18),
    ("部件/公用设施/井盖破损", 0.10), ("部件/交通设施/路灯不亮", 0.12),
    ("事件/安全隐患/消防通道堵塞", 0.10), ("事件/矛盾纠纷/邻里纠纷", 0.12),
    ("事件/宣传广告/违规张贴", 0.08), ("部件/园林绿化/树木倒伏", 0.08),
]
_STATUS = [("collected", 0.05), ("registered", 0.05), ("cancelled", 0.03), ("dispatched", 0.1),
           ("handling", 0.12), ("reported", 0.05), ("verified", 0.05), ("closed", 0.35),
           ("evaluated", 0.2)]

DEMO_DIR = Path(__file__).resolve().parent.parent / "data" / "boundaries"
DEMO_FILES = {
    "counties": "counties.geojson", "townships": "townships.geojson",
    "communities": "communities.geojson", "grids": "grids.geojson",
    "workers": "workers.csv", "households": "households.parquet",
    "facilities": "facilities.geojson", "incidents": "incidents.parquet",
}
# the basemap: footprints (GeoParquet) and the street network's edges (u, v, length)
BASEMAP_FILES = {"buildings": "buildings.parquet", "streets": "streets.parquet"}


@dataclass
class Demo:
    layers: dict[str, gpd.GeoDataFrame | pd.DataFrame]


def _lloyd(points: np.ndarray, inside: shapely.Geometry, iterations: int = 4) -> np.ndarray:
    """Relax seeds a few times so the cells look like real, roughly even blocks."""
    box = shapely.box(*inside.bounds).buffer(5000)
    for _ in range(iterations):
        cells = shapely.get_parts(shapely.voronoi_polygons(
            shapely.multipoints(points), extend_to=box, ordered=True))
        cells = shapely.intersection(cells, inside)
        cents = shapely.get_coordinates(shapely.centroid(cells))
        ok = ~shapely.is_empty(cells)
        points = np.where(ok[:, None], cents, points)
    return points


def _sample_in(poly: shapely.Geometry, n: int, rng: np.random.Generator) -> np.ndarray:
    minx, miny, maxx, maxy = poly.bounds
    out = np.empty((0, 2))
    shapely.prepare(poly)
    while len(out) < n:
        cand = rng.uniform([minx, miny], [maxx, maxy], size=(max(4 * n, 64), 2))
        keep = shapely.contains_xy(poly, cand[:, 0], cand[:, 1])
        out = np.vstack([out, cand[keep]])
    return out[:n]


def _unique_names(rng: np.random.Generator, n: int, suffix: str, used: set[str]) -> list[str]:
    names: list[str] = []
    for stem in rng.permutation(_STEMS):
        name = f"{stem}{suffix}"
        if name not in used:
            used.add(name)
            names.append(name)
        if len(names) == n:
            return names
    raise ValueError("not enough name stems")


_SURNAME_CHARS = np.array(list(_SURNAMES))
_GIVEN_CHARS = np.array(list(_GIVEN))


def _person(rng: np.random.Generator) -> str:
    """A fictional Chinese name: a common surname and one or two given-name characters.

    Indexing by ``rng.integers`` draws what ``rng.choice`` would, at half the cost (it runs
    once per household)."""
    k = int(rng.integers(1, 3))
    given = "".join(_GIVEN_CHARS[rng.integers(0, len(_GIVEN_CHARS), size=k)].tolist())
    return str(_SURNAME_CHARS[rng.integers(0, len(_SURNAME_CHARS))]) + given


def _phone(rng: np.random.Generator, second: str = "3") -> str:
    """A fictional 11-digit mobile number: 1, a second digit drawn from *second* (no draw
    when it is a single digit, as for the workers' 13x numbers), then nine digits."""
    lead = second if len(second) == 1 else second[int(rng.integers(0, len(second)))]
    return "1" + lead + "".join(map(str, rng.integers(0, 10, size=9).tolist()))


def _people(rng: np.random.Generator, n: int, second: str = "3456789") -> tuple[
        list[str], list[str]]:
    """*n* fictional names and *n* distinct mobile numbers (1[3-9] and nine digits)."""
    names = [_person(rng) for _ in range(n)]
    phones: list[str] = []
    seen: set[str] = set()
    while len(phones) < n:
        phone = _phone(rng, second)
        if phone not in seen:
            seen.add(phone)
            phones.append(phone)
    return names, phones


def generate(seed: int = 2026) -> Demo:
    """Build the demo district. The same seed gives the same data, byte for byte."""
    rng = np.random.default_rng(seed)
    to_utm = Transformer.from_crs("EPSG:4326", UTM, always_xy=True)
    cx, cy = to_utm.transform(*CENTRE_LONLAT)
    urban = shapely.Point(cx, cy).buffer(URBAN_RADIUS, quad_segs=32)
    theta = np.linspace(0, 2 * np.pi, 72, endpoint=False)
    wobble = 1 + 0.08 * np.sin(3 * theta + 0.7) + 0.05 * np.cos(5 * theta)
    district = shapely.Polygon(np.column_stack([
        cx + RURAL_AXES[0] * wobble * np.cos(theta), cy + RURAL_AXES[1] * wobble * np.sin(theta)]))
    rural = district.difference(urban)

    # communities: seeds relaxed inside the urban disc and the rural ring
    n_urban, n_rural = 44, 30
    com_urban = _lloyd(_sample_in(urban, n_urban, rng), urban)
    com_rural = _lloyd(_sample_in(rural, n_rural, rng), rural)
    com_seeds = np.vstack([com_urban, com_rural])
    is_urban = np.array([True] * n_urban + [False] * n_rural)
    box = shapely.box(*district.bounds).buffer(8000)
    com_cells = shapely.intersection(shapely.get_parts(shapely.voronoi_polygons(
        shapely.multipoints(com_seeds), extend_to=box, ordered=True)),
        np.where(is_urban, urban, rural))

    # grid seeds: 4-6 per urban community, 1-3 per village, relaxed within the community
    grid_seeds, grid_com = [], []
    for i, cell in enumerate(com_cells):
        k = int(rng.integers(4, 7)) if is_urban[i] else int(rng.integers(1, 4))
        pts = _sample_in(cell, k, rng)
        if k > 1:
            pts = _lloyd(pts, cell, iterations=3)
        grid_seeds.append(pts)
        grid_com += [i] * k
    seeds = np.vstack(grid_seeds)
    grid_com_arr = np.array(grid_com)
    # a ring of dummy seeds outside the district bounds the diagram without clipping
    ring = shapely.get_coordinates(shapely.segmentize(
        shapely.get_exterior_ring(district.buffer(900)), 700))[:-1]
    diagram = shapely.get_parts(shapely.voronoi_polygons(
        shapely.multipoints(np.vstack([seeds, ring])), extend_to=box, ordered=True))
    cells = diagram[: len(seeds)]
    # snap to a centimetre grid in lon/lat: shared vertices stay shared
    to_ll = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)

    def lonlat(geoms: np.ndarray) -> np.ndarray:
        return shapely.transform(geoms, lambda xy: np.round(
            np.column_stack(to_ll.transform(xy[:, 0], xy[:, 1])), 7))

    township_of = np.where(
        is_urban, np.where(com_seeds[:, 0] < cx, 0, 1),
        np.where(com_seeds[:, 1] >= cy, 2, 3))
    township_codes = [f"{COUNTY}001000", f"{COUNTY}002000", f"{COUNTY}100000",
                      f"{COUNTY}101000"]
    township_names = ["长乐街道", "曲江街道", "杜陵镇", "樊川镇"]
    used: set[str] = set()
    com_names = np.empty(len(com_seeds), dtype=object)
    com_codes = np.empty(len(com_seeds), dtype=object)
    for t, tcode in enumerate(township_codes):
        members = np.flatnonzero(township_of == t)
        order = reading_order(com_seeds[members, 0], com_seeds[members, 1], band=1500)
        suffix = "社区" if t < 2 else "村"
        names = _unique_names(rng, len(members), suffix, used)
        for seq, j in enumerate(order, start=1):
            idx = members[j]
            com_codes[idx] = f"{tcode[:9]}{(seq if t < 2 else 200 + seq):03d}"
            com_names[idx] = names[seq - 1]

    cells_ll = lonlat(cells)
    grid_rows = []
    for i in range(len(com_seeds)):
        members = np.flatnonzero(grid_com_arr == i)
        cents = shapely.get_coordinates(shapely.centroid(cells[members]))
        order = reading_order(cents[:, 0], cents[:, 1], band=250)
        for seq, j in enumerate(order, start=1):
            g = members[j]
            grid_rows.append({
                "code": grid_code(com_codes[i], seq), "name": f"{com_names[i]}第{seq}网格",
                "kind": "comprehensive", "parent_grid_code": None, "community": i,
                "utm": cells[g], "geometry": cells_ll[g]})
    grids = pd.DataFrame(grid_rows)

    # exclusive grids: schools, hospitals, a market, a park, inside comprehensive grids
    exclusive_rows: list[dict[str, object]] = []
    kinds = ["学校", "医院", "农贸市场", "工业园区", "政府大院", "学校", "医院", "学校"]
    for n, label in enumerate(kinds):
        host = grids.iloc[int(rng.integers(0, len(grids)))]
        inner = host["utm"].buffer(-60)
        if inner.is_empty:
            continue
        px, py = _sample_in(inner, 1, rng)[0]
        w, h = rng.uniform(60, 140), rng.uniform(50, 110)
        rect = shapely.box(px - w, py - h, px + w, py + h).intersection(inner)
        community = int(host["community"])
        seq = int((grids["community"] == community).sum()) + 1 + len(
            [r for r in exclusive_rows if r["community"] == community])
        exclusive_rows.append({
            "code": grid_code(com_codes[community], seq),
            "name": f"{com_names[community]}{label}专属网格{n + 1}", "kind": "exclusive",
            "parent_grid_code": host["code"], "community": community, "utm": rect,
            "geometry": lonlat(np.array([rect]))[0]})
    exclusive = pd.DataFrame(exclusive_rows)
    blocked = shapely.union_all(exclusive["utm"].to_numpy())

    # the streets along the grids' edges and their names (no draws: the streams below stay
    # as they were)
    streets_utm = _street_lines(cells)
    street_names = _street_names(streets_utm, urban)
    addresses = _StreetAddresses(streets_utm, street_names)

    # households: urban in apartment buildings (a compound on a street along its grid's
    # edge, numbered along that street), rural in single houses
    hh_rows: list[dict[str, object]] = []
    counter = 0
    for g in grids.itertuples():
        urban_grid = bool(is_urban[g.community])
        n = int(rng.integers(320, 481)) if urban_grid else int(rng.integers(240, 331))
        area = shapely.difference(g.utm, blocked)
        if urban_grid:
            sizes: list[int] = []
            while sum(sizes) < n:
                sizes.append(int(rng.integers(24, 121)))
            sizes[-1] -= sum(sizes) - n
            sizes = [s for s in sizes if s > 0]
            pts = _sample_in(area, len(sizes), rng)
            # a road and a number were drawn here before the streets had names: still
            # drawn, so that every later value of the stream is what it was
            rng.integers(0, len(_ROADS))
            rng.integers(1, 400)
            road, number = addresses.compound(g.utm)
            for b, (size, pt) in enumerate(zip(sizes, pts, strict=True), start=1):
                for u in range(size):
                    floor, unit = divmod(u, 4)
                    counter += 1
                    building = f"{road}{number}号{com_names[g.community]}{b}号楼"
                    address = f"{building}{floor + 1}{unit + 1:02d}室"
                    hh_rows.append({"id": f"H{counter:07d}", "x": pt[0], "y": pt[1],
                                    "grid": g.Index, "address": address, "urban": True,
                                    "building": building})
        else:
            pts = _sample_in(area, n, rng)
            for h, pt in enumerate(pts, start=1):
                counter += 1
                address = f"{com_names[g.community]}{(h - 1) // 40 + 1}组{h}号"
                hh_rows.append({"id": f"H{counter:07d}", "x": pt[0], "y": pt[1],
                                "grid": g.Index, "address": address, "urban": False,
                                "building": None})
    hh = pd.DataFrame(hh_rows)
    n_hh = len(hh)
    residents = np.clip(rng.poisson(1.7, n_hh) + 1, 1, 8)
    flags_p = {"elderly_alone": 0.05, "disabled": 0.02, "left_behind_child": 0.0,
               "low_income": 0.03}
    hh["residents"] = residents.astype(np.int16)
    for flag, p in flags_p.items():
        hh[flag] = rng.random(n_hh) < p
    hh["left_behind_child"] = (~hh["urban"]) & (rng.random(n_hh) < 0.06)
    hh.loc[hh["elderly_alone"], "residents"] = 1
    hx, hy = to_ll.transform(hh["x"].to_numpy(), hh["y"].to_numpy())
    households = gpd.GeoDataFrame(
        hh[["id", "address", "residents", "elderly_alone", "disabled", "left_behind_child",
            "low_income"]],
        geometry=gpd.points_from_xy(np.round(hx, 7), np.round(hy, 7)), crs=4326)

    # divisions: unions of grids (exact for a coverage)
    com_geoms = np.array([shapely.coverage_union_all(cells_ll[grid_com_arr == i])
                          for i in range(len(com_seeds))])
    hh_com = grids["community"].to_numpy()[hh["grid"].to_numpy()]
    com_pop = np.bincount(hh_com, weights=residents, minlength=len(com_seeds)).astype(int)
    communities = gpd.GeoDataFrame({
        "code": com_codes, "name": com_names,
        "urban_rural": np.where(is_urban, "urban", "rural"), "population": com_pop,
    }, geometry=[shapely.MultiPolygon(shapely.get_parts(g)) for g in com_geoms], crs=4326)
    town_geoms = [shapely.coverage_union_all(com_geoms[township_of == t]) for t in range(4)]
    townships = gpd.GeoDataFrame({
        "code": township_codes, "name": township_names,
        "urban_rural": ["urban", "urban", "rural", "rural"],
        "population": [int(com_pop[township_of == t].sum()) for t in range(4)],
    }, geometry=[shapely.MultiPolygon(shapely.get_parts(g)) for g in town_geoms], crs=4326)
    county_geom = shapely.coverage_union_all(com_geoms)
    counties = gpd.GeoDataFrame({
        "code": [f"{COUNTY}000000"], "name": ["示范区"], "urban_rural": ["urban"],
        "population": [int(com_pop.sum())]},
        geometry=[shapely.MultiPolygon(shapely.get_parts(county_geom))], crs=4326)
    all_grids = pd.concat([grids, exclusive], ignore_index=True)
    grid_frame = gpd.GeoDataFrame(
        all_grids[["code", "name", "kind", "parent_grid_code"]],
        geometry=[shapely.MultiPolygon([g]) if g.geom_type == "Polygon" else g
                  for g in all_grids["geometry"]], crs=4326)

    # facilities of the life-circle types
    fac_rows: list[dict[str, object]] = []
    per_township = ["middle_school", "health_centre", "elderly_home", "service_centre"]
    per_three = ["primary_school", "food_market"]
    per_community = ["service_station", "health_station", "kindergarten", "elderly_daycare",
                     "nursery"]
    counter = 0

    def add(ftype: str, where: shapely.Geometry, host_name: str) -> None:
        nonlocal counter
        counter += 1
        x, y = _sample_in(where, 1, rng)[0]
        lon, lat = to_ll.transform(x, y)
        capacity = int(rng.integers(1, 9) * 100) if ftype in (
            "middle_school", "primary_school", "kindergarten", "nursery", "elderly_home",
            "elderly_daycare") else None
        fac_rows.append({"id": f"F{counter:05d}", "type": ftype,
                         "name": f"{host_name}{FACILITY_TYPES[ftype].label}",
                         "capacity": capacity, "geometry": shapely.Point(
                             round(lon, 7), round(lat, 7))})

    com_utm = np.array([shapely.coverage_union_all(cells[grid_com_arr == i])
                        for i in range(len(com_seeds))])
    for t in range(4):
        members = np.flatnonzero(township_of == t)
        town_utm = shapely.union_all(com_utm[members])
        for ftype in per_township:
            add(ftype, town_utm, township_names[t])
        for j, i in enumerate(members.tolist()):
            if j % 3 == 0:
                for ftype in per_three:
                    add(ftype, com_utm[i], str(com_names[i]))
            for ftype in per_community:
                p = 0.9 if is_urban[i] else 0.45
                if ftype == "service_station" or rng.random() < p:
                    add(ftype, com_utm[i], str(com_names[i]))
    facilities = gpd.GeoDataFrame(pd.DataFrame(fac_rows), geometry="geometry", crs=4326)
    facilities["capacity"] = facilities["capacity"].astype("Int64")

    # workers: a full-time worker per comprehensive grid, part-timers, heads, supervisors
    wk_rows: list[dict[str, object]] = []
    for g in grids.itertuples():
        wk_rows.append({"id": f"W{len(wk_rows) + 1:05d}", "name": _person(rng),
                        "phone": _phone(rng), "role": "full_time", "grid_code": g.code,
                        "division_code": None})
        if rng.random() < 0.35:
            wk_rows.append({"id": f"W{len(wk_rows) + 1:05d}", "name": _person(rng),
                            "phone": _phone(rng), "role": "part_time", "grid_code": g.code,
                            "division_code": None})
    for e in exclusive.itertuples():
        wk_rows.append({"id": f"W{len(wk_rows) + 1:05d}", "name": _person(rng),
                        "phone": _phone(rng), "role": "part_time", "grid_code": e.code,
                        "division_code": None})
    for code in com_codes:
        wk_rows.append({"id": f"W{len(wk_rows) + 1:05d}", "name": _person(rng),
                        "phone": _phone(rng), "role": "grid_head", "grid_code": None,
                        "division_code": code})
    for code in township_codes:
        wk_rows.append({"id": f"W{len(wk_rows) + 1:05d}", "name": _person(rng),
                        "phone": _phone(rng), "role": "supervisor", "grid_code": None,
                        "division_code": code})
    workers = pd.DataFrame(wk_rows)

    # incidents near households over 90 days before 1 November 2026
    n_inc = 3000
    pick = rng.integers(0, n_hh, size=n_inc)
    jx = hh["x"].to_numpy()[pick] + rng.normal(0, 25, n_inc)
    jy = hh["y"].to_numpy()[pick] + rng.normal(0, 25, n_inc)
    inside = shapely.contains_xy(shapely.union_all(cells), jx, jy)
    jx, jy = jx[inside], jy[inside]
    ilon, ilat = to_ll.transform(jx, jy)
    cats, cat_p = zip(*_INCIDENTS, strict=True)
    stats, stat_p = zip(*_STATUS, strict=True)
    base = pd.Timestamp("2026-11-01T00:00:00", tz="Asia/Shanghai")
    minutes = np.sort(rng.integers(0, 90 * 24 * 60, size=len(jx)))
    incidents = gpd.GeoDataFrame({
        "id": [f"I{i + 1:06d}" for i in range(len(jx))],
        "category": rng.choice(cats, size=len(jx), p=cat_p),
        "description": "",
        "reported_at": [base - pd.Timedelta(minutes=int(m)) for m in minutes[::-1]],
        "status": rng.choice(stats, size=len(jx), p=stat_p),
    }, geometry=gpd.points_from_xy(np.round(ilon, 7), np.round(ilat, 7)), crs=4326)
    incidents["description"] = [c.split("/")[-1] for c in incidents["category"]]

    # heads of household and their phones: drawn last, from a stream of their own, so that
    # adding them left every other value of the demo unchanged
    names, phones = _people(np.random.default_rng([seed, 7]), n_hh)
    at = households.columns.get_loc("geometry")
    households.insert(at, "head_name", names)
    households.insert(at + 1, "phone", phones)

    # the basemap, from a stream of its own too (the layers above stay as they were)
    basemap_rng = np.random.default_rng([seed, 11])
    buildings = _buildings(hh, basemap_rng, to_ll)
    streets = _streets(streets_utm, street_names, to_ll)

    return Demo({"counties": counties, "townships": townships, "communities": communities,
                 "grids": grid_frame, "workers": workers, "households": households,
                 "facilities": facilities, "incidents": incidents, "buildings": buildings,
                 "streets": streets})


def _footprint(x: float, y: float, length: float, width: float, angle: float
               ) -> shapely.Polygon:
    """A rectangle of *length* × *width* metres centred on (x, y), turned by *angle*."""
    c, s = np.cos(angle), np.sin(angle)
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * [length / 2, width / 2]
    return shapely.Polygon(np.column_stack([x + corners[:, 0] * c - corners[:, 1] * s,
                                            y + corners[:, 0] * s + corners[:, 1] * c]))


def _buildings(hh: pd.DataFrame, rng: np.random.Generator, to_ll: Transformer
               ) -> gpd.GeoDataFrame:
    """A footprint under every household: one apartment block per urban building (named
    and addressed as its households' addresses say; longer the more flats it holds, facing
    one of the grid's two street directions), one village house per rural household."""
    rows: list[dict[str, object]] = []
    urban = hh[hh["urban"]].groupby("building", sort=False)
    for n, (building, flats) in enumerate(urban, start=1):
        x, y = float(flats["x"].iat[0]), float(flats["y"].iat[0])
        floors = int(rng.integers(6, 19))
        length = float(np.clip(len(flats) / floors * 16, 24, 70))
        angle = float(rng.choice([0.0, np.pi / 2]) + rng.normal(0, 0.05))
        name = str(building)[str(building).index("号") + 1:]
        rows.append({"id": f"B{n:06d}", "name": name, "address": str(building),
                     "geometry": _footprint(x, y, length, 14.0, angle)})
    village = hh[~hh["urban"]]
    angles = rng.normal(0, 0.3, len(village))
    sizes = rng.uniform(9, 13, len(village))
    for n, (x, y, angle, size) in enumerate(zip(village["x"], village["y"], angles, sizes,
                                                strict=True), start=len(rows) + 1):
        rows.append({"id": f"B{n:06d}", "name": None, "address": None,
                     "geometry": _footprint(x, y, size * 1.2, size, angle)})
    frame = gpd.GeoDataFrame(rows, geometry="geometry", crs=UTM)
    frame.geometry = shapely.transform(frame.geometry.values, lambda xy: np.round(
        np.column_stack(to_ll.transform(xy[:, 0], xy[:, 1])), 7))
    return frame.set_crs(4326, allow_override=True)


def _street_lines(cells: np.ndarray) -> np.ndarray:
    """The streets along the edges of the grids (as real grids are drawn along streets): the
    cells' boundaries noded where they meet, one line between two junctions (UTM)."""
    return shapely.get_parts(shapely.line_merge(shapely.union_all(shapely.boundary(cells))))


def _ends(lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each line's two ends as node numbers (rows: start, end) and the unit direction in
    which the line leaves each end."""
    coords = [shapely.get_coordinates(line) for line in lines]
    ends = np.round(np.vstack([[c[0] for c in coords], [c[-1] for c in coords]]), 3)
    _, node_ids = np.unique(ends, axis=0, return_inverse=True)
    away = np.array([[c[1] - c[0] for c in coords], [c[-2] - c[-1] for c in coords]])
    away /= np.linalg.norm(away, axis=2, keepdims=True)
    return node_ids.reshape(2, -1), away


def _strokes(lines: np.ndarray) -> np.ndarray:
    """Which street each line belongs to: at every junction the two lines that continue
    each other most nearly straight (turning less than 45°) are one street, as a driver
    would follow it ("strokes"); the number of each line's street."""
    node_ids, away = _ends(lines)
    parent = np.arange(len(lines))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    at_node: dict[int, list[tuple[int, int]]] = {}
    for side in (0, 1):
        for i, node in enumerate(node_ids[side].tolist()):
            at_node.setdefault(node, []).append((i, side))
    for node in sorted(at_node):
        free = at_node[node]
        while len(free) > 1:
            # the most opposite pair of directions leaving the junction: the straightest
            pairs = [(float(away[sa, a] @ away[sb, b]), a, b, k, m)
                     for k, (a, sa) in enumerate(free) for m, (b, sb) in enumerate(free)
                     if k < m and a != b]
            if not pairs:
                break
            cosine, a, b, k, m = min(pairs)
            if cosine > -np.cos(np.radians(45)):
                break
            parent[root(a)] = root(b)
            free = [f for n, f in enumerate(free) if n not in (k, m)]
    roots = np.array([root(i) for i in range(len(lines))])
    _, numbers = np.unique(roots, return_inverse=True)
    return numbers


def _name_pool() -> Iterator[str]:
    """Street names, for the longest streets first: the well-known roads, then for each name
    stem a road, a street, the roads east, west, south and north of it, and a lane."""
    seen: set[str] = set()
    kinds = ("路", "街", "东路", "西路", "南路", "北路", "巷")
    for name in [*_ROADS, *(f"{stem}{kind}" for kind in kinds for stem in _STEMS)]:
        if name not in seen:
            seen.add(name)
            yield name


def _street_names(lines: np.ndarray, urban: shapely.Geometry) -> np.ndarray:
    """A name for each line: its street's, streets named longest first, those of the town
    (their middle in the urban disc) before the country's, so the well-known roads run
    through the town; a street left when the names run out stays unnamed (None)."""
    numbers = _strokes(lines)
    lengths = np.bincount(numbers, weights=shapely.length(lines))
    merged = [shapely.line_merge(shapely.multilinestrings(lines[numbers == k]))
              for k in range(len(lengths))]
    middle = [shapely.line_interpolate_point(m, 0.5, normalized=True)
              if m.geom_type == "LineString" else shapely.centroid(m) for m in merged]
    in_town = shapely.contains(urban, middle)
    order = sorted(range(len(lengths)), key=lambda k: (not in_town[k], -lengths[k], k))
    names: list[str | None] = [None] * len(lengths)
    for k, name in zip(order, _name_pool(), strict=False):
        names[k] = name
    return np.array([names[k] for k in numbers], dtype=object)


class _StreetAddresses:
    """Addresses on the named streets: a compound is on the named street that runs longest
    along its grid's edge, numbered along it (odd numbers on the left, even on the right,
    about every 30 m, as Chinese door plates are), each number given once."""

    def __init__(self, lines: np.ndarray, names: np.ndarray) -> None:
        self.lines, self.names = lines, names
        self.tree = shapely.STRtree(lines)
        self.streets = {str(name): shapely.line_merge(shapely.multilinestrings(
            lines[names == name])) for name in set(names.tolist()) - {None}}
        self.used: set[tuple[str, int]] = set()

    def compound(self, grid: shapely.Geometry) -> tuple[str, int]:
        edge = shapely.boundary(grid)
        near = self.tree.query(grid, predicate="intersects")
        along: dict[str, float] = {}
        for i in near.tolist():
            name = self.names[i]
            mid = shapely.line_interpolate_point(self.lines[i], 0.5, normalized=True)
            if name is not None and shapely.distance(mid, edge) < 0.01:
                along[name] = along.get(name, 0.0) + float(shapely.length(self.lines[i]))
        if not along:
            raise ValueError("a town grid with no named street along its edge")
        road = max(sorted(along), key=lambda n: along[n])
        street = self.streets[road]
        if street.geom_type != "LineString":  # a street of pieces: the piece by the grid
            street = min(shapely.get_parts(street), key=lambda p: p.distance(grid))
        centre = shapely.centroid(grid)
        at = street.project(centre)
        here = street.interpolate(at)
        ahead = street.interpolate(min(at + 1.0, street.length))
        if ahead.equals(here):
            here, ahead = street.interpolate(max(at - 1.0, 0.0)), here
        left = ((ahead.x - here.x) * (centre.y - here.y)
                - (ahead.y - here.y) * (centre.x - here.x)) > 0
        number = 2 * int(at // 30) + (1 if left else 2)
        while (road, number) in self.used:
            number += 2
        self.used.add((road, number))
        return road, number


def _streets(lines: np.ndarray, names: np.ndarray, to_ll: Transformer) -> gpd.GeoDataFrame:
    """The streets as the walking network: one edge between two junctions, its nodes
    numbered, its length in metres, its street's name."""
    ends = np.vstack([shapely.get_coordinates(shapely.get_point(lines, 0)),
                      shapely.get_coordinates(shapely.get_point(lines, -1))])
    ends = np.round(ends, 3)
    _, node_ids = np.unique(ends, axis=0, return_inverse=True)
    node_ids = node_ids.reshape(2, -1)
    edges = gpd.GeoDataFrame({
        "u": node_ids[0] + 1, "v": node_ids[1] + 1,
        "length": np.round(shapely.length(lines), 2), "name": names},
        geometry=lines, crs=UTM)
    edges.geometry = shapely.transform(edges.geometry.values, lambda xy: np.round(
        np.column_stack(to_ll.transform(xy[:, 0], xy[:, 1])), 7))
    return edges.set_crs(4326, allow_override=True)


def write_demo(demo: Demo, out: Path = DEMO_DIR) -> list[Path]:
    """Write the demo layers in open formats (GeoJSON, CSV, GeoParquet)."""
    from gridmap.io.write import write_layer

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, filename in (DEMO_FILES | BASEMAP_FILES).items():
        path = out / filename
        path.unlink(missing_ok=True)
        written.append(write_layer(demo.layers[name], path))
    return written


def load_demo_files(engine: Engine, folder: Path = DEMO_DIR) -> Iterator[str]:
    """Import every demo layer, in dependency order, each in its own transaction (the
    households, facilities and incidents are stored assigned to their grids as they are
    imported); then the basemap (buildings and the streets, which are the walking
    network)."""
    from gridmap.io.read import read_layer
    from gridmap.store.basemap import save_buildings
    from gridmap.store.load import load_layer
    from gridmap.store.network import save_network

    for name, filename in DEMO_FILES.items():
        path = folder / filename
        result = read_layer(path, name)
        with engine.begin() as conn:
            yield str(load_layer(conn, name, result.frame, source=str(path)))
    buildings = gpd.read_parquet(folder / BASEMAP_FILES["buildings"])
    edges = gpd.read_parquet(folder / BASEMAP_FILES["streets"])
    with engine.begin() as conn:
        yield str(save_buildings(conn, buildings, source=str(folder / BASEMAP_FILES["buildings"])))
        count = save_network(conn, street_nodes(edges), edges)
        from gridmap.i18n import gettext

        yield gettext("streets (walking network): {n} edges", n=count)


def street_nodes(edges: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The nodes of a street network whose edges carry their ends' ids (u, v): each node
    where its edges begin or end."""
    starts = gpd.GeoDataFrame({"id": edges["u"]},
                              geometry=shapely.get_point(edges.geometry.values, 0), crs=edges.crs)
    ends = gpd.GeoDataFrame({"id": edges["v"]},
                            geometry=shapely.get_point(edges.geometry.values, -1), crs=edges.crs)
    return pd.concat([starts, ends]).drop_duplicates("id").reset_index(drop=True)
