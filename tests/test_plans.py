"""Versions of a community's grids: history with notes and authors, the difference between
two versions, undoing a publish by restoring a version (a retired grid comes back under its
code), and locating a point as of a past moment."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import psycopg
import pytest
from fastapi.testclient import TestClient

from gridmap.api.app import create_app
from gridmap.demodata import DEMO_DIR, DEMO_FILES
from gridmap.settings import Settings
from tests.conftest import loaded_database
from tests.helpers import (
    bearer,
    fingerprint,
    import_layer,
    import_merged,
    neighbours_in_community,
    run_cli,
    token_for,
    wait_for_notice,
)


@pytest.fixture(scope="module")
def redrawn(server_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[str, dict[str, object]]]:
    """Version 1 from the demo, version 2 merges grid b into grid a (b retires)."""
    some = tmp_path_factory.mktemp("hh") / "households.parquet"
    households = gpd.read_parquet(DEMO_DIR / DEMO_FILES["households"])
    grids = gpd.read_file(DEMO_DIR / DEMO_FILES["grids"])
    a, b = neighbours_in_community(grids, 3)
    community = a["code"][:12]
    households[households.within(grids[grids["code"].str.startswith(community)].union_all())
               ].to_parquet(some)
    for url in loaded_database(server_url, template_db, (
            "counties", "townships", "communities", "grids", "workers", "households"),
            {"households": some}):
        before = datetime.now(UTC)
        merged = import_merged(url, grids, a, b, tmp_path_factory.mktemp("v2") / "m.geojson")
        assert merged.exit_code == 0, merged.output
        point = b.geometry.buffer(-0.0005).representative_point()
        yield url, {"a": a["code"], "b": b["code"], "community": community, "before": before,
                    "point": (point.x, point.y)}


def count(url: str, query: str, *args: object) -> object:
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        row = conn.execute(query, args).fetchone()
    return row[0] if row else None


def test_history_diff_and_restore_from_the_command_line(
        redrawn: tuple[str, dict[str, object]]) -> None:
    url, r = redrawn
    community, a, b = str(r["community"]), str(r["a"]), str(r["b"])
    history = run_cli(url, "grids", "history", community)
    assert history.exit_code == 0 and "v2" in history.output and "v1" in history.output
    diff = run_cli(url, "grids", "diff", community, "1", "2")
    assert diff.exit_code == 0, diff.output
    assert f"retired: {b}" in diff.output and f"reshaped: {a}" in diff.output
    in_b = count(url, "SELECT count(*) FROM household h JOIN grid_history g ON "
                 "ST_Intersects(g.geom, h.geom) JOIN grid_version v ON v.id = g.version_id "
                 "WHERE v.community_code = %s AND v.version = 1 AND g.code = %s",
                 community, b)
    assert f"households changing grid: {in_b}" in diff.output
    assert run_cli(url, "grids", "restore", community, "7", "--note", "x").exit_code == 2
    restored = run_cli(url, "grids", "restore", community, "1", "--note", "合并有误，恢复")
    assert restored.exit_code == 0, restored.output
    assert f"added: {b}" in restored.output  # the retired grid is back, under its code
    assert count(url, "SELECT count(*) FROM grid WHERE code = %s", b) == 1
    assert count(url, "SELECT count(*) FROM household WHERE grid_code = %s", b) == in_b
    latest = count(url, "SELECT restored_from FROM grid_version WHERE community_code = %s "
                   "AND valid_to IS NULL", community)
    assert latest == 1
    # each version ends at the very moment the next starts: no instant between two versions
    gaps = count(url, "SELECT count(*) FROM grid_version v JOIN grid_version n ON "
                 "n.community_code = v.community_code AND n.version = v.version + 1 "
                 "WHERE v.community_code = %s AND v.valid_to <> n.valid_from", community)
    assert gaps == 0
    again = run_cli(url, "grids", "restore", community, "3", "--note", "no-op")
    assert again.exit_code == 0 and "nothing published" in again.output
    # the partial-file refusal no longer blocks the way back: import the original file whole
    assert import_layer(url, "grids").exit_code == 0


def test_the_api_as_planner_and_others(redrawn: tuple[str, dict[str, object]],
                                       tmp_path: Path) -> None:
    url, r = redrawn
    community, b = str(r["community"]), str(r["b"])
    township = community[:9] + "000"
    other = "610199002000" if township != "610199002000" else "610199003000"
    with TestClient(create_app(Settings(database_url=url))) as client:
        planner = bearer(token_for(url, "plan-p", "planner", (township,)))
        far = bearer(token_for(url, "plan-far", "planner", (other,)))
        dispatcher = bearer(token_for(url, "plan-d", "dispatcher", (township,)))
        versions = client.get(f"/api/communities/{community}/versions", headers=planner)
        assert versions.status_code == 200
        current = versions.json()[0]["version"]
        assert {v["version"] for v in versions.json()} >= {1, 2}
        # version 2's note is gridmap's (an import): read in the reader's language
        said = {language: {v["version"]: v["note"] for v in client.get(
            f"/api/communities/{community}/versions",
            headers={**planner, "Accept-Language": language}).json()}
            for language in ("zh-CN", "en")}
        assert said["en"][2].startswith("import ") and said["en"][2].endswith("m.geojson")
        assert said["zh-CN"][2] == "导入 " + said["en"][2].removeprefix("import ")
        assert said["en"][2] == count(url, "SELECT note FROM grid_version WHERE "
                                      "community_code = %s AND version = 2", community)
        diff = client.get(f"/api/communities/{community}/diff", params={"from": 1, "to": 2},
                          headers=planner).json()
        assert {"code": b, "change": "retired"} in diff["grids"]
        assert diff["households_moved"] == len(diff["households"]) > 0
        assert all(m["from_grid"] == b for m in diff["households"])
        assert client.get(f"/api/communities/{community}/versions",
                          headers=far).status_code == 404
        body = {"version": 2, "note": "再次合并", "expected_version": current}
        assert client.post(f"/api/communities/{community}/restore", json=body,
                           headers=dispatcher).status_code == 403
        assert client.post(f"/api/communities/{community}/restore", json=body,
                           headers=far).status_code == 404
        stale = {**body, "expected_version": current - 1}
        before = fingerprint(url)
        res = client.post(f"/api/communities/{community}/restore", json=stale, headers=planner)
        assert res.status_code == 412 and fingerprint(url) == before
        res = client.post(f"/api/communities/{community}/restore", json=body, headers=planner)
        assert res.status_code == 200, res.text
        assert {"code": b, "change": "retired"} in res.json()["grids"]
        wait_for_notice(client.app)
        x, y = r["point"]  # type: ignore[misc]
        now = client.get("/api/locate", params={"lon": x, "lat": y}, headers=planner).json()
        assert now["grid"]["code"] == r["a"]
        then = client.get("/api/locate", params={
            "lon": x, "lat": y, "at": str(r["before"])}, headers=planner).json()
        assert then["grid"]["code"] == b and then["workers"] == [] and then["version"] == 1
        log = client.get("/api/audit", params={"user": "plan-p"},
                         headers=bearer(token_for(url, "plan-admin"))).json()
        assert any(e["target"].startswith(f"restore {community}") for e in log)
