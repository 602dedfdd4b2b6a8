"""Languages: the catalogues, the language a request gets, error bodies with a stable code."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from gridmap import i18n
from gridmap.api.app import create_app
from gridmap.settings import Settings
from tests.helpers import bearer, token_for


def test_every_label_has_a_chinese_and_an_english_name() -> None:
    for language in i18n.LANGUAGES:
        for kind, names in i18n.labels(language).items():
            missing = [value for value, name in names.items() if name == value]
            # an English label may equal its value only where the value is a plain word
            if language == "zh-CN":
                assert not missing, (kind, missing)
            else:
                assert all(v in ("boundaries", "counts", "facilities", "households",
                                 "incidents") or kind in ("change", "draft_status")
                           for v in missing), (kind, missing)
    zh = i18n.labels("zh-CN")
    assert zh["role"]["grid_worker"] == "网格员" and zh["worker_role"]["full_time"] == "专职网格员"
    assert zh["facility_type"]["elderly_daycare"] == "老年人日间照料中心"
    assert zh["stage"]["dispatched"] == "任务派遣" and zh["band"]["above"] == "超出标准"


def test_each_catalogue_holds_the_same_messages() -> None:
    zh, en = i18n._messages("zh-CN"), i18n._messages("en")
    assert {k for k in zh if k[0] is not None} == {k for k in en if k[0] is not None}
    assert all(key in i18n._messages("zh-CN") or key[0] is None for key in en)
    # the Chinese catalogue names the same values as the English text it translates
    for (context, msgid), text in zh.items():
        if context is None:
            assert sorted(i18n.re.findall(r"\{(\w+)\}", msgid)) == sorted(
                i18n.re.findall(r"\{(\w+)\}", text)), msgid


@pytest.mark.parametrize(("cookie", "header", "default", "chosen"), [
    (None, None, "zh-CN", "zh-CN"),
    (None, None, "en", "en"),
    (None, "en-US,en;q=0.9", "zh-CN", "en"),
    (None, "fr, zh-Hans;q=0.5", "en", "zh-CN"),
    (None, "zh-TW, de", "en", "en"),          # traditional script is not offered
    ("zh-CN", "en-US", "en", "zh-CN"),        # the page's switch wins
    ("klingon", "en", "zh-CN", "en"),
    (None, "en;q=0, zh;q=0.1", "en", "zh-CN"),
])
def test_the_language_of_a_request(cookie: str | None, header: str | None, default: str,
                                   chosen: str) -> None:
    assert i18n.choose(cookie=cookie, accept_language=header,
                       default=default) == chosen  # type: ignore[arg-type]


def test_a_formatted_message_is_found_again_and_translated() -> None:
    assert i18n.translate("no division or grid 610199001 among yours", "zh-CN") == \
        "您的辖区中没有区划或网格 610199001"
    assert i18n.translate("a message nobody translated", "zh-CN") == \
        "a message nobody translated"  # no entry matches: said as it was
    assert i18n.translate("the grid_worker role may not read users", "zh-CN") == \
        "网格员角色无权查看账号"
    assert i18n.translate("wrong account name or password", "en") == \
        "wrong account name or password"


@pytest.fixture(scope="module")
def client(grids_db: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=grids_db, language="zh-CN"))) as c:
        yield c


def test_errors_carry_a_code_and_a_detail_in_the_callers_language(
        client: TestClient, grids_db: str) -> None:
    worker = bearer(token_for(grids_db, "i18n-worker", "grid_worker", ("610199001001001",)))
    chinese = client.get("/api/grids.geojson?community=610199002021", headers=worker)
    english = client.get("/api/grids.geojson?community=610199002021",
                         headers={**worker, "Accept-Language": "en-GB,en;q=0.8"})
    switched = client.get("/api/grids.geojson?community=610199002021", headers=worker,
                          cookies={"gridmap_lang": "en"})
    assert chinese.status_code == english.status_code == 404
    assert chinese.json() == {"code": "not_visible",
                              "detail": "您的辖区中没有区划或网格 610199002021"}
    assert chinese.headers["content-language"] == "zh-CN"
    assert english.json() == {"code": "not_visible",
                              "detail": "no division or grid 610199002021 among yours"}
    assert switched.json() == english.json() and english.headers["content-language"] == "en"
    client.cookies.clear()


def test_refusals_of_each_kind_have_their_code(client: TestClient) -> None:
    unsigned = client.get("/api/search", params={"q": "翠华路"})
    assert unsigned.status_code == 401 and unsigned.json()["code"] == "not_signed_in"
    assert unsigned.json()["detail"].startswith("请先登录后再查看住户")
    missing = client.get("/api/nothing-here")
    assert missing.status_code == 404 and missing.json() == {"code": "not_found",
                                                             "detail": "未找到"}
    wrong = client.post("/auth/session", data={"username": "nobody", "password": "x" * 9})
    assert wrong.status_code == 401
    assert wrong.json() == {"code": "not_signed_in", "detail": "账号或密码错误"}
    invalid = client.get("/api/locate", params={"lon": 500, "lat": 34})
    assert invalid.status_code == 422 and invalid.json()["code"] == "invalid_request"
    assert invalid.json()["detail"][0]["loc"] == ["query", "lon"]
    assert invalid.json()["detail"][0]["msg"] == "须小于或等于 180"  # pydantic's, translated


@pytest.mark.parametrize(("path", "status", "chinese", "english"), [
    ("/tiles/parcels/1/0/0.mvt", 404, "未知图层 'parcels'，可选：", "unknown layer 'parcels'"),
    ("/tiles/grids/2/4/0.mvt", 404, "瓦片 2/4/0 不存在：x 和 y 须在 0..3 之间",
     "tile 2/4/0 does not exist"),
    ("/ogc/collections/parcels/items", 404, "未知要素集 'parcels'，可选：",
     "unknown collection 'parcels'"),
    ("/ogc/collections/grids/items?bbox=1,2,3", 400,
     "bbox 须为四个数（minx,miny,maxx,maxy），收到 3 个", "bbox takes four numbers"),
    ("/ogc/collections/grids/items?bbox=10,10,5,5", 400, "bbox 顺序颠倒",
     "bbox is inverted"),
    ("/ogc/collections/grids/items?filter=nonsense%20%3D%201", 400,
     "filter 使用了未知属性 nonsense", "filter uses unknown properties nonsense"),
    ("/ogc/collections/grids/items?filter-lang=cql2-json", 400, "filter-lang：仅支持 cql2-text",
     "filter-lang: only cql2-text is supported"),
    ("/ogc/collections/grids/items/nothing-here", 404, "grids 中没有要素 'nothing-here'",
     "no feature 'nothing-here' in grids"),
    ("/ogc/collections/grids/items?filter=version%20%3D%20'one'", 400,
     "filter：version 是整数：请与数字（如 1）比较，而不是与 'one'（文本）比较",
     "filter: version is an integer: compare it with a number such as 1, not 'one' (text)"),
    ("/ogc/collections/grids/items?filter=version%20LIKE%20'1%25'", 400,
     "filter：LIKE 只比较文本，而 version 是整数", "filter: LIKE compares text"),
    ("/ogc/collections/grids/items?filter=kind%20%2B%201%20%3E%201", 400,
     "算术运算（+）只接受数值，而 kind 是文本", "arithmetic (+) takes numbers"),
    ("/api/places?q=%00%00", 422, "查询内容不能包含 NUL 字符", "q must not contain a NUL"),
])
def test_tile_ogc_and_search_errors_in_each_language(client: TestClient, path: str,
                                                     status: int, chinese: str,
                                                     english: str) -> None:
    zh = client.get(path)
    en = client.get(path, headers={"Accept-Language": "en"})
    assert zh.status_code == en.status_code == status, zh.text
    assert zh.json()["code"] == en.json()["code"]  # the code stays what it was
    assert zh.json()["detail"].startswith(chinese), zh.json()
    assert en.json()["detail"].startswith(english), en.json()


def test_the_locale_endpoint_gives_the_labels_and_the_time_zone(client: TestClient) -> None:
    zh = client.get("/api/locale").json()
    en = client.get("/api/locale", headers={"Accept-Language": "en"}).json()
    assert zh["language"] == "zh-CN" and en["language"] == "en"
    assert zh["time_zone"] == "Asia/Shanghai"
    assert zh["labels"]["role"]["dispatcher"] == "调度员"
    assert en["labels"]["role"]["dispatcher"] == "Dispatcher"
    assert set(zh["labels"]) == set(en["labels"]) == set(i18n.vocabulary())


def test_the_cli_speaks_the_deployments_language(grids_db: str) -> None:
    from typer.testing import CliRunner

    from gridmap.cli import app

    def run(language: str, *args: str) -> Any:
        return CliRunner().invoke(app, list(args), env={
            "GRIDMAP_DATABASE_URL": grids_db, "GRIDMAP_LANGUAGE": language,
            "GRIDMAP_PASSWORD": "correct horse battery"})

    made = run("zh-CN", "user", "add", "cli-zh", "--role", "dispatcher",
               "--division", "610199001000")
    again = run("zh-CN", "user", "add", "cli-zh", "--role", "dispatcher",
                "--division", "610199001000")
    english = run("en", "user", "disable", "cli-zh")
    listed = run("zh-CN", "user", "list")
    assert made.exit_code == 0, made.output
    assert made.output.strip() == "已在 610199001000 创建调度员账号 'cli-zh'"
    assert again.exit_code == 2 and "名为 'cli-zh' 的账号已存在" in again.output
    assert english.output.strip() == "disabled 'cli-zh'; its sessions are revoked"
    row = next(line for line in listed.output.splitlines() if line.startswith("cli-zh"))
    assert "年" in row and "月" in row and "日" in row  # created, in Chinese date format


def test_the_cli_reports_in_chinese(grids_db: str) -> None:
    """What the CLI reports when all went well (an import's summary and time, the partition
    check's tables, a community's versions) is Chinese too, grid changes and statuses by
    their labels."""
    from gridmap.demodata import DEMO_DIR, DEMO_FILES
    from tests.helpers import run_cli

    zh = {"GRIDMAP_LANGUAGE": "zh-CN"}
    imported = run_cli(grids_db, "import", "households", str(DEMO_DIR / DEMO_FILES["households"]),
                       "--dry-run", env=zh)
    checked = run_cli(grids_db, "check", env=zh)
    assigned = run_cli(grids_db, "assign", "facilities", env=zh)
    with psycopg.connect(grids_db.replace("+psycopg", "")) as conn:
        row = conn.execute("SELECT min(community_code) FROM grid").fetchone()
    assert row is not None
    history = run_cli(grids_db, "grids", "history", str(row[0]), env=zh)
    assert imported.exit_code == 0, imported.output
    assert "试运行，未写入任何数据——导入将得到：" in imported.output
    assert "住户：读取" in imported.output and "行，新增" in imported.output
    assert assigned.exit_code == 0, assigned.output
    assert "设施：0 行，0 在网格内" in assigned.output and "用时" in assigned.output, \
        assigned.output
    assert "个社区" in checked.output and "个综合网格" in checked.output, checked.output
    assert "均衡：" in checked.output and "不在任何网格内" in checked.output
    assert "户数" in checked.output and "标准下限" in checked.output  # the table's headers
    assert "低于标准" in checked.output and "below" not in checked.output  # the band states
    assert history.exit_code == 0, history.output
    assert "当前" in history.output and "个网格" in history.output, history.output


def raised_messages(module: str) -> list[str]:
    """The messages *module* raises, as catalogue templates (each value a ``{name}``)."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None
    found = []
    from pathlib import Path

    for node in ast.walk(ast.parse(Path(spec.origin).read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)
                and node.exc.args):
            continue
        message = node.exc.args[0]
        if isinstance(message, ast.Constant) and isinstance(message.value, str):
            found.append(message.value)
        elif isinstance(message, ast.JoinedStr):
            used: set[str] = set()
            parts = []
            for value in message.values:
                if isinstance(value, ast.Constant):
                    parts.append(str(value.value))
                    continue
                e = value.value  # type: ignore[attr-defined]
                name = (e.id if isinstance(e, ast.Name) else e.attr
                        if isinstance(e, ast.Attribute) else "value")
                name = name if name not in used else f"{name}2"
                used.add(name)
                parts.append(f"{{{name}}}")
            found.append("".join(parts))
    return found


