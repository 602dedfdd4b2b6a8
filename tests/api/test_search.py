"""Address search: partial, typo-tolerant, Chinese and Latin script, ranked, with the grid."""

from __future__ import annotations

from collections.abc import Iterator

import geopandas as gpd
import psycopg
import pytest
from fastapi.testclient import TestClient

from gridmap.api.app import create_app
from gridmap.demodata import DEMO_DIR, DEMO_FILES
from gridmap.settings import Settings
from tests.conftest import loaded_database
from tests.helpers import bearer, token_for


@pytest.fixture(scope="module")
def client(server_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[TestClient]:
    some = tmp_path_factory.mktemp("hh") / "households.parquet"
    hh = gpd.read_parquet(DEMO_DIR / DEMO_FILES["households"])
    hh[hh["address"].str.contains("新昌") | (hh.index < 10_000)].to_parquet(some)
    for url in loaded_database(server_url, template_db, (
            "counties", "townships", "communities", "grids", "households"),
            {"households": some}):
        with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(  # a Latin-script address, as OpenStreetMap imports give
                "INSERT INTO household (id, address, residents, geom) VALUES ('L1', "
                "'Mannerheimintie 5 A 12', 2, ST_SetSRID(ST_Point(24.94, 60.17), 4326))")
        with TestClient(create_app(Settings(database_url=url)),
                        headers=bearer(token_for(url, "admin"))) as c:
            yield c


def test_partial_chinese_address(client: TestClient) -> None:
    hits = client.get("/api/search", params={"q": "新昌社区1号楼202"}).json()
    assert hits and all("新昌社区1号楼202" in h["address"] for h in hits[:3])
    assert hits[0]["grid_code"].startswith("610199") and hits[0]["grid_name"]
    assert 108 < hits[0]["lon"] < 110 and 34 < hits[0]["lat"] < 35
    top = hits[0]  # what the dispatcher needs next: the community and township, the workers
    assert top["grid"]["code"] == top["grid_code"]
    assert top["community"]["code"] == top["grid_code"][:12] and top["community"]["name"]
    assert top["township"]["code"] == top["grid_code"][:9] + "000" and top["township"]["name"]
    assert top["workers"] == []  # this database holds no workers


def test_a_typo_still_finds_the_address(client: TestClient) -> None:
    # (a typo in the community's name is no longer a fair test: the demo's streets are
    # named from the same stems, and 新昌路…社区1号楼202室 is then as near as 新昌社去…)
    hits = client.get("/api/search", params={"q": "新昌社区1号搂202室", "limit": 3}).json()
    assert hits and "新昌社区1号楼202室" in hits[0]["address"]


def test_latin_script_with_a_typo(client: TestClient) -> None:
    hits = client.get("/api/search", params={"q": "Manerheimintie 5"}).json()
    assert hits and hits[0]["id"] == "L1"
    assert hits[0]["grid"] is None and hits[0]["workers"] == []  # outside every grid


def test_ranked_best_first(client: TestClient) -> None:
    hits = client.get("/api/search", params={"q": "长安路", "limit": 20}).json()
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("params", [{"q": "a"}, {"q": "x" * 201}, {"q": "长安路", "limit": 0},
                                    {"q": "长安路", "limit": 500}, {}])
def test_bad_queries_are_422(client: TestClient, params: dict) -> None:
    assert client.get("/api/search", params=params).status_code == 422


def test_no_match_is_an_empty_list(client: TestClient) -> None:
    assert client.get("/api/search", params={"q": "zzzzqqqq"}).json() == []
