"""A province on a cluster: a generated province-sized district, written as GeoParquet
partitioned by county, and assignment, per-grid totals and coverage computed county by
county on a dask.distributed cluster.

The generated province (fictional code ``39``, not in GB/T 2260) is drawn like Zhejiang:
11 prefectures of 8 counties (~105,000 km²), per county ~14 townships / sub-districts,
~285 communities and villages, ~1,000 comprehensive grids of 300-420 households (~360,000
households) and ~10 exclusive grids, ~600 life-circle facilities: 88,000 grids and 31.7 M
households in all. Codes follow the statistical layout: province (2) → prefecture (2) →
county (2) → township (3) → community (3) → grid (3). Coordinates are CGCS2000 / 3-degree
Gauss-Krüger CM 120E (EPSG:4549, metres), the projected CRS the analysis measures in.

Every county is drawn from its own random stream (``seed``, prefecture, county), so a county
comes out the same whether the whole province or a sample of counties is generated, and one
county is in memory at a time.

Layout of a generated folder::

    province.json                    seed, CRS, the counties written and their sizes
    counties.parquet                 county polygons (code, prefecture, sizes)
    households/county=390101/0.parquet   id, residents, care flags, point
    grids/county=390101/0.parquet        code, kind, parent_grid_code, polygon (+ bbox)
    facilities/county=390101/0.parquet   id, type, point (+ bbox)

The run (:func:`run_province`) reads the households with ``dask_geopandas.read_parquet``:
one partition per county, read by the worker that processes it. The same worker reads the
grids and facilities near its county (the files of the counties whose bounds meet its
households' bounds, filtered by bounding box), builds the county's grid index and coverage
indexes, and returns only counts per grid. So the answers equal the in-memory path's on the
same files, also at county borders, and nothing but file paths leaves the client.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from gridmap.analysis.assign import assign_to_grids, build_grid_index
from gridmap.analysis.coverage import (
    coverage_by,
    household_coverage,
    thresholds_for,
    with_shares,
)
from gridmap.analysis.coverage import vulnerable_residents as vulnerable_of
from gridmap.domain.codes import grid_code, reading_order

if TYPE_CHECKING:
    from distributed import Client

PROVINCE = "39"
CRS = "EPSG:4549"
EXTENT = (330_000.0, 3_060_000.0, 660_000.0, 3_380_000.0)  # 330 x 320 km
PREFECTURES = 11
COUNTIES_PER_PREFECTURE = 8
TOWNSHIPS = (12, 17)  # per county, drawn in this range
GRIDS = (980, 1021)  # comprehensive grids per county
GRIDS_PER_COMMUNITY = 3.5
HOUSEHOLDS = (300, 421)  # per comprehensive grid
EXCLUSIVE = 10  # exclusive grids per county
FACILITIES = (570, 631)  # per county
# how often each life-circle type is found among a county's facilities
FACILITY_WEIGHTS = {"middle_school": 2, "health_centre": 2, "elderly_home": 2,
                    "service_centre": 2, "primary_school": 6, "food_market": 6,
                    "kindergarten": 14, "nursery": 8, "elderly_daycare": 12,
                    "service_station": 26, "health_station": 20}
CARE_P = {"elderly_alone": 0.05, "disabled": 0.02, "left_behind_child": 0.03,
          "low_income": 0.03}
LAYERS = ("households", "grids", "facilities")
GRID_TOTALS = ["households", "residents", "vulnerable", *CARE_P]


# ----------------------------------------------------------------------------- the layout
@dataclass(frozen=True)
class County:
    code: str  # 6 digits: province, prefecture, county
    prefecture: str  # 4 digits
    number: int  # 1.. within the prefecture
    geometry: shapely.Geometry

    @property
    def division_code(self) -> str:
        return f"{self.code}000000"


def _voronoi_in(seeds: NDArray[np.float64], inside: shapely.Geometry) -> NDArray[np.object_]:
    """The Voronoi cells of *seeds*, in seed order, clipped to *inside* (convex pieces)."""
    box = shapely.box(*inside.bounds).buffer(10 * max(np.ptp(seeds[:, 0]), 1.0))
    cells = shapely.get_parts(shapely.voronoi_polygons(
        shapely.multipoints(seeds), extend_to=box, ordered=True))
    return np.asarray(shapely.intersection(cells, inside), dtype=object)


def _uniform_in(poly: shapely.Geometry, n: int, rng: np.random.Generator
                ) -> NDArray[np.float64]:
    minx, miny, maxx, maxy = poly.bounds
    shapely.prepare(poly)
    out = np.empty((0, 2))
    while len(out) < n:
        cand = rng.uniform([minx, miny], [maxx, maxy], size=(max(3 * n, 64), 2))
        out = np.vstack([out, cand[shapely.contains_xy(poly, cand[:, 0], cand[:, 1])]])
    return out[:n]


def _relaxed(poly: shapely.Geometry, n: int, rng: np.random.Generator,
             iterations: int = 5) -> NDArray[np.float64]:
    """*n* seeds in *poly*, relaxed (Lloyd) so their cells are of similar size."""
    seeds = _uniform_in(poly, n, rng)
    for _ in range(iterations):
        seeds = shapely.get_coordinates(shapely.centroid(_voronoi_in(seeds, poly)))
    return seeds


def province_counties(seed: int = 2026) -> list[County]:
    """The province's 88 counties, drawn from the seed: prefectures are relaxed Voronoi
    cells of the province's extent, counties relaxed cells of their prefecture."""
    rng = np.random.default_rng([seed, 0])
    province = shapely.box(*EXTENT)
    pref_cells = _voronoi_in(_relaxed(province, PREFECTURES, rng), province)
    pref_seeds = shapely.get_coordinates(shapely.centroid(pref_cells))
    counties = []
    for p, j in enumerate(reading_order(pref_seeds[:, 0], pref_seeds[:, 1], band=40_000), 1):
        cells = _voronoi_in(_relaxed(pref_cells[j], COUNTIES_PER_PREFECTURE, rng), pref_cells[j])
        cents = shapely.get_coordinates(shapely.centroid(cells))
        for c, k in enumerate(reading_order(cents[:, 0], cents[:, 1], band=15_000), 1):
            counties.append(County(f"{PROVINCE}{p:02d}{c:02d}", f"{PROVINCE}{p:02d}", c,
                                   cells[k]))
    return counties