@pytest.mark.parametrize("module", ["gridmap.drafts", "gridmap.incidents",
                                    "gridmap.domain.photos", "gridmap.api.uploads"])
def test_the_refusals_of_drafts_reports_and_photos_have_chinese(module: str) -> None:
    """Each message these modules raise, formatted with sample values, comes back in
    Chinese (whole, or by its catalogue pattern)."""
    import re

    untranslated = []
    for template in raised_messages(module):
        sample = re.sub(r"\{(\w+)\}", "7", template)
        if i18n.translate(sample, "zh-CN") == sample:
            untranslated.append(template)
    assert not untranslated, untranslated


@pytest.mark.parametrize(("args", "chinese"), [
    (["coverage", "--metric", "crow"], "--metric 可选 straight（直线）或 network（沿街道）"),
    (["assign", "parcels"], "无法分配 'parcels'：可选 households, facilities, incidents"),
    (["import", "osm", "/nonexistent/extract.osm.pbf"],
     "/nonexistent/extract.osm.pbf：文件不存在"),
    (["import", "grids", "x.geojson", "--map", "nonsense"],
     "--map 的格式为 文件列=列（FILECOLUMN=COLUMN），而不是 'nonsense'"),
])
def test_cli_refusals_in_chinese(grids_db: str, args: list[str], chinese: str) -> None:
    from typer.testing import CliRunner

    from gridmap.cli import app

    result = CliRunner().invoke(app, args, env={"GRIDMAP_DATABASE_URL": grids_db,
                                                "GRIDMAP_LANGUAGE": "zh-CN"})
    assert result.exit_code != 0
    assert chinese in result.output, result.output


