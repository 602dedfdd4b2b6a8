"""The basemap's vector tiles (streets from the walking network, building footprints) decode
to what the store holds, are the same for every caller, and follow changes at once."""

from __future__ import annotations

from collections.abc import Iterator

import geopandas as gpd
import mapbox_vector_tile
import pytest
import shapely
import shapely.affinity
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from gridmap.api.app import create_app
from gridmap.demodata import BASEMAP_FILES, DEMO_DIR
from gridmap.settings import Settings
from gridmap.store.basemap import save_buildings
from gridmap.tiles.mvt import tile_bounds
from tests.api.test_tiles import tile_of
from tests.helpers import bearer, token_for, wait_for_notice

CENTRE = (109.05, 34.20)  # the urban district's centre


@pytest.fixture(scope="module")
def client(demo_db: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=demo_db)),
                    headers=bearer(token_for(demo_db, "admin"))) as c:
        yield c


def features(content: bytes, layer: str) -> list[dict]:
    return mapbox_vector_tile.decode(content)[layer]["features"] if content else []


def test_demo_streets_and_buildings_are_in_the_store(demo_db: str) -> None:
    engine = create_engine(demo_db, poolclass=NullPool)
    with engine.connect() as conn:
        buildings, named, covered = conn.execute(text(
            "SELECT count(*), count(name), (SELECT count(*) FROM household h WHERE EXISTS "
            "(SELECT 1 FROM building b WHERE ST_Intersects(b.geom, h.geom))) FROM building"
        )).one()
        edges, nodes, dangling = conn.execute(text(
            "SELECT count(*), (SELECT count(*) FROM street_node), count(*) FILTER (WHERE "
            "NOT EXISTS (SELECT 1 FROM street_node n WHERE n.id = e.u)) FROM street_edge e"
        )).one()
        households = conn.execute(text("SELECT count(*) FROM household")).scalar_one()
    engine.dispose()
    assert buildings > 10_000 and 500 < named < buildings
    assert covered == households  # every household lives in a building
    assert edges > 500 and nodes > 300 and dangling == 0


def test_street_and_building_tiles_hold_the_stored_features(client: TestClient) -> None:
    z, x, y = tile_of(*CENTRE, 15)
    streets = client.get(f"/tiles/streets/{z}/{x}/{y}.mvt")
    buildings = client.get(f"/tiles/buildings/{z}/{x}/{y}.mvt")
    assert streets.status_code == buildings.status_code == 200
    box = shapely.box(*tile_bounds(z, x, y))
    stored = gpd.read_parquet(DEMO_DIR / BASEMAP_FILES["buildings"])
    inside = stored[stored.intersects(box)]
    got = {f["properties"]["id"]: f["properties"] for f in features(buildings.content,
                                                                     "buildings")}
    assert set(inside["id"]) <= set(got) and inside["id"].size > 5
    named = inside.dropna(subset=["name"])
    assert all(got[r.id]["name"] == r.name for r in named.itertuples())
    edges = gpd.read_parquet(DEMO_DIR / BASEMAP_FILES["streets"])
    assert len(features(streets.content, "streets")) == int(edges.intersects(box).sum()) > 0


def test_buildings_start_at_zoom_13_and_the_basemap_is_everyones(client: TestClient,
                                                                  demo_db: str) -> None:
    z, x, y = tile_of(*CENTRE, 12)
    assert client.get(f"/tiles/buildings/{z}/{x}/{y}.mvt").status_code == 204
    assert client.get(f"/tiles/streets/{z}/{x}/{y}.mvt").status_code == 200
    z, x, y = tile_of(*CENTRE, 16)
    first = client.get(f"/tiles/buildings/{z}/{x}/{y}.mvt")
    worker = bearer(token_for(demo_db, "basemap-worker", "grid_worker", ("610199001001001",)))
    public = client.get(f"/tiles/buildings/{z}/{x}/{y}.mvt", headers={"Authorization": ""})
    other = client.get(f"/tiles/buildings/{z}/{x}/{y}.mvt", headers=worker)
    # one cached tile for every caller: the same streets and buildings under anyone's grids
    assert public.status_code == other.status_code == 200
    assert public.headers["X-Tile-Cache"] == other.headers["X-Tile-Cache"] == "hit"
    assert public.content == other.content == first.content


def test_tilejson_of_the_basemap(client: TestClient) -> None:
    body = client.get("/tiles/buildings.json").json()
    assert body["vector_layers"] == [{"id": "buildings", "fields": {"id": "", "name": ""}}]
    west, south, east, north = body["bounds"]
    assert 108.8 < west < CENTRE[0] < east < 109.3 and 34 < south < CENTRE[1] < north < 34.4
    assert client.get("/tiles/streets.json").json()["tiles"][0].endswith(
        "/tiles/streets/{z}/{x}/{y}.mvt")


