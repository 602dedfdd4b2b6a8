"""The command line in Chinese (the default) and English: help texts and Typer's words, its
refusals of a command line, progress labels, import problems, report tables, start-up
errors."""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import pytest
import typer
from typer.testing import CliRunner, Result

from gridmap import i18n
from gridmap.cli import app
from gridmap.cli_language import CONTEXT, RICH_TEXTS, help_texts
from gridmap.demodata import DEMO_DIR, DEMO_FILES
from tests.helpers import run_cli

ZH = {"GRIDMAP_LANGUAGE": "zh-CN"}


def invoke(language: str, *args: str, **env: str) -> Result:
    """The command line without a database (help and refusals of the command line)."""
    return CliRunner().invoke(app, list(args), env={"GRIDMAP_LANGUAGE": language, **env})


def test_every_help_text_and_typer_word_has_chinese() -> None:
    texts = list(help_texts(typer.main.get_command(app)))
    assert len(texts) > 100  # every command's, option's and argument's
    missing = [t for t in texts if i18n.gettext(t, "zh-CN") == t]
    assert not missing, missing
    zh = i18n._messages("zh-CN")
    typer_words = {msgid: text for (context, msgid), text in zh.items() if context == CONTEXT}
    assert {"Usage: ", "Options", "Arguments", "Commands", "Error"} <= set(typer_words)
    for msgid, text in typer_words.items():  # Typer formats these with {} and {name}
        assert re.findall(r"\{\w*\}", msgid) == re.findall(r"\{\w*\}", text), msgid
    from typer import rich_utils

    from gridmap import cli_language

    english = cli_language._RICH_ENGLISH or {n: getattr(rich_utils, n) for n in RICH_TEXTS}
    assert set(english) == set(RICH_TEXTS)
    assert set(english.values()) <= set(typer_words), set(english.values()) - set(typer_words)


@pytest.mark.parametrize("args", [["--help"], ["import", "--help"], ["user", "add", "--help"]])
def test_help_in_chinese_by_default_and_in_english(args: list[str]) -> None:
    zh = CliRunner().invoke(app, args, env={"GRIDMAP_LANGUAGE": None})  # the default
    en = invoke("en", *args)
    assert zh.exit_code == en.exit_code == 0, zh.output
    assert "用法：" in zh.output and "选项" in zh.output and "显示本帮助并退出。" in zh.output
    assert "Usage:" not in zh.output and "Options" not in zh.output
    assert "Show this message and exit." not in zh.output
    assert not re.search(r"…\s*│", zh.output)  # Chinese folds in its column, none cut short
    assert "Usage:" in en.output and "Options" in en.output
    assert "Show this message and exit." in en.output and "用法" not in en.output
    if args == ["import", "--help"]:
        assert "导入一个图层文件" in zh.output and "参数" in zh.output and "[必填]" in zh.output
        assert "Import one layer file" in en.output and "Arguments" in en.output
    if args == ["--help"]:
        assert "命令" in zh.output and "为某一类型的新设施推荐选址" in zh.output
        assert "Commands" in en.output and "Suggest sites for new facilities" in en.output


@pytest.mark.parametrize(("args", "chinese", "english"), [
    (["imprt"], "没有命令 'imprt'。您要找的是不是 'import'？",
     "No such command 'imprt'. Did you mean 'import'?"),
    (["import"], "缺少参数 'layer'。", "Missing argument 'layer'."),
    (["import", "--nonsense"], "没有选项 --nonsense", "No such option: --nonsense"),
    (["audit", "--limit", "many"], "'--limit' 的值无效：须为整数",
     "Invalid value for '--limit'"),
    (["user", "add", "li", "--role", "boss"], "'--role' 的值无效：'boss' 不是 'admin'",
     "Invalid value for '--role'"),
    (["db", "status", "extra"], "多出了参数（extra）", "Got unexpected extra argument"),
])
def test_refusals_of_the_command_line(args: list[str], chinese: str, english: str) -> None:
    zh, en = invoke("zh-CN", *args), invoke("en", *args)
    assert zh.exit_code == en.exit_code == 2
    assert chinese in zh.output and "错误" in zh.output and "查看帮助" in zh.output, zh.output
    assert english in " ".join(en.output.split()), en.output


