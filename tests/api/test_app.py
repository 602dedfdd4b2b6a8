from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from gridmap.api.app import create_app
from gridmap.settings import Settings
from tests.helpers import bearer, token_for


@pytest.fixture(scope="module")
def client(demo_db: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=demo_db)),
                    headers=bearer(token_for(demo_db, "admin"))) as c:
        yield c


def test_summary_counts_what_was_loaded(client: TestClient) -> None:
    body = client.get("/api/summary").json()
    assert body["communities"] == 74 and body["townships"] == 4
    assert body["households"] > 90_000


def test_grids_carry_household_counts(client: TestClient) -> None:
    res = client.get("/api/grids.geojson")
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("application/geo+json")
    fc = res.json()
    comp = [f for f in fc["features"] if f["properties"]["kind"] == "comprehensive"]
    assert len(comp) == 287
    total = sum(f["properties"]["households"] for f in comp)
    assert total == client.get("/api/summary").json()["households"]


def test_grids_of_one_community(client: TestClient) -> None:
    fc = client.get("/api/grids.geojson", params={"community": "610199001001"}).json()
    assert fc["features"]
    assert {f["properties"]["community_code"] for f in fc["features"]} == {"610199001001"}


@pytest.mark.parametrize("bad", ["6101", "61019900100x", "'; drop table grid;--"])
def test_bad_community_code_is_a_422_that_says_what_to_fix(client: TestClient, bad: str) -> None:
    res = client.get("/api/grids.geojson", params={"community": bad})
    assert res.status_code == 422
    (problem,) = res.json()["detail"]  # the schema's own check: the field and its pattern
    assert problem["loc"] == ["query", "community"] and "[0-9]{12}" in problem["msg"]


def test_home_page_and_local_assets(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "/docs" in page.text
    assert "http" not in page.text.replace("http://", "")  # no external assets
    for src in ("/static/vendor/maplibre-gl/maplibre-gl.js",
                "/static/vendor/maplibre-gl/maplibre-gl.css", "/static/gridmap.js"):
        assert client.get(src).status_code == 200, src
    assert client.get("/openapi.json").json()["info"]["title"] == "gridmap"


@pytest.mark.parametrize("path", ["/", "/login", "/dispatch", "/mine", "/stats", "/editor"])
def test_each_page_has_the_shared_head_and_scripts(client: TestClient, path: str) -> None:
    """The pages are rendered from one head and script list (templates/page.html): each
    has it whole, under the pages' CSP, and every asset it names is served."""
    import re

    page = client.get(path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self';" in page.headers["content-security-policy"]
    assert page.text.startswith('<!doctype html>\n<html lang="zh-CN">\n<head>\n')
    assert page.text.count("<head>") == 1 and page.text.endswith("</body>\n</html>\n")
    assert re.search(r'<title data-i18n="[\w.]+">[^<{]+</title>', page.text), page.text[:300]
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page.text
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
    assert [a for a in assets if a.endswith(".js")][-3:-1] == ["/static/i18n.js",
                                                                "/static/common.js"]
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    assert "{{" not in page.text and "{%" not in page.text


def test_check_report_of_the_demo_district(client: TestClient) -> None:
    body = client.get("/api/check").json()
    assert body["defects"]["features"] == []
    assert len(body["balance"]) == 287
    assert body["grids_outside_band"] == 0 and body["households_outside_grids"] == 0
    one = client.get("/api/check", params={"community": "610199001001"}).json()
    assert {row["code"][:12] for row in one["balance"]} == {"610199001001"}
    geo = client.get("/api/check.geojson")
    assert geo.headers["content-type"].startswith("application/geo+json")


@pytest.mark.parametrize(("community", "status"), [("610199001999", 404), ("abc", 422)])
def test_check_of_unknown_or_malformed_community(client: TestClient, community: str,
                                                 status: int) -> None:
    res = client.get("/api/check", params={"community": community})
    assert res.status_code == status
    assert community in str(res.json()["detail"])


def test_coverage_report_json(client: TestClient) -> None:
    rows = client.get("/api/coverage", params={"type": "kindergarten", "level": "township"}
                      ).json()
    assert len(rows) == 4
    assert sum(r["residents"] for r in rows) == sum(
        f["properties"]["residents"] for f in client.get("/api/grids.geojson").json()["features"]
        if f["properties"]["kind"] == "comprehensive")


def test_coverage_along_the_demo_streets(client: TestClient) -> None:
    """The demo district's streets are its walking network: coverage along them is never
    more than in a straight line."""
    params = {"type": "kindergarten", "level": "township"}
    straight = client.get("/api/coverage", params=params).json()
    along = client.get("/api/coverage", params={**params, "metric": "network"})
    assert along.status_code == 200, along.text
    assert len(along.json()) == len(straight) == 4  # the four townships
    for net, line in zip(along.json(), straight, strict=True):
        assert (net["unit"], net["residents"]) == (line["unit"], line["residents"])
        assert net["residents_covered"] <= line["residents_covered"], (net, line)
    assert sum(r["residents_covered"] for r in along.json()) > 0


def test_uncovered_geojson(client: TestClient) -> None:
    res = client.get("/api/coverage/uncovered.geojson",
                     params={"type": "elderly_daycare", "division": "610199001001"})
    assert res.status_code == 200
    feats = res.json()["features"]
    assert feats and all(f["properties"]["dist_elderly_daycare"] is None
                         or f["properties"]["dist_elderly_daycare"] > 300 for f in feats)


@pytest.mark.parametrize(("params", "status", "phrase"), [
    ({"type": "school"}, 422, "kindergarten"),  # the types to choose from
    ({"distance": "-5"}, 422, "greater than 0"),
    ({"distance": "abc"}, 422, ""),
    ({"division": "610199009000"}, 404, "no division"),
    ({"division": "6101"}, 422, "[0-9]{12}"),  # the pattern a code must match
])
def test_coverage_errors_say_what_to_fix(client: TestClient, params: dict, status: int,
                                         phrase: str) -> None:
    res = client.get("/api/coverage", params=params)
    assert res.status_code == status
    assert phrase in str(res.json()["detail"])


def test_coverage_map_page_uses_local_assets(client: TestClient) -> None:
    page = client.get("/maps/coverage", params={"type": "elderly_daycare"})
    assert page.status_code == 200
    assert "/static/vendor/leaflet/leaflet.js" in page.text
    assert "cdn" not in page.text.lower()
    assert client.get("/static/vendor/leaflet/leaflet.js").status_code == 200


def test_community_folium_map(client: TestClient) -> None:
    page = client.get("/maps/community/610199001001")
    assert page.status_code == 200
    assert "/static/vendor/leaflet/leaflet.js" in page.text and "cdn" not in page.text.lower()
    assert "610199001001001" in page.text and "within" in page.text
    assert client.get("/maps/community/610199009999").status_code == 404


def test_api_docs_are_served_offline_with_an_authorize_button(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    chinese = client.get("/docs", headers={"Accept-Language": "zh-CN"})
    assert '<html lang="zh-CN">' in chinese.text and "接口文档" in chinese.text
    assert '<html lang="en">' in client.get("/docs", headers={"Accept-Language": "en"}).text
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower()
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert client.get(f"/static/vendor/swagger-ui/{asset}").status_code == 200
    schemes = client.get("/openapi.json").json()["components"]["securitySchemes"]
    assert schemes["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"] == "/auth/token"
