"""Photos of incidents: sent with a report (form or Open311 ``media``) and with a step, their
type judged by their content and their size limited; a refused photo stores nothing — no
case, no step, no row, no file; served back only to those who may see the case and its
description, as the type they were checked to be."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from gridmap.api.app import create_app
from gridmap.settings import Settings
from tests.helpers import bearer, inside_grid, token_for

TOWNSHIP, GRID, OTHER_GRID = "610199001000", "610199001001001", "610199001001002"
GARBAGE = "事件/市容环境/暴露垃圾"
LIMIT = 60_000  # bytes: small, so that a too-large photo is quick to make


def image(fmt: str, size: tuple[int, int] = (64, 48), *, noise: bool = False) -> bytes:
    """An image of *fmt*; with *noise*, one that does not compress (large)."""
    if noise:
        import numpy as np

        pixels = np.random.default_rng(1).integers(0, 255, (*size[::-1], 3), dtype="uint8")
        img = Image.fromarray(pixels, "RGB")
    else:
        img = Image.new("RGB", size, (200, 80, 40))
    out = io.BytesIO()
    img.save(out, fmt)
    return out.getvalue()


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("photos")


@pytest.fixture(scope="module")
def client(grids_db: str, photo_dir: Path) -> Iterator[TestClient]:
    settings = Settings(database_url=grids_db, photo_dir=photo_dir, photo_max_bytes=LIMIT)
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture(scope="module")
def who(grids_db: str) -> dict[str, dict[str, str]]:
    return {
        "dispatcher": bearer(token_for(grids_db, "ph-dispatcher", "dispatcher", (TOWNSHIP,))),
        "worker": bearer(token_for(grids_db, "ph-worker", "grid_worker", (GRID,))),
        "other_worker": bearer(token_for(grids_db, "ph-worker2", "grid_worker",
                                         (OTHER_GRID,))),
        "analyst": bearer(token_for(grids_db, "ph-analyst", "analyst", (TOWNSHIP,))),
    }


@pytest.fixture(scope="module")
def point() -> tuple[float, float]:
    return inside_grid(GRID)


def stored(db: str, photo_dir: Path) -> tuple[int, int, int, int]:
    """Cases, timeline entries, photo rows and photo files."""
    with psycopg.connect(db.replace("+psycopg", "")) as conn:
        counts = conn.execute("SELECT (SELECT count(*) FROM incident), "
                              "(SELECT count(*) FROM incident_event), "
                              "(SELECT count(*) FROM incident_photo)").fetchone()
    assert counts is not None
    return (*counts, sum(1 for p in photo_dir.rglob("*") if p.is_file()))


def form_report(client: TestClient, headers: dict[str, str], point: tuple[float, float],
                files: list[tuple[str, tuple[str, bytes, str]]]) -> httpx.Response:
    return client.post("/api/incidents", headers=headers, data={
        "lon": str(point[0]), "lat": str(point[1]), "category": GARBAGE,
        "description": "路边垃圾，见照片", "reporter": "王先生 13812345678"}, files=files)


def test_a_report_and_a_feed_back_with_photos(client: TestClient, who: dict[str, Any],
                                              point: tuple[float, float], grids_db: str,
                                              photo_dir: Path) -> None:
    jpeg, webp = image("JPEG"), image("WEBP", (30, 20))
    res = form_report(client, who["worker"], point, [
        ("photo", ("scene.jpg", jpeg, "image/jpeg")),
        ("photo", ("also.png", webp, "image/png"))])  # a WebP sent as PNG: its content says
    assert res.status_code == 201, res.text
    case = res.json()
    assert case["grid_code"] == GRID and case["status"] == "collected"
    cid = case["id"]
    read = client.get(f"/api/incidents/{cid}", headers=who["dispatcher"]).json()
    photos = read["photos"]
    assert [(p["media_type"], p["width"], p["height"], p["bytes"]) for p in photos] == [
        ("image/jpeg", 64, 48, len(jpeg)), ("image/webp", 30, 20, len(webp))]
    assert read["timeline"][0]["photos"] == [p["id"] for p in photos]
    got = client.get(photos[0]["url"], headers=who["dispatcher"])
    assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
    assert got.content == jpeg
    assert client.get(photos[1]["url"], headers=who["worker"]).headers[
        "content-type"] == "image/webp"

    # the worker's feed-back with a photo of the work done (a form with the step)
    etag = res.headers["etag"]
    for role, action in (("dispatcher", "register"), ("dispatcher", "dispatch"),
                         ("worker", "accept")):
        step = client.post(f"/api/incidents/{cid}/actions", headers={
            **who[role], "If-Match": etag}, json={"action": action})
        assert step.status_code == 200, step.text
        etag = step.headers["etag"]
    png = image("PNG", (40, 40))
    done = client.post(f"/api/incidents/{cid}/actions", headers={
        **who["worker"], "If-Match": etag}, data={"action": "feed_back", "note": "已清理"},
        files=[("photo", ("after.png", png, "image/png"))])
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "reported"
    read = client.get(f"/api/incidents/{cid}", headers=who["dispatcher"]).json()
    feed_back = read["timeline"][-1]
    assert feed_back["action"] == "feed_back" and feed_back["note"] == "已清理"
    assert len(feed_back["photos"]) == 1
    after = next(p for p in read["photos"] if p["id"] == feed_back["photos"][0])
    assert after["taken_by"] == "ph-worker" and after["media_type"] == "image/png"
    assert client.get(after["url"], headers=who["dispatcher"]).content == png
    with psycopg.connect(grids_db.replace("+psycopg", "")) as conn:
        digests = dict(conn.execute("SELECT id, sha256 FROM incident_photo WHERE "
                                    "incident_id = %s", (cid,)).fetchall())
    assert digests[after["id"]] == hashlib.sha256(png).hexdigest()
    on_disk = {p.stem: p.read_bytes() for p in photo_dir.rglob("*.*") if p.is_file()}
    assert on_disk[after["id"]] == png and on_disk[photos[0]["id"]] == jpeg

    # who may see them: not the analyst (no descriptions), not another grid's worker
    assert "photos" not in client.get(f"/api/incidents/{cid}", headers=who["analyst"]).json()
    assert client.get(after["url"], headers=who["analyst"]).status_code == 403
    assert client.get(after["url"], headers=who["other_worker"]).status_code == 404
    assert client.get(after["url"]).status_code == 401
    assert client.get(f"/api/incidents/{cid}/photos/{'0' * 32}",
                      headers=who["dispatcher"]).status_code == 404
    # a photo of one case is not found under another
    other = form_report(client, who["dispatcher"], point, []).json()["id"]
    assert client.get(f"/api/incidents/{other}/photos/{after['id']}",
                      headers=who["dispatcher"]).status_code == 404


@pytest.mark.parametrize(("files", "status", "phrase"), [
    ([("photo", ("note.jpg", "这不是照片".encode(), "image/jpeg"))], 415,
     "not a JPEG, PNG or WebP"),
    ([("photo", ("anim.gif", image("GIF"), "image/gif"))], 415, "not a JPEG, PNG or WebP"),
    ([("photo", ("cut.jpg", image("JPEG", (400, 300), noise=True)[:5000], "image/jpeg"))],
     415, "damaged"),
    ([("photo", ("empty.jpg", b"", "image/jpeg"))], 415, "empty"),
    ([("photo", ("big.png", image("PNG", (200, 200), noise=True), "image/png"))], 413,
     f"more than the {LIMIT} bytes"),
    ([("photo", ("ok.jpg", image("JPEG"), "image/jpeg")),
      ("photo", ("bad.txt", b"hello", "text/plain"))], 415, "photo 2"),
    ([("photo", (f"p{k}.jpg", image("JPEG"), "image/jpeg")) for k in range(7)], 400, ""),
])
def test_a_bad_photo_refuses_the_report_and_stores_nothing(
        client: TestClient, who: dict[str, Any], point: tuple[float, float], grids_db: str,
        photo_dir: Path, files: list[Any], status: int, phrase: str) -> None:
    before = stored(grids_db, photo_dir)
    res = form_report(client, who["dispatcher"], point, files)
    assert res.status_code == status, res.text
    assert phrase in res.json()["detail"]
    assert stored(grids_db, photo_dir) == before


def test_a_refused_step_keeps_its_photos_out(client: TestClient, who: dict[str, Any],
                                             point: tuple[float, float], grids_db: str,
                                             photo_dir: Path) -> None:
    case = form_report(client, who["dispatcher"], point, [])
    cid, etag = case.json()["id"], case.headers["etag"]
    assert client.post(f"/api/incidents/{cid}/actions", headers={
        **who["dispatcher"], "If-Match": etag}, json={"action": "register"}).status_code == 200
    before = stored(grids_db, photo_dir)
    png = ("photo", ("p.png", image("PNG"), "image/png"))
    stale = client.post(f"/api/incidents/{cid}/actions", headers={
        **who["dispatcher"], "If-Match": etag}, data={"action": "dispatch"}, files=[png])
    assert stale.status_code == 412
    illegal = client.post(f"/api/incidents/{cid}/actions", headers={
        **who["dispatcher"], "If-Match": '"v2"'}, data={"action": "close"}, files=[png])
    assert illegal.status_code == 409
    forbidden = client.post(f"/api/incidents/{cid}/actions", headers={
        **who["worker"], "If-Match": '"v2"'}, data={"action": "dispatch"}, files=[png])
    assert forbidden.status_code == 403
    bad_field = client.post(f"/api/incidents/{cid}/actions", headers={
        **who["dispatcher"], "If-Match": '"v2"'}, data={"action": "fly"}, files=[png])
    assert bad_field.status_code == 422
    nul = client.post(f"/api/incidents/{cid}/actions", headers={
        **who["dispatcher"], "If-Match": '"v2"'}, data={"action": "dispatch",
                                                        "note": "a\x00b"}, files=[png])
    assert nul.status_code == 422 and "NUL" in nul.json()["detail"]
    outside = client.post("/api/incidents", headers=who["other_worker"], data={
        "lon": str(point[0]), "lat": str(point[1]), "category": GARBAGE}, files=[png])
    assert outside.status_code == 404  # not the worker's grid: the photo is not kept either
    assert stored(grids_db, photo_dir) == before


def test_a_body_that_is_not_utf8_is_refused(client: TestClient, who: dict[str, Any],
                                             point: tuple[float, float], grids_db: str,
                                             photo_dir: Path) -> None:
    """A JSON body with bytes that are not UTF-8 (schemathesis sent one) is a 422 quoting it
    with those bytes replaced; it was a UnicodeDecodeError escaping the error handler."""
    case = form_report(client, who["dispatcher"], point, [])
    before = stored(grids_db, photo_dir)
    for raw in (b"\xff\xfe", b'{"action": "register", "note": "\xff"}'):
        for path in ("/api/incidents", f"/api/incidents/{case.json()['id']}/actions"):
            res = client.post(path, content=raw, headers={
                **who["dispatcher"], "If-Match": case.headers["etag"],
                "Content-Type": "application/json"})
            assert res.status_code == 422, res.text
            error = res.json()
            assert error["code"] == "invalid_request"
            assert error["detail"][0]["type"] == "json_invalid"
            assert "\ufffd" in error["detail"][0]["input"]
    assert stored(grids_db, photo_dir) == before


def test_open311_media(client: TestClient, grids_db: str, point: tuple[float, float]
                       ) -> None:
    """A third-party app sends its photo as ``media`` and finds it as ``media_url``."""
    from sqlalchemy import create_engine

    from gridmap import access

    token_for(grids_db, "ph-app", "dispatcher", (TOWNSHIP,))
    engine = create_engine(grids_db)
    with engine.begin() as conn:
        key = access.add_api_key(conn, "ph-app", "photo app", actor=access.CLI).key
    engine.dispose()
    jpeg = image("JPEG", (80, 60))
    fields = {"api_key": key, "service_code": GARBAGE, "lat": str(point[1]),
              "long": str(point[0]), "description": "garbage"}
    res = client.post("/open311/v2/requests.json", data=fields,
                      files={"media": ("scene.jpg", jpeg, "image/jpeg")})
    assert res.status_code == 201, res.text
    rid = res.json()[0]["service_request_id"]
    got = client.get(f"/open311/v2/requests/{rid}.json", params={"api_key": key}).json()[0]
    assert got["media_url"].endswith(f"/open311/v2/requests/{rid}/media/"
                                     + got["media_url"].rsplit("/", 1)[1])
    media = client.get(got["media_url"], params={"api_key": key})
    assert media.status_code == 200 and media.content == jpeg
    assert media.headers["content-type"] == "image/jpeg"
    listed = client.get("/open311/v2/requests.json", params={"api_key": key}).json()
    assert next(r for r in listed if r["service_request_id"] == rid)["media_url"] == \
        got["media_url"]
    assert client.get(got["media_url"]).status_code == 401
    bad = client.post("/open311/v2/requests.json", data=fields,
                      files={"media": ("x.jpg", b"<html>", "image/jpeg")})
    assert bad.status_code == 415 and bad.json()[0]["code"] == 415


FAIL_AT_COMMIT = "the commit of this case fails"


@pytest.fixture
def commit_fails(grids_db: str) -> Iterator[None]:
    """A deferred constraint on incident_photo that fails the commit of a case described
    as FAIL_AT_COMMIT: after its photos were placed, at the very end."""
    dsn = grids_db.replace("+psycopg", "")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"""
            CREATE FUNCTION test_photo_commit_fails() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF EXISTS (SELECT 1 FROM incident WHERE id = NEW.incident_id
                           AND description = '{FAIL_AT_COMMIT}') THEN
                    RAISE EXCEPTION 'commit refused by the test';
                END IF;
                RETURN NULL;
            END $$;
            CREATE CONSTRAINT TRIGGER test_photo_commit_fails AFTER INSERT ON incident_photo
                DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
                EXECUTE FUNCTION test_photo_commit_fails();""")
    try:
        yield
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("DROP TRIGGER test_photo_commit_fails ON incident_photo; "
                         "DROP FUNCTION test_photo_commit_fails()")


def test_a_failed_commit_leaves_no_photo_file(grids_db: str, photo_dir: Path,
                                              point: tuple[float, float],
                                              commit_fails: None) -> None:
    """The files are placed as the transaction's last act; when the commit itself fails,
    they are removed: no file without its row, for a report and for a step."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import DBAPIError

    from gridmap import incidents
    from gridmap.access import CLI_PRINCIPAL
    from gridmap.domain.incidents import Action, load_categories
    from gridmap.domain.photos import check_photo
    from gridmap.store.photos import PhotoFiles

    settings = Settings(database_url=grids_db, photo_dir=photo_dir)
    workflow = incidents.Workflow(load_categories(settings.incident_categories),
                                  settings.work_calendar(), PhotoFiles(photo_dir))
    photo = check_photo(image("JPEG"), max_bytes=LIMIT)
    sent = incidents.Report(lon=point[0], lat=point[1], category=GARBAGE,
                            description=FAIL_AT_COMMIT)
    engine = create_engine(grids_db)
    try:
        before = stored(grids_db, photo_dir)
        with pytest.raises(DBAPIError, match="commit refused by the test"):
            incidents.report(engine, CLI_PRINCIPAL, sent, workflow, client="test",
                             photos=[photo, photo])
        assert stored(grids_db, photo_dir) == before

        case, _ = incidents.report(engine, CLI_PRINCIPAL, sent, workflow, client="test")
        before = stored(grids_db, photo_dir)
        with pytest.raises(DBAPIError, match="commit refused by the test"):
            incidents.act(engine, CLI_PRINCIPAL, case["id"], Action.register, workflow,
                          version=case["version"], client="test", photos=[photo])
        assert stored(grids_db, photo_dir) == before
    finally:
        engine.dispose()


