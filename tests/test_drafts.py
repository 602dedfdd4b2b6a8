"""Drafts through the API: open, edit (split, merge, paint, move a vertex, micro-grids,
workers, lock), live statistics that conserve the households and never show a gap or an
overlap an edit made, undo and redo, ETag/If-Match, submit → approve → publish, and the bad
input of issue 10 (each refused with a 4xx naming the problem, nothing changed)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import geopandas as gpd
import h3
import psycopg
import pytest
import shapely
from fastapi.testclient import TestClient

from gridmap.api.app import create_app
from gridmap.demodata import DEMO_DIR, DEMO_FILES
from gridmap.settings import Settings
from tests.helpers import (
    assigned_district,
    bearer,
    demo_area,
    fingerprint,
    run_cli,
    token_for,
    wait_for_notice,
)

COMMUNITY = "610199001001"
TOWNSHIP = "610199001000"
COUNTY = "610199000000"


@pytest.fixture(scope="module")
def district(server_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[str]:
    """Boundaries, grids, workers and the households of one township, assigned."""
    yield from assigned_district(server_url, template_db, demo_area("grids", TOWNSHIP[:9]),
                                 tmp_path_factory.mktemp("hh"))


@pytest.fixture(scope="module")
def client(district: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=district))) as c:
        yield c


@pytest.fixture(scope="module")
def planner(district: str) -> dict[str, str]:
    return bearer(token_for(district, "d-planner", "planner", (TOWNSHIP,)))


def scalar(url: str, query: str, *args: object) -> Any:
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        row = conn.execute(query, args).fetchone()
    return row[0] if row else None


def households_in(url: str, community: str) -> int:
    return int(scalar(url, "SELECT count(*) FROM household h JOIN division d ON "
                      "ST_Intersects(d.geom, h.geom) WHERE d.code = %s", community))


def open_draft(client: TestClient, headers: dict[str, str], area: str = COMMUNITY
               ) -> tuple[int, dict[str, Any], str]:
    res = client.post("/api/drafts", json={"area": area, "title": "重划网格"}, headers=headers)
    assert res.status_code == 201, res.text
    body = res.json()
    return body["draft"]["id"], body, res.headers["ETag"]


def edit(client: TestClient, headers: dict[str, str], draft: int, tag: str,
         **body: Any) -> Any:
    return client.post(f"/api/drafts/{draft}/edits", json=body,
                       headers={**headers, "If-Match": tag})


def stats_by_code(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {g["code"]: g for g in body["stats"]["grids"]}


def comprehensive_total(body: dict[str, Any]) -> int:
    return sum(g["households"] for g in body["stats"]["grids"] if g["kind"] != "micro")


def geometry(body: dict[str, Any], code: str) -> shapely.Geometry:
    feature = next(f for f in body["grids"]["features"] if f["id"] == code)
    return shapely.geometry.shape(feature["geometry"])


def largest(body: dict[str, Any]) -> str:
    comp = [g for g in body["stats"]["grids"] if g["kind"] == "comprehensive"]
    return str(max(comp, key=lambda g: g["households"])["code"])


def split_line(geom: shapely.Geometry) -> dict[str, Any]:
    """A north-south line through the middle of *geom*, reaching beyond it."""
    _, miny, _, maxy = geom.bounds
    mid = geom.representative_point().x
    return {"type": "LineString", "coordinates": [[mid, miny - 0.001], [mid, maxy + 0.001]]}


def no_blocking(body: dict[str, Any]) -> None:
    assert body["stats"]["blocking"] == [], body["stats"]["blocking"]
    assert {d["defect"] for d in body["stats"]["defects"]} <= {"multipart", "sliver"}


def test_a_draft_starts_from_the_published_grids_with_their_counts(
        district: str, client: TestClient, planner: dict[str, str]) -> None:
    before = fingerprint(district)
    draft, body, tag = open_draft(client, planner)
    assert tag == f'"d{draft}-r1"' and body["draft"]["status"] == "open"
    stored = dict(psycopg.connect(district.replace("+psycopg", "")).execute(
        "SELECT grid_code, count(*) FROM household WHERE left(grid_code, 12) = %s "
        "GROUP BY 1", (COMMUNITY,)).fetchall())
    counts = {k.strip(): v for k, v in stored.items()}
    for code, g in stats_by_code(body).items():
        if g["kind"] == "comprehensive":
            assert g["households"] == counts.get(code, 0), code
    no_blocking(body)
    assert body["stats"]["server_ms"] < 1000
    assert fingerprint(district) == before  # opening a draft publishes nothing


def test_split_merge_paint_keep_the_partition_and_conserve_households(
        district: str, client: TestClient, planner: dict[str, str]) -> None:
    draft, body, tag = open_draft(client, planner)
    opened = set(stats_by_code(body))
    total = comprehensive_total(body)
    target = largest(body)
    geom = geometry(body, target)
    res = edit(client, planner, draft, tag, op="split", grid=target, line=split_line(geom))
    assert res.status_code == 200, res.text
    body, tag = res.json(), res.headers["ETag"]
    assert tag == f'"d{draft}-r2"'
    new = [c for c in body["changed"] if c != target and c > max(opened)]
    assert new and all(c.startswith(COMMUNITY) for c in new)
    assert comprehensive_total(body) == total  # nobody fell out of every grid
    no_blocking(body)
    piece_codes = [c for c in [target, *new] if c in stats_by_code(body)]
    pieces = [geometry(body, c) for c in piece_codes]
    assert abs(shapely.union_all(pieces).area - geom.area) < 1e-12  # same land, two grids

    # merge the two pieces back: a new code, the same land
    res = edit(client, planner, draft, tag, op="merge", grids=piece_codes)
    assert res.status_code == 200, res.text
    body, tag = res.json(), res.headers["ETag"]
    assert comprehensive_total(body) == total
    no_blocking(body)

    # paint: H3 cells of a neighbour's land go to the merged grid
    merged = max(stats_by_code(body))
    mgeom = geometry(body, merged)
    neighbour = next(c for c, g in stats_by_code(body).items() if c != merged
                     and g["kind"] == "comprehensive" and geometry(body, c).touches(mgeom))
    edge = shapely.intersection(mgeom, geometry(body, neighbour)).representative_point()
    cells = list(h3.grid_disk(h3.latlng_to_cell(edge.y, edge.x, 10), 1))
    res = edit(client, planner, draft, tag, op="paint", grid=merged, cells=cells)
    assert res.status_code == 200, res.text
    body, tag = res.json(), res.headers["ETag"]
    assert set(body["changed"]) >= {merged, neighbour}
    assert comprehensive_total(body) == total
    no_blocking(body)
    assert geometry(body, merged).area > mgeom.area

    # undo the paint and the merge: the split is back exactly
    res = client.post(f"/api/drafts/{draft}/undo", headers={**planner, "If-Match": tag})
    assert res.status_code == 200, res.text
    res = client.post(f"/api/drafts/{draft}/undo",
                      headers={**planner, "If-Match": res.headers["ETag"]})
    assert res.status_code == 200 and res.json()["can_redo"]
    after_undo = res.json()
    assert merged not in stats_by_code(after_undo)
    res = client.post(f"/api/drafts/{draft}/redo",
                      headers={**planner, "If-Match": res.headers["ETag"]})
    assert res.status_code == 200 and merged in stats_by_code(res.json())
    log = client.get(f"/api/drafts/{draft}/edits", headers=planner).json()
    assert [e["op"] for e in log] == ["split", "merge", "paint"]
    assert [e["undone"] for e in log] == [False, False, True]


def test_moving_a_shared_vertex_moves_both_neighbours(
        district: str, client: TestClient, planner: dict[str, str]) -> None:
    draft, body, tag = open_draft(client, planner)
    comp = [c for c, g in stats_by_code(body).items() if g["kind"] == "comprehensive"]
    geoms = {c: geometry(body, c) for c in comp}
    communities = gpd.read_file(DEMO_DIR / DEMO_FILES["communities"])
    boundary = communities[communities["code"] == COMMUNITY].geometry.iloc[0].boundary
    shared = None
    for a in comp:  # a vertex two grids share, inside the community
        for b in comp:
            if a < b and geoms[a].touches(geoms[b]):
                line = shapely.intersection(geoms[a].boundary, geoms[b].boundary)
                for xy in shapely.get_coordinates(line):
                    if shapely.distance(boundary, shapely.Point(xy)) > 1e-4:
                        shared = (a, b, (float(xy[0]), float(xy[1])))
        if shared:
            break
    assert shared is not None
    a, b, at = shared
    to = (at[0] + 0.0002, at[1] + 0.0001)
    res = edit(client, planner, draft, tag, op="move_vertex", at=list(at), to=list(to))
    assert res.status_code == 200, res.text
    body = res.json()
    assert {a, b} <= set(body["changed"])
    no_blocking(body)
    # a move deep into a grid that does not share the vertex would cross its edges
    # (self-intersection or overlap): refused, nothing changed
    tag = res.headers["ETag"]
    third = next(c for c in comp if c not in body["changed"])
    inside = geometry(body, third).representative_point()
    res = edit(client, planner, draft, tag, op="move_vertex", at=list(to),
               to=[inside.x, inside.y])
    assert res.status_code == 422, res.text
    assert "cross itself" in res.text or "overlap" in res.text
    assert client.get(f"/api/drafts/{draft}", headers=planner).headers["ETag"] == tag


def test_bad_edits_are_refused_and_change_nothing(
        district: str, client: TestClient, planner: dict[str, str]) -> None:
    draft, body, tag = open_draft(client, planner)
    target = largest(body)
    geom = geometry(body, target)
    minx, miny, maxx, maxy = geom.bounds
    cases = [
        ({"op": "split", "grid": target, "line": {"type": "LineString", "coordinates": [
            [maxx + 0.01, miny], [maxx + 0.01, maxy]]}}, "does not reach"),
        ({"op": "split", "grid": target, "line": {"type": "LineString", "coordinates": [
            [minx - 0.001, miny - 0.001], [geom.centroid.x, geom.centroid.y]]}},
         "from one edge to another"),
        ({"op": "split", "grid": target, "line": {"type": "LineString", "coordinates": [
            [1e308, 0], [0, 1]]}}, "longitude"),
        ({"op": "split", "grid": target, "line": {"type": "Point", "coordinates": [0, 0]}},
         "LineString"),
        ({"op": "merge", "grids": [target, "610199001001999"]}, "no grid"),
        ({"op": "paint", "grid": target, "cells": [h3.latlng_to_cell(39.9, 116.4, 9)]},
         "outside community"),
        ({"op": "paint", "grid": target, "cells": ["not-a-cell"]}, "H3"),
        ({"op": "move_vertex", "at": [0.5, 0.5], "to": [0.6, 0.6]}, "no draft grid"),
        ({"op": "assign_worker", "worker": "nobody", "grid": target}, "no grid worker"),
        ({"op": "assign_worker", "worker": "nobody\x00", "grid": target}, "NUL"),
        ({"op": "split", "grid": target, "line": {**split_line(geom), "note": "a\x00b"}},
         "NUL"),
        ({"op": "teleport"}, ""),
    ]
    for body_, message in cases:
        res = edit(client, planner, draft, tag, **body_)
        assert res.status_code == 422, (body_, res.text)
        assert message in res.text, (message, res.text)
    assert client.get(f"/api/drafts/{draft}", headers=planner).headers["ETag"] == tag
    # grids of two communities do not merge (a township's draft holds both)
    township, tbody, ttag = open_draft(client, planner, TOWNSHIP)
    a = next(c for c in stats_by_code(tbody) if c.startswith("610199001001"))
    b = next(c for c in stats_by_code(tbody) if c.startswith("610199001002"))
    res = edit(client, planner, township, ttag, op="merge", grids=[a, b])
    assert res.status_code == 422 and "different communities" in res.text
    # a vertex on the community's boundary does not move
    communities = gpd.read_file(DEMO_DIR / DEMO_FILES["communities"])
    edge = communities[communities["code"] == COMMUNITY].geometry.iloc[0].boundary
    corner = next(xy for xy in shapely.get_coordinates(geom)
                  if shapely.distance(edge, shapely.Point(xy)) < 1e-9)
    res = edit(client, planner, draft, tag, op="move_vertex", at=list(corner),
               to=[corner[0] + 0.001, corner[1]])
    assert res.status_code == 422 and "boundary of community" in res.text, res.text
    # stale and missing revisions
    res = edit(client, planner, draft, f'"d{draft}-r0"', op="lock", grid=target)
    assert res.status_code == 412 and res.headers["ETag"] == tag
    res = client.post(f"/api/drafts/{draft}/edits", json={"op": "lock", "grid": target},
                      headers=planner)
    assert res.status_code == 428
    # a locked grid is not edited
    res = edit(client, planner, draft, tag, op="lock", grid=target, locked=True)
    assert res.status_code == 200
    tag = res.headers["ETag"]
    res = edit(client, planner, draft, tag, op="split", grid=target, line=split_line(geom))
    assert res.status_code == 422 and "locked" in res.text
    # outside the planner's divisions: as if it did not exist
    far = bearer(token_for(district, "d-far", "planner", ("610199002000",)))
    assert client.get(f"/api/drafts/{draft}", headers=far).status_code == 404
    assert edit(client, far, draft, tag, op="lock", grid=target).status_code == 404
    res = client.post("/api/drafts", json={"area": "610199002001", "title": "x"},
                      headers=planner)
    assert res.status_code == 404
    dispatcher = bearer(token_for(district, "d-disp", "dispatcher", (TOWNSHIP,)))
    assert edit(client, dispatcher, draft, tag, op="lock", grid=target).status_code == 403


def test_two_planners_never_lose_an_update(
        district: str, client: TestClient, planner: dict[str, str]) -> None:
    other = bearer(token_for(district, "d-planner2", "planner", (COMMUNITY,)))
    draft, body, tag = open_draft(client, planner)
    codes = [c for c, g in stats_by_code(body).items() if g["kind"] == "comprehensive"]
    first = edit(client, planner, draft, tag, op="lock", grid=codes[0], locked=True)
    second = edit(client, other, draft, tag, op="lock", grid=codes[1], locked=True)
    assert first.status_code == 200 and second.status_code == 412
    again = edit(client, other, draft, first.headers["ETag"], op="lock", grid=codes[1],
                 locked=True)
    assert again.status_code == 200
    locked = {f["id"] for f in again.json()["grids"]["features"] if f["properties"]["locked"]}
    assert locked == {codes[0], codes[1]}


def test_submit_approve_publish_and_everything_agrees(
        district: str, client: TestClient, planner: dict[str, str]) -> None:
    county = bearer(token_for(district, "d-county", "planner", (COUNTY,)))
    draft, body, tag = open_draft(client, planner)
    opened = set(stats_by_code(body))
    total = households_in(district, COMMUNITY)
    target = largest(body)
    res = edit(client, planner, draft, tag, op="split", grid=target,
               line=split_line(geometry(body, target)))
    assert res.status_code == 200, res.text
    body, tag = res.json(), res.headers["ETag"]
    new = [c for c in body["changed"] if c not in opened]
    diff = client.get(f"/api/drafts/{draft}/diff", headers=planner).json()
    assert {g["code"] for g in diff["grids"] if g["change"] == "added"} >= set(new)
    assert diff["households_moved"] == len(diff["households"]) > 0
    # warnings must be acknowledged with a note
    if body["stats"]["warnings"]:
        res = client.post(f"/api/drafts/{draft}/submit", json={}, headers=planner)
        assert res.status_code == 422 and "acknowledge" in res.text
    res = client.post(f"/api/drafts/{draft}/submit", json={
        "note": "新网格暂无专职网格员，下月招聘", "acknowledge": True}, headers=planner)
    assert res.status_code == 200, res.text
    assert res.json()["draft"]["status"] == "submitted"
    # publishing needs approval; editing a submitted draft is a 409
    assert client.post(f"/api/drafts/{draft}/publish", headers=planner).status_code == 409
    assert edit(client, planner, draft, res.headers["ETag"], op="lock",
                grid=new[0]).status_code == 409
    # the township planner may not approve; the county planner may
    assert client.post(f"/api/drafts/{draft}/approve", json={},
                       headers=planner).status_code == 403
    res = client.post(f"/api/drafts/{draft}/approve", json={"note": "同意"}, headers=county)
    assert res.status_code == 200 and res.json()["status"] == "approved", res.text
    before = fingerprint(district)
    res = client.post(f"/api/drafts/{draft}/publish", headers=planner)
    assert res.status_code == 200, res.text
    published = res.json()
    assert published["published"] == 1
    assert fingerprint(district) != before
    assert scalar(district, "SELECT approver FROM grid_version WHERE community_code = %s "
                  "AND valid_to IS NULL", COMMUNITY) == "d-county"
    # counts, search, locate and the store agree on the next request
    assert households_in(district, COMMUNITY) == total
    wait_for_notice(client.app)
    for code in new:
        stored = scalar(district, "SELECT count(*) FROM household WHERE grid_code = %s", code)
        assert stored == stats_by_code(body)[code]["households"]
        fc = client.get("/api/grids.geojson", params={"community": COMMUNITY},
                        headers=planner).json()
        counts = {f["id"]: f["properties"]["households"] for f in fc["features"]}
        assert counts[code] == stored
        p = geometry(body, code).buffer(-0.0002).representative_point()
        located = client.get("/api/locate", params={"lon": p.x, "lat": p.y},
                             headers=planner).json()
        assert located["grid"]["code"] == code
    # a published draft is done; an older draft of the same community is stale now
    assert client.post(f"/api/drafts/{draft}/abandon", json={},
                       headers=planner).status_code == 409


def test_a_draft_over_a_newer_publish_is_refused(
        district: str, client: TestClient, planner: dict[str, str]) -> None:
    county = bearer(token_for(district, "d-county", "planner", (COUNTY,)))
    old, body, tag = open_draft(client, planner, "610199001002")
    newer, body2, tag2 = open_draft(client, planner, "610199001002")
    for draft, b, t in ((old, body, tag), (newer, body2, tag2)):
        target = largest(b)
        res = edit(client, planner, draft, t, op="split", grid=target,
                   line=split_line(geometry(b, target)))
        assert res.status_code == 200, res.text
        res = client.post(f"/api/drafts/{draft}/submit", json={
            "note": "ok", "acknowledge": True}, headers=planner)
        assert res.status_code == 200, res.text
        res = client.post(f"/api/drafts/{draft}/approve", json={}, headers=county)
        assert res.status_code == 200, res.text
    assert client.post(f"/api/drafts/{newer}/publish", headers=planner).status_code == 200
    before = fingerprint(district)
    res = client.post(f"/api/drafts/{old}/publish", headers=planner)
    assert res.status_code == 409 and "open a new one" in res.text
    assert fingerprint(district) == before
    res = client.post(f"/api/drafts/{old}/abandon", json={"note": "过时"}, headers=planner)
    assert res.status_code == 200 and res.json()["status"] == "abandoned"


def test_import_into_drafts_and_the_drafts_commands(district: str, tmp_path: Any) -> None:
    community = "610199001003"
    grids = gpd.read_file(DEMO_DIR / DEMO_FILES["grids"])
    mine = grids[(grids["code"].str[:12] == community) & (grids["kind"] == "comprehensive")]
    target = mine.iloc[0]
    geom = target.geometry
    minx, miny, maxx, maxy = geom.bounds
    mid = (minx + maxx) / 2
    halves = [geom.intersection(shapely.box(minx - 1, miny - 1, mid, maxy + 1)),
              geom.intersection(shapely.box(mid, miny - 1, maxx + 1, maxy + 1))]
    new_code = community + "099"
    split = gpd.GeoDataFrame({
        "code": [target["code"], new_code], "name": [target["name"], "新网格"],
        "kind": ["comprehensive", "comprehensive"], "parent_grid_code": [None, None]},
        geometry=[shapely.MultiPolygon(shapely.get_parts(g)) for g in halves], crs=4326)
    path = tmp_path / "split.geojson"
    split.to_file(path)
    drafts_before = scalar(district, "SELECT count(*) FROM plan_draft")
    before = fingerprint(district)
    dry = run_cli(district, "import", "grids", str(path), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "dry run" in dry.output and f"added: {new_code}" in dry.output
    assert "households changing grid: " in dry.output
    assert scalar(district, "SELECT count(*) FROM plan_draft") == drafts_before
    made = run_cli(district, "import", "grids", str(path), "--draft")  # the default, kept
    assert made.exit_code == 0, made.output
    assert f"reshaped: {target['code']}" in made.output
    assert fingerprint(district) == before  # a draft publishes nothing
    draft = int(scalar(district, "SELECT max(id) FROM plan_draft"))
    listed = run_cli(district, "drafts", "list", "--status", "open")
    assert listed.exit_code == 0 and f"{draft:>5} {community}" in listed.output
    shown = run_cli(district, "drafts", "show", str(draft))
    assert shown.exit_code == 0 and new_code in shown.output, shown.output
    assert run_cli(district, "drafts", "diff", str(draft)).exit_code == 0
    assert run_cli(district, "drafts", "show", "999999").exit_code == 2
    assert run_cli(district, "drafts", "publish", str(draft)).exit_code == 2  # not approved
    abandoned = run_cli(district, "drafts", "abandon", str(draft), "--note", "试一下")
    assert abandoned.exit_code == 0 and "abandoned" in abandoned.output
    # an overlapping grid is refused at submit: the draft stays, nothing is published
    grown = mine.iloc[:1].copy()
    grown["geometry"] = grown.to_crs(32649).buffer(80).to_crs(4326).apply(
        lambda g: shapely.MultiPolygon(shapely.get_parts(g)))
    bad = tmp_path / "grown.geojson"
    grown.to_file(bad)
    refused = run_cli(district, "import", "grids", str(bad), "--publish")
    assert refused.exit_code == 2 and "overlap" in refused.output, refused.output
    assert fingerprint(district) == before
    # the split, published through a draft
    done = run_cli(district, "import", "grids", str(path), "--publish")
    assert done.exit_code == 0, done.output
    assert "1 draft(s) published: 1 community version(s)" in done.output
    assert scalar(district, "SELECT count(*) FROM household WHERE grid_code = %s",
                  new_code) > 0