def choose_counties(counties: Sequence[County], *, full: Sequence[str] = (),
                    sample: int = 0, seed: int = 2026) -> list[County]:
    """The counties of the prefectures in *full* (4-digit codes), and *sample* counties drawn
    from every other prefecture. Nothing chosen: all of them."""
    if not full and not sample:
        return list(counties)
    known = {c.prefecture for c in counties}
    unknown = sorted(set(full) - known)
    if unknown:
        raise ValueError(f"no prefecture {', '.join(unknown)}: the province has "
                         f"{min(known)}..{max(known)}")
    rng = np.random.default_rng([seed, 1])
    chosen = [c for c in counties if c.prefecture in full]
    for pref in sorted(known - set(full)):
        members = [c for c in counties if c.prefecture == pref]
        picks = rng.choice(len(members), size=min(sample, len(members)), replace=False)
        chosen += [members[i] for i in sorted(picks.tolist())]
    return sorted(chosen, key=lambda c: c.code)


# ----------------------------------------------------------------------------- one county
@dataclass
class CountyData:
    grids: gpd.GeoDataFrame
    households: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame


def _points_in_convex(polys: NDArray[np.object_], counts: NDArray[np.int64],
                      rng: np.random.Generator) -> NDArray[np.float64]:
    """counts[i] points uniform in the convex polygon polys[i], polygon by polygon: a fan of
    triangles per polygon, a triangle drawn by area, a point drawn in it (no rejection)."""
    ring = shapely.get_exterior_ring(polys)
    xy, owner = shapely.get_coordinates(ring, return_index=True)
    first = np.r_[0, np.flatnonzero(np.diff(owner)) + 1]  # each ring's first vertex
    # triangles (v0, v_k, v_k+1) for k = 1 .. n-3 (the ring repeats v0 at its end)
    nverts = np.diff(np.r_[first, len(xy)])
    ntri = nverts - 3
    tri_owner = np.repeat(np.arange(len(polys)), ntri)
    k = np.arange(ntri.sum()) - np.repeat(np.cumsum(ntri) - ntri, ntri) + 1
    a = xy[first[tri_owner]]
    b = xy[first[tri_owner] + k]
    c = xy[first[tri_owner] + k + 1]
    area = np.abs((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1])
                  - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1]))
    point_owner = np.repeat(np.arange(len(polys)), counts)
    # a triangle per point, by area within its polygon: cumulative areas per polygon
    cum = np.cumsum(area)
    start = np.r_[0, np.cumsum(ntri)[:-1]]
    base = np.where(start > 0, cum[np.maximum(start - 1, 0)], 0.0)
    total = cum[start + ntri - 1] - base
    u = base[point_owner] + rng.random(len(point_owner)) * total[point_owner]
    tri = np.minimum(np.searchsorted(cum, u, side="right"), start[point_owner]
                     + ntri[point_owner] - 1)
    r1, r2 = rng.random(len(tri)), rng.random(len(tri))
    flip = r1 + r2 > 1
    r1[flip], r2[flip] = 1 - r1[flip], 1 - r2[flip]
    return a[tri] + r1[:, None] * (b[tri] - a[tri]) + r2[:, None] * (c[tri] - a[tri])