def test_photos_prune_lists_then_removes_only_files_without_a_row(
        client: TestClient, who: dict[str, Any], point: tuple[float, float], grids_db: str,
        tmp_path: Path) -> None:
    """``gridmap photos prune`` lists the files of the photo folder that have no row and
    are older than --older-than; it removes them only with --apply."""
    import os
    import time
    import uuid

    from tests.helpers import run_cli

    folder = tmp_path / "photos"
    settings = Settings(database_url=grids_db, photo_dir=folder, photo_max_bytes=LIMIT)
    with TestClient(create_app(settings)) as own:
        kept = form_report(own, who["dispatcher"], point,
                           [("photo", ("scene.jpg", image("JPEG"), "image/jpeg"))])
    assert kept.status_code == 201, kept.text
    placed = [p for p in folder.rglob("*") if p.is_file()]
    assert len(placed) == 1
    old = time.time() - 2 * 3600

    def planted(name: str, *, age: float = old) -> Path:
        photo_id = uuid.uuid4().hex
        path = folder / photo_id[:2] / name.format(photo_id)
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(image("PNG"))
        os.utime(path, (age, age))
        return path

    orphan = planted("{}.png")  # placed, its step never committed
    part = planted(".{}.jpg.part")  # staged by a process that died
    young = planted("{}.jpg", age=time.time())  # a step still being saved
    os.utime(placed[0], (old, old))  # old, but it has its row
    env = {"GRIDMAP_PHOTO_DIR": str(folder)}

    listed = run_cli(grids_db, "photos", "prune", env=env)
    assert listed.exit_code == 0, listed.output
    assert sorted(line for line in listed.output.splitlines() if line.startswith("/")) == \
        sorted([str(orphan), str(part)])
    assert "--apply" in listed.output
    assert orphan.exists() and part.exists()  # a dry run by default

    removed = run_cli(grids_db, "photos", "prune", "--apply", env=env)
    assert removed.exit_code == 0, removed.output
    assert not orphan.exists() and not part.exists()
    assert young.exists() and placed[0].exists()
    again = run_cli(grids_db, "photos", "prune", "--older-than", "1", env=env)
    assert again.exit_code == 0 and str(young) not in again.output
    os.utime(young, (old, old))
    assert str(young) in run_cli(grids_db, "photos", "prune", env=env).output


