"""Access, route by route: every operation of the OpenAPI × every role × a division inside
and outside the caller's. Allowed → 2xx with only the caller's rows; not allowed →
401/403/404; personal fields masked as the role says. A route missing from ``CASES`` fails
the test, so a new route cannot be forgotten."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import geopandas as gpd
import mapbox_vector_tile
import pytest
from fastapi.testclient import TestClient
from httpx import Response

from gridmap.api.app import create_app
from gridmap.api.routes_health import Readiness
from gridmap.demodata import DEMO_DIR, DEMO_FILES
from gridmap.settings import Settings
from tests.helpers import bearer, token_for

TOWNSHIP, OTHER_TOWNSHIP = "610199001000", "610199002000"
COMMUNITY, OTHER_COMMUNITY = "610199001001", "610199002021"
GRID, OTHER_GRID = "610199001001001", "610199002021001"
ROLES = ("admin", "planner", "dispatcher", "grid_worker", "analyst", "public")
SIGNED_IN = ROLES[:-1]
DIVISIONS = {"admin": (), "planner": (TOWNSHIP,), "dispatcher": (TOWNSHIP,),
             "grid_worker": (GRID,), "analyst": (TOWNSHIP,)}
PREFIX = {"admin": "", "public": "", "planner": "610199001", "dispatcher": "610199001",
          "analyst": "610199001", "grid_worker": GRID}


@pytest.fixture(scope="module")
def client(demo_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    photos = tmp_path_factory.mktemp("photos")
    with TestClient(create_app(Settings(database_url=demo_db, photo_dir=photos))) as c:
        yield c


@pytest.fixture(scope="module")
def headers(demo_db: str) -> dict[str, dict[str, str]]:
    out = {role: bearer(token_for(demo_db, f"matrix-{role}", role, DIVISIONS[role]))
           for role in SIGNED_IN}
    return {**out, "public": {}}


@pytest.fixture(scope="module")
def points() -> dict[bool, tuple[float, float]]:
    grids = gpd.read_file(DEMO_DIR / DEMO_FILES["grids"]).set_index("code")
    inside = grids.loc[GRID].geometry.buffer(-0.0005).representative_point()
    outside = grids.loc[OTHER_GRID].geometry.buffer(-0.0005).representative_point()
    return {True: (inside.x, inside.y), False: (outside.x, outside.y)}


class Call:
    """One request by one role, inside or outside the divisions the roles hold."""

    def __init__(self, client: TestClient, headers: dict[str, str], role: str, inside: bool,
                 point: tuple[float, float]) -> None:
        self.client, self.headers, self.role, self.inside, self.point = (
            client, headers, role, inside, point)

    def get(self, path: str, **params: Any) -> Response:
        return self.client.get(path, params=params, headers=self.headers)

    @property
    def community(self) -> str:
        return COMMUNITY if self.inside else OTHER_COMMUNITY

    @property
    def township(self) -> str:
        return TOWNSHIP if self.inside else OTHER_TOWNSHIP

    def mine(self, code: str | None) -> bool:
        """Whether a row with this code is the caller's."""
        prefix = PREFIX[self.role]
        return (code or "").startswith(prefix) if prefix else True

    def denied(self, res: Response, *, signed_in_ok: bool = True) -> bool:
        """Assert the answer for a role that may not read; True if it was such a role."""
        if self.role == "public" and signed_in_ok:
            assert res.status_code == 401, (self.role, res.text)
            assert res.headers["www-authenticate"] == "Bearer"
            return True
        return False

    def rows_are_mine(self, codes: list[str | None]) -> None:
        assert all(self.mine(c) for c in codes), (self.role, [c for c in codes
                                                              if not self.mine(c)][:5])


def codes_of(fc: dict[str, Any], key: str) -> list[str | None]:
    return [f["properties"].get(key) for f in fc["features"]]


def masked_household(call: Call, row: dict[str, Any]) -> None:
    """The household fields a role sees: whole, masked or left out."""
    role = call.role
    if role in ("admin", "planner", "grid_worker"):
        assert "*" not in (row.get("phone") or "") and "elderly_alone" in row
        assert row.get("address") and (row["address"].endswith("室") or "室" not in str(row))
    elif role == "dispatcher":
        assert "****" in row["phone"] and row["head_name"].endswith("*")
        assert not row["address"].endswith("室")
        assert "elderly_alone" not in row and "disabled" not in row
    else:
        assert not {"phone", "head_name", "address", "elderly_alone", "low_income"} & set(row)


def masked_workers(call: Call, workers: list[dict[str, Any]]) -> None:
    if call.role == "public":
        assert workers == []
        return
    assert workers
    for w in workers:
        assert ("****" in w["phone"]) == (call.role == "analyst"), (call.role, w)


# --- one function per operation ------------------------------------------------------------

def auth_token(c: Call) -> None:
    name = f"matrix-{c.role}" if c.role != "public" else "nobody-here"
    res = c.client.post("/auth/token", data={
        "username": name, "password": "correct horse battery" if c.inside else "wrong one!"})
    if c.role == "public" or not c.inside:
        assert res.status_code == 401 and "wrong account name or password" in res.text
    else:
        body = res.json()
        assert body["token_type"] == "bearer" and body["expires_in"] > 0
        me = c.client.get("/auth/me", headers=bearer(body["access_token"])).json()
        assert me["name"] == name and me["role"] == c.role


def auth_session(c: Call) -> None:
    if c.role == "public":
        res = c.client.post("/auth/session", data={"username": "x", "password": "y" * 8})
        assert res.status_code == 401
        return
    fresh = TestClient(c.client.app)
    res = fresh.post("/auth/session", data={"username": f"matrix-{c.role}",
                                            "password": "correct horse battery"})
    assert res.status_code == 200 and res.json()["csrf_token"]
    assert "httponly" in res.headers["set-cookie"].lower()
    me = fresh.get("/auth/me").json()  # the cookie carries the session
    assert me["role"] == c.role
    # a change with the cookie but without the CSRF token is refused
    assert fresh.post("/auth/logout").status_code == 403
    assert fresh.get("/auth/me").json()["role"] == c.role
    out = fresh.post("/auth/logout", headers={"X-CSRF-Token": res.json()["csrf_token"]})
    assert out.status_code == 204
    stale = TestClient(c.client.app, cookies=dict(res.cookies))  # the revoked cookie
    assert stale.get("/auth/me").json()["role"] == "public"  # the page is the public's
    assert stale.get("/api/summary").status_code == 401


