"""Importing grids never loses data (issue 10's findings): an import makes a draft per
community it changes and prints the diff, publishing only with --publish; a file that holds
some of a community's grids leaves the others alone; grids that would not partition their
community cannot be published; a published redraw re-assigns the points in the same
transaction, so counts, search and locate agree on the next request; --dry-run writes
nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import psycopg
import pytest
import shapely
from fastapi.testclient import TestClient

from gridmap.api.app import create_app
from gridmap.demodata import DEMO_DIR, DEMO_FILES
from gridmap.settings import Settings
from tests.conftest import copy_of, loaded_database
from tests.helpers import bearer, fingerprint, run_cli, token_for

COMMUNITY = "610199001001"


@pytest.fixture(scope="module")
def loaded(server_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[str]:
    """Boundaries, grids, workers and the households of one township, assigned: made once,
    the template of each test's own copy (nobody connects to it)."""
    some = tmp_path_factory.mktemp("hh") / "households.parquet"
    households = gpd.read_parquet(DEMO_DIR / DEMO_FILES["households"])
    grids = gpd.read_file(DEMO_DIR / DEMO_FILES["grids"])
    township = grids[grids["code"].str.startswith("610199001")].union_all()
    households[households.within(township)].to_parquet(some)
    for url in loaded_database(server_url, template_db, (
            "counties", "townships", "communities", "grids", "workers", "households"),
            {"households": some}):
        assert run_cli(url, "assign").exit_code == 0
        yield url


@pytest.fixture
def district(server_url: str, loaded: str) -> Iterator[str]:
    """Boundaries, grids, workers and the households of one township, assigned: a database
    of the test's own."""
    yield from copy_of(server_url, loaded)


@pytest.fixture(scope="module")
def grids() -> gpd.GeoDataFrame:
    return gpd.read_file(DEMO_DIR / DEMO_FILES["grids"])


def scalar(url: str, query: str) -> object:
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        row = conn.execute(query).fetchone()
    return row[0] if row else None