def test_refusals_speak_the_callers_language(client: TestClient, who: dict[str, Any],
                                             point: tuple[float, float]) -> None:
    """A photo refused and a step refused say why in Chinese to a Chinese client (the
    catalogue), in English to an English one."""
    chinese = {**who["dispatcher"], "Accept-Language": "zh-CN"}
    refused = form_report(client, chinese, point,
                          [("photo", ("note.jpg", b"hello", "image/jpeg"))])
    assert refused.status_code == 415
    assert refused.json()["detail"] == "photo 1 (note.jpg) 不是 JPEG、PNG 或 WebP 图片"
    assert refused.headers["content-language"] == "zh-CN"
    case = form_report(client, who["dispatcher"], point, [])
    cid = case.json()["id"]
    for language, says in (("zh-CN", f"案件 {cid} 在您读取后已被修改"),
                           ("en", f"case {cid} changed since you read it")):
        stale = client.post(f"/api/incidents/{cid}/actions", json={"action": "register"},
                            headers={**who["dispatcher"], "If-Match": '"v9"',
                                     "Accept-Language": language})
        assert stale.status_code == 412 and stale.json()["detail"].startswith(says), stale.text
    no_reason = client.post(f"/api/incidents/{cid}/actions", json={"action": "cancel"},
                            headers={**chinese, "If-Match": case.headers["etag"]})
    assert no_reason.status_code == 422
    assert no_reason.json()["detail"] == "请在说明中写明原因：“取消”需要理由"