def auth_logout(c: Call) -> None:
    if c.role == "public":
        assert c.client.post("/auth/logout").status_code == 204  # nothing to revoke
        return
    token = token_for(c.client.app.state.settings.database_url, f"matrix-{c.role}")
    assert c.client.get("/auth/me", headers=bearer(token)).status_code == 200
    assert c.client.post("/auth/logout", headers=bearer(token)).status_code == 204
    res = c.client.get("/auth/me", headers=bearer(token))
    assert res.status_code == 401 and "revoked" in res.json()["detail"]


def auth_me(c: Call) -> None:
    me = c.get("/auth/me").json()
    assert me["role"] == c.role and (me["name"] is None) == (c.role == "public")
    assert ("households" in me["reads"]) == (c.role != "public")


def admin_only(c: Call, res: Response) -> bool:
    """Assert 401/403 for all but the admin; True for the admin."""
    if c.role == "admin":
        return True
    assert res.status_code == (401 if c.role == "public" else 403), (c.role, res.text)
    return False


def users_list(c: Call) -> None:
    res = c.get("/api/users")
    if admin_only(c, res):
        assert {u["name"] for u in res.json()} >= {f"matrix-{r}" for r in SIGNED_IN}
        assert all("password" not in str(u) for u in res.json())


def users_create(c: Call) -> None:
    name = f"made-by-{c.role}-{int(c.inside)}"
    res = c.client.post("/api/users", headers=c.headers, json={
        "name": name, "role": "analyst",
        "divisions": [c.township if c.inside else "610199999000"],
        "password": "long enough pw"})
    if admin_only(c, res):
        if c.inside:
            assert res.status_code == 201 and res.json()["divisions"] == [TOWNSHIP]
        else:
            assert res.status_code == 422 and "610199999000" in res.json()["detail"]


def users_update(c: Call) -> None:
    target = "matrix-victim" if c.inside else "no-such-account"
    if c.inside:
        token_for(c.client.app.state.settings.database_url, target, "analyst", (TOWNSHIP,))
    res = c.client.patch(f"/api/users/{target}", headers=c.headers, json={"disabled": True})
    if admin_only(c, res):
        assert res.status_code == (200 if c.inside else 404), res.text
        if c.inside:
            assert res.json()["disabled"] is True
            c.client.patch(f"/api/users/{target}", headers=c.headers, json={"disabled": False})


def audit(c: Call) -> None:
    res = c.get("/api/audit", user=f"matrix-{c.role}" if c.inside else "nobody")
    if admin_only(c, res):
        assert (len(res.json()) > 0) == c.inside


def summary(c: Call) -> None:
    res = c.get("/api/summary")
    if c.denied(res):
        return
    body = res.json()
    full = c.client.get("/api/summary", headers=c.client.app.state.matrix_admin).json()
    assert (body == full) == (c.role == "admin")
    assert body["grids"] > 0


def standard(c: Call) -> None:
    assert c.get("/api/standard").json()["urban_households"]


def places(c: Call) -> None:
    """Divisions of the caller's divisions only; public places (roads, facilities,
    buildings) as the role may read them, those elsewhere flagged and ranked after."""
    res = c.get("/api/places", q="长乐街道中学", limit=50)
    assert res.status_code == 200, (c.role, res.text)  # the public reads boundaries
    hits = res.json()["hits"]
    for h in hits:
        if not h["inside_scope"]:
            assert h["kind"] in ("road", "facility", "building") and h["note"], (c.role, h)
        elif c.role == "grid_worker":  # the township of its grid only
            assert h["township_code"] == TOWNSHIP, h
        else:
            assert c.mine(h["township_code"]), (c.role, h)
    if c.role in ("admin", "public"):
        assert all(h["inside_scope"] for h in hits), c.role
    facilities = [h for h in hits if h["kind"] == "facility"]
    if c.role == "public":
        assert not facilities
    else:  # the school: in the township; in another grid than the worker's (flagged)
        assert facilities and facilities[0]["name"] == "长乐街道中学", c.role
        assert facilities[0]["inside_scope"] == (c.role != "grid_worker"), c.role


def locale(c: Call) -> None:
    """Anyone may read the vocabulary's labels; they are the same for every role."""
    body = c.get("/api/locale").json()
    assert body["labels"]["role"][c.role] and body["time_zone"]


def divisions(level: str) -> Callable[[Call], None]:
    def check(c: Call) -> None:
        fc = c.get(f"/api/{level}.geojson").json()
        c.rows_are_mine(codes_of(fc, "code"))
        if c.role in ("admin", "public", "planner"):
            assert fc["features"]
    return check


def grids(c: Call) -> None:
    res = c.get("/api/grids.geojson", community=c.community)
    if not c.inside and c.role not in ("admin", "public"):
        assert res.status_code == 404
        return
    fc = res.json()
    assert fc["features"]
    c.rows_are_mine(codes_of(fc, "code"))
    counts = [f["properties"]["households"] for f in fc["features"]]
    assert all(n is None for n in counts) == (c.role == "public")


def check(path: str) -> Callable[[Call], None]:
    def run(c: Call) -> None:
        res = c.get(path, community=c.community)
        if c.denied(res):
            return
        mine = c.role == "admin" or (c.inside and c.role != "grid_worker")
        assert res.status_code == (200 if mine else 404), (c.role, c.inside, res.text)
        if mine and path == "/api/check":
            c.rows_are_mine([row["code"] for row in res.json()["balance"]])
    return run


def community_map(c: Call) -> None:
    check(f"/maps/community/{c.community}")(c)


def coverage(c: Call) -> None:
    res = c.get("/api/coverage", type="kindergarten", level="grid",
                division=c.township)
    if c.denied(res):
        return
    if not c.inside and c.role != "admin":
        assert res.status_code == 404
        return
    rows = res.json()
    assert rows
    c.rows_are_mine([r["unit"] for r in rows if r["unit"] != "outside"])


def uncovered(c: Call) -> None:
    res = c.get("/api/coverage/uncovered.geojson", type="elderly_daycare",
                division=c.community)
    if c.denied(res):
        return
    if not c.inside and c.role != "admin":
        assert res.status_code == 404
        return
    fc = res.json()
    assert fc["features"], c.role
    c.rows_are_mine(codes_of(fc, "grid_code"))
    for f in fc["features"][:20]:
        masked_household(c, f["properties"])
    vulnerable = c.get("/api/coverage/uncovered.geojson", type="elderly_daycare",
                       division=c.community, vulnerable="true")
    assert vulnerable.status_code == (403 if c.role in ("dispatcher", "analyst") else 200)


