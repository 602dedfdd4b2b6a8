"""A deterministic synthetic city for the assignment benchmark and tests: ~500 irregular grids
(100+ vertices each, wiggly shared edges like real boundaries) that partition their area
exactly, a few exclusive grids, and points, some of them exactly on edges and vertices."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy import Engine, create_engine, make_url

if TYPE_CHECKING:
    from gridmap.store.load import LoadResult

CRS = "EPSG:32650"
ORIGIN = (400_000.0, 3_500_000.0)


def _wiggle(line: shapely.LineString, rng: np.random.Generator, points: int) -> shapely.LineString:
    xy = shapely.get_coordinates(line)
    a, b = xy[0], xy[-1]
    t = np.linspace(0, 1, points)
    base = a + t[:, None] * (b - a)
    normal = np.array([-(b - a)[1], (b - a)[0]])
    length = float(np.hypot(*normal)) or 1.0
    normal /= length
    amp = 0.04 * length
    k = rng.integers(2, 5)
    offset = amp * (np.sin(np.pi * k * t + rng.uniform(0, 6)) * np.sin(np.pi * t)
                    + 0.3 * rng.uniform(-1, 1, points) * np.sin(np.pi * t))
    base += offset[:, None] * normal
    base[0], base[-1] = a, b
    return shapely.LineString(base)


def make_city(n_grids: int = 500, *, seed: int = 11, size: float = 20_000.0,
              vertices_per_edge: int = 24, exclusive: int = 8) -> gpd.GeoDataFrame:
    """Grids partitioning an irregular city of roughly *size* metres across."""
    rng = np.random.default_rng(seed)
    x0, y0 = ORIGIN
    seeds = rng.uniform([x0, y0], [x0 + size, y0 + size], size=(int(n_grids * 1.6), 2))
    env = shapely.box(x0 - size, y0 - size, x0 + 2 * size, y0 + 2 * size)
    edges = shapely.get_parts(shapely.voronoi_polygons(
        shapely.multipoints(seeds), extend_to=env, only_edges=True))
    wiggly = [_wiggle(e, rng, vertices_per_edge) for e in edges]
    noded = shapely.union_all([*wiggly, env.exterior])
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    centre = shapely.Point(x0 + size / 2, y0 + size / 2)
    dist = shapely.distance(shapely.centroid(faces), centre)
    keep = faces[np.argsort(dist)[:n_grids]]
    cents = shapely.get_coordinates(shapely.centroid(keep))
    order = np.lexsort((cents[:, 0], -np.round(cents[:, 1] / 800)))
    keep = keep[order]
    codes = [f"610199{1 + i // 150:03d}{1 + (i % 150) // 5:03d}{1 + i % 5:03d}"
             for i in range(len(keep))]
    frame = gpd.GeoDataFrame({"code": codes, "kind": "comprehensive"},
                             geometry=list(keep), crs=CRS)
    extra = []
    for j in range(exclusive):
        host = frame.geometry.iat[int(rng.integers(0, len(frame)))]
        inner = host.buffer(-80)
        if inner.is_empty:
            continue
        p = inner.representative_point()
        rect = shapely.box(p.x - 60, p.y - 40, p.x + 60, p.y + 40).intersection(inner)
        host_code = frame["code"].iat[int(np.flatnonzero(frame.geometry == host)[0])]
        extra.append({"code": host_code[:12] + f"{900 + j:03d}", "kind": "exclusive",
                      "geometry": rect})
    if extra:
        frame = gpd.GeoDataFrame(
            [*frame.to_dict("records"), *extra], geometry="geometry", crs=CRS)
    return frame


def make_points(grids: gpd.GeoDataFrame, n: int, *, seed: int = 5,
                on_edges: int = 2_000) -> gpd.GeoSeries:
    """*n* points over the city's bounds (some outside it), *on_edges* of them exactly on grid
    vertices and at midpoints of edges shared by two grids."""
    rng = np.random.default_rng(seed)
    xmin, ymin, xmax, ymax = grids.total_bounds
    pad = 0.02 * (xmax - xmin)
    xy = rng.uniform([xmin - pad, ymin - pad], [xmax + pad, ymax + pad], size=(n, 2))
    verts = shapely.get_coordinates(grids.geometry.values)
    pick = rng.integers(0, len(verts) - 1, on_edges)
    xy[:on_edges // 2] = verts[pick[:on_edges // 2]]
    xy[on_edges // 2:on_edges] = (verts[pick[on_edges // 2:]] + verts[pick[on_edges // 2:] + 1]) / 2
    rng.shuffle(xy)
    return gpd.GeoSeries(gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs=grids.crs)


def store_city(engine: Engine, grids: gpd.GeoDataFrame, points: gpd.GeoSeries) -> LoadResult:
    """Load the city into a migrated database: its county, townships and communities (the
    grids' code prefixes, dissolved), the grids, and the points as households (assigned to
    the grids as they are imported); returns the households' import result."""
    from gridmap.store.load import load_layer

    coms = grids.assign(code=grids["code"].str[:12]).dissolve("code").reset_index()
    towns = grids.assign(code=grids["code"].str[:9] + "000").dissolve("code").reset_index()
    county = gpd.GeoDataFrame({"code": ["610199000000"]},
                              geometry=[grids.union_all()], crs=grids.crs)
    with engine.begin() as conn:
        for layer, frame in (("counties", county), ("townships", towns),
                             ("communities", coms)):
            frame = frame[["code", "geometry"]].assign(
                name=frame["code"], urban_rural=None, population=None)
            frame["geometry"] = [shapely.MultiPolygon(shapely.get_parts(g))
                                 for g in frame.geometry]
            load_layer(conn, layer, frame)
        g = grids.assign(name=grids["code"], parent_grid_code=None)
        g["geometry"] = [shapely.MultiPolygon(shapely.get_parts(x)) for x in g.geometry]
        load_layer(conn, "grids", g)
        hh = gpd.GeoDataFrame({"id": np.arange(len(points)).astype(str), "address": "",
                               "residents": 1}, geometry=points.values, crs=points.crs)
        for flag in ("elderly_alone", "disabled", "left_behind_child", "low_income"):
            hh[flag] = False
        return load_layer(conn, "households", hh)


