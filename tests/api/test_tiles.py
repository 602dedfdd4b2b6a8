"""Vector tiles decode to what the database holds; edits evict exactly the stale tiles."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import mapbox_vector_tile
import psycopg
import pytest
import shapely
from fastapi.testclient import TestClient

from gridmap.api.app import create_app
from gridmap.demodata import DEMO_DIR, DEMO_FILES
from gridmap.domain.standards import GridStandard
from gridmap.settings import Settings
from gridmap.store.db import libpq_dsn
from gridmap.store.listen import Change
from gridmap.tiles.mvt import TileCache, tile_bounds
from gridmap.tiles.store import Tile
from tests.conftest import loaded_database
from tests.helpers import (
    bearer,
    import_merged,
    neighbours_in_community,
    tile_of,
    token_for,
    wait_for_notice,
)


@pytest.fixture(scope="module")
def district(server_url: str, template_db: str) -> Iterator[str]:
    yield from loaded_database(server_url, template_db, (
            "counties", "townships", "communities", "grids", "workers", "households",
            "facilities", "incidents"))


@pytest.fixture(scope="module")
def client(district: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=district)),
                    headers=bearer(token_for(district, "admin"))) as c:
        yield c


def decode(content: bytes) -> dict:
    return mapbox_vector_tile.decode(content)


def test_grid_tile_holds_the_grids_with_counts(client: TestClient) -> None:
    grids = gpd.read_file(DEMO_DIR / DEMO_FILES["grids"])
    g = grids[grids["kind"] == "comprehensive"].iloc[30]
    p = g.geometry.representative_point()
    z, x, y = tile_of(p.x, p.y, 14)
    res = client.get(f"/tiles/grids/{z}/{x}/{y}.mvt")
    assert res.status_code == 200
    assert res.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    feats = {f["properties"]["code"]: f["properties"] for f in decode(res.content)["grids"][
        "features"]}
    assert g["code"] in feats
    props = feats[g["code"]]
    assert props["households"] > 0 and props["band_low"] in (200, 300)
    west, south, east, north = tile_bounds(z, x, y)
    box = shapely.box(west, south, east, north)
    expected = set(grids.loc[grids.intersects(box), "code"])
    assert expected <= set(feats)


def test_tiles_are_cached_and_a_redraw_evicts_only_what_it_touches(
        client: TestClient, district: str, tmp_path: Path) -> None:
    grids = gpd.read_file(DEMO_DIR / DEMO_FILES["grids"])
    comp = grids[grids["kind"] == "comprehensive"]
    a, b = neighbours_in_community(grids, 50)
    here = tile_of(*b.geometry.representative_point().coords[0], 14)
    far = tile_of(*comp.iloc[-1].geometry.representative_point().coords[0], 14)
    assert here != far
    for t in (here, far):
        client.get("/tiles/grids/{}/{}/{}.mvt".format(*t))
    assert client.get("/tiles/grids/{}/{}/{}.mvt".format(*here)).headers["X-Tile-Cache"] == "hit"
    assert import_merged(district, grids, a, b, tmp_path / "merged.geojson").exit_code == 0
    wait_for_notice(client.app)
    fresh = client.get("/tiles/grids/{}/{}/{}.mvt".format(*here))
    assert fresh.headers["X-Tile-Cache"] == "miss"
    codes = {f["properties"]["code"] for f in decode(fresh.content)["grids"]["features"]}
    assert b["code"] not in codes and a["code"] in codes
    assert client.get("/tiles/grids/{}/{}/{}.mvt".format(*far)).headers["X-Tile-Cache"] == "hit"


def test_a_new_incident_appears_in_the_next_tile(client: TestClient, district: str) -> None:
    lon, lat = 109.0512, 34.2051
    z, x, y = tile_of(lon, lat, 15)
    client.get(f"/tiles/incidents/{z}/{x}/{y}.mvt")
    with psycopg.connect(district.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("INSERT INTO incident (id, category, reported_at, status, geom) VALUES "
                     "('T1', '事件/市容环境/暴露垃圾', now(), 'collected', "
                     "ST_SetSRID(ST_MakePoint(%s, %s), 4326))", (lon, lat))
    wait_for_notice(client.app)
    res = client.get(f"/tiles/incidents/{z}/{x}/{y}.mvt")
    assert res.headers["X-Tile-Cache"] == "miss"
    ids = {f["properties"]["id"] for f in decode(res.content)["incidents"]["features"]}
    assert "T1" in ids


def test_tilejson(client: TestClient) -> None:
    body = client.get("/tiles/grids.json").json()
    assert body["tiles"][0].endswith("/tiles/grids/{z}/{x}/{y}.mvt")
    assert "households" in body["vector_layers"][0]["fields"]
    west, south, east, north = body["bounds"]  # the demo district, not the world
    assert 108 < west < east < 110 and 33 < south < north < 35
    assert west < body["center"][0] < east and south < body["center"][1] < north
    assert (body["minzoom"], body["maxzoom"]) == (0, 22)


@pytest.mark.parametrize(("path", "status"), [
    ("/tiles/parcels/10/1/1.mvt", 404), ("/tiles/grids/23/0/0.mvt", 422),
    ("/tiles/grids/2/4/0.mvt", 404), ("/tiles/grids/2/0/-1.mvt", 422),
    ("/tiles/grids/a/0/0.mvt", 422), ("/tiles/parcels.json", 404)])
def test_bad_tile_requests_are_4xx(client: TestClient, path: str, status: int) -> None:
    res = client.get(path)
    assert res.status_code == status
    assert res.json()["detail"]


def test_empty_tile_is_204(client: TestClient) -> None:
    assert client.get("/tiles/grids/10/0/0.mvt").status_code == 204


def test_concurrent_misses_share_one_query_and_a_render_that_overlaps_a_change_is_not_kept(
        district: str) -> None:
    z, x, y = tile_of(109.0512, 34.2051, 14)

    async def scenario() -> tuple[TileCache, list[tuple[Tile, str]], Tile | None]:
        cache = TileCache(libpq_dsn(district), GridStandard())
        await cache.open()
        try:
            together = await asyncio.gather(*(cache.get("grids", z, x, y) for _ in range(5)))
            assert cache.stats.misses == 1  # five requests, one query
            assert cache.cached("grids", z, x, y) == together[0][0]
            # a change lands while the next tile renders: it is served, not kept
            pending = asyncio.ensure_future(cache.get("grids", z, x + 1, y))
            await asyncio.sleep(0)
            cache.apply([Change("grid", None)])
            await pending
            return cache, together, cache.cached("grids", z, x + 1, y)
        finally:
            await cache.close()

    cache, together, kept = asyncio.run(scenario())
    assert {len(t.data) for t, _ in together} != {0} and len({t for t, _ in together}) == 1
    assert kept is None and cache.stats.misses == 2


def test_cache_of_size_zero_renders_every_request(district: str) -> None:
    async def scenario() -> list[str]:
        cache = TileCache(libpq_dsn(district), GridStandard(), max_tiles=0)
        await cache.open()
        try:
            return [(await cache.get("grids", *tile_of(109.0512, 34.2051, 14)))[1]
                    for _ in range(2)]
        finally:
            await cache.close()

    assert asyncio.run(scenario()) == ["miss", "miss"]


def test_etag_and_304_and_the_fast_path_keeps_access(client: TestClient, district: str) -> None:
    z, x, y = tile_of(109.0512, 34.2051, 14)
    path = f"/tiles/grids/{z}/{x}/{y}.mvt"
    signed_in = client.get(path)
    assert signed_in.status_code == 200
    assert signed_in.headers["Cache-Control"] == "private, no-cache"
    etag = signed_in.headers["ETag"]
    again = client.get(path, headers={"If-None-Match": etag})
    assert (again.status_code, again.content, again.headers["ETag"]) == (304, b"", etag)
    assert again.headers["X-Tile-Cache"] == "hit"  # the framework-free path answered
    assert again.headers["X-Content-Type-Options"] == "nosniff"  # inside the security headers
    assert client.get(path, headers={"If-None-Match": 'W/"other", ' + etag}).status_code == 304
    assert client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200
    with TestClient(client.app) as public:  # no token: the public's view, without counts
        first = public.get(path)
        cached = public.get(path)
        assert cached.headers["X-Tile-Cache"] == "hit"
        assert cached.headers["Cache-Control"] == "public, no-cache"
        assert cached.content == first.content and cached.headers["ETag"] != etag
        props = decode(cached.content)["grids"]["features"][0]["properties"]
        assert "households" not in props
        assert "households" in decode(signed_in.content)["grids"]["features"][0]["properties"]
        # the admin's incident tile is cached; the public may not read incidents
        assert client.get(f"/tiles/incidents/{z}/{x}/{y}.mvt").status_code in (200, 204)
        refused = public.get(f"/tiles/incidents/{z}/{x}/{y}.mvt")
        assert refused.status_code == 401 and refused.json()["code"]
        # a bad token is refused even for a cached tile
        assert public.get(path, headers={"Authorization": "Bearer nonsense"}).status_code == 401


def test_processes_share_rendered_tiles_and_a_change_evicts_them_in_both(
        grids_db: str, tmp_path: Path) -> None:
    """Two app instances on one store stand for two `serve --workers 2` processes."""
    settings = Settings(database_url=grids_db)  # one data_dir: one store of tiles
    headers = bearer(token_for(grids_db, "admin"))
    grids = gpd.read_file(DEMO_DIR / DEMO_FILES["grids"])
    a, b = neighbours_in_community(grids, 40)
    path = "/tiles/grids/{}/{}/{}.mvt".format(*tile_of(
        *b.geometry.representative_point().coords[0], 15))
    with TestClient(create_app(settings), headers=headers) as one, \
            TestClient(create_app(settings), headers=headers) as two:
        rendered = one.get(path)
        assert rendered.headers["X-Tile-Cache"] == "miss"
        shared = two.get(path)
        assert shared.headers["X-Tile-Cache"] == "shared"  # rendered once, by the other
        assert shared.content == rendered.content
        assert shared.headers["ETag"] == rendered.headers["ETag"]
        assert two.get(path).headers["X-Tile-Cache"] == "hit"
        assert import_merged(grids_db, grids, a, b, tmp_path / "merged.geojson").exit_code == 0
        wait_for_notice(two.app)
        after = two.get(path, headers={"If-None-Match": rendered.headers["ETag"]})
        assert after.status_code == 200 and after.headers["X-Tile-Cache"] == "miss"
        codes = {f["properties"]["code"] for f in decode(after.content)["grids"]["features"]}
        assert b["code"] not in codes and a["code"] in codes
        wait_for_notice(one.app)
        # the first process evicted its copy too (and, not knowing when the second rendered,
        # the shared one): it renders afresh
        fresh = one.get(path)
        assert fresh.headers["X-Tile-Cache"] != "hit" and fresh.content == after.content
        assert two.get(path).content == after.content