def coverage_map(c: Call) -> None:
    res = c.get("/maps/coverage", type="elderly_daycare", division=c.township)
    if c.denied(res):
        return
    assert res.status_code == (200 if c.inside or c.role == "admin" else 404), c.role
    if res.status_code == 200:
        assert ("vulnerable" in res.text.lower()) or c.role in ("dispatcher", "analyst")
        assert (OTHER_GRID in res.text) == (c.role == "admin" and not c.inside)


def locate(c: Call) -> None:
    x, y = c.point
    res = c.get("/api/locate", lon=x, lat=y)
    mine = c.role in ("admin", "public") or (c.inside and c.role != "grid_worker") or (
        c.inside and c.role == "grid_worker")
    if not mine:
        assert res.status_code == 404 and "none of your divisions" in res.json()["detail"]
        return
    body = res.json()
    assert body["grid"]["code"] == (GRID if c.inside else OTHER_GRID)
    masked_workers(c, body["workers"])


def search(c: Call) -> None:
    res = c.get("/api/search", q="晋昌社区1号楼101" if c.inside else "长安", limit=20)
    if c.denied(res):
        return
    hits = res.json()
    c.rows_are_mine([h["grid_code"] for h in hits])
    if c.inside and c.role != "grid_worker":
        assert hits, c.role
    for h in hits:
        masked_household(c, h)
        masked_workers(c, h["workers"])


def tile_xyz(point: tuple[float, float], z: int = 13) -> tuple[int, int, int]:
    n = 2**z
    return (z, int((point[0] + 180) / 360 * n),
            int((1 - math.asinh(math.tan(math.radians(point[1]))) / math.pi) / 2 * n))


def tiles(c: Call) -> None:
    z, x, y = tile_xyz(c.point)
    for layer, key in (("grids", "code"), ("communities", "code"), ("facilities", "grid_code"),
                       ("incidents", "grid_code")):
        res = c.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt")
        if c.role == "public" and layer in ("facilities", "incidents"):
            assert res.status_code == 401
            continue
        assert res.status_code in (200, 204), (c.role, layer, res.text)
        found = mapbox_vector_tile.decode(res.content).get(layer, {"features": []})
        codes = [f["properties"].get(key) for f in found["features"]]
        c.rows_are_mine(codes)
        if layer == "grids" and codes:
            has_counts = ["households" in f["properties"] for f in found["features"]]
            assert all(has_counts) == (c.role != "public")


def tilejson(c: Call) -> None:
    assert c.get("/tiles/grids.json").status_code == 200
    res = c.get("/tiles/incidents.json")
    assert res.status_code == (401 if c.role == "public" else 200)


def ogc_open(path: str) -> Callable[[Call], None]:
    def run(c: Call) -> None:
        assert c.get(path).status_code == 200
    return run


def ogc_collections(c: Call) -> None:
    ids = {col["id"] for col in c.get("/ogc/collections").json()["collections"]}
    assert ("households" in ids) == (c.role != "public") and "grids" in ids


def ogc_collection(c: Call) -> None:
    assert c.get("/ogc/collections/grids").status_code == 200
    assert c.get("/ogc/collections/households").status_code == (
        401 if c.role == "public" else 200)


def ogc_queryables(c: Call) -> None:
    res = c.get("/ogc/collections/households/queryables")
    if c.denied(res):
        return
    props = set(res.json()["properties"])
    assert ("address" in props) == (c.role in ("admin", "planner", "grid_worker"))
    assert ("phone" in props) == (c.role in ("admin", "planner", "grid_worker"))


def ogc_items(c: Call) -> None:
    bbox = ",".join(str(v) for v in (c.point[0] - 0.004, c.point[1] - 0.004,
                                     c.point[0] + 0.004, c.point[1] + 0.004))
    for cid, key in (("grids", "code"), ("households", "grid_code"), ("incidents", "grid_code")):
        res = c.get(f"/ogc/collections/{cid}/items", bbox=bbox, limit=10_000)
        if cid != "grids" and c.denied(res):
            continue
        body = res.json()
        c.rows_are_mine(codes_of(body, key) if key != "code" else
                        [f["id"] for f in body["features"]])
        assert body["numberMatched"] >= len(body["features"])
        if c.inside or c.role in ("admin", "public"):
            assert body["features"], (c.role, cid)
        if cid == "households":
            for f in body["features"][:20]:
                masked_household(c, f["properties"])
    if c.role == "analyst":  # a filter on what a role sees masked would reveal it
        res = c.get("/ogc/collections/households/items", filter="address LIKE '%101室'")
        assert res.status_code == 400 and "unknown properties address" in res.text


def ogc_item(c: Call) -> None:
    res = c.get(f"/ogc/collections/grids/items/{GRID if c.inside else OTHER_GRID}")
    mine = c.role in ("admin", "public") or c.inside
    assert res.status_code == (200 if mine else 404), (c.role, c.inside)
    res = c.get("/ogc/collections/incidents/items/I000001")
    if c.denied(res):
        return
    assert res.status_code in (200, 404)
    if res.status_code == 200:
        c.rows_are_mine([res.json()["properties"]["grid_code"]])


def _report(c: Call) -> Response:
    return c.client.post("/api/incidents", headers=c.headers, json={
        "lon": c.point[0], "lat": c.point[1], "category": "事件/市容环境/暴露垃圾",
        "reporter": "李女士 13900001111"})


def _reporter_ok(c: Call) -> bool:
    """Roles that report, move and dispatch cases in their divisions."""
    return c.role in ("admin", "dispatcher", "grid_worker")


def incidents_create(c: Call) -> None:
    res = _report(c)
    if c.role == "public":
        assert res.status_code == 401
    elif not _reporter_ok(c):
        assert res.status_code == 403, (c.role, res.text)
    elif c.inside or c.role == "admin":
        assert res.status_code == 201, (c.role, res.text)
        c.rows_are_mine([res.json()["grid_code"]])
        assert res.json()["reporter"] == "李女士 13900001111"
    else:
        assert res.status_code == 404, (c.role, res.text)


def _a_case(c: Call) -> Response:
    """A case inside or outside the roles' divisions, reported by the admin."""
    return c.client.post("/api/incidents", headers=c.client.app.state.matrix_admin, json={
        "lon": c.point[0], "lat": c.point[1], "category": "事件/市容环境/暴露垃圾",
        "reporter": "李女士 13900001111"})