def test_refused_steps_read_wholly_chinese() -> None:
    """The phrases a refusal names (stages, actions, draft statuses, what a role may not do)
    come from the label catalogue: no English is left in the Chinese message."""
    from gridmap.domain.incidents import Action, IllegalTransition, Stage, next_stage

    with pytest.raises(IllegalTransition) as caught:
        next_stage(Stage.dispatched, Action.close)
    assert i18n.translate(str(caught.value), "zh-CN") == \
        "处于“任务派遣”阶段的案件不能“结案”：下一步可以接单、退回"
    assert i18n.translate("draft 5 is published: it cannot be abandoned (only when open or "
                          "submitted or approved)", "zh-CN") == \
        "草案 5 现为已发布：不能放弃（仅限编辑中或已提交或已批准时）"
    assert i18n.translate("the analyst role may not draw grids", "zh-CN") == \
        "分析员角色无权绘制网格"


def test_every_note_gridmap_writes_reads_wholly_chinese() -> None:
    """Each note of :mod:`gridmap.domain.notes` has its Chinese, naming the same values; said
    with sample values (labels where the value names a kind of label) no English is left;
    in English it is the text the record keeps."""
    import re

    from gridmap.domain.notes import NOTES, note

    samples = {"stage": "collected", "stage2": "registered", "deadline": "verification",
               "role": "dispatcher", "edit_op": "move_vertex", "grids": ["610199001001002"],
               "facility_type": "kindergarten"}
    zh = i18n._messages("zh-CN")
    for key, template in NOTES.items():
        assert (None, template) in zh, key
        values = {name: samples.get(name, "7")
                  for name in re.findall(r"\{(\w+)\}", template)}
        said = i18n.render_notes([note(key, **values).stored()], "x", "zh-CN")
        assert said and not re.search("[A-Za-z]", said), (key, said)
        assert i18n.render_notes([note(key, **values).stored()], "x", "en") == \
            note(key, **values).english()
    assert i18n.render_notes([note("step", stage="collected", stage2="registered").stored(),
                              note("photos", count=2).stored()], None, "zh-CN") == \
        "信息收集 → 案件建立；2 张照片"


