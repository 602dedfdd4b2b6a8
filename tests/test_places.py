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
    for q, warning in (("翠华路53号", None), ("翠花路53号", "weak")):
        body = search(client, q)
        assert body["hits"][0]["kind"] == "building", body
        assert body["hits"][0]["name"].startswith("翠华路53号") and body["warning"] == warning
    exact = search(client, "翠华路")
    assert exact["hits"][0]["name"] == "翠华路" and exact["hits"][0]["score"] == 1.0


@pytest.mark.parametrize("q", ["cuihua", "cuihualu"])
def test_pinyin_and_initials_find_the_road(client: TestClient, q: str) -> None:
    top = search(client, q)["hits"][0]
    assert (top["kind"], top["name"]) == ("road", "翠华路")
    assert top["score"] >= 0.8


def test_initials_shared_by_two_roads_find_both_and_say_so(client: TestClient) -> None:
    body = search(client, "chl")  # 翠华路 (cui hua lu) and 浐河路 (chan he lu) alike
    best = {h["name"] for h in body["hits"] if h["score"] == 1.0}
    assert {"翠华路", "浐河路"} <= best, body
    assert body["warning"] == "apart"  # equally good and far apart: check before acting


# a street of the demo's walking network that no address names: found as a street only
STREET = "鹤鸣西路"


@pytest.mark.parametrize(("q", "score"), [
    ("鹤呜西路", (0.7, 0.8)),         # 呜 for 鸣: a typo, a weak match, said so
    ("hemingxilu", (1.0, 1.0)),     # its pinyin
    ("heming xilu", (1.0, 1.0)),    # typed with a space
    ("hmxl", (1.0, 1.0)),           # its initials
])
def test_a_street_of_the_network_by_a_typo_and_by_pinyin(client: TestClient, demo_db: str,
                                                         q: str, score: tuple) -> None:
    body = search(client, q)
    top = body["hits"][0]
    assert (top["kind"], top["name"]) == ("road", STREET), body
    assert score[0] <= top["score"] <= score[1] and top["inside_scope"]
    assert body["warning"] == ("weak" if top["score"] < 0.75 else body["warning"])
    # the hit is a point on the street itself, in the township it runs through
    engine = create_engine(demo_db, poolclass=NullPool)
    with engine.connect() as conn:
        metres, township = conn.execute(text(
            "SELECT min(ST_Distance(e.geom::geography, ST_Point(:lon, :lat, 4326)::geography)),"
            " (SELECT code FROM division WHERE level = 'township' AND ST_Intersects(geom, "
            "ST_Point(:lon, :lat, 4326)) ORDER BY code LIMIT 1) "
            "FROM street_edge e WHERE e.name = :name"),
            {"lon": top["lon"], "lat": top["lat"], "name": STREET}).one()
    engine.dispose()
    assert metres < 0.5 and township == top["township_code"]


def test_a_facility_by_name(client: TestClient) -> None:
    body = search(client, "长乐街道中学")
    top = body["hits"][0]
    assert (top["kind"], top["name"], top["type"]) == ("facility", "长乐街道中学",
                                                       "middle_school")
    assert top["score"] == 1.0 and body["warning"] is None
    assert 108 < top["lon"] < 110 and 34 < top["lat"] < 35


# a demo apartment block: its address, its id, the grid it stands in
BLOCK = ("光华北路53号晋昌社区1号楼", "B000001")


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
    typo = search(client, "光化北路53号晋昌社区1号楼")  # 化 for 华
    top = typo["hits"][0]
    assert (top["kind"], top["id"]) == ("building", BLOCK[1]) and 0.9 < top["score"] < 1
    assert top["township_code"] == grid[:9] + "000"
    # its neighbours in the compound come next, a little less like the query
    assert [h["name"] for h in typo["hits"][1:3]] == [
        "光华北路53号晋昌社区2号楼", "光华北路53号晋昌社区3号楼"]


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
    # their own: in their grid's township (a road) or grid; the schools are public places
    # in other grids, found but flagged; no division or grid of another township
    assert all(h["township_code"] == "610199001000" for h in theirs["hits"]
               if h["inside_scope"]), theirs
    elsewhere = [h for h in theirs["hits"] if not h["inside_scope"]]
    assert elsewhere and all(h["kind"] in ("road", "facility", "building") and h["note"]
                             for h in elsewhere), theirs
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


def test_public_places_elsewhere_come_after_the_callers_own_flagged(client: TestClient,
                                                                    demo_db: str) -> None:
    """A dispatcher of one township finds another township's facility, ranked below an
    equally good one of their own and flagged; divisions elsewhere stay out of sight."""
    own = bearer(token_for(demo_db, "places-township", "dispatcher", ("610199001000",)))
    body = client.get("/api/places", params={"q": "街道中学", "limit": 20},
                      headers=own).json()
    schools = [h for h in body["hits"] if h["kind"] == "facility"]
    assert [(h["name"], h["inside_scope"]) for h in schools[:2]] == [
        ("长乐街道中学", True), ("曲江街道中学", False)]
    assert schools[0]["score"] == schools[1]["score"]  # equally like the query
    assert schools[0]["note"] is None and schools[1]["note"] == "outside your divisions"
    assert schools[1]["township_code"] == "610199002000"
    # the county's dispatcher has both as their own: nothing flagged
    county = search(client, "街道中学", limit=20)
    assert all(h["inside_scope"] and h["note"] is None for h in county["hits"])
    # the other township's school by its exact name: first, its true score, flagged, and
    # the warning says the best hit lies outside the caller's divisions
    exact = client.get("/api/places", params={"q": "曲江街道中学"}, headers=own).json()
    top = exact["hits"][0]
    assert (top["name"], top["score"], top["inside_scope"]) == ("曲江街道中学", 1.0, False)
    assert exact["warning"] == "outside_scope"
    # a township, community or grid elsewhere is not found at all
    other = client.get("/api/places", params={"q": "曲江街道", "limit": 50},
                       headers=own).json()
    assert all(h["kind"] in ("road", "facility", "building") or h["inside_scope"]
               for h in other["hits"]), other
    assert "曲江街道" not in [h["name"] for h in other["hits"]]
    # in Chinese, the note is Chinese
    chinese = client.get("/api/places", params={"q": "曲江街道中学"},
                         headers={**own, "Accept-Language": "zh-CN"}).json()
    assert chinese["hits"][0]["note"] == "不在您的辖区内"