def comprehensive(grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return grids[(grids["code"].str[:12] == COMMUNITY) & (grids["kind"] == "comprehensive")]


def test_a_file_with_one_grid_leaves_the_community_s_others_alone(
        district: str, grids: gpd.GeoDataFrame, tmp_path: Path) -> None:
    one = comprehensive(grids).iloc[:1]
    path = tmp_path / "one.geojson"
    one.to_file(path)
    before = fingerprint(district)
    drafts = scalar(district, "SELECT count(*) FROM plan_draft")
    result = run_cli(district, "import", "grids", str(path), "--publish")
    assert result.exit_code == 0, result.output
    assert "changes no community's grids: no draft made" in result.output
    assert fingerprint(district) == before
    assert scalar(district, "SELECT count(*) FROM plan_draft") == drafts
    # the old behaviour, asked for: the file as the whole community would leave a gap, so
    # the draft it makes cannot be published (and stays open to be fixed)
    replaced = run_cli(district, "import", "grids", str(path), "--replace", "--publish")
    assert replaced.exit_code == 2 and "gap" in replaced.output, replaced.output
    assert "drafts stay open" in replaced.output
    assert fingerprint(district) == before
    assert scalar(district, "SELECT count(*) FROM plan_draft WHERE status = 'open'") == 1


def test_a_grid_repaired_into_its_neighbours_cannot_be_published(
        district: str, grids: gpd.GeoDataFrame, tmp_path: Path) -> None:
    mine = comprehensive(grids)
    grown = mine.iloc[:1].copy()
    metric = grown.to_crs(32649)
    grown["geometry"] = metric.buffer(80).to_crs(4326).apply(
        lambda g: shapely.MultiPolygon(shapely.get_parts(g)))
    path = tmp_path / "grown.geojson"
    grown.to_file(path)
    before = fingerprint(district)
    result = run_cli(district, "import", "grids", str(path), "--publish")
    assert result.exit_code == 2
    assert "overlap" in result.output and "outside" in result.output
    assert fingerprint(district) == before
    with TestClient(create_app(Settings(database_url=district)),
                    headers=bearer(token_for(district, "admin"))) as client:
        p = mine.geometry.iloc[1].buffer(-0.0003).representative_point()
        answer = client.get("/api/locate", params={"lon": p.x, "lat": p.y}).json()
        assert answer["grid"]["code"] == mine["code"].iloc[1]  # the server still starts


def test_after_a_split_counts_search_and_locate_agree_at_once(
        district: str, grids: gpd.GeoDataFrame, tmp_path: Path) -> None:
    mine = comprehensive(grids)
    target = mine.iloc[0]
    geom = target.geometry
    minx, miny, maxx, maxy = geom.bounds
    mid = (minx + maxx) / 2
    west = geom.intersection(shapely.box(minx - 1, miny - 1, mid, maxy + 1))
    east = geom.intersection(shapely.box(mid, miny - 1, maxx + 1, maxy + 1))
    new_code = COMMUNITY + "099"
    split = gpd.GeoDataFrame({
        "code": [target["code"], new_code], "name": [target["name"], "新网格"],
        "kind": ["comprehensive", "comprehensive"], "parent_grid_code": [None, None]},
        geometry=[shapely.MultiPolygon(shapely.get_parts(g)) for g in (west, east)], crs=4326)
    path = tmp_path / "split.geojson"
    split.to_file(path)
    households_before = scalar(district, "SELECT count(*) FROM household WHERE grid_code IS "
                               "NOT NULL")
    drafts = scalar(district, "SELECT count(*) FROM plan_draft")
    dry = run_cli(district, "import", "grids", str(path), "--dry-run", "--publish")
    assert dry.exit_code == 0 and "nothing written" in dry.output
    assert f"added: {new_code}" in dry.output and f"reshaped: {target['code']}" in dry.output
    assert scalar(district, f"SELECT count(*) FROM grid WHERE code = '{new_code}'") == 0
    assert scalar(district, "SELECT count(*) FROM plan_draft") == drafts
    # by default a draft, its diff printed, nothing published
    drafted = run_cli(district, "import", "grids", str(path))
    assert drafted.exit_code == 0 and "nothing is published yet" in drafted.output
    assert f"added: {new_code}" in drafted.output
    assert scalar(district, f"SELECT count(*) FROM grid WHERE code = '{new_code}'") == 0
    result = run_cli(district, "import", "grids", str(path), "--publish")
    assert result.exit_code == 0, result.output
    assert "1 draft(s) published: 1 community version(s)" in result.output
    moved = scalar(district, f"SELECT count(*) FROM household WHERE grid_code = '{new_code}'")
    assert isinstance(moved, int) and moved > 0
    assert f"households moved to another grid (or out of every grid): {moved}" in result.output
    assert scalar(district, "SELECT count(*) FROM household WHERE grid_code IS NOT NULL") \
        == households_before  # nobody fell out of every grid
    with TestClient(create_app(Settings(database_url=district)),
                    headers=bearer(token_for(district, "admin"))) as client:
        fc = client.get("/api/grids.geojson", params={"community": COMMUNITY}).json()
        counts = {f["id"]: f["properties"]["households"] for f in fc["features"]}
        assert counts[new_code] == moved  # no `gridmap assign` needed
        answer = client.get("/api/check", params={"community": COMMUNITY})
        assert answer.status_code == 200, answer.text
        check = answer.json()
        assert {r["code"]: r["households"] for r in check["balance"]}[new_code] == moved
        address = scalar(district, f"SELECT address FROM household WHERE grid_code = "
                         f"'{new_code}' ORDER BY id LIMIT 1")
        hit = client.get("/api/search", params={"q": address}).json()[0]
        assert hit["address"] == address and hit["grid_code"] == new_code
        located = client.get("/api/locate", params={"lon": hit["lon"], "lat": hit["lat"]})
        assert located.json()["grid"]["code"] == new_code


def test_retiring_a_grid_with_replace_reports_what_moves(
        district: str, grids: gpd.GeoDataFrame, tmp_path: Path) -> None:
    mine = comprehensive(grids)
    a = mine.iloc[0]
    b = next(r for _, r in mine.iloc[1:].iterrows() if a.geometry.touches(r.geometry))
    merged = grids[grids["code"].str[:12] == COMMUNITY].set_index("code")
    merged.loc[a["code"], "geometry"] = shapely.MultiPolygon(shapely.get_parts(
        shapely.coverage_union_all([a.geometry, b.geometry])))
    merged = merged.drop(index=b["code"]).reset_index()
    merged.loc[merged["parent_grid_code"] == b["code"], "parent_grid_code"] = a["code"]
    path = tmp_path / "merged.geojson"
    merged.to_file(path)
    workers = scalar(district, f"SELECT count(*) FROM grid_worker WHERE grid_code = "
                     f"'{b['code']}'")
    result = run_cli(district, "import", "grids", str(path), "--replace", "--publish")
    assert result.exit_code == 0, result.output
    assert f"retired: {b['code']}" in result.output
    assert f"workers left without a grid (their grid retired): {workers}" in result.output
    assert scalar(district, f"SELECT count(*) FROM household WHERE grid_code = "
                  f"'{b['code']}'") == 0
