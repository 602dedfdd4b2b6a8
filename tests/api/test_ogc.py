"""OGC API Features: read by GDAL's OAPIF driver and OWSLib, with and without a token;
paging, bbox, properties, CQL2; errors are 4xx that say what to fix."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import httpx
import psycopg
import pyogrio
import pytest
from owslib.ogcapi.features import Features

from gridmap.demodata import DEMO_DIR, DEMO_FILES
from gridmap.store.ogc import COLLECTIONS
from tests.conftest import loaded_database, serve_in_thread
from tests.helpers import bearer, token_for

PUBLIC = ("townships", "communities", "grids")
TOWNSHIP = "610199001000"


@pytest.fixture(scope="module")
def database(server_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[str]:
    some = tmp_path_factory.mktemp("hh") / "households.parquet"
    gpd.read_parquet(DEMO_DIR / DEMO_FILES["households"]).iloc[:700].to_parquet(some)
    yield from loaded_database(server_url, template_db, (
            "counties", "townships", "communities", "grids", "facilities", "incidents",
            "households"), {"households": some})


@pytest.fixture(scope="module")
def ogc(database: str) -> Iterator[str]:
    yield from serve_in_thread(database)


@pytest.fixture(scope="module")
def admin(database: str) -> dict[str, str]:
    return bearer(token_for(database, "ogc-admin"))


@pytest.fixture(scope="module")
def planner(database: str) -> dict[str, str]:
    return bearer(token_for(database, "ogc-planner", "planner", (TOWNSHIP,)))


EXPECTED = {"townships": 4, "communities": 74, "grids": 295, "households": 700,
            "facilities": 342, "incidents": 3000}


def test_gdal_ogrinfo_lists_the_public_collections(ogc: str) -> None:
    out = subprocess.run(["ogrinfo", "-ro", "-q", f"OAPIF:{ogc}/ogc"], capture_output=True,
                         text=True, check=True).stdout
    for cid in COLLECTIONS:
        assert (cid in out) == (cid in PUBLIC), out


def gdal_copy(ogc: str, cid: str, out: Path, *config: str) -> gpd.GeoDataFrame:
    # GDAL runs in a subprocess: in this process it would hold the GIL the server needs
    subprocess.run(["ogr2ogr", *config, "-f", "GPKG", str(out), f"OAPIF:{ogc}/ogc", cid],
                   check=True, capture_output=True, timeout=120)
    return pyogrio.read_dataframe(out)


@pytest.mark.parametrize("cid", PUBLIC)
def test_gdal_reads_the_public_collections_completely(ogc: str, cid: str, tmp_path: Path
                                                      ) -> None:
    frame = gdal_copy(ogc, cid, tmp_path / f"{cid}.gpkg")
    assert len(frame) == EXPECTED[cid]
    assert frame.geometry.is_valid.all()


@pytest.mark.parametrize("cid", ["households", "facilities", "incidents"])
def test_gdal_with_a_token_reads_the_rest(ogc: str, cid: str, admin: dict[str, str],
                                          tmp_path: Path) -> None:
    header = f"Authorization: {admin['Authorization']}"
    frame = gdal_copy(ogc, cid, tmp_path / f"{cid}.gpkg", "--config", "GDAL_HTTP_HEADERS",
                      header)
    assert len(frame) == EXPECTED[cid]
    assert frame.geometry.is_valid.all()


def test_owslib_reads_collections_and_items(ogc: str, admin: dict[str, str]) -> None:
    api = Features(f"{ogc}/ogc", headers=admin)
    ids = {c["id"] for c in api.collections()["collections"]}
    assert ids == set(COLLECTIONS)
    page = api.collection_items("grids", limit=10)
    assert page["numberReturned"] == 10 and page["numberMatched"] == 295
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in \
        api.conformance()["conformsTo"]


def test_owslib_with_a_token_gets_only_rows_in_scope(ogc: str, planner: dict[str, str],
                                                     database: str) -> None:
    api = Features(f"{ogc}/ogc", headers=planner)
    grids = api.collection_items("grids", limit=1000)
    codes = {f["id"] for f in grids["features"]}
    assert codes and all(c.startswith(TOWNSHIP[:9]) for c in codes)
    assert grids["numberMatched"] == len(codes) < 295
    households = api.collection_items("households", limit=1000)
    with psycopg.connect(database.replace("+psycopg", "")) as conn:
        rows = conn.execute("SELECT id, coalesce(grid_code, '') FROM household").fetchall()
    inside = {i for i, code in rows if code.startswith(TOWNSHIP[:9])}
    assert households["numberMatched"] == len(inside) > 0
    assert {f["id"] for f in households["features"]} == inside
    with psycopg.connect(database.replace("+psycopg", "")) as conn:
        rows = conn.execute("SELECT id, coalesce(grid_code, '') FROM incident").fetchall()
    incidents = api.collection_items("incidents", limit=10_000)
    inside = {i for i, code in rows if code.startswith(TOWNSHIP[:9])}
    assert incidents["numberMatched"] == len(inside) < len(rows)
    assert {f["id"] for f in incidents["features"]} == inside
    outside = next(i for i, _ in rows if i not in inside)
    res = httpx.get(f"{ogc}/ogc/collections/incidents/items/{outside}", headers=planner)
    assert res.status_code == 404  # the same answer as for a row that does not exist
    assert res.json()["detail"] == httpx.get(
        f"{ogc}/ogc/collections/incidents/items/NOPE", headers=planner).json()[
        "detail"].replace("'NOPE'", repr(outside))


def test_the_public_gets_401_for_private_collections(ogc: str) -> None:
    for cid in ("households", "incidents", "facilities"):
        res = httpx.get(f"{ogc}/ogc/collections/{cid}/items")
        assert res.status_code == 401 and res.headers["www-authenticate"] == "Bearer"
        assert "sign in" in res.json()["detail"]


def test_paging_with_next_links_covers_everything_once(ogc: str, admin: dict[str, str]
                                                       ) -> None:
    seen: list[str] = []
    url: str | None = f"{ogc}/ogc/collections/communities/items?limit=20"
    while url:
        body = httpx.get(url, headers=admin).json()
        seen += [f["id"] for f in body["features"]]
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
    assert len(seen) == len(set(seen)) == 74


def test_bbox_properties_and_cql2(ogc: str, admin: dict[str, str]) -> None:
    grids = gpd.read_file(DEMO_DIR / DEMO_FILES["grids"])
    box = (109.02, 34.19, 109.05, 34.21)
    body = httpx.get(f"{ogc}/ogc/collections/grids/items", params={
        "bbox": ",".join(map(str, box)), "limit": 1000, "properties": "code,kind"},
        headers=admin).json()
    want = set(grids.cx[box[0]:box[2], box[1]:box[3]]["code"])
    assert {f["id"] for f in body["features"]} == want
    assert set(body["features"][0]["properties"]) == {"code", "kind"}
    exclusive = httpx.get(f"{ogc}/ogc/collections/grids/items", params={
        "filter": "kind = 'exclusive' AND community_code LIKE '610199001%'"},
        headers=admin).json()
    assert exclusive["numberMatched"] == int(((grids["kind"] == "exclusive")
                                              & grids["code"].str.startswith("610199001")).sum())
    one = httpx.get(f"{ogc}/ogc/collections/grids/items/{grids['code'].iat[0]}", headers=admin)
    assert one.status_code == 200 and one.headers["content-type"] == "application/geo+json"


@pytest.mark.parametrize(("path", "status", "phrase"), [
    ("/ogc/collections/parcels/items", 404, "unknown collection"),
    ("/ogc/collections/grids/items?bbox=109.1,34,109,34.1", 400, "inverted"),
    ("/ogc/collections/grids/items?bbox=1,2,3", 400, "four numbers"),
    ("/ogc/collections/grids/items?bbox=a,b,c,d", 400, "four numbers"),
    ("/ogc/collections/grids/items?bbox=0,0,200,10", 400, "±180"),
    ("/ogc/collections/grids/items?limit=100000", 400, "at most"),
    ("/ogc/collections/grids/items?limit=0", 422, ""),
    ("/ogc/collections/grids/items?properties=code,colour", 400, "unknown properties"),
    ("/ogc/collections/grids/items?filter=colour%20%3D%201", 400, "unknown properties"),
    ("/ogc/collections/grids/items?filter=kind%20%3D%3D", 400, "CQL2"),
    ("/ogc/collections/grids/items/nope", 404, "no feature"),
])
def test_errors_are_4xx_saying_what_to_fix(ogc: str, path: str, status: int,
                                           phrase: str, admin: dict[str, str]) -> None:
    res = httpx.get(ogc + path, headers=admin)
    assert res.status_code == status, res.text
    assert phrase in json.dumps(res.json()["detail"], ensure_ascii=False)


def test_openapi_documents_the_collections(ogc: str, tmp_path: Path) -> None:
    spec = httpx.get(f"{ogc}/openapi.json").json()
    assert "/ogc/collections/{collection_id}/items" in spec["paths"]