@contextmanager
def scratch_database() -> Iterator[Engine]:
    """A scratch database of the configured server, migrated and empty; dropped
    afterwards."""
    from gridmap.settings import Settings
    from gridmap.store.db import create_database, database_url, drop_database, migrate

    server = database_url(Settings())
    name = f"gridmap_bench_{uuid.uuid4().hex[:8]}"
    create_database(server, name)
    engine = create_engine(make_url(server).set(database=name))
    try:
        with engine.begin() as conn:
            migrate(conn)
        yield engine
    finally:
        engine.dispose()
        drop_database(server, name)


@contextmanager
def city_database(grids: gpd.GeoDataFrame, points: gpd.GeoSeries) -> Iterator[Engine]:
    """A :func:`scratch_database` holding the city (:func:`store_city`)."""
    with scratch_database() as engine:
        store_city(engine, grids, points)
        yield engine


def merge_neighbours(grids: gpd.GeoDataFrame) -> tuple[str, gpd.GeoDataFrame]:
    """A community's grids, as a grids import takes them, with two neighbours sharing an
    edge merged into the first (the second retired)."""
    comp = grids[grids["kind"] == "comprehensive"]
    for community, part in comp.groupby(comp["code"].str[:12]):
        geoms = part.geometry.values
        for i in range(len(part)):
            for j in range(i + 1, len(part)):
                if shapely.intersection(geoms[i], geoms[j]).length > 0:
                    whole = grids[grids["code"].str[:12] == community].copy()
                    keep, gone = part["code"].iat[i], part["code"].iat[j]
                    whole.loc[whole["code"] == keep, "geometry"] = shapely.union(
                        geoms[i], geoms[j])
                    whole = whole[whole["code"] != gone]
                    whole = whole.assign(name=whole["code"], parent_grid_code=None)
                    whole["geometry"] = [shapely.MultiPolygon(shapely.get_parts(x))
                                         for x in whole.geometry]
                    return str(community), whole
    raise ValueError("no two neighbouring grids in one community")