def incidents_list(c: Call) -> None:
    _a_case(c)
    res = c.get("/api/incidents", limit=1000)
    if c.denied(res):
        return
    cases = res.json()
    c.rows_are_mine([x["grid_code"] or x["township_code"] for x in cases])
    for case in cases[:20]:
        assert ("reporter" in case) == (c.role != "analyst")


def incidents_get(c: Call) -> None:
    case = _a_case(c).json()
    res = c.get(f"/api/incidents/{case['id']}")
    if c.denied(res):
        return
    mine = c.inside or c.role == "admin"
    assert res.status_code == (200 if mine else 404), (c.role, c.inside)
    if mine:
        assert ("reporter" in res.json()) == (c.role != "analyst")
        assert ("description" in res.json()) == (c.role != "analyst")


def incidents_act(c: Call) -> None:
    case = _a_case(c)
    res = c.client.post(f"/api/incidents/{case.json()['id']}/actions", headers={
        **c.headers, "If-Match": case.headers["etag"]}, json={"action": "register"})
    may = c.role in ("admin", "dispatcher")
    mine = c.inside or c.role == "admin"
    expected = 401 if c.role == "public" else 403 if not may else 200 if mine else 404
    assert res.status_code == expected, (c.role, c.inside, res.text)


def incidents_route(c: Call) -> None:
    case = _a_case(c)
    target = GRID if c.inside else OTHER_GRID
    res = c.client.post(f"/api/incidents/{case.json()['id']}/route", headers={
        **c.headers, "If-Match": case.headers["etag"]},
        json={"grid_code": target, "reason": "test"})
    may = c.role in ("admin", "dispatcher")
    mine = c.inside or c.role == "admin"
    expected = 401 if c.role == "public" else 403 if not may else 200 if mine else 404
    assert res.status_code == expected, (c.role, c.inside, res.text)


def incident_categories(c: Call) -> None:
    res = c.get("/api/incident-categories")
    if c.denied(res):
        return
    assert res.status_code == 200 and len(res.json()) >= 8


def incident_kpis(c: Call) -> None:
    _a_case(c)  # a case in GRID or OTHER_GRID, now, assigned to its grid's worker
    res = c.get("/api/incidents/kpis", by="grid")
    if c.denied(res):
        return
    units = [r["unit"] for r in res.json()]
    c.rows_are_mine([u for u in units if u])  # None: cases outside every grid
    code = GRID if c.inside else OTHER_GRID
    assert (code in units) == c.mine(code), (c.role, c.inside)
    workers = c.get("/api/incidents/kpis", by="worker").json()
    names = [r["name"] for r in workers if r["name"]]
    assert names, c.role
    assert all(("*" in n) == (c.role == "analyst") for n in names), (c.role, names[:3])


def incident_hotspots(c: Call) -> None:
    _a_case(c)
    res = c.get("/api/incidents/hotspots", format="json" if c.inside else "geojson")
    if c.denied(res):
        return
    rows = (res.json()["units"] if c.inside
            else [f["properties"] for f in res.json()["features"]])
    units = [r["unit"] for r in rows]
    c.rows_are_mine(units)
    code = GRID if c.inside else OTHER_GRID
    assert (code in units) == c.mine(code), (c.role, c.inside)
    cells = c.get("/api/incidents/hotspots", unit="h3").json()["units"]
    # the same cases per cell, plus those outside every grid
    assert sum(u["current"] for u in cells) >= sum(r["current"] for r in rows) > 0


def incidents_live(c: Call) -> None:
    """Every role that reads incidents may listen; a plain GET is told to accept the
    stream."""
    with c.client.stream("GET", "/api/incidents/live",
                         headers={**c.headers, "Accept": "text/event-stream"}) as res:
        if c.denied(res):
            return
        assert res.status_code == 200, (c.role, res.status_code)
        assert res.headers["content-type"].startswith("text/event-stream")
        assert next(res.iter_lines()).startswith("retry: "), c.role  # listening
    assert c.get("/api/incidents/live").status_code == 406


def _open311_key(c: Call) -> dict[str, str]:
    """The ``api_key`` parameter of the role's account (none for the public)."""
    if c.role == "public":
        return {}
    from gridmap import access

    state = c.client.app.state  # type: ignore[attr-defined]
    keys = getattr(state, "open311_keys", {})
    if c.role not in keys:
        with state.engine.begin() as conn:
            keys[c.role] = access.add_api_key(conn, f"matrix-{c.role}", "matrix",
                                              actor=access.CLI).key
        state.open311_keys = keys
    return {"api_key": keys[c.role]}


def _open311_refused(res: Response, status: int) -> None:
    assert res.status_code == status, (status, res.text)
    assert res.json()[0]["code"] == status and res.json()[0]["description"]


def open311_discovery(c: Call) -> None:
    res = c.get("/open311/discovery.json")
    assert res.status_code == 200 and res.json()["endpoints"][0]["url"].endswith("/open311/v2")


def open311_services(c: Call) -> None:
    res = c.get("/open311/v2/services.json")  # public: no key needed
    assert res.status_code == 200 and len(res.json()) >= 8


def open311_create(c: Call) -> None:
    res = c.client.post("/open311/v2/requests.json", data={
        **_open311_key(c), "service_code": "事件/市容环境/暴露垃圾", "lat": str(c.point[1]),
        "long": str(c.point[0]), "first_name": "李女士", "phone": "13900001111"})
    if c.role == "public":
        _open311_refused(res, 401)
    elif not _reporter_ok(c):
        _open311_refused(res, 403)
    elif c.inside or c.role == "admin":
        assert res.status_code == 201, (c.role, res.text)
        rid = res.json()[0]["service_request_id"]
        case = c.get(f"/open311/v2/requests/{rid}.json", **_open311_key(c)).json()[0]
        c.rows_are_mine([case["agency_responsible"]])
    else:
        _open311_refused(res, 404)


def open311_list(c: Call) -> None:
    _a_case(c)
    res = c.get("/open311/v2/requests.json", **_open311_key(c))
    if c.role == "public":
        _open311_refused(res, 401)
        return
    assert res.status_code == 200 and res.json(), (c.role, res.text)
    c.rows_are_mine([r["agency_responsible"] for r in res.json()])
    for case in res.json()[:20]:
        assert ("description" in case) == (c.role != "analyst")


def open311_get(c: Call) -> None:
    case = _a_case(c).json()
    res = c.get(f"/open311/v2/requests/{case['id']}.json", **_open311_key(c))
    if c.role == "public":
        _open311_refused(res, 401)
    elif c.inside or c.role == "admin":
        assert res.status_code == 200, (c.role, c.inside, res.text)
        assert res.json()[0]["agency_responsible"] == case["grid_code"]
        assert ("description" in res.json()[0]) == (c.role != "analyst")
    else:
        _open311_refused(res, 404)