def test_settings_errors_say_which_variable() -> None:
    zh = invoke("zh-CN", "db", "status", GRIDMAP_PORT="eighty")
    en = invoke("en", "db", "status", GRIDMAP_PORT="eighty")
    assert zh.exit_code == en.exit_code == 2
    assert "设置无效：环境变量 GRIDMAP_PORT：须为整数" in zh.output, zh.output
    assert "the settings are not valid: environment variable GRIDMAP_PORT: Input should be " \
        "a valid integer" in en.output, en.output
    unknown = invoke("klingon", "db", "status")  # said in the default language
    assert unknown.exit_code == 2 and "设置无效：环境变量 GRIDMAP_LANGUAGE：" in unknown.output


def test_a_bad_row_is_reported_by_kind_and_row_in_chinese(db_url: str, tmp_path: Path) -> None:
    households = gpd.read_parquet(DEMO_DIR / DEMO_FILES["households"]).head(3)
    households["residents"] = [3, 2.5, -1]
    path = tmp_path / "households.geojson"
    households.to_file(path)
    zh = run_cli(db_url, "import", "households", str(path), env=ZH)
    en = run_cli(db_url, "import", "households", str(path))
    assert zh.exit_code == en.exit_code == 2
    assert "2 个要素中有 2 个问题；未导入任何数据" in zh.output, zh.output
    assert f"第 1 个要素 ({households['id'].iat[1]}): residents 2.5 不是 ≥ 0 的整数" \
        in zh.output, zh.output
    assert "第 2 个要素" in zh.output and "feature" not in zh.output
    assert "2 problem(s) in 2 feature(s); nothing was imported" in en.output
    assert f"feature 1 ({households['id'].iat[1]}): residents 2.5 is not a whole number ≥ 0" \
        in en.output


def test_progress_labels_in_chinese(grids_db: str) -> None:
    counties = str(DEMO_DIR / DEMO_FILES["counties"])
    zh = run_cli(grids_db, "import", "counties", counties, "--dry-run", env=ZH)
    en = run_cli(grids_db, "import", "counties", counties, "--dry-run")
    assert zh.exit_code == en.exit_code == 0, zh.output
    assert "导入区县" in zh.stderr and "读取并检查 counties.geojson" in zh.stderr, zh.stderr
    assert "import" not in zh.stderr and "2/2" in zh.stderr
    assert "import counties" in en.stderr and "read and check counties.geojson" in en.stderr


def test_check_table_names_urban_and_rural(grids_db: str) -> None:
    zh = run_cli(grids_db, "check", env=ZH)
    assert "城市" in zh.output and "农村" in zh.output, zh.output
    assert not re.search(r"\b(urban|rural)\b", zh.output), zh.output
    en = run_cli(grids_db, "check")
    assert re.search(r"\burban\b", en.output) and re.search(r"\brural\b", en.output)


def test_coverage_table_names_facility_types_and_units(demo_db: str) -> None:
    args = ["coverage", "--type", "elderly_daycare", "--type", "kindergarten"]
    zh = run_cli(demo_db, *args, env=ZH)
    en = run_cli(demo_db, *args)
    assert zh.exit_code == en.exit_code == 0, zh.output
    assert "老年人日间照料中心" in zh.output and "幼儿园" in zh.output, zh.output
    assert "全部" in zh.output and "距离按 直线 计算" in zh.output
    assert "elderly_daycare" not in zh.output and "straight" not in zh.output
    assert "elderly_daycare" in en.output and re.search(r"^\s*all\b", en.output, re.M)
    community = run_cli(demo_db, *args, "--level", "community", "--compliance", env=ZH)
    assert community.exit_code == 0, community.output
    assert "missing" not in community.output and "partial" not in community.output
