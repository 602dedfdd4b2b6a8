"""Place search: typos, pinyin, initials and facility names find the right place first, with
a score; a weak or ambiguous best hit comes with a warning; scope and permissions hold."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from gridmap.api.app import create_app
from gridmap.settings import Settings
from tests.helpers import bearer, token_for


@pytest.fixture(scope="module")
def client(demo_db: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=demo_db))) as c:
        c.headers.update(bearer(token_for(demo_db, "places-dispatcher", "dispatcher",
                                          ("610199000000",))))
        yield c


def search(client: TestClient, q: str, **params: object) -> dict:
    res = client.get("/api/places", params={"q": q, **params})
    assert res.status_code == 200, res.text
    return res.json()


def test_a_typo_finds_the_road_and_says_the_match_is_weak(client: TestClient) -> None:
    body = search(client, "翠花路")  # for 翠华路
    top = body["hits"][0]
    assert (top["kind"], top["name"]) == ("road", "翠华路")
    assert 0.5 < top["score"] < 1
    assert body["warning"] == "weak"  # a guess: the dispatcher is told to check
    # with a house number, the building at that address comes first, never its road; with a
    # typo in the street, still a guess to check
    for q, warning in (("翠华路152号", None), ("翠花路152号", "weak")):
        body = search(client, q)
        assert body["hits"][0]["kind"] == "building", body
        assert body["hits"][0]["name"].startswith("翠华路152号") and body["warning"] == warning
    exact = search(client, "翠华路")
    assert exact["hits"][0]["name"] == "翠华路" and exact["hits"][0]["score"] == 1.0


@pytest.mark.parametrize("q", ["cuihua", "cuihualu", "chl"])
def test_pinyin_and_initials_find_the_road(client: TestClient, q: str) -> None:
    top = search(client, q)["hits"][0]
    assert (top["kind"], top["name"]) == ("road", "翠华路")
    assert top["score"] >= 0.8


def test_a_facility_by_name(client: TestClient) -> None:
    body = search(client, "长乐街道中学")
    top = body["hits"][0]
    assert (top["kind"], top["name"], top["type"]) == ("facility", "长乐街道中学",
                                                       "middle_school")
    assert top["score"] == 1.0 and body["warning"] is None
    assert 108 < top["lon"] < 110 and 34 < top["lat"] < 35


# a demo apartment block: its address, its id, the grid it stands in
BLOCK = ("翠华路152号晋昌社区1号楼", "B000001")


def test_a_building_by_its_address_typo_or_not(client: TestClient, demo_db: str) -> None:
    engine = create_engine(demo_db, poolclass=NullPool)
    with engine.connect() as conn:
        grid = conn.execute(text(
            "SELECT g.code FROM building b JOIN grid g ON g.kind = 'comprehensive' AND "
            "ST_Intersects(g.geom, ST_PointOnSurface(b.geom)) WHERE b.id = :id"),
            {"id": BLOCK[1]}).scalar_one()
    engine.dispose()
    exact = search(client, BLOCK[0])["hits"][0]
    assert (exact["kind"], exact["name"], exact["id"], exact["score"]) == (
        "building", *BLOCK, 1.0)
    typo = search(client, "翠花路152号晋昌社区1号楼")  # 花 for 华
    top = typo["hits"][0]
    assert (top["kind"], top["id"]) == ("building", BLOCK[1]) and 0.9 < top["score"] < 1
    assert top["township_code"] == grid[:9] + "000"
    # its neighbours in the compound come next, a little less like the query
    assert [h["name"] for h in typo["hits"][1:3]] == [
        "翠华路152号晋昌社区2号楼", "翠华路152号晋昌社区3号楼"]


def test_buildings_are_for_those_who_may_read_households_or_counts(client: TestClient,
                                                                   demo_db: str) -> None:
    saved = client.headers.pop("Authorization")
    try:
        public = client.get("/api/places", params={"q": BLOCK[0]}).json()
    finally:
        client.headers["Authorization"] = saved
    assert all(h["kind"] != "building" for h in public["hits"]), public


def test_ranked_and_far_apart_hits_are_flagged(client: TestClient) -> None:
    body = search(client, "中学", limit=20)
    scores = [h["score"] for h in body["hits"]]
    assert scores == sorted(scores, reverse=True)
    # every township has its middle school, about equally like the query
    assert body["warning"] == "apart"
    assert len({h["township_code"] for h in body["hits"]}) > 1


def test_scope_and_permissions_hold(client: TestClient, demo_db: str) -> None:
    worker = bearer(token_for(demo_db, "places-worker", "grid_worker", ("610199001001001",)))
    theirs = client.get("/api/places", params={"q": "中学", "limit": 50},
                        headers=worker).json()
    assert all(h["township_code"] == "610199001000" for h in theirs["hits"]), theirs
    saved = client.headers.pop("Authorization")
    try:
        public = client.get("/api/places", params={"q": "翠华路"})
    finally:
        client.headers["Authorization"] = saved
    assert public.status_code == 200
    assert {h["kind"] for h in public.json()["hits"]} <= {"township", "community", "grid"}


@pytest.mark.parametrize("params", [{"q": "a"}, {"q": "x" * 201}, {"q": "中学", "limit": 0},
                                    {"q": "中\x00学"}, {}])
def test_bad_queries_are_422(client: TestClient, params: dict) -> None:
    res = client.get("/api/places", params=params)
    assert res.status_code == 422 and res.json()["code"] == "invalid_request"