def _a_case_with_photo(c: Call) -> tuple[str, str]:
    """A case with a photo inside or outside the roles' divisions (by the admin): its id
    and the photo's."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "PNG")
    res = c.client.post("/api/incidents", headers=c.client.app.state.matrix_admin, data={
        "lon": str(c.point[0]), "lat": str(c.point[1]), "category": "事件/市容环境/暴露垃圾"},
        files={"photo": ("p.png", out.getvalue(), "image/png")})
    assert res.status_code == 201, res.text
    cid = res.json()["id"]
    case = c.client.get(f"/api/incidents/{cid}", headers=c.client.app.state.matrix_admin)
    return cid, case.json()["photos"][0]["id"]


def incident_photo(c: Call) -> None:
    """Those who see the case and its description see its photos."""
    cid, photo = _a_case_with_photo(c)
    res = c.get(f"/api/incidents/{cid}/photos/{photo}")
    if c.denied(res):
        return
    mine = c.inside or c.role == "admin"
    expected = 404 if not mine else 403 if c.role == "analyst" else 200
    assert res.status_code == expected, (c.role, c.inside, res.text)
    if expected == 200:
        assert res.headers["content-type"] == "image/png"


def open311_media(c: Call) -> None:
    cid, photo = _a_case_with_photo(c)
    res = c.get(f"/open311/v2/requests/{cid}/media/{photo}", **_open311_key(c))
    mine = c.inside or c.role == "admin"
    if c.role == "public":
        _open311_refused(res, 401)
    elif not mine:
        _open311_refused(res, 404)
    elif c.role == "analyst":
        _open311_refused(res, 403)
    else:
        assert res.status_code == 200 and res.headers["content-type"] == "image/png"


def emergency(c: Call) -> None:
    body = {"point": list(c.point), "radius_m": 500}
    res = c.client.post("/api/emergency", headers=c.headers, json=body)
    if c.denied(res):
        return
    assert res.status_code == 200, (c.role, res.text)
    answer = res.json()
    codes = [g["code"] for g in answer["grids"]]
    c.rows_are_mine(codes)
    target = GRID if c.inside else OTHER_GRID
    assert (target in codes) == c.mine(target), (c.role, c.inside, codes)
    listed = answer["vulnerable_households"]
    if c.role in ("admin", "planner", "grid_worker"):
        assert listed is not None, c.role
        c.rows_are_mine([h["grid_code"] for h in listed])
        assert all(h["flags"] and "*" not in (h["phone"] or "") for h in listed)
    else:  # care flags as counts only
        assert listed is None, c.role
        res = c.client.post("/api/emergency", headers=c.headers, json=body,
                            params={"format": "csv", "rows": "households"})
        assert res.status_code == 403, (c.role, res.text)
    if codes:
        masked_workers(c, [w for g in answer["grids"] for w in g["workers"]])


def healthz(c: Call) -> None:
    res = c.get("/healthz")
    assert res.status_code == 200 and res.json() == {"status": "ok"}, (c.role, res.text)


def readyz(c: Call) -> None:
    res = c.get("/readyz")
    assert res.status_code == 200, (c.role, res.text)
    body = res.json()
    assert body["status"] == "ready" and body["database"] and body["listener"]
    # the same answer for every caller: the server's state, never a person's data
    assert set(body) == set(Readiness.model_fields) and body["problems"] == []
    assert body["locate_problem"] is None and body["failing"] == {}


def plan_versions(c: Call) -> None:
    res = c.get(f"/api/communities/{c.community}/versions")
    mine = c.role in ("admin", "public") or c.inside
    assert res.status_code == (200 if mine else 404), (c.role, c.inside, res.text)
    if mine:
        assert res.json()[0]["version"] >= 1


def plan_diff(c: Call) -> None:
    res = c.get(f"/api/communities/{c.community}/diff", **{"from": 1})
    mine = c.role in ("admin", "public") or c.inside
    assert res.status_code == (200 if mine else 404), (c.role, c.inside, res.text)
    if mine:
        body = res.json()
        assert (body["households"] is None) == (c.role == "public")


def plan_restore(c: Call) -> None:
    current = c.client.get(f"/api/communities/{c.community}/versions",
                           headers=c.client.app.state.matrix_admin).json()[0]["version"]
    res = c.client.post(f"/api/communities/{c.community}/restore", headers=c.headers, json={
        "version": current, "note": "no change", "expected_version": current})
    editor = c.role in ("admin", "planner")
    whole = c.role == "admin" or (c.inside and c.role == "planner")
    expected = 401 if c.role == "public" else 403 if not editor else 200 if whole else 404
    assert res.status_code == expected, (c.role, c.inside, res.text)
    if res.status_code == 200:
        assert res.json()["published"] == 0  # the current version: nothing to publish


def _expect_draft(c: Call, res: Response, ok: int, *, county_only: bool = False) -> bool:
    """Drafts are for planners (their divisions) and admins; True when it went through."""
    editor = c.role in ("admin", "planner")
    expected = (401 if c.role == "public" else 403 if not editor
                else ok if c.role == "admin" else 404 if not c.inside
                else 403 if county_only else ok)
    assert res.status_code == expected, (c.role, c.inside, res.text)
    return res.status_code == ok


def _new_draft(c: Call, *, status: str = "open") -> tuple[int, str]:
    """A draft of the caller's community (inside) or another, made by an admin; submitted
    (and approved) by a second admin when *status* says."""
    admin = c.client.app.state.matrix_admin
    res = c.client.post("/api/drafts", json={"area": c.community, "title": "matrix"},
                        headers=admin)
    assert res.status_code == 201, res.text
    draft, tag = res.json()["draft"]["id"], res.headers["ETag"]
    if status in ("submitted", "approved"):
        second = bearer(token_for(c.client.app.state.settings.database_url, "matrix-admin2"))
        res = c.client.post(f"/api/drafts/{draft}/submit", headers=second,
                            json={"note": "matrix", "acknowledge": True})
        assert res.status_code == 200, res.text
        tag = res.headers["ETag"]
    if status == "approved":
        res = c.client.post(f"/api/drafts/{draft}/approve", headers=admin, json={})
        assert res.status_code == 200, res.text
        tag = res.headers["ETag"]
    return draft, tag


def drafts_list(c: Call) -> None:
    draft, _ = _new_draft(c)
    res = c.get("/api/drafts")
    if c.role in ("admin", "planner"):  # the list is filtered, never refused
        assert res.status_code == 200, (c.role, res.text)
        c.rows_are_mine([d["area_code"] for d in res.json()])
        assert (draft in [d["id"] for d in res.json()]) == (c.inside or c.role == "admin")
    else:
        assert res.status_code == (401 if c.role == "public" else 403), (c.role, res.text)


def drafts_create(c: Call) -> None:
    res = c.client.post("/api/drafts", json={"area": c.community, "title": "x"},
                        headers=c.headers)
    if _expect_draft(c, res, 201):
        assert res.json()["draft"]["area_code"] == c.community


def drafts_get(c: Call) -> None:
    draft, tag = _new_draft(c)
    res = c.get(f"/api/drafts/{draft}")
    if _expect_draft(c, res, 200):
        assert res.headers["ETag"] == tag and res.json()["stats"]["grids"]


def _lock(c: Call, draft: int, tag: str, headers: dict[str, str]) -> Response:
    grid = GRID if c.inside else OTHER_GRID
    return c.client.post(f"/api/drafts/{draft}/edits", json={"op": "lock", "grid": grid},
                         headers={**headers, "If-Match": tag})


def drafts_edit(c: Call) -> None:
    draft, tag = _new_draft(c)
    _expect_draft(c, _lock(c, draft, tag, c.headers), 200)


def drafts_edits(c: Call) -> None:
    draft, tag = _new_draft(c)
    _lock(c, draft, tag, c.client.app.state.matrix_admin)
    res = c.get(f"/api/drafts/{draft}/edits")
    if _expect_draft(c, res, 200):
        assert [e["op"] for e in res.json()] == ["lock"]


def drafts_undo(c: Call, *, redo: bool = False) -> None:
    admin = c.client.app.state.matrix_admin
    draft, tag = _new_draft(c)
    tag = _lock(c, draft, tag, admin).headers["ETag"]
    if redo:
        tag = c.client.post(f"/api/drafts/{draft}/undo",
                            headers={**admin, "If-Match": tag}).headers["ETag"]
    res = c.client.post(f"/api/drafts/{draft}/{'redo' if redo else 'undo'}",
                        headers={**c.headers, "If-Match": tag})
    _expect_draft(c, res, 200)


def drafts_diff(c: Call) -> None:
    draft, _ = _new_draft(c)
    res = c.get(f"/api/drafts/{draft}/diff")
    if _expect_draft(c, res, 200):
        assert res.json()["grids"] == [] and res.json()["households_moved"] == 0


def drafts_submit(c: Call) -> None:
    draft, _ = _new_draft(c)
    res = c.client.post(f"/api/drafts/{draft}/submit", headers=c.headers,
                        json={"note": "ok", "acknowledge": True})
    if _expect_draft(c, res, 200):
        assert res.json()["draft"]["status"] == "submitted"


def drafts_decide(c: Call, *, approve: bool) -> None:
    draft, _ = _new_draft(c, status="submitted")
    res = c.client.post(f"/api/drafts/{draft}/{'approve' if approve else 'send-back'}",
                        headers=c.headers, json={"note": "matrix"})
    if _expect_draft(c, res, 200, county_only=True):
        assert res.json()["status"] == ("approved" if approve else "open")


def drafts_publish(c: Call) -> None:
    draft, _ = _new_draft(c, status="approved")
    res = c.client.post(f"/api/drafts/{draft}/publish", headers=c.headers)
    if _expect_draft(c, res, 200):
        assert res.json()["published"] == 0  # the draft changed nothing


def drafts_abandon(c: Call) -> None:
    draft, _ = _new_draft(c)
    res = c.client.post(f"/api/drafts/{draft}/abandon", headers=c.headers, json={})
    if _expect_draft(c, res, 200):
        assert res.json()["status"] == "abandoned"


def _square(c: Call, half: float = 0.0001) -> dict[str, Any]:
    x, y = c.point
    return {"type": "Polygon", "coordinates": [[[x - half, y - half], [x + half, y - half],
                                                [x + half, y + half], [x - half, y + half],
                                                [x - half, y - half]]]}


def ogc_create(c: Call) -> None:
    draft, _ = _new_draft(c)
    res = c.client.post("/ogc/collections/grids/items", params={"draft": draft},
                        headers=c.headers, json={
                            "type": "Feature", "geometry": _square(c),
                            "properties": {"name": "微网格", "kind": "micro",
                                           "parent_grid_code": GRID if c.inside
                                           else OTHER_GRID}})
    if _expect_draft(c, res, 201):
        assert res.json()["properties"]["kind"] == "micro" and res.headers["ETag"]


def _ogc_change(c: Call, method: str) -> None:
    """A change to a grid of an admin's draft, with the ETag the admin read."""
    admin = c.client.app.state.matrix_admin
    draft, _ = _new_draft(c)
    url = f"/ogc/collections/grids/items/{GRID if c.inside else OTHER_GRID}"
    read = c.client.get(url, params={"draft": draft}, headers=admin)
    assert read.status_code == 200, read.text
    body = {"type": "Feature", "geometry": read.json()["geometry"],
            "properties": {"name": "改名"}}
    res = c.client.request(method, url, params={"draft": draft},
                           headers={**c.headers, "If-Match": read.headers["ETag"]},
                           json=None if method == "DELETE" else body)
    if _expect_draft(c, res, 204 if method == "DELETE" else 200) and method != "DELETE":
        assert res.json()["properties"]["name"] == "改名"


