"""OGC API Features: read by GDAL's OAPIF driver and OWSLib; paging, bbox, properties, CQL2;
errors are 4xx that say what to fix."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import httpx
import pyogrio
import pytest
from owslib.ogcapi.features import Features

from gridmap.demodata import DEMO_DIR, DEMO_FILES
from gridmap.store.ogc import COLLECTIONS
from tests.conftest import loaded_database, serve_in_thread


@pytest.fixture(scope="module")
def ogc(server_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[str]:
    some = tmp_path_factory.mktemp("hh") / "households.parquet"
    gpd.read_parquet(DEMO_DIR / DEMO_FILES["households"]).iloc[:700].to_parquet(some)
    for url in loaded_database(server_url, template_db, (
            "counties", "townships", "communities", "grids", "facilities", "incidents",
            "households"), {"households": some}):
        yield from serve_in_thread(url)


EXPECTED = {"townships": 4, "communities": 74, "grids": 295, "households": 700,
            "facilities": 342, "incidents": 3000}


def test_gdal_ogrinfo_lists_every_collection(ogc: str) -> None:
    out = subprocess.run(["ogrinfo", "-ro", "-q", f"OAPIF:{ogc}/ogc"], capture_output=True,
                         text=True, check=True).stdout
    for cid in COLLECTIONS:
        assert cid in out


@pytest.mark.parametrize("cid", list(COLLECTIONS))
def test_gdal_reads_every_collection_completely(ogc: str, cid: str, tmp_path: Path) -> None:
    # GDAL runs in a subprocess: in this process it would hold the GIL the server needs
    out = tmp_path / f"{cid}.gpkg"
    subprocess.run(["ogr2ogr", "-f", "GPKG", str(out), f"OAPIF:{ogc}/ogc", cid],
                   check=True, capture_output=True, timeout=120)
    frame = pyogrio.read_dataframe(out)
    assert len(frame) == EXPECTED[cid]
    assert frame.geometry.is_valid.all()


def test_owslib_reads_collections_and_items(ogc: str) -> None:
    api = Features(f"{ogc}/ogc")
    ids = {c["id"] for c in api.collections()["collections"]}
    assert ids == set(COLLECTIONS)
    page = api.collection_items("grids", limit=10)
    assert page["numberReturned"] == 10 and page["numberMatched"] == 295
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in \
        api.conformance()["conformsTo"]


def test_paging_with_next_links_covers_everything_once(ogc: str) -> None:
    seen: list[str] = []
    url: str | None = f"{ogc}/ogc/collections/communities/items?limit=20"
    while url:
        body = httpx.get(url).json()
        seen += [f["id"] for f in body["features"]]
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
    assert len(seen) == len(set(seen)) == 74


def test_bbox_properties_and_cql2(ogc: str) -> None:
    grids = gpd.read_file(DEMO_DIR / DEMO_FILES["grids"])
    box = (109.02, 34.19, 109.05, 34.21)
    body = httpx.get(f"{ogc}/ogc/collections/grids/items", params={
        "bbox": ",".join(map(str, box)), "limit": 1000, "properties": "code,kind"}).json()
    want = set(grids.cx[box[0]:box[2], box[1]:box[3]]["code"])
    assert {f["id"] for f in body["features"]} == want
    assert set(body["features"][0]["properties"]) == {"code", "kind"}
    exclusive = httpx.get(f"{ogc}/ogc/collections/grids/items", params={
        "filter": "kind = 'exclusive' AND community_code LIKE '610199001%'"}).json()
    assert exclusive["numberMatched"] == int(((grids["kind"] == "exclusive")
                                              & grids["code"].str.startswith("610199001")).sum())
    one = httpx.get(f"{ogc}/ogc/collections/grids/items/{grids['code'].iat[0]}")
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
                                           phrase: str) -> None:
    res = httpx.get(ogc + path)
    assert res.status_code == status, res.text
    assert phrase in json.dumps(res.json()["detail"], ensure_ascii=False)


def test_openapi_documents_the_collections(ogc: str, tmp_path: Path) -> None:
    spec = httpx.get(f"{ogc}/openapi.json").json()
    assert "/ogc/collections/{collection_id}/items" in spec["paths"]