def test_the_siting_solvers_words_are_chinese() -> None:
    """What HiGHS reports (every model status) and what a siting run proved are catalogue
    texts: in Chinese no English is left."""
    import re

    import geopandas as gpd

    from gridmap.analysis.siting import SOLVER_STATUS, SitingResult

    for status in set(SOLVER_STATUS.values()):
        said = i18n.translate(f"the solver stopped without a solution ({status})", "zh-CN")
        assert not re.search("[A-Za-z]", said), said
    sources = [("centres of the H3 resolution-9 cells where people live",
                "H3 resolution-10 cells"), ("sites given by the caller",
                                            "distinct household locations")]
    for (candidates, demand), optimal, bound, model in zip(
            sources * 3, (True, False, False, False, False, False),
            (None, None, 1234.0, 5.0, None, 7.0), ("mclp", "mclp", "mclp", "lscp", "lscp",
                                                    "lscp"), strict=True):
        result = SitingResult(gpd.GeoDataFrame(), 1, 2, model, optimal,  # type: ignore[arg-type]
                              gap=None if optimal else 0.0123, bound=bound, candidates=400,
                              candidate_source=candidates, demand_points=120,
                              demand_source=demand)
        template, values = result.status_message()
        assert template.format(**values) == result.status
        said = i18n.gettext(template, "zh-CN", **{
            name: i18n.translate(value, "zh-CN") for name, value in values.items()})
        assert not re.search("[A-Za-z]", said.replace("H3", "")), said  # H3: a name