CASES: dict[str, Callable[[Call], None]] = {
    "POST /auth/token": auth_token,
    "POST /auth/session": auth_session,
    "POST /auth/logout": auth_logout,
    "GET /auth/me": auth_me,
    "GET /api/users": users_list,
    "POST /api/users": users_create,
    "PATCH /api/users/{name}": users_update,
    "GET /api/audit": audit,
    "GET /api/communities/{community}/versions": plan_versions,
    "GET /api/communities/{community}/diff": plan_diff,
    "POST /api/communities/{community}/restore": plan_restore,
    "GET /api/drafts": drafts_list,
    "POST /api/drafts": drafts_create,
    "GET /api/drafts/{draft}": drafts_get,
    "POST /api/drafts/{draft}/edits": drafts_edit,
    "GET /api/drafts/{draft}/edits": drafts_edits,
    "POST /api/drafts/{draft}/undo": drafts_undo,
    "POST /api/drafts/{draft}/redo": lambda c: drafts_undo(c, redo=True),
    "GET /api/drafts/{draft}/diff": drafts_diff,
    "POST /api/drafts/{draft}/submit": drafts_submit,
    "POST /api/drafts/{draft}/approve": lambda c: drafts_decide(c, approve=True),
    "POST /api/drafts/{draft}/send-back": lambda c: drafts_decide(c, approve=False),
    "POST /api/drafts/{draft}/publish": drafts_publish,
    "POST /api/drafts/{draft}/abandon": drafts_abandon,
    "POST /api/incidents": incidents_create,
    "GET /api/incidents": incidents_list,
    "GET /api/incidents/{incident_id}": incidents_get,
    "POST /api/incidents/{incident_id}/actions": incidents_act,
    "POST /api/incidents/{incident_id}/route": incidents_route,
    "GET /api/incident-categories": incident_categories,
    "GET /api/incidents/kpis": incident_kpis,
    "GET /api/incidents/hotspots": incident_hotspots,
    "GET /api/incidents/live": incidents_live,
    "GET /open311/discovery.json": open311_discovery,
    "GET /open311/v2/services.json": open311_services,
    "POST /open311/v2/requests.json": open311_create,
    "GET /open311/v2/requests.json": open311_list,
    "GET /open311/v2/requests/{service_request_id}.json": open311_get,
    "GET /open311/v2/requests/{service_request_id}/media/{photo_id}": open311_media,
    "GET /api/incidents/{incident_id}/photos/{photo_id}": incident_photo,
    "GET /api/summary": summary,
    "GET /api/standard": standard,
    "GET /api/locale": locale,
    "GET /api/communities.geojson": divisions("communities"),
    "GET /api/townships.geojson": divisions("townships"),
    "GET /api/grids.geojson": grids,
    "GET /api/check": check("/api/check"),
    "GET /api/check.geojson": check("/api/check.geojson"),
    "GET /maps/community/{community}": community_map,
    "GET /api/coverage": coverage,
    "GET /api/coverage/uncovered.geojson": uncovered,
    "GET /maps/coverage": coverage_map,
    "POST /api/emergency": emergency,
    "GET /api/locate": locate,
    "GET /api/search": search,
    "GET /api/places": places,
    "GET /tiles/{layer}/{z}/{x}/{y}.mvt": tiles,
    "GET /tiles/{layer}.json": tilejson,
    "GET /ogc": ogc_open("/ogc"),
    "GET /ogc/conformance": ogc_open("/ogc/conformance"),
    "GET /ogc/collections": ogc_collections,
    "GET /ogc/collections/{collection_id}": ogc_collection,
    "GET /ogc/collections/{collection_id}/queryables": ogc_queryables,
    "GET /ogc/collections/{collection_id}/items": ogc_items,
    "GET /ogc/collections/{collection_id}/items/{feature_id}": ogc_item,
    "POST /ogc/collections/{collection_id}/items": ogc_create,
    "PUT /ogc/collections/{collection_id}/items/{feature_id}":
        lambda c: _ogc_change(c, "PUT"),
    "PATCH /ogc/collections/{collection_id}/items/{feature_id}":
        lambda c: _ogc_change(c, "PATCH"),
    "DELETE /ogc/collections/{collection_id}/items/{feature_id}":
        lambda c: _ogc_change(c, "DELETE"),
    "GET /healthz": healthz,
    "GET /readyz": readyz,
}