def test_a_new_building_is_in_the_next_tile(fresh_db: str) -> None:
    engine = create_engine(fresh_db, poolclass=NullPool)
    z, x, y = tile_of(*CENTRE, 16)
    west, south, east, _ = tile_bounds(z, x, y)
    step = (east - west) / 8
    square = shapely.box(west + step, south + step, west + 2 * step, south + 2 * step)
    beside = shapely.affinity.translate(square, 3 * step)
    with engine.begin() as conn:
        save_buildings(conn, gpd.GeoDataFrame(
            {"id": ["b1"], "name": ["一号楼"], "address": [None]}, geometry=[square],
            crs=4326), source="test")
    with TestClient(create_app(Settings(database_url=fresh_db))) as client:
        before = client.get(f"/tiles/buildings/{z}/{x}/{y}.mvt")
        assert client.get(f"/tiles/buildings/{z}/{x}/{y}.mvt").headers["X-Tile-Cache"] == "hit"
        with engine.begin() as conn:
            saved = save_buildings(conn, gpd.GeoDataFrame(
                {"id": ["b1", "b2"], "name": ["一号楼", "二号楼"], "address": [None, "翠华路1号"]},
                geometry=[square, beside], crs=4326),
                source="test")
        wait_for_notice(client.app)
        after = client.get(f"/tiles/buildings/{z}/{x}/{y}.mvt")
    engine.dispose()
    assert [f["properties"]["name"] for f in features(before.content, "buildings")] == ["一号楼"]
    assert (saved.added, saved.changed, saved.unchanged) == (1, 0, 1)
    assert after.headers["X-Tile-Cache"] == "miss"
    assert sorted(f["properties"]["name"] for f in features(after.content, "buildings")) == [
        "一号楼", "二号楼"]


def test_each_grid_and_community_name_is_one_point_in_one_tile(client: TestClient) -> None:
    z, x, y = tile_of(*CENTRE, 14)
    seen: dict[str, list[str]] = {"grid_labels": [], "communities_labels": []}
    for dx in (0, 1):
        for dy in (0, 1):
            for layer, labels in (("grids", "grid_labels"),
                                  ("communities", "communities_labels")):
                tile = mapbox_vector_tile.decode(
                    client.get(f"/tiles/{layer}/{z}/{x + dx}/{y + dy}.mvt").content)
                assert all(f["geometry"]["type"] == "Point" for f in tile[labels]["features"])
                seen[labels] += [f["properties"]["name"] for f in tile[labels]["features"]]
    for labels, names in seen.items():
        assert names and len(names) == len(set(names)), labels
    assert all(n.endswith("社区") for n in seen["communities_labels"])
    body = client.get("/tiles/grids.json").json()
    assert [v["id"] for v in body["vector_layers"]] == ["grids", "grid_labels"]


def test_streets_carry_their_names_and_each_named_street_is_one_label_line(
        client: TestClient) -> None:
    z, x, y = tile_of(*CENTRE, 15)
    tile = mapbox_vector_tile.decode(client.get(f"/tiles/streets/{z}/{x}/{y}.mvt").content)
    box = shapely.box(*tile_bounds(z, x, y))
    edges = gpd.read_parquet(DEMO_DIR / BASEMAP_FILES["streets"])
    here = edges[edges.intersects(box)]
    # every edge with its street's name (the demo names every street of the town)
    named = {f["properties"].get("name") for f in tile["streets"]["features"]}
    assert set(here["name"]) <= named and None not in named
    # one label line per named street in the tile, merged from its edges
    labels = [f["properties"]["name"] for f in tile["street_labels"]["features"]]
    assert len(labels) == len(set(labels)) >= 2
    assert set(here["name"]) <= set(labels) <= named
    assert all(f["geometry"]["type"] in ("LineString", "MultiLineString")
               for f in tile["street_labels"]["features"])
    # no labels at the district's zoom (the names would crowd it), the streets still drawn
    z, x, y = tile_of(*CENTRE, 12)
    far = mapbox_vector_tile.decode(client.get(f"/tiles/streets/{z}/{x}/{y}.mvt").content)
    assert "street_labels" not in far and far["streets"]["features"]
    body = client.get("/tiles/streets.json").json()
    assert body["vector_layers"] == [
        {"id": "streets", "fields": {"id": "", "length_m": "", "name": ""}},
        {"id": "street_labels", "fields": {"name": ""}}]