def _grid_seeds(county: shapely.Geometry, n: int, rng: np.random.Generator
                ) -> NDArray[np.float64]:
    """Grid seeds: dense around the county seat and a few towns, sparse in between (grids
    hold similar numbers of households, so they are small where people live close)."""
    minx, miny, maxx, maxy = county.bounds
    centres = _uniform_in(county.buffer(-2000) if county.buffer(-2000).area > 0 else county,
                          int(rng.integers(3, 6)), rng)
    sigma = rng.uniform(1500, 4000, len(centres))
    sigma[0] = 2500  # the county seat
    weights = np.r_[0.35, rng.uniform(0.5, 1.0, len(centres) - 1) * 0.15]
    out = np.empty((0, 2))
    shapely.prepare(county)
    while len(out) < n:
        m = 2 * n
        pick = rng.choice(len(centres) + 1, size=m, p=np.r_[1 - weights.sum(), weights])
        xy = rng.uniform([minx, miny], [maxx, maxy], size=(m, 2))
        near = pick > 0
        xy[near] = centres[pick[near] - 1] + rng.normal(size=(int(near.sum()), 2)) \
            * sigma[pick[near] - 1, None]
        out = np.vstack([out, xy[shapely.contains_xy(county, xy[:, 0], xy[:, 1])]])
    return out[:n]


def _nearest(points: NDArray[np.float64], centres: NDArray[np.float64]) -> NDArray[np.intp]:
    from scipy.spatial import cKDTree

    return np.asarray(cKDTree(centres).query(points)[1], dtype=np.intp)


def generate_county(county: County, seed: int = 2026, *, scale: float = 1.0) -> CountyData:
    """One county's grids, households and facilities, from its own random stream. *scale*
    shrinks the number of grids and facilities (tests: 0.01); households per grid stay."""
    rng = np.random.default_rng([seed, int(county.prefecture[2:]), county.number])
    grids = _county_grids(county, rng, scale)
    cells = grids.geometry.to_numpy()[grids["kind"].to_numpy() == "comprehensive"]
    households, facilities = _county_people(county, cells, rng, scale)
    return CountyData(grids, households, facilities)