def operations(client: TestClient) -> list[str]:
    spec = client.app.openapi()  # type: ignore[attr-defined]
    return [f"{method.upper()} {path}" for path, ops in spec["paths"].items()
            for method in ops]


def test_every_operation_has_a_case(client: TestClient) -> None:
    missing = [op for op in operations(client) if op not in CASES]
    assert not missing, f"add these routes to the access matrix: {missing}"
    assert not set(CASES) - set(operations(client))


@pytest.mark.parametrize("op", list(CASES))
def test_matrix(client: TestClient, headers: dict[str, dict[str, str]],
                points: dict[bool, tuple[float, float]], op: str) -> None:
    client.app.state.matrix_admin = headers["admin"]  # type: ignore[attr-defined]
    for role in ROLES:
        for inside in (True, False):
            CASES[op](Call(client, headers[role], role, inside, points[inside]))


def test_grid_worker_tiles_hold_nothing_outside_their_grid(
        client: TestClient, headers: dict[str, dict[str, str]],
        points: dict[bool, tuple[float, float]]) -> None:
    grids = gpd.read_file(DEMO_DIR / DEMO_FILES["grids"]).set_index("code")
    seen: set[str] = set()
    for z in (11, 13, 15):
        z, x, y = tile_xyz(points[True], z)
        for layer, key in (("grids", "code"), ("townships", "code"),
                           ("communities", "code"), ("facilities", "grid_code"),
                           ("incidents", "grid_code")):
            res = client.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt", headers=headers["grid_worker"])
            assert res.status_code in (200, 204)
            for f in mapbox_vector_tile.decode(res.content).get(layer, {"features": []})[
                    "features"]:
                assert f["properties"][key] == GRID, (layer, f["properties"])
                seen.add(layer)
        # the same tile for the dispatcher holds the neighbours too
        res = client.get(f"/tiles/grids/{z}/{x}/{y}.mvt", headers=headers["dispatcher"])
        codes = {f["properties"]["code"] for f in mapbox_vector_tile.decode(res.content)[
            "grids"]["features"]}
        assert GRID in codes and len(codes) > 1
    assert "grids" in seen and GRID in grids.index


def test_reads_of_personal_data_and_changes_are_audited(
        client: TestClient, headers: dict[str, dict[str, str]],
        points: dict[bool, tuple[float, float]]) -> None:
    x, y = points[True]
    client.get("/api/locate", params={"lon": x, "lat": y}, headers=headers["dispatcher"])
    client.get("/api/search", params={"q": "晋昌社区1号楼101"}, headers=headers["planner"])
    client.get("/api/locate", params={"lon": x, "lat": y}, headers=headers["analyst"])
    signed_in = client.post("/auth/token", data={"username": "matrix-analyst",
                                                 "password": "correct horse battery"})
    assert signed_in.status_code == 200
    log = client.get("/api/audit", params={"limit": 10_000}, headers=headers["admin"]).json()
    by = {(e["user_name"], e["target"], e["action"]) for e in log}
    assert ("matrix-dispatcher", "GET /api/locate", "read") in by
    assert ("matrix-planner", "GET /api/search", "read") in by
    assert ("matrix-analyst", "GET /api/locate", "read") not in by  # masked: not a read of
    search = next(e for e in log if e["user_name"] == "matrix-planner"
                  and e["target"] == "GET /api/search")
    assert search["row_ids"] and search["client"] and search["divisions"]
    assert any(e["action"] == "sign_in" and e["user_name"] == "matrix-analyst" for e in log)


