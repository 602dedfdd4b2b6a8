"""`gridmap user …`, `gridmap audit` and the demo accounts against a real database."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner, Result

from gridmap import access
from gridmap.cli import DEMO_ACCOUNTS, RoleChoice, _demo_accounts, app
from gridmap.settings import Settings
from gridmap.store import accounts

COUNTY, TOWNSHIP, COMMUNITY, GRID = "610199000000", "610199001000", "610199001001", \
    "610199001001001"
PASSWORD = "correct horse battery"
AUTH_TABLES = ("app_user", "user_division", "auth_session", "audit_log")
SQLISH = "x'; drop table app_user;--"


def cli(url: str, *args: str, password: str | None = PASSWORD,
        input: str | None = None) -> Result:
    """The CLI on *url*; *password* in GRIDMAP_PASSWORD (None: unset, so it prompts)."""
    return CliRunner().invoke(app, list(args), input=input, catch_exceptions=False,
                              env={"GRIDMAP_DATABASE_URL": url, "GRIDMAP_PASSWORD": password})


def auth_fingerprint(url: str) -> dict[str, Any]:
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        out = {table: tuple(conn.execute(text(
            f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"
            f" FROM {table} t")).one()) for table in AUTH_TABLES}
    engine.dispose()
    return out


@pytest.fixture(scope="module")
def url(grids_db: str) -> str:
    return grids_db


@pytest.fixture(scope="module")
def engine(url: str) -> Iterator[Engine]:
    eng = create_engine(url, poolclass=NullPool)
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def settings(url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(database_url=url, data_dir=tmp_path_factory.mktemp("data"))


def sign_in(engine: Engine, settings: Settings, name: str,
            password: str = PASSWORD) -> access.Issued:
    return access.sign_in(engine, name, password, settings=settings, client="test")


def add(url: str, name: str, role: str = "planner", *codes: str) -> None:
    args = [arg for code in (codes or (TOWNSHIP,)) for arg in ("--division", code)]
    result = cli(url, "user", "add", name, "--role", role, *args)
    assert result.exit_code == 0, result.output


def audit_lines(url: str, *args: str) -> list[str]:
    result = cli(url, "audit", *args)
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def test_role_choices_are_the_signed_in_roles() -> None:
    assert [r.value for r in RoleChoice] == [r.value for r in access.SIGNED_IN_ROLES]


def test_add_lists_audits_and_signs_in(url: str, engine: Engine, settings: Settings) -> None:
    result = cli(url, "user", "add", "ana", "--role", "planner", "--division", TOWNSHIP,
                 "--division", COMMUNITY)
    assert result.exit_code == 0, result.output
    assert "created planner account 'ana'" in result.output
    assert PASSWORD not in result.output
    listed = cli(url, "user", "list")
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.stdout.splitlines() if line.startswith("ana "))
    assert row.split()[:3] == ["ana", "planner", f"{TOWNSHIP},{COMMUNITY}"]
    assert row.endswith("active")
    entry = next(line for line in audit_lines(url) if "user add" in line and "ana" in line)
    fields = entry.split("  ")
    assert fields[1:8] == ["-", "-", "write", "user add", f"{TOWNSHIP},{COMMUNITY}", "ana",
                           "cli"]
    assert "role planner" in entry
    assert sign_in(engine, settings, "ana").principal.role == access.Role.planner


def test_add_asks_for_the_password_twice_without_echo(url: str, engine: Engine,
                                                      settings: Settings) -> None:
    secret = "prompted-secret-1"
    result = cli(url, "user", "add", "pia", "--role", "analyst", "--division", COUNTY,
                 password=None, input=f"{secret}\n{secret}\n")
    assert result.exit_code == 0, result.output
    assert "password for pia" in result.output and secret not in result.output
    assert sign_in(engine, settings, "pia", secret).principal.name == "pia"


def test_admin_needs_no_division(url: str) -> None:
    result = cli(url, "user", "add", "root-2", "--role", "admin")
    assert result.exit_code == 0, result.output
    assert "every division" in result.output


def test_disable_enable_passwd(url: str, engine: Engine, settings: Settings) -> None:
    add(url, "bo", "dispatcher", COUNTY)
    before = sign_in(engine, settings, "bo")

    result = cli(url, "user", "disable", "bo")
    assert result.exit_code == 0, result.output
    row = next(line for line in cli(url, "user", "list").stdout.splitlines()
               if line.startswith("bo "))
    assert "disabled" in row
    with pytest.raises(access.NotSignedIn, match="disabled"):
        sign_in(engine, settings, "bo")
    with engine.connect() as conn:
        assert accounts.live_session(conn, before.principal.session) is None  # type: ignore[arg-type]

    result = cli(url, "user", "enable", "bo")
    assert result.exit_code == 0, result.output
    live = sign_in(engine, settings, "bo")

    result = cli(url, "user", "passwd", "bo", password="a brand new one")
    assert result.exit_code == 0, result.output
    assert "revoked" in result.output
    with engine.connect() as conn:
        assert accounts.live_session(conn, live.principal.session) is None  # type: ignore[arg-type]
    with pytest.raises(access.NotSignedIn):
        sign_in(engine, settings, "bo")
    sign_in(engine, settings, "bo", "a brand new one")

    mine = [f for f in (line.split("  ") for line in audit_lines(url)) if f[6] == "bo"]
    assert [f[4] for f in mine if f[4].startswith("user ")] == [
        "user passwd", "user enable", "user disable", "user add"]  # newest first
    assert all(f[1:4] == ["-", "-", "write"] and f[7] == "cli"
               for f in mine if f[4].startswith("user "))


def test_divisions_replaces_the_grants(url: str, engine: Engine) -> None:
    add(url, "cai", "planner", TOWNSHIP)
    result = cli(url, "user", "divisions", "cai", "--division", GRID, "--division", COMMUNITY)
    assert result.exit_code == 0, result.output
    with engine.connect() as conn:
        user = accounts.find_user(conn, "cai")
    assert user is not None and set(user.divisions) == {GRID, COMMUNITY}
    assert any("user divisions" in line and "cai" in line for line in audit_lines(url))


@pytest.fixture(scope="module")
def existing(url: str) -> str:
    add(url, "existing", "planner", TOWNSHIP)
    return "existing"


BAD = [
    pytest.param(["user", "add", "x1", "--role", "superuser", "--division", TOWNSHIP],
                 PASSWORD, "superuser", id="unknown-role"),
    pytest.param(["user", "add", "x1", "--role", "public", "--division", TOWNSHIP],
                 PASSWORD, "public", id="public-role"),
    pytest.param(["user", "add", "x1", "--role", "planner", "--division", "12345"],
                 PASSWORD, "neither a 12-digit", id="malformed-division"),
    pytest.param(["user", "add", "x1", "--role", "planner", "--division", "610199999000"],
                 PASSWORD, "no division or grid with code 610199999000", id="unknown-division"),
    pytest.param(["user", "add", "x1", "--role", "grid_worker", "--division",
                  "610199001001999"], PASSWORD, "610199001001999", id="unknown-grid"),
    pytest.param(["user", "add", "x1", "--role", "planner"], PASSWORD,
                 "needs at least one --division", id="no-division"),
    pytest.param(["user", "add", "x1", "--role", "planner", "--division", TOWNSHIP],
                 "short", "8 characters", id="short-password"),
    pytest.param(["user", "add", "x1", "--role", "planner", "--division", TOWNSHIP],
                 "", "8 characters", id="empty-password"),
    pytest.param(["user", "add", "two words", "--role", "planner", "--division", TOWNSHIP],
                 PASSWORD, "without spaces", id="name-with-space"),
    pytest.param(["user", "add", "ab\x00cd", "--role", "planner", "--division", TOWNSHIP],
                 PASSWORD, "control characters", id="name-with-nul"),
    pytest.param(["user", "add", "x", "--role", "admin"], PASSWORD, "2 to 64",
                 id="name-too-short"),
    pytest.param(["user", "add", SQLISH, "--role", "planner", "--division", TOWNSHIP],
                 PASSWORD, "without spaces", id="sqlish-name"),
    pytest.param(["user", "add", "x1", "--role", "planner", "--division", SQLISH],
                 PASSWORD, "neither a 12-digit", id="sqlish-division"),
    pytest.param(["user", "add", "existing", "--role", "planner", "--division", TOWNSHIP],
                 PASSWORD, "exists already", id="duplicate"),
    pytest.param(["user", "disable", "nobody"], None, "no account named 'nobody'",
                 id="disable-unknown"),
    pytest.param(["user", "enable", "nobody"], None, "no account named 'nobody'",
                 id="enable-unknown"),
    pytest.param(["user", "passwd", "nobody"], PASSWORD, "no account named 'nobody'",
                 id="passwd-unknown"),
    pytest.param(["user", "disable", SQLISH], None, "no account named", id="disable-sqlish"),
    pytest.param(["user", "passwd", "existing"], "1234567", "8 characters",
                 id="passwd-short"),
    pytest.param(["user", "divisions", "nobody", "--division", TOWNSHIP], None,
                 "no account named 'nobody'", id="divisions-unknown"),
    pytest.param(["user", "divisions", "existing", "--division", "610199999000"], None,
                 "no division or grid with code 610199999000", id="divisions-unknown-code"),
    pytest.param(["user", "divisions", "existing"], None, "needs at least one --division",
                 id="divisions-none"),
]


@pytest.mark.parametrize(("args", "password", "message"), BAD)
def test_bad_input_is_refused_and_writes_nothing(url: str, existing: str, args: list[str],
                                                 password: str | None, message: str) -> None:
    before = auth_fingerprint(url)
    result = cli(url, *args, password=password, input="")
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert auth_fingerprint(url) == before


def test_mismatched_prompted_passwords_write_nothing(url: str) -> None:
    before = auth_fingerprint(url)
    result = cli(url, "user", "add", "x2", "--role", "planner", "--division", TOWNSHIP,
                 password=None, input="first-secret\nother-secret\n")
    assert result.exit_code != 0
    assert "do not match" in result.output
    assert auth_fingerprint(url) == before


def test_audit_filters_by_user_and_time(url: str, engine: Engine, settings: Settings) -> None:
    add(url, "dai", "analyst", COUNTY)
    sign_in(engine, settings, "dai")
    lines = audit_lines(url, "--user", "dai", "--since", "2020-01-01")
    assert lines, "dai signed in"
    assert all(line.split("  ")[1] == "dai" for line in lines)
    assert any(line.split("  ")[3] == "sign_in" for line in lines)
    assert lines == audit_lines(url, "--user", "dai", "--since", "2020-01-01T00:00+08:00")
    assert audit_lines(url, "--user", "dai", "--since", "2999-01-01") == []
    assert audit_lines(url, "--user", SQLISH) == []
    assert len(audit_lines(url, "--limit", "1")) == 1
    everyone = audit_lines(url)
    assert any(line.split("  ")[1] == "-" for line in everyone)  # the command line's writes
    assert len(everyone) > len(lines)


@pytest.mark.parametrize("since", ["yesterday", "2024-13-01", "01/02/2024", ""])
def test_audit_refuses_a_bad_since(url: str, since: str) -> None:
    result = cli(url, "audit", "--since", since)
    assert result.exit_code == 2, result.output
    assert "--since takes an ISO date" in result.output


def _demo_names(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {u.name: u.role for u in accounts.list_users(conn)
                if u.name.startswith("demo-")}


def test_demo_accounts_are_made_then_reset(engine: Engine, settings: Settings,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    first = _demo_accounts(engine, settings)
    printed = capsys.readouterr().out
    expected = {name: role.value for name, role, _ in DEMO_ACCOUNTS}
    assert _demo_names(engine) == expected
    assert set(first) == set(expected)
    for name, password in first.items():
        assert name in printed and password in printed
    path = Path(settings.data_dir) / "demo-accounts.txt"
    assert str(path) in printed
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert all(p in path.read_text() for p in first.values())
    with engine.connect() as conn:
        worker = accounts.find_user(conn, "demo-worker")
        admin = accounts.find_user(conn, "demo-admin")
    assert worker is not None and worker.divisions == (GRID,)
    assert admin is not None and admin.divisions == ()
    assert sign_in(engine, settings, "demo-planner", first["demo-planner"]).principal.role \
        == access.Role.planner

    # a second load: new passwords, the same five accounts, re-enabled and re-granted
    with engine.begin() as conn:
        access.set_disabled(conn, "demo-analyst", True, actor=access.CLI)
        access.set_divisions(conn, "demo-dispatcher", [GRID], actor=access.CLI)
    path.chmod(0o644)
    second = _demo_accounts(engine, settings)
    printed = capsys.readouterr().out
    assert _demo_names(engine) == expected
    assert all(second[name] != first[name] for name in first)
    assert second["demo-worker"] in printed
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first["demo-worker"] not in path.read_text()
    assert second["demo-worker"] in path.read_text()
    with pytest.raises(access.NotSignedIn):
        sign_in(engine, settings, "demo-worker", first["demo-worker"])
    issued = sign_in(engine, settings, "demo-worker", second["demo-worker"])
    assert issued.principal.role == access.Role.grid_worker
    assert issued.principal.divisions == (GRID,)
    assert sign_in(engine, settings, "demo-analyst", second["demo-analyst"]).principal.name \
        == "demo-analyst"
    with engine.connect() as conn:
        dispatcher = accounts.find_user(conn, "demo-dispatcher")
    assert dispatcher is not None and dispatcher.divisions == (COUNTY,)


@pytest.mark.parametrize("command", [["user"], ["user", "add"], ["user", "list"],
                                     ["user", "disable"], ["user", "enable"],
                                     ["user", "passwd"], ["user", "divisions"], ["audit"]])
def test_every_account_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
