"""OGC API Features Part 4 on the grids collection, as a standard client (QGIS, GDAL) uses
it over plain HTTP against a running server: writes go into a draft only, each grid carries
an ETag and a change sends it back (If-Match), every write keeps the draft's partition whole,
and after the draft is published the OGC read side and locate agree. Also the grids as of a
past moment (``datetime``, and ``/api/locate?at=``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np
import pyproj
import pytest
import shapely
import shapely.affinity
from shapely.geometry import mapping, shape

from tests.conftest import serve_in_thread
from tests.helpers import bearer, fingerprint, token_for

TOWNSHIP = "610199001000"
COMMUNITY = "610199001001"
OTHER_COMMUNITY = "610199002021"
COUNTY = "610199000000"
ITEMS = "/ogc/collections/grids/items"


@pytest.fixture(scope="module")
def base(grids_db: str) -> Iterator[str]:
    yield from serve_in_thread(grids_db, draft_approval="two_step")


@pytest.fixture(scope="module")
def planner(grids_db: str) -> dict[str, str]:
    """A township planner, reading answers in English (the messages' words are asserted)."""
    return {**bearer(token_for(grids_db, "ogc-planner", "planner", (TOWNSHIP,))),
            "Accept-Language": "en"}


@pytest.fixture(scope="module")
def county(grids_db: str) -> dict[str, str]:
    return bearer(token_for(grids_db, "ogc-county", "planner", (COUNTY,)))


def open_draft(base: str, headers: dict[str, str], area: str = COMMUNITY) -> int:
    res = httpx.post(f"{base}/api/drafts", json={"area": area, "title": "QGIS 编辑"},
                     headers=headers)
    assert res.status_code == 201, res.text
    return int(res.json()["draft"]["id"])


def read(base: str, headers: dict[str, str], draft: int, code: str) -> tuple[dict[str, Any],
                                                                              str]:
    res = httpx.get(f"{base}{ITEMS}/{code}", params={"draft": draft}, headers=headers)
    assert res.status_code == 200, res.text
    assert res.headers["content-type"].startswith("application/geo+json")
    return res.json(), res.headers["ETag"]


def draft_grids(base: str, headers: dict[str, str], draft: int) -> dict[str, dict[str, Any]]:
    res = httpx.get(f"{base}{ITEMS}", params={"draft": draft, "limit": 1000}, headers=headers)
    assert res.status_code == 200, res.text
    return {f["id"]: f for f in res.json()["features"]}


def comprehensive_pair(grids: dict[str, dict[str, Any]]) -> tuple[str, str]:
    """Two comprehensive grids of the community sharing an edge."""
    comp = {c: shape(f["geometry"]) for c, f in grids.items()
            if f["properties"]["kind"] == "comprehensive"}
    for a, ga in comp.items():
        for b, gb in comp.items():
            if a < b and shapely.intersection(ga.boundary, gb.boundary).length > 0.001:
                return a, b
    raise AssertionError("no neighbouring grids")


def push_vertex(ga: shapely.Geometry, gb: shapely.Geometry, far: float = 0.0003
                ) -> shapely.Geometry:
    """*ga* with one vertex it shares with *gb* pushed into *gb*, as a QGIS user drags it."""
    xy = shapely.get_coordinates(ga)
    shared = [p for p in xy if gb.boundary.distance(shapely.Point(p)) < 1e-9]
    at = shared[len(shared) // 2]
    step = np.array([gb.centroid.x, gb.centroid.y]) - at
    to = at + step / np.hypot(*step) * far

    def move(points: np.ndarray) -> np.ndarray:
        out = points.copy()
        out[np.hypot(*(points - at).T) < 1e-12] = to
        return out

    return shapely.transform(ga, move)


def stats(base: str, headers: dict[str, str], draft: int) -> dict[str, Any]:
    res = httpx.get(f"{base}/api/drafts/{draft}", headers=headers)
    assert res.status_code == 200, res.text
    out: dict[str, Any] = res.json()
    return out


def feature(geom: shapely.Geometry, **properties: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": mapping(geom), "properties": properties}


def test_conformance_declares_part_4(base: str) -> None:
    classes = httpx.get(f"{base}/ogc/conformance").json()["conformsTo"]
    for name in ("create-replace-delete", "update", "optimistic-locking-etags", "features"):
        assert f"http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/{name}" in classes


def test_a_qgis_like_round_trip_through_a_draft(
        base: str, grids_db: str, planner: dict[str, str], county: dict[str, str]) -> None:
    draft = open_draft(base, planner)
    published_before = fingerprint(grids_db)
    grids = draft_grids(base, planner, draft)
    a, b = comprehensive_pair(grids)
    ga, gb = shape(grids[a]["geometry"]), shape(grids[b]["geometry"])
    _, tag_a = read(base, planner, draft, a)

    # POST: a new grid inside A takes its land from A; the server gives it the next code
    spot = ga.buffer(-0.0006).representative_point()
    square = shapely.box(spot.x - 0.0003, spot.y - 0.0003, spot.x + 0.0003, spot.y + 0.0003)
    assert ga.buffer(-0.0001).contains(square)
    res = httpx.post(f"{base}{ITEMS}", params={"draft": draft}, headers=planner,
                     json=feature(square, name="新建网格"))
    assert res.status_code == 201, res.text
    new = res.json()["id"]
    assert new.startswith(COMMUNITY) and new not in grids
    assert res.headers["Location"].endswith(f"/items/{new}?draft={draft}")
    assert set(res.headers["Gridmap-Changed"].split(",")) == {a, new}
    assert stats(base, planner, draft)["stats"]["blocking"] == []

    # A changed, so the ETag read before is stale: 412, and nothing changes
    moved = push_vertex(ga, gb)
    stale = httpx.put(f"{base}{ITEMS}/{a}", params={"draft": draft},
                      headers={**planner, "If-Match": tag_a, "Accept-Language": "zh-CN"},
                      json=feature(moved, name="东区（调整）"))
    assert stale.status_code == 412, stale.text
    assert stale.json()["code"] == "stale_revision"
    assert "在您读取后已被修改" in stale.json()["detail"]  # in the caller's language
    body, tag_a = read(base, planner, draft, a)
    assert stale.headers["ETag"] == tag_a and body["properties"]["name"] == grids[a][
        "properties"]["name"]
    # without If-Match: 428
    assert httpx.put(f"{base}{ITEMS}/{a}", params={"draft": draft}, headers=planner,
                     json=feature(moved, name="x")).status_code == 428

    # PUT with the fresh ETag: A takes a strip of B; B gives it up in the same edit
    _, tag_b = read(base, planner, draft, b)
    grown = shapely.difference(moved, shape(read(base, planner, draft, new)[0]["geometry"]))
    res = httpx.put(f"{base}{ITEMS}/{a}", params={"draft": draft},
                    headers={**planner, "If-Match": tag_a},
                    json=feature(grown, name="东区（调整）"))
    assert res.status_code == 200, res.text
    assert set(res.headers["Gridmap-Changed"].split(",")) >= {a, b}
    assert res.json()["properties"]["name"] == "东区（调整）"
    assert shapely.symmetric_difference(shape(res.json()["geometry"]), grown).area < 1e-10
    b_now, tag_b2 = read(base, planner, draft, b)
    assert tag_b2 != tag_b and shape(b_now["geometry"]).area < gb.area
    assert stats(base, planner, draft)["stats"]["blocking"] == []

    # PATCH: only the name
    _, tag_b = read(base, planner, draft, b)
    res = httpx.patch(f"{base}{ITEMS}/{b}", params={"draft": draft},
                      headers={**planner, "If-Match": tag_b,
                               "Content-Type": "application/merge-patch+json"},
                      json={"properties": {"name": "西区"}})
    assert res.status_code == 200, res.text
    assert res.json()["properties"]["name"] == "西区"
    assert shapely.symmetric_difference(shape(res.json()["geometry"]),
                                        shape(b_now["geometry"])).area < 1e-12

    # DELETE retires in the draft: the new grid's land goes back to A, then B retires
    _, tag_new = read(base, planner, draft, new)
    res = httpx.delete(f"{base}{ITEMS}/{new}", params={"draft": draft},
                       headers={**planner, "If-Match": tag_new})
    assert res.status_code == 204, res.text
    assert a in res.headers["Gridmap-Changed"].split(",")
    _, tag_b = read(base, planner, draft, b)
    res = httpx.delete(f"{base}{ITEMS}/{b}", params={"draft": draft},
                       headers={**planner, "If-Match": tag_b})
    assert res.status_code == 204, res.text
    heir = next(c for c in res.headers["Gridmap-Changed"].split(",") if c != b)
    assert httpx.get(f"{base}{ITEMS}/{b}", params={"draft": draft},
                     headers=planner).status_code == 404
    view = stats(base, planner, draft)
    assert view["stats"]["blocking"] == [], view["stats"]["blocking"]
    edits = httpx.get(f"{base}/api/drafts/{draft}/edits", headers=planner).json()
    assert [e["op"] for e in edits] == ["feature_create", "feature_replace",
                                        "feature_update", "feature_delete", "feature_delete"]
    final = draft_grids(base, planner, draft)
    # nothing published yet: the published grids are as they were
    assert fingerprint(grids_db) == published_before
    assert httpx.get(f"{base}{ITEMS}/{b}").status_code == 200

    # publish through the drafts API; the OGC read side and locate agree at once
    res = httpx.post(f"{base}/api/drafts/{draft}/submit", headers=planner,
                     json={"note": "QGIS 编辑", "acknowledge": True})
    assert res.status_code == 200, res.text
    res = httpx.post(f"{base}/api/drafts/{draft}/approve", headers=county, json={})
    assert res.status_code == 200, res.text
    res = httpx.post(f"{base}/api/drafts/{draft}/publish", headers=planner,
                     timeout=120)  # a whole-district publish: slow on a loaded machine
    assert res.status_code == 200, res.text
    assert {g["code"]: g["change"] for g in res.json()["grids"]}[b] == "retired"
    assert httpx.get(f"{base}{ITEMS}/{b}").status_code == 404
    published = httpx.get(f"{base}{ITEMS}", params={
        "filter": f"community_code = '{COMMUNITY}'", "limit": 1000}).json()["features"]
    assert {f["id"] for f in published} == set(final)
    for f in published:  # 7 decimals out, full precision in the draft
        assert shapely.symmetric_difference(shape(f["geometry"]), shape(
            final[f["id"]]["geometry"])).area < 1e-9, f["id"]
        assert f["properties"]["name"] == final[f["id"]]["properties"]["name"]
    assert final[a]["properties"]["name"] == "东区（调整）"
    inside_old_b = shape(b_now["geometry"]).buffer(-0.0002).representative_point()
    deadline = time.monotonic() + 5
    while True:
        located = httpx.get(f"{base}/api/locate", params={"lon": inside_old_b.x,
                                                          "lat": inside_old_b.y}).json()
        if located["grid"]["code"] != b or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert located["grid"]["code"] == heir
    holder = httpx.get(f"{base}{ITEMS}", params={
        "bbox": f"{inside_old_b.x},{inside_old_b.y},{inside_old_b.x},{inside_old_b.y}",
        "filter": "kind = 'comprehensive'"}).json()
    assert [f["id"] for f in holder["features"]] == [heir]
    at_moved = shapely.difference(grown, ga).representative_point()
    located = httpx.get(f"{base}/api/locate", params={"lon": at_moved.x,
                                                      "lat": at_moved.y}).json()
    assert located["grid"]["code"] == a

    # as of a moment before the publish: B is back, in the OGC collection and in locate
    then = _before_publish(grids_db)
    old = httpx.get(f"{base}{ITEMS}", params={"datetime": then, "limit": 1000,
                                              "filter": f"community_code = '{COMMUNITY}'"})
    assert old.status_code == 200, old.text
    assert b in {f["id"] for f in old.json()["features"]}
    now = httpx.get(f"{base}{ITEMS}", params={"filter": f"community_code = '{COMMUNITY}'",
                                              "limit": 1000}).json()
    assert b not in {f["id"] for f in now["features"]}
    located = httpx.get(f"{base}/api/locate", params={
        "lon": inside_old_b.x, "lat": inside_old_b.y, "at": then}).json()
    assert located["grid"]["code"] == b


def _before_publish(url: str) -> str:
    """A moment just before the community's previous version ended."""
    import psycopg

    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        row = conn.execute("SELECT max(valid_to) FROM grid_version WHERE community_code = %s",
                           (COMMUNITY,)).fetchone()
    assert row is not None
    return datetime.fromtimestamp(row[0].timestamp() - 0.001, UTC).isoformat()


def test_two_editors_one_grid_one_wins_the_other_gets_412(
        base: str, planner: dict[str, str]) -> None:
    draft = open_draft(base, planner, "610199001002")
    grids = draft_grids(base, planner, draft)
    code = next(c for c, f in grids.items() if f["properties"]["kind"] == "comprehensive")
    _, tag = read(base, planner, draft, code)
    _, same = read(base, planner, draft, code)
    assert tag == same
    answers: list[int] = []

    def rename(name: str) -> None:
        res = httpx.patch(f"{base}{ITEMS}/{code}", params={"draft": draft},
                          headers={**planner, "If-Match": tag},
                          json={"properties": {"name": name}})
        answers.append(res.status_code)

    threads = [threading.Thread(target=rename, args=(n,)) for n in ("甲", "乙")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == [200, 412]
    body, _ = read(base, planner, draft, code)
    assert body["properties"]["name"] in ("甲", "乙")
    assert len(httpx.get(f"{base}/api/drafts/{draft}/edits", headers=planner).json()) == 1


def test_crs_of_the_request_geometry(base: str, planner: dict[str, str]) -> None:
    """Content-Crs: a UTM geometry, and EPSG:4490 with latitude first, land where CRS84
    would."""
    draft = open_draft(base, planner, "610199001003")
    grids = draft_grids(base, planner, draft)
    a, _ = comprehensive_pair(grids)
    ga = shape(grids[a]["geometry"])
    spot = ga.buffer(-0.0006).representative_point()
    square = shapely.box(spot.x - 0.0002, spot.y - 0.0002, spot.x + 0.0002, spot.y + 0.0002)
    utm = pyproj.Transformer.from_crs(4326, 32649, always_xy=True)
    in_utm = shapely.transform(square, lambda xy: np.column_stack(
        utm.transform(xy[:, 0], xy[:, 1])))
    res = httpx.post(f"{base}{ITEMS}", params={"draft": draft}, json=feature(in_utm, name="U"),
                     headers={**planner,
                              "Content-Crs": "<http://www.opengis.net/def/crs/EPSG/0/32649>"})
    assert res.status_code == 201, res.text
    assert shapely.symmetric_difference(shape(res.json()["geometry"]), square).area < 1e-11
    beside = shapely.affinity.translate(square, 0.0, -0.0006)
    assert ga.buffer(-0.0001).contains(beside)
    latlon = shapely.transform(beside, lambda xy: xy[:, ::-1])
    res = httpx.post(f"{base}{ITEMS}", params={"draft": draft}, json=feature(latlon, name="C"),
                     headers={**planner,
                              "Content-Crs": "http://www.opengis.net/def/crs/EPSG/0/4490"})
    assert res.status_code == 201, res.text
    assert shapely.symmetric_difference(shape(res.json()["geometry"]), beside).area < 1e-11
    res = httpx.post(f"{base}{ITEMS}", params={"draft": draft}, json=feature(square, name="C"),
                     headers={**planner, "Content-Crs": "EPSG:99999"})
    assert res.status_code == 422 and "Content-Crs" in res.json()["detail"]
    assert stats(base, planner, draft)["stats"]["blocking"] == []


def test_bad_input_is_refused_and_changes_nothing(
        base: str, grids_db: str, planner: dict[str, str]) -> None:
    draft = open_draft(base, planner, "610199001004")
    grids = draft_grids(base, planner, draft)
    a, b = comprehensive_pair(grids)
    ga, gb = shape(grids[a]["geometry"]), shape(grids[b]["geometry"])
    _, tag = read(base, planner, draft, a)
    before_edits = httpx.get(f"{base}/api/drafts/{draft}/edits", headers=planner).json()
    published = fingerprint(grids_db)

    def put(body: Any, code: str = a, params: dict[str, Any] | None = None,
            headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.put(f"{base}{ITEMS}/{code}",
                         params={"draft": draft} if params is None else params,
                         headers={**(planner if headers is None else headers),
                                  "If-Match": tag}, json=body)

    bowtie = {"type": "Polygon", "coordinates": [[[109.0, 34.2], [109.01, 34.21],
                                                  [109.01, 34.2], [109.0, 34.21],
                                                  [109.0, 34.2]]]}
    cases = {
        "self-intersecting": (put({"type": "Feature", "geometry": bowtie, "properties": {}}),
                              422, "valid"),
        "a point": (put({"type": "Feature", "geometry": {"type": "Point",
                                                          "coordinates": [109, 34]},
                         "properties": {}}), 422, "Polygon"),
        "no geometry": (put({"type": "Feature", "geometry": None, "properties": {}}), 422,
                        "geometry"),
        "outside the community": (put(feature(ga.buffer(0.01))), 422, "outside"),
        "a hole nobody takes": (put(feature(shapely.difference(
            ga, ga.buffer(-0.0008).representative_point().buffer(0.0002)))), 422, "gap"),
        "swallowing a neighbour": (put(feature(shapely.union(ga, gb))), 422, "all of grid"),
        "NUL in a name": (put(feature(ga, name="东\x00区")), 422, "NUL"),
        "changing the kind": (put(feature(ga, kind="exclusive")), 422, "kind"),
        "unknown property": (put(feature(ga, colour="red")), 422, "unknown properties"),
        "unknown draft": (put(feature(ga), params={"draft": 99999999}), 404, "draft"),
        "no draft": (put(feature(ga), params={}), 400, "draft"),
        "NUL in the id": (httpx.delete(f"{base}{ITEMS}/{a}%00", params={"draft": draft},
                                       headers={**planner, "If-Match": tag}), 400, "NUL"),
        "a read-only collection": (httpx.post(
            f"{base}/ogc/collections/households/items", params={"draft": draft},
            headers=planner, json=feature(ga, name="x")), 405, "read-only"),
        "a new grid in another community": (httpx.post(
            f"{base}{ITEMS}", params={"draft": draft}, headers=planner,
            json=feature(ga, name="x", community_code=OTHER_COMMUNITY)), 422,
            OTHER_COMMUNITY),
        "a new grid with a code": (httpx.post(
            f"{base}{ITEMS}", params={"draft": draft}, headers=planner,
            json=feature(ga, name="x", code=a)), 422, "code"),
        "a draft of another township": (httpx.post(
            f"{base}{ITEMS}", params={"draft": _admin_draft(base, grids_db)},
            headers=planner, json=feature(ga, name="x")), 404, "draft"),
    }
    for what, (res, status, words) in cases.items():
        assert res.status_code == status, (what, res.text)
        assert words in str(res.json()["detail"]), (what, res.text)
        assert res.json()["code"], what
    # not a planner: a dispatcher may not edit
    dispatcher = bearer(token_for(grids_db, "ogc-dispatcher", "dispatcher", (TOWNSHIP,)))
    assert put(feature(ga), headers=dispatcher).status_code == 403
    assert put(feature(ga), headers={}).status_code == 401
    assert httpx.get(f"{base}/api/drafts/{draft}/edits",
                     headers=planner).json() == before_edits
    assert read(base, planner, draft, a)[1] == tag
    assert fingerprint(grids_db) == published


def _admin_draft(base: str, url: str) -> int:
    admin = bearer(token_for(url, "ogc-admin"))
    return open_draft(base, admin, OTHER_COMMUNITY)


def test_datetime_before_any_version_and_bad_values(base: str) -> None:
    res = httpx.get(f"{base}{ITEMS}", params={"datetime": "1990-01-01T00:00:00Z"})
    assert res.status_code == 200 and res.json()["features"] == []
    for bad in ("yesterday", "2024-01-01/2024-02-01", "2024-13-01"):
        res = httpx.get(f"{base}{ITEMS}", params={"datetime": bad})
        assert res.status_code == 400, (bad, res.text)
    res = httpx.get(f"{base}/ogc/collections/communities/items",
                    params={"datetime": "2024-01-01"})
    assert res.status_code == 400 and "no time" in res.json()["detail"]
    res = httpx.get(f"{base}/ogc/collections/communities/items", params={"draft": 1})
    assert res.status_code == 400 and "no drafts" in res.json()["detail"]