@pytest.mark.parametrize("token", ["", "nonsense", "a.b.c",
                                   "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
                                   "' OR 1=1 --", "x" * 5000])
def test_forged_or_malformed_tokens_are_401(client: TestClient, token: str) -> None:
    res = client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert res.status_code == 401 if token else 200


def test_an_expired_or_foreign_token_is_401(client: TestClient, demo_db: str) -> None:
    import jwt

    from gridmap.access import signing_key

    key = signing_key(Settings(database_url=demo_db))
    expired = jwt.encode({"sub": "x", "jti": "00000000-0000-0000-0000-000000000000",
                          "exp": 1}, key, algorithm="HS256")
    res = client.get("/auth/me", headers=bearer(expired))
    assert res.status_code == 401 and "expired" in res.json()["detail"]
    foreign = jwt.encode({"sub": "x", "jti": "00000000-0000-0000-0000-000000000000",
                          "exp": 2**40}, "another key" * 4, algorithm="HS256")
    res = client.get("/auth/me", headers=bearer(foreign))
    assert res.status_code == 401 and "not one this server issued" in res.json()["detail"]


def test_a_disabled_account_loses_its_token_at_once(client: TestClient,
                                                    headers: dict[str, dict[str, str]],
                                                    demo_db: str) -> None:
    token = token_for(demo_db, "soon-disabled", "analyst", (TOWNSHIP,))
    assert client.get("/api/summary", headers=bearer(token)).status_code == 200
    client.patch("/api/users/soon-disabled", json={"disabled": True}, headers=headers["admin"])
    res = client.get("/api/summary", headers=bearer(token))
    assert res.status_code == 401 and "revoked" in res.json()["detail"]
    res = client.post("/auth/token", data={"username": "soon-disabled",
                                           "password": "correct horse battery"})
    assert res.status_code == 401 and "disabled" in res.json()["detail"]


def test_repeated_failed_sign_ins_are_slowed_down(client: TestClient, demo_db: str) -> None:
    token_for(demo_db, "often-wrong", "analyst", (TOWNSHIP,))
    answers = [client.post("/auth/token", data={"username": "often-wrong",
                                                "password": "not it at all"}).status_code
               for _ in range(7)]
    assert answers[:5] == [401] * 5 and answers[6] == 429
    res = client.post("/auth/token", data={"username": "often-wrong",
                                           "password": "correct horse battery"})
    assert res.status_code == 429 and int(res.headers["retry-after"]) >= 1


def test_security_headers_and_no_cors_by_default(client: TestClient) -> None:
    res = client.get("/", headers={"Origin": "https://elsewhere.example"})
    assert "script-src 'self'" in res.headers["content-security-policy"]
    assert res.headers["x-content-type-options"] == "nosniff"
    assert "access-control-allow-origin" not in res.headers
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["OAuth2PasswordBearer"]["type"] == "oauth2"


@pytest.mark.parametrize("body", [
    {"name": "x'; drop table app_user;--", "role": "analyst", "divisions": [TOWNSHIP],
     "password": "long enough pw"},
    {"name": "nul\x00name", "role": "analyst", "divisions": [TOWNSHIP],
     "password": "long enough pw"},
    # a C1 control character: PostgreSQL's [:cntrl:] refused it after Python let it by (a 500)
    {"name": "c1\x8acontrol", "role": "analyst", "divisions": [TOWNSHIP],
     "password": "long enough pw"},
    {"name": "ok-name", "role": "superuser", "divisions": [TOWNSHIP], "password": "long enough"},
    {"name": "ok-name", "role": "analyst", "divisions": ["6101' OR 1=1"],
     "password": "long enough pw"},
    {"name": "ok-name", "role": "analyst", "divisions": ["610199009000"],
     "password": "long enough pw"},
    {"name": "ok-name", "role": "analyst", "divisions": [], "password": "long enough pw"},
    {"name": "ok-name", "role": "analyst", "divisions": [TOWNSHIP], "password": "short"},
    {"name": "ok-name", "role": "analyst", "divisions": [TOWNSHIP],
     "password": "has a \x00 nul in it"},
    {"name": "matrix-admin", "role": "analyst", "divisions": [TOWNSHIP],
     "password": "long enough pw"},
])
def test_bad_accounts_are_422_and_write_nothing(client: TestClient,
                                                headers: dict[str, dict[str, str]],
                                                body: dict[str, Any]) -> None:
    before = client.get("/api/users", headers=headers["admin"]).json()
    res = client.post("/api/users", json=body, headers=headers["admin"])
    taken = body["name"] == "matrix-admin"  # a name in use: a conflict, not a bad field
    assert res.status_code == (409 if taken else 422), res.text
    assert res.json()["detail"]
    assert client.get("/api/users", headers=headers["admin"]).json() == before


@pytest.mark.parametrize(("username", "password"), [
    ("nul\x00user", "whatever pw"), ("matrix-admin", "nul\x00pw"),
    ("' OR '1'='1", "' OR '1'='1"), ("x" * 199, "y" * 255)])
def test_hostile_sign_ins_are_401(client: TestClient, username: str, password: str) -> None:
    res = client.post("/auth/token", data={"username": username, "password": password})
    assert res.status_code == 401 and "wrong account name or password" in res.text


@pytest.mark.parametrize(("method", "path", "params"), [
    ("PATCH", "/api/users/nul%00name", None), ("PATCH", "/api/users/x'--", None),
    ("GET", "/api/audit", {"user": "nul\x00"}), ("GET", "/api/audit", {"since": "yesterday"}),
    ("GET", "/api/audit", {"limit": "99999999999999999999"})])
def test_hostile_admin_requests_are_4xx(client: TestClient, headers: dict[str, dict[str, str]],
                                        method: str, path: str, params: Any) -> None:
    res = client.request(method, path, params=params, headers=headers["admin"],
                         json={"disabled": True} if method == "PATCH" else None)
    assert res.status_code in (404, 422), res.text


def test_the_audit_log_refuses_updates_and_deletes(demo_db: str) -> None:
    import psycopg

    with psycopg.connect(demo_db.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("INSERT INTO audit_log (action, target) VALUES ('write', 'test')")
        for sql in ("UPDATE audit_log SET detail = 'x'", "DELETE FROM audit_log",
                    "TRUNCATE audit_log"):
            with pytest.raises(psycopg.Error, match=r"append-only|permission denied"):
                conn.execute(sql)