def county_grids(county: County, seed: int = 2026, *, scale: float = 1.0
                 ) -> gpd.GeoDataFrame:
    """Only the county's grids (the same as :func:`generate_county`'s)."""
    return _county_grids(county, np.random.default_rng(
        [seed, int(county.prefecture[2:]), county.number]), scale)


def _county_grids(county: County, rng: np.random.Generator, scale: float = 1.0
                  ) -> gpd.GeoDataFrame:
    """Comprehensive grids (Voronoi cells, denser where people live close) numbered by the
    code rules, communities and townships grouping neighbours, and a few exclusive grids."""
    geom = county.geometry
    n_grids = max(8, round(int(rng.integers(*GRIDS)) * scale))
    seeds = _grid_seeds(geom, n_grids, rng)
    cells = _voronoi_in(seeds, geom)

    # communities group nearby grids, townships nearby communities; numbered in reading order
    n_com = round(n_grids / GRIDS_PER_COMMUNITY)
    com_seeds = seeds[rng.choice(n_grids, size=n_com, replace=False)]
    grid_com = _nearest(seeds, com_seeds)
    n_town = min(int(rng.integers(*TOWNSHIPS)), max(2, n_com // 4))
    town_seeds = com_seeds[rng.choice(n_com, size=n_town, replace=False)]
    com_town = _nearest(com_seeds, town_seeds)
    # the townships nearest the densest place (the county seat) are urban sub-districts
    grid_town = com_town[grid_com]
    density = np.bincount(grid_town, minlength=n_town) / np.maximum(
        np.bincount(grid_town, weights=shapely.area(cells), minlength=n_town), 1)
    urban_town = np.zeros(n_town, dtype=bool)
    urban_town[np.argsort(-density)[:max(2, n_town // 4)]] = True
    town_code = np.empty(n_town, dtype=object)
    order = reading_order(town_seeds[:, 0].tolist(), town_seeds[:, 1].tolist(), band=4000)
    n_sub = n_rural = 0
    for t in order:
        if urban_town[t]:
            n_sub += 1
            town_code[t] = f"{county.code}{n_sub:03d}"
        else:
            n_rural += 1
            town_code[t] = f"{county.code}{100 + n_rural:03d}"
    com_code = np.empty(n_com, dtype=object)
    for t in range(n_town):
        members = np.flatnonzero(com_town == t)
        for seq, j in enumerate(reading_order(com_seeds[members, 0], com_seeds[members, 1],
                                              band=1500), 1):
            com_code[members[j]] = f"{town_code[t]}{seq if urban_town[t] else 200 + seq:03d}"
    codes = np.empty(n_grids, dtype=object)
    cents = shapely.get_coordinates(shapely.centroid(cells))
    for i in range(n_com):
        members = np.flatnonzero(grid_com == i)
        for seq, j in enumerate(reading_order(cents[members, 0], cents[members, 1], band=300), 1):
            codes[members[j]] = grid_code(com_code[i], seq)

    # exclusive grids (a school, a hospital…): rectangles inside a comprehensive grid
    ex_codes, ex_parent, ex_geoms = [], [], []
    next_seq = pd.Series(codes).str[12:].astype(int).groupby(grid_com).max().to_numpy().copy()
    n_ex = max(1, round(EXCLUSIVE * scale))
    for host in rng.choice(n_grids, size=n_ex, replace=False).tolist():
        inner = cells[host].buffer(-60)
        if inner.is_empty:
            continue
        px, py = _uniform_in(inner, 1, rng)[0]
        w, h = rng.uniform(60, 140), rng.uniform(50, 110)
        rect = shapely.box(px - w, py - h, px + w, py + h).intersection(inner)
        next_seq[grid_com[host]] += 1
        ex_codes.append(grid_code(com_code[grid_com[host]], int(next_seq[grid_com[host]])))
        ex_parent.append(codes[host])
        ex_geoms.append(rect)
    grids = gpd.GeoDataFrame({
        "code": [*codes, *ex_codes],
        "kind": ["comprehensive"] * n_grids + ["exclusive"] * len(ex_codes),
        "parent_grid_code": [None] * n_grids + ex_parent,
    }, geometry=[*cells, *ex_geoms], crs=CRS)
    return grids


def _county_people(county: County, cells: NDArray[np.object_], rng: np.random.Generator,
                   scale: float = 1.0) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Households in the comprehensive grids *cells* and facilities beside them."""
    geom = county.geometry
    n_grids = len(cells)

    # households: 300-420 per comprehensive grid, uniform in it (exclusive grids included:
    # people live beside schools), ids unique in the province
    per_grid = rng.integers(*HOUSEHOLDS, size=n_grids)
    xy = _points_in_convex(cells, per_grid, rng)
    n_hh = len(xy)
    residents = np.clip(rng.poisson(1.7, n_hh) + 1, 1, 8).astype(np.int8)
    flags = {flag: rng.random(n_hh) < p for flag, p in CARE_P.items()}
    residents[flags["elderly_alone"]] = 1
    households = gpd.GeoDataFrame({
        "id": np.int64(county.code) * 10_000_000 + np.arange(n_hh, dtype=np.int64),
        "residents": residents, **flags,
    }, geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs=CRS)

    # facilities: where people live (beside a random household)
    n_fac = max(20, round(int(rng.integers(*FACILITIES)) * scale))
    types = np.array(list(FACILITY_WEIGHTS))
    weights = np.array(list(FACILITY_WEIGHTS.values()), dtype=float)
    at = xy[rng.integers(0, n_hh, n_fac)] + rng.normal(0, 30, (n_fac, 2))
    inside = shapely.contains_xy(geom, at[:, 0], at[:, 1])
    at = at[inside]
    facilities = gpd.GeoDataFrame({
        "id": [f"F{county.code}{i:04d}" for i in range(len(at))],
        "type": rng.choice(types, size=len(at), p=weights / weights.sum()),
    }, geometry=gpd.points_from_xy(at[:, 0], at[:, 1]), crs=CRS)
    return households, facilities


# ----------------------------------------------------------------------------- writing
@dataclass
class Written:
    county: str
    grids: int
    households: int
    facilities: int
    seconds: float


def _part(folder: Path, layer: str, county: str) -> Path:
    return folder / layer / f"county={county}" / "0.parquet"


def generate_province(folder: Path, *, seed: int = 2026, full: Sequence[str] = (),
                      sample: int = 0, scale: float = 1.0,
                      progress: Callable[[Written], None] | None = None) -> list[Written]:
    """Write the province (or the chosen counties, see :func:`choose_counties`) to *folder*,
    county by county. Existing county files are replaced; other counties are left alone."""
    counties = choose_counties(province_counties(seed), full=full, sample=sample, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for county in counties:
        start = time.perf_counter()
        data = generate_county(county, seed, scale=scale)
        for layer, frame in (("households", data.households), ("grids", data.grids),
                             ("facilities", data.facilities)):
            path = _part(folder, layer, county.code)
            path.parent.mkdir(parents=True, exist_ok=True)
            frame.to_parquet(path, write_covering_bbox=layer != "households",
                             row_group_size=1 << 20)
        done = Written(county.code, len(data.grids), len(data.households),
                       len(data.facilities), time.perf_counter() - start)
        written.append(done)
        if progress:
            progress(done)
    present = {p.name.split("=")[1] for p in (folder / "grids").glob("county=*")}
    table = gpd.GeoDataFrame(
        {"code": [c.division_code for c in counties], "prefecture": [c.prefecture for c in
                                                                       counties]},
        geometry=[c.geometry for c in counties], crs=CRS)
    old = folder / "counties.parquet"
    if old.exists():  # counties written earlier stay listed
        before = gpd.read_parquet(old)
        table = pd.concat([before[~before["code"].isin(table["code"])], table])
    table = table[table["code"].str[:6].isin(present)].sort_values("code")
    table.to_parquet(old)
    (folder / "province.json").write_text(json.dumps({
        "seed": seed, "scale": scale, "crs": CRS, "province": PROVINCE,
        "counties": sorted(table["code"].str[:6].tolist()),
        "written": [asdict(w) for w in written]}, indent=1))
    return written


# ----------------------------------------------------------------------------- the run
def grid_totals(assigned: pd.DataFrame) -> pd.DataFrame:
    """Per grid code: households, residents, vulnerable residents and each care flag
    (``outside`` for households in no grid). Additive: partitions' totals sum."""
    pos, codes = pd.factorize(assigned["grid_code"].fillna("outside"), sort=True)
    n = len(codes)
    columns = {"households": np.bincount(pos, minlength=n),
               "residents": np.bincount(pos, weights=assigned["residents"].to_numpy(),
                                        minlength=n),
               "vulnerable": np.bincount(pos, weights=vulnerable_of(assigned), minlength=n)}
    for flag in CARE_P:
        columns[flag] = np.bincount(pos, weights=assigned[flag].to_numpy(), minlength=n)
    return pd.DataFrame({k: v.astype(np.int64) for k, v in columns.items()},
                        index=pd.Index(np.asarray(codes, dtype=object), name="grid_code"))


@dataclass
class Figures:
    """What one partition (county) cost, on which worker."""

    county: str
    worker: str
    households: int
    grids_indexed: int
    facilities: int
    read_near_s: float  # reading the grids and facilities near the county
    index_s: float
    assign_s: float
    totals_s: float
    coverage_s: float

    @property
    def compute_s(self) -> float:
        return self.read_near_s + self.index_s + self.assign_s + self.totals_s + self.coverage_s


@dataclass
class PartitionResult:
    totals: pd.DataFrame
    coverage: pd.DataFrame
    figures: Figures


def _county_of(part: pd.DataFrame) -> str:
    if "county" in part.columns and len(part):
        return str(part["county"].iloc[0])
    return "?"


def _read_near(folder: str, layer: str, bounds: NDArray[np.float64],
               county_bounds: pd.DataFrame, pad: float) -> gpd.GeoDataFrame:
    """The rows of *layer* whose bounding box meets *bounds* grown by *pad*, from the files
    of the counties whose bounds meet it."""
    xmin, ymin, xmax, ymax = bounds[0] - pad, bounds[1] - pad, bounds[2] + pad, bounds[3] + pad
    near = county_bounds[(county_bounds["minx"] <= xmax) & (county_bounds["maxx"] >= xmin)
                         & (county_bounds["miny"] <= ymax) & (county_bounds["maxy"] >= ymin)]
    frames = []
    for code in near.index:
        path = _part(Path(folder), layer, str(code)[:6])
        if path.exists():
            frames.append(gpd.read_parquet(path, bbox=(xmin, ymin, xmax, ymax)))
    if not frames:
        raise FileNotFoundError(f"no {layer} near {bounds.tolist()} under {folder}")
    frame = pd.concat(frames, ignore_index=True)
    return gpd.GeoDataFrame(frame.drop(columns="bbox", errors="ignore"), geometry="geometry",
                            crs=frames[0].crs)


def county_pipeline(households: gpd.GeoDataFrame, folder: str, county_bounds: pd.DataFrame,
                    thresholds: dict[str, list[float]], index_cells: int) -> PartitionResult:
    """One county, on the worker holding its households: read the grids and facilities
    around, index, assign, total per grid, coverage counted per grid."""
    try:
        from distributed import get_worker

        worker = get_worker().address
    except (ImportError, ValueError):
        worker = "local"
    county = _county_of(households)
    households = households.drop(columns="county", errors="ignore")
    clock = time.perf_counter()

    def lap() -> float:
        nonlocal clock
        now = time.perf_counter()
        spent, clock = now - clock, now
        return spent

    bounds = np.asarray(households.total_bounds)
    reach = max((d for ds in thresholds.values() for d in ds), default=0.0)
    grids = _read_near(folder, "grids", bounds, county_bounds, 1.0)
    facilities = _read_near(folder, "facilities", bounds, county_bounds, reach + 1.0)
    read_s = lap()
    index = build_grid_index(grids, max_cells=index_cells)
    index_s = lap()
    assigned = assign_to_grids(households, index)
    assign_s = lap()
    totals = grid_totals(assigned)
    totals_s = lap()
    cov = household_coverage(assigned, facilities, thresholds=thresholds)
    counts = coverage_by(assigned, cov, level="grid")
    coverage_s = lap()
    figures = Figures(county, worker, len(households), len(grids), len(facilities), read_s,
                      index_s, assign_s, totals_s, coverage_s)
    return PartitionResult(totals, counts[_COUNT_COLUMNS], figures)


_COUNT_COLUMNS = ["unit", "type", "distance_m", "residents", "residents_covered", "households",
                  "households_covered", "vulnerable", "vulnerable_covered"]


def combine(totals: Sequence[pd.DataFrame], counts: Sequence[pd.DataFrame]
            ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The partitions' per-grid totals and coverage counts added up (a grid's households
    may come from two partitions), with the coverage shares."""
    total = pd.concat(totals).groupby(level=0, sort=True).sum()
    cov = pd.concat(counts).groupby(["type", "distance_m", "unit"], as_index=False,
                                    sort=True).sum()
    return total, with_shares(cov)


@dataclass
class ProvinceRun:
    totals: pd.DataFrame  # per grid code
    coverage: pd.DataFrame  # per grid, type and distance (coverage_by's columns)
    figures: list[Figures]
    wall_s: float
    workers: dict[str, float] = field(default_factory=dict)  # busy seconds per worker
    read_s: dict[str, float] = field(default_factory=dict)  # reading households, per county

    @property
    def households(self) -> int:
        return sum(f.households for f in self.figures)

    def per_worker(self) -> pd.DataFrame:
        """Per worker: partitions, households, busy seconds, households per busy second."""
        frame = pd.DataFrame([{"worker": f.worker, "households": f.households} for f in
                              self.figures])
        table = frame.groupby("worker").agg(partitions=("households", "size"),
                                            households=("households", "sum"))
        table["busy_s"] = pd.Series(self.workers).reindex(table.index)
        table["households_per_s"] = table["households"] / table["busy_s"]
        return table


def county_bounds_of(folder: Path) -> pd.DataFrame:
    counties = gpd.read_parquet(folder / "counties.parquet")
    return counties.set_index("code").bounds


def dask_client(scheduler: str | None, *, workers: int | None = None,
                memory_limit: str = "auto") -> Client:
    """A client of the cluster at *scheduler* (``GRIDMAP_DASK_SCHEDULER``) or, without one,
    of a new LocalCluster of *workers* single-threaded processes (default: one per core)."""
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler)
    cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                           processes=True, dashboard_address=None, memory_limit=memory_limit)
    return Client(cluster)


def run_province(folder: Path, client: Client, *,
                 thresholds: dict[str, list[float]] | None = None,
                 index_cells: int = 4_000_000,
                 on_partition: Callable[[Figures], None] | None = None) -> ProvinceRun:
    """Assignment, per-grid totals and coverage of every county under *folder* on the
    cluster of *client*, one task per county; the results are counts per grid."""
    import dask
    import dask_geopandas
    from distributed import as_completed, get_task_stream

    thresholds = thresholds or thresholds_for()
    folder = Path(folder).resolve()
    bounds = county_bounds_of(folder)
    households = dask_geopandas.read_parquet(str(folder / "households"),
                                             split_row_groups=False)
    parts = households.to_delayed()
    tasks = [dask.delayed(county_pipeline)(part, str(folder), bounds, thresholds, index_cells)
             for part in parts]
    start = time.perf_counter()
    with get_task_stream(client) as stream:
        futures = client.compute(tasks)
        results: list[PartitionResult] = []
        for future in as_completed(futures):
            result = future.result()
            results.append(result)
            if on_partition:
                on_partition(result.figures)
    wall = time.perf_counter() - start
    busy: dict[str, float] = {}
    for task in stream.data:
        for step in task.get("startstops", ()):
            if step["action"] == "compute":
                busy[task["worker"]] = busy.get(task["worker"], 0.0) + step["stop"] \
                    - step["start"]
    totals, coverage = combine([r.totals for r in results], [r.coverage for r in results])
    return ProvinceRun(totals, coverage, sorted((r.figures for r in results),
                                                key=lambda f: f.county), wall, busy)


def run_in_memory(folder: Path, *, thresholds: dict[str, list[float]] | None = None,
                  index_cells: int = 16_000_000
                  ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """The same answers in one process: every file read, one index over all grids."""
    thresholds = thresholds or thresholds_for()
    folder = Path(folder)
    steps: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        steps[name], clock = now - clock, now

    households = read_layer(folder, "households")
    grids = read_layer(folder, "grids")
    facilities = read_layer(folder, "facilities")
    lap("read")
    index = build_grid_index(grids, max_cells=index_cells)
    lap("index")
    assigned = assign_to_grids(households, index)
    lap("assign")
    totals = grid_totals(assigned)
    lap("totals")
    cov = household_coverage(assigned, facilities, thresholds=thresholds)
    counts = coverage_by(assigned, cov, level="grid")
    lap("coverage")
    _, counts = combine([totals], [counts[_COUNT_COLUMNS]])
    return totals, counts, steps


def read_layer(folder: Path, layer: str) -> gpd.GeoDataFrame:
    """All counties of one layer, in county order, without the partition column."""
    frames = [gpd.read_parquet(path) for path in sorted((Path(folder) / layer).glob(
        "county=*/*.parquet"))]
    if not frames:
        raise FileNotFoundError(f"no {layer} under {folder}: generate the province first "
                                "(gridmap province generate)")
    frame = pd.concat(frames, ignore_index=True)
    return gpd.GeoDataFrame(frame.drop(columns="bbox", errors="ignore"), geometry="geometry",
                            crs=frames[0].crs)


def counties_written(folder: Path) -> Iterator[str]:
    for path in sorted((Path(folder) / "grids").glob("county=*")):
        yield path.name.split("=")[1]


def run_previous(folder: Path, client: Client, *,
                 thresholds: dict[str, list[float]] | None = None, npartitions: int = 8
                 ) -> tuple[pd.DataFrame, pd.DataFrame, float, float]:
    """The dask path as it was before this module (for the benchmark): every file read in
    the client, the households shipped to the cluster with ``from_geopandas``, one index over
    all grids and the facilities travelling with the graph. Returns the per-grid totals and
    coverage counts (as :func:`run_province`), the seconds in all and the seconds reading."""
    import dask_geopandas

    thresholds = thresholds or thresholds_for()
    start = time.perf_counter()
    households = read_layer(folder, "households")
    grids = read_layer(folder, "grids")
    facilities = read_layer(folder, "facilities")
    read_s = time.perf_counter() - start
    index = build_grid_index(grids)
    frame = dask_geopandas.from_geopandas(households, npartitions=npartitions)
    assigned = assign_to_grids(frame, index).persist()
    cov = household_coverage(assigned, facilities, thresholds=thresholds)
    totals = assigned.map_partitions(grid_totals, meta=grid_totals(assigned._meta)).compute()
    table = coverage_by(assigned, cov, level="grid")
    total, table = combine([totals], [table[_COUNT_COLUMNS]])
    client.cancel(assigned)
    return total, table, time.perf_counter() - start, read_s
