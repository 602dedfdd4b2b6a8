"""The ``gridmap`` command: thin Typer commands over library functions."""

from __future__ import annotations

import enum
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from sqlalchemy import Engine
from tqdm import tqdm

from gridmap import i18n
from gridmap.cli_language import LocalizedGroup
from gridmap.domain.layers import LAYERS
from gridmap.domain.notes import note as system_note
from gridmap.i18n import _
from gridmap.io.errors import ImportRejected
from gridmap.settings import Settings, get_settings
from gridmap.store.cluster import ClusterError, LocalCluster

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from gridmap.analysis.siting import SitingResult

T = TypeVar("T")

app = typer.Typer(cls=LocalizedGroup,  # help texts and Typer's words in the run's language
                  help="gridmap: grid-based community governance on PostGIS.",
                  no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Show and control the database (the local cluster when "
                     "GRIDMAP_DATABASE_URL is not set).", no_args_is_help=True)
app.add_typer(db_app, name="db")
user_app = typer.Typer(help="Manage the accounts that sign in to the API and the map "
                       "(passwords from GRIDMAP_PASSWORD or a prompt, never an argument).",
                       no_args_is_help=True)
app.add_typer(user_app, name="user")
key_app = typer.Typer(help="Manage API keys (Open311 clients): each acts as an account, with "
                      "its role and divisions.", no_args_is_help=True)
app.add_typer(key_app, name="key")

LayerArg = Annotated[str, typer.Argument(
    help=f"Layer: {', '.join(LAYERS)} (import also takes osm: an OpenStreetMap .pbf "
    "extract → households, facilities and the walking network).", show_default=False)]


class LogLevel(enum.StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


class RoleChoice(enum.StrEnum):
    """The roles an account may hold (gridmap.access.SIGNED_IN_ROLES)."""

    admin = "admin"
    planner = "planner"
    dispatcher = "dispatcher"
    grid_worker = "grid_worker"
    analyst = "analyst"


DivisionsOpt = Annotated[list[str] | None, typer.Option(
    "--division", metavar="CODE", help="12-digit county, township or community code, or "
    "15-digit grid code (repeatable); an admin may have none.", show_default=False)]
AccountArg = Annotated[str, typer.Argument(metavar="NAME", help="Account name.",
                                           show_default=False)]


@app.callback()
def main(quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="No progress bars (for scripts): only results and errors.")
         ] = False) -> None:
    """gridmap: grid-based community governance on PostGIS."""
    from pydantic import ValidationError

    try:
        settings = get_settings()
    except ValidationError as exc:
        raise fail(_settings_problems(exc)) from exc
    i18n.use(settings.language)  # GRIDMAP_LANGUAGE: zh-CN (default) or en
    OPTIONS["quiet"] = quiet


OPTIONS = {"quiet": False}  # the global options of this run (set by main)


def _settings_problems(exc: Any) -> str:
    """What is wrong with the settings (a pydantic ValidationError), each by its
    environment variable, in the run's language."""
    problems = "; ".join(
        _("environment variable {variable}: {problem}",
          variable="GRIDMAP_" + "__".join(str(part) for part in error["loc"]).upper(),
          problem=i18n.translate(str(error["msg"]))) for error in exc.errors())
    return _("the settings are not valid: {problems}", problems=problems)


@contextmanager
def progress(what: str, *, total: int | None = None, unit: str | None = None
             ) -> Iterator[tqdm[Any]]:
    """A progress bar on stderr for a long step (none with --quiet): ``bar.set_postfix_str``
    names the current part, ``bar.update`` counts it done; results go to stdout through
    :func:`say`, which keeps the bar below them."""
    with tqdm(total=total, desc=what, unit=unit or _("step"), file=sys.stderr,
              disable=OPTIONS["quiet"],
              dynamic_ncols=True, bar_format=None if total else
              "{desc}: {n_fmt} {unit} [{elapsed}{postfix}]") as bar:
        yield bar


def say(text: str) -> None:
    """Print a result line to stdout without breaking a progress bar on stderr."""
    tqdm.write(text, file=sys.stdout)


def _named(kind: i18n.LabelKind, value: str) -> str:
    """A value of the vocabulary as the CLI names it: in English the value itself (what
    options take), else its label."""
    return value if i18n.current() == "en" else i18n.label(kind, value)


def _role_name(role: str) -> str:
    """A role as the CLI names it: in English its value (what ``--role`` takes), else its
    label."""
    return role if i18n.current() == "en" else i18n.label("role", role)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Say what went wrong (in the deployment's language) and exit non-zero."""
    typer.secho(i18n.translate(message), err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def _layer(name: str) -> str:
    if name not in LAYERS:
        raise fail(f"unknown layer {name!r}: choose one of {', '.join(LAYERS)}")
    return name


def _engine(settings: Settings) -> Engine:
    from sqlalchemy.exc import OperationalError

    from gridmap.store.db import open_database

    try:
        return open_database(settings)
    except ClusterError as exc:
        raise fail(str(exc)) from exc
    except OperationalError as exc:  # a server that is down, a wrong password or host
        from sqlalchemy.engine import make_url

        url = make_url(settings.database_url or "postgresql://").render_as_string(
            hide_password=True)
        raise fail(_("cannot use the database {url}: {error}", url=url,
                     error=str(exc.orig or exc).strip().splitlines()[0])) from exc


def _rejected(exc: ImportRejected) -> typer.Exit:
    """An import refused: its summary and each problem (kind, row, message) in the run's
    language, and exit non-zero."""
    typer.secho(exc.render(i18n.translate), err=True, fg=typer.colors.RED)
    return typer.Exit(2)


@db_app.command("status")
def db_status() -> None:
    """Say which database gridmap uses and whether it is running."""
    settings = get_settings()
    if settings.database_url:
        typer.echo(_("using GRIDMAP_DATABASE_URL: {url} (nothing is started)",
                     url=settings.database_url))
        return
    cluster = LocalCluster(settings)
    if not cluster.exists:
        typer.echo(_("local cluster: not created yet (it will be, in {folder})",
                     folder=cluster.pgdata))
        raise typer.Exit(3)
    running = cluster.is_running()
    typer.echo(_("local cluster: {state}, {folder}, url {url}",
                 state=_("running") if running else _("stopped"), folder=cluster.pgdata,
                 url=cluster.url(settings.local_db_name)))
    if not running:
        raise typer.Exit(3)


@db_app.command("start")
def db_start() -> None:
    """Create (first time), start and migrate the local cluster."""
    settings = get_settings()
    engine = _engine(settings)
    typer.echo(_("ready: {url}", url=engine.url.render_as_string(hide_password=True)))


@db_app.command("stop")
def db_stop() -> None:
    """Stop the local cluster."""
    settings = get_settings()
    if settings.database_url:
        raise fail("GRIDMAP_DATABASE_URL is set: gridmap does not control that server")
    try:
        stopped = LocalCluster(settings).stop()
    except ClusterError as exc:
        raise fail(str(exc)) from exc
    typer.echo(_("stopped") if stopped else _("was not running"))


@db_app.command("url")
def db_url() -> None:
    """Print the database URL (starting the local cluster if needed)."""
    from gridmap.store.db import database_url

    try:
        typer.echo(database_url(get_settings()))
    except ClusterError as exc:
        raise fail(str(exc)) from exc


BackupFile = Annotated[Path, typer.Argument(metavar="FILE", help="The backup file "
                                           "(pg_dump's custom format).", show_default=False)]


def _database_url() -> str:
    from gridmap.store.db import database_url

    try:
        return database_url(get_settings())
    except ClusterError as exc:
        raise fail(str(exc)) from exc


@db_app.command("backup")
def db_backup(path: BackupFile) -> None:
    """Write the whole database to FILE (pg_dump --format=custom)."""
    from gridmap.store.backup import BackupError, backup

    try:
        backup(_database_url(), path)
    except BackupError as exc:
        raise fail(str(exc)) from exc
    typer.echo(_("wrote {path} ({size} MB)", path=path, size=f"{path.stat().st_size / 1e6:.1f}"))


@db_app.command("restore")
def db_restore(
    path: BackupFile,
    force: Annotated[bool, typer.Option("--force", help="Replace what a database that "
                                        "holds rows holds.")] = False,
) -> None:
    """Restore FILE (from `gridmap db backup`) into the database, which must be empty (new
    or just migrated) unless --force. One transaction: a failure changes nothing. Stop the
    server first: it holds the data in memory."""
    from gridmap.store.backup import BackupError, restore

    try:
        restore(_database_url(), path, force=force)
    except BackupError as exc:
        raise fail(str(exc)) from exc
    typer.echo(_("restored {path}", path=path))


# --- accounts and the audit log --------------------------------------------------------

def _headers(*columns: str) -> tuple[str, ...]:
    """A table's headers: the columns' names in English, their labels in Chinese."""
    return columns if i18n.current() == "en" else tuple(
        i18n.label("column", column) for column in columns)


def _echo_rows(rows: list[tuple[str, ...]]) -> None:
    """Rows as columns padded to their width on a terminal (a Chinese character takes two
    cells)."""
    from rich.cells import cell_len

    widths = [max(cell_len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        typer.echo("  ".join(cell + " " * (w - cell_len(cell))
                             for cell, w in zip(row, widths, strict=True)).rstrip())


def _padded(text: str, width: int) -> str:
    """*text* padded with spaces to *width* terminal cells (a Chinese character takes two)."""
    from rich.cells import cell_len

    return text + " " * (width - cell_len(text))


def _printable(value: object) -> str:
    """*value* as text with control characters escaped (names and clients come from
    outside: they must not drive the terminal)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(value))


def _local(at: datetime | None) -> str:
    """A moment in the deployment's time zone, as its language writes dates."""
    if at is None:
        return "-"
    from zoneinfo import ZoneInfo

    local = at.astimezone(ZoneInfo(get_settings().time_zone))
    if i18n.current() == "zh-CN":
        return f"{local.year}年{local.month}月{local.day}日{local:%H:%M:%S}"
    return local.isoformat(timespec="seconds")


def _password(name: str) -> str:
    """GRIDMAP_PASSWORD when set, else asked for twice without echo."""
    from_env = os.environ.get("GRIDMAP_PASSWORD")
    if from_env is not None:
        return from_env
    while True:  # Typer's own confirmation says its mismatch in English only
        first = str(typer.prompt(_("password for {name}", name=name), hide_input=True))
        if first == str(typer.prompt(_("repeat the password"), hide_input=True)):
            return first
        typer.secho(_("the two passwords do not match: type them again"), err=True,
                    fg=typer.colors.RED)


def _account_change(change: Callable[[Connection], T], engine: Engine | None = None) -> T:
    """Run *change* in one transaction; an AccountError leaves nothing written and exits 2."""
    from gridmap.access import AccountError

    engine = engine or _engine(get_settings())
    try:
        with engine.begin() as conn:
            return change(conn)
    except AccountError as exc:
        raise fail(str(exc)) from exc


def _require_account(engine: Engine, name: str) -> None:
    """Refuse an unknown account before asking for a password."""
    from gridmap.store import accounts

    with engine.connect() as conn:
        if accounts.find_user(conn, name) is None:
            raise fail(f"no account named {name!r}")


@user_app.command("add")
def user_add(
    name: AccountArg,
    role: Annotated[RoleChoice, typer.Option(help="What the account may see and do.",
                                             show_default=False)],
    division: DivisionsOpt = None,
) -> None:
    """Create an account with a role on some divisions."""
    from gridmap import access
    from gridmap.store import accounts

    codes = division or []

    def precheck(conn: Connection) -> None:  # before asking for a password
        access.check_name(name)
        access.check_divisions(conn, access.parse_role(role.value), codes)
        if accounts.find_user(conn, name) is not None:
            raise access.AccountError(f"an account named {name!r} exists already")

    engine = _engine(get_settings())
    _account_change(precheck, engine)
    password = _password(name)
    user = _account_change(lambda conn: access.add_user(
        conn, name, role.value, codes, password, actor=access.CLI), engine)
    typer.echo(_("created {role} account {name} on {divisions}",
                 role=_role_name(user.role), name=repr(user.name),
                 divisions=", ".join(user.divisions) or _("every division")))


@user_app.command("list")
def user_list() -> None:
    """List the accounts: role, divisions, when created, active or disabled."""
    from gridmap.store import accounts

    engine = _engine(get_settings())
    with engine.connect() as conn:
        users = accounts.list_users(conn)
    if not users:
        typer.echo(_("no accounts yet: gridmap user add NAME --role ROLE --division CODE"))
        return
    rows = [_headers("name", "role", "divisions", "created", "status")]
    rows += [(_printable(u.name), _role_name(u.role),
              ",".join(u.divisions) or (_("(all)") if u.role == "admin" else "-"),
              _local(u.created_at),
              _("active") if u.disabled_at is None
              else _("disabled {at}", at=_local(u.disabled_at)))
             for u in users]
    _echo_rows(rows)


@user_app.command("disable")
def user_disable(name: AccountArg) -> None:
    """Disable an account; its sessions are revoked at once."""
    from gridmap import access

    _account_change(lambda conn: access.set_disabled(conn, name, True, actor=access.CLI))
    typer.echo(_("disabled {name}; its sessions are revoked", name=repr(name)))


@user_app.command("enable")
def user_enable(name: AccountArg) -> None:
    """Enable a disabled account again."""
    from gridmap import access

    _account_change(lambda conn: access.set_disabled(conn, name, False, actor=access.CLI))
    typer.echo(_("enabled {name}", name=repr(name)))


@user_app.command("passwd")
def user_passwd(name: AccountArg) -> None:
    """Set a new password; the account's sessions are revoked."""
    from gridmap import access

    engine = _engine(get_settings())
    _require_account(engine, name)
    password = _password(name)
    _account_change(lambda conn: access.set_password(conn, name, password,
                                                     actor=access.CLI), engine)
    typer.echo(_("new password for {name}; its sessions were revoked (sign in again)",
                 name=repr(name)))


@user_app.command("divisions")
def user_divisions(name: AccountArg, division: DivisionsOpt = None) -> None:
    """Replace the divisions an account holds."""
    from gridmap import access

    codes = division or []
    _account_change(lambda conn: access.set_divisions(conn, name, codes, actor=access.CLI))
    typer.echo(_("{name} now holds {divisions}", name=repr(name),
                 divisions=", ".join(dict.fromkeys(codes)) or _("every division")))


@key_app.command("add")
def key_add(
    account: AccountArg,
    label: Annotated[str, typer.Option(help="Which app or person holds the key.",
                                       show_default=False)],
) -> None:
    """Issue an API key acting as the account NAME (printed once; only its hash is kept).

    The key goes to standard output alone, the message about it to standard error."""
    from gridmap import access

    issued = _account_change(lambda conn: access.add_api_key(conn, account, label,
                                                             actor=access.CLI))
    typer.echo(_("API key {id} for {account} ({label}); it is shown only now:", id=issued.id,
                 account=repr(_printable(issued.account)), label=_printable(issued.label)),
               err=True)
    typer.echo(issued.key)


@key_app.command("list")
def key_list() -> None:
    """List the API keys: id, account, role, label, when issued, active or revoked."""
    from gridmap.store import accounts

    engine = _engine(get_settings())
    with engine.connect() as conn:
        keys = accounts.list_api_keys(conn)
    if not keys:
        typer.echo(_("no API keys yet: gridmap key add ACCOUNT --label LABEL"))
        return
    rows = [_headers("id", "account", "role", "label", "created", "status")]
    rows += [(str(k.id), _printable(k.account), _role_name(k.role), _printable(k.label),
              _local(k.created_at),
              _("revoked {at}", at=_local(k.revoked_at)) if k.revoked_at is not None
              else _("account disabled") if k.account_disabled else _("active"))
             for k in keys]
    _echo_rows(rows)


@key_app.command("revoke")
def key_revoke(key_id: Annotated[int, typer.Argument(metavar="ID", min=1, max=2**63 - 1,
                                                      help="The key's id (gridmap key list).",
                                                      show_default=False)]) -> None:
    """Revoke an API key; it stops working at once."""
    from gridmap import access

    row = _account_change(lambda conn: access.revoke_api_key(conn, key_id, actor=access.CLI))
    typer.echo(_("revoked API key {id} of {account} ({label})", id=key_id,
                 account=repr(_printable(row.account)), label=_printable(row.label)))


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise fail(f"--since takes an ISO date or date and time (2026-05-01, "
                   f"2026-05-01T08:30, 2026-05-01T08:30+08:00), not {value!r}") from exc
    return parsed if parsed.tzinfo is not None else parsed.astimezone()  # naive: local time


def _audit_line(entry: dict[str, Any]) -> str:
    ids, count = entry["row_ids"], entry["row_count"]
    rows = ",".join(ids) if ids else (_("{n} rows", n=count) if count is not None else "-")
    fields = [_local(entry["at"]), entry["user_name"] or "-", entry["role"] or "-",
              entry["action"], entry["target"], ",".join(entry["divisions"] or []) or "-",
              rows, entry["client"] or "-",
              i18n.render_notes(entry.get("detail_notes"), entry["detail"]) or ""]
    return "  ".join(_printable(f) for f in fields).rstrip()


@app.command("audit")
def audit(
    user: Annotated[str | None, typer.Option(help="Only this account's entries.")] = None,
    since: Annotated[str | None, typer.Option(
        help="Only entries at or after this ISO date or date and time (a date means "
        "midnight, local time unless an offset is given).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1_000_000,
                                       help="At most this many entries.")] = 1000,
) -> None:
    """Print the audit log, newest first: time, user, role, action, target, divisions,
    rows, client, detail."""
    from gridmap.store import accounts

    start = _since(since)
    engine = _engine(get_settings())
    with engine.connect() as conn:
        entries = accounts.read_audit(conn, user=user, since=start, limit=limit)
    if not entries:
        typer.echo(_("no audit entries match"), err=True)
    for entry in entries:
        typer.echo(_audit_line(entry))


def _parse_map(pairs: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        src, sep, dst = pair.partition("=")
        if not sep or not src or not dst:
            raise fail(f"--map takes FILECOLUMN=COLUMN, not {pair!r}")
        mapping[src] = dst
    return mapping


@app.command("import")
def import_(
    layer: LayerArg,
    path: Annotated[Path, typer.Argument(help="GeoJSON, GeoPackage, Shapefile (.shp or .zip), "
                                         "GeoParquet or CSV file.")],
    crs: Annotated[str | None, typer.Option(help="CRS of the coordinates: EPSG:4326, "
                                            "EPSG:4490, EPSG:32650 …, gcj02 or bd09.")] = None,
    map_: Annotated[list[str] | None, typer.Option("--map", help="Rename a column: "
                                                   "FILECOLUMN=COLUMN (repeatable).")] = None,
    source_layer: Annotated[str | None, typer.Option("--layer", help="Layer inside the "
                                                     "file (GeoPackage).")] = None,
    x: Annotated[str | None, typer.Option(help="CSV longitude/x column.")] = None,
    y: Annotated[str | None, typer.Option(help="CSV latitude/y column.")] = None,
    replace: Annotated[bool, typer.Option(
        "--replace", help="Grids: the file holds each of its communities whole, so the "
        "community's grids it leaves out retire. Without it they stay as they are.")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Check everything and print what would change; write nothing.")
    ] = False,
    draft: Annotated[bool, typer.Option(
        "--draft", hidden=True, help="Grids: the default (a draft per changed community); "
        "accepted so older scripts keep working.")] = False,
    publish: Annotated[bool, typer.Option(
        "--publish", help="Grids: publish the drafts too, in one transaction, when every "
        "one partitions its community (warnings acknowledged with the file's name as the "
        "note); when one does not, nothing is published and the drafts stay open.")] = False,
) -> None:
    """Import one layer file; all of it, or (on any problem) nothing. Grids go into a draft
    per community the file changes (its other grids stay unless --replace), and the diff is
    printed; --publish publishes them if they partition their communities, re-assigning the
    points in the same transaction."""
    from gridmap.io.read import read_layer
    from gridmap.store.load import build_deferred_indexes, load_layer

    if layer == "osm":
        _import_osm(path)
        return
    name = _layer(layer)
    settings = get_settings()
    start = time.perf_counter()
    with progress(_("import {layer}", layer=_named("resource", name)), total=2) as bar:
        bar.set_postfix_str(_("read and check {file}", file=path.name))
        try:
            result = read_layer(path, name, crs=crs, columns=_parse_map(map_ or []),
                                layer=source_layer, x=x, y=y)
        except ImportRejected as exc:
            raise _rejected(exc) from exc
        except ValueError as exc:
            raise fail(str(exc)) from exc
        bar.update()
        for note in result.notes:
            say(_("note: {text}", text=i18n.translate(str(note))))
        for fix in result.repaired:
            say(_("repaired {what}", what=fix.render(i18n.translate)))
        engine = _engine(settings)
        if name == "grids":
            bar.set_postfix_str(_("drafts"))
            _import_draft(engine, settings, result.frame, source=str(path), replace=replace,
                          dry_run=dry_run, publish=publish)
            bar.update()
            return
        if draft or publish:
            raise fail("--draft and --publish are for grids")
        bar.set_postfix_str(_("write {n} rows", n=f"{len(result.frame):,}"))
        try:
            with engine.connect() as conn, conn.begin() as transaction:
                loaded = load_layer(conn, name, result.frame, source=str(path),
                                    batch_rows=settings.copy_batch_rows,
                                    progress=len(result.frame) > 200_000
                                    and not OPTIONS["quiet"],
                                    replace=replace, tolerance=settings.check_tolerance_m,
                                    min_area=settings.check_min_area_m2,
                                    defer_search_index=True)
                if dry_run:
                    transaction.rollback()
        except ImportRejected as exc:
            raise _rejected(exc) from exc
        bar.update()
    if dry_run:
        typer.echo(_("dry run, nothing written — the import would give:") + f"\n{loaded}")
        return
    build_deferred_indexes(engine)
    typer.echo(_("{done} in {seconds} s", done=loaded,
                 seconds=f"{time.perf_counter() - start:.2f}"))


MANY_DRAFTS = 10  # an import making more drafts prints one line for each


def _import_draft(engine: Engine, settings: Settings, frame: Any, *, source: str,
                  replace: bool, dry_run: bool, publish: bool) -> None:
    from gridmap import drafts
    from gridmap.access import CLI_PRINCIPAL

    cache = drafts.DraftCache(max_areas=100_000)  # every community of the file, read once
    made = _draft_call(drafts.import_drafts, engine, CLI_PRINCIPAL, frame, cache,
                       source=source, replace=replace, client="cli", dry_run=dry_run)
    if not made:
        typer.echo(_("the file changes no community's grids: no draft made"))
        return
    for d in made:
        head = _("dry run, nothing written — a draft") if dry_run else _("draft {draft}",
                                                                         draft=d.draft)
        if len(made) > MANY_DRAFTS:  # a whole district: a line each
            counts = Counter(ch for _, ch in d.grids)
            typer.echo(_("{head} of {area}: ", head=head, area=d.area) + ", ".join(
                f"{n} {i18n.label('change', what)}" for what, n in sorted(counts.items()))
                + _("; households changing grid: {n}", n=len(d.households)))
            continue
        typer.echo(_("{head} would change:", head=head))
        _print_draft_diff(d)
    if dry_run:
        return
    if not publish:
        typer.echo(_("nothing is published yet: check the draft(s) on the map or with "
                     "`gridmap drafts show`, then publish (or import again with --publish)"))
        return
    try:
        done = _draft_call(drafts.publish_imported, engine, CLI_PRINCIPAL,
                           [d.draft for d in made], cache,
                           note=system_note("version_import", source=source[:1900]),
                           client="cli", **_draft_options(settings))
    except typer.Exit:
        if not replace:
            typer.echo(_("(grids the file leaves out stay as they are: give --replace if "
                         "the file holds each community whole)"), err=True)
        raise
    typer.echo(_("{n} draft(s) published: {versions} community version(s)", n=len(made),
                 versions=done.versions))
    if str(done.diff):
        typer.echo(str(done.diff))


def _echo_grouped(what: str, problems: list[Any], shown: int = 5) -> None:
    """Repairs and drops, grouped by kind: a count and the first few of each."""
    from gridmap.io.errors import group_problems

    for kind, rows in group_problems(problems).items():
        typer.echo(f"{what}: {i18n.translate(kind)}: {len(rows)}")
        for p in rows[:shown]:
            typer.echo(f"  - {p.render(i18n.translate)}")
        if len(rows) > shown:
            typer.echo("  " + _("… and {n} more", n=len(rows) - shown))


def _import_osm(path: Path) -> None:
    from gridmap.io.osm import read_osm
    from gridmap.store.basemap import save_buildings
    from gridmap.store.load import load_layer
    from gridmap.store.network import save_network

    settings = get_settings()
    start = time.perf_counter()
    try:
        layers = read_osm(path, rules=settings.osm)
    except ImportRejected as exc:
        raise _rejected(exc) from exc
    _echo_grouped(_named("resource", "buildings"), layers.fixes)
    engine = _engine(settings)
    try:
        with engine.begin() as conn:
            for name, frame in (("households", layers.households),
                                ("facilities", layers.facilities)):
                typer.echo(str(load_layer(conn, name, frame, source=str(path))))
            saved = save_buildings(conn, layers.buildings, source=str(path))
            edges = save_network(conn, layers.nodes, layers.edges)
    except ImportRejected as exc:
        raise _rejected(exc) from exc
    typer.echo(_("buildings: {added} added, {changed} changed, {unchanged} unchanged",
                 added=saved.added, changed=saved.changed, unchanged=saved.unchanged))
    typer.echo(_("walking network: {nodes} nodes, {edges} edges", nodes=len(layers.nodes),
                 edges=edges))
    typer.echo(_("imported {path} in {seconds} s", path=path,
                 seconds=f"{time.perf_counter() - start:.1f}"))


@app.command("export")
def export(
    layer: LayerArg,
    path: Annotated[Path, typer.Argument(help="Output .gpkg, .geojson, .parquet or .csv.")],
) -> None:
    """Write one layer from the database to a file."""
    from gridmap.io.write import write_layer
    from gridmap.store.read import read_layer

    name = _layer(layer)
    engine = _engine(get_settings())
    with engine.connect() as conn:
        frame = read_layer(conn, name)
    try:
        write_layer(frame, path, layer=name)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    typer.echo(_("wrote {n} {layer} to {path}", n=len(frame), layer=i18n.label("resource", name),
                 path=path))


@app.command("assign")
def assign(
    layers: Annotated[list[str] | None, typer.Argument(
        help="households, facilities, incidents (default: all three).")] = None,
    engine_: Annotated[str, typer.Option("--engine", help="python (gridmap's index) or "
                                         "postgis (SQL in the database); same rule.")] = "python",
) -> None:
    """Re-assign point layers in the database to their grids."""
    from gridmap.analysis.assign import GridIndexError
    from gridmap.store.assign import POINT_TABLES, assign_layer

    names = layers or list(POINT_TABLES)
    for name in names:
        if name not in POINT_TABLES:
            raise fail(f"cannot assign {name!r}: choose from {', '.join(POINT_TABLES)}")
    if engine_ not in ("python", "postgis"):
        raise fail("--engine is python or postgis")
    engine = _engine(get_settings())
    with engine.begin() as conn, progress(_("assign"), total=len(names)) as bar:
        for name in names:
            start = time.perf_counter()
            bar.set_postfix_str(_named("resource", name))
            try:  # each layer's grid index is sized to its points
                result = assign_layer(conn, name, engine=engine_)  # type: ignore[arg-type]
            except GridIndexError as exc:
                raise fail(str(exc)) from exc
            bar.update()
            say(_("{done} in {seconds} s", done=result,
                  seconds=f"{time.perf_counter() - start:.2f}"))


@app.command("check")
def check(
    community: Annotated[str | None, typer.Option(help="12-digit community code; "
                                                  "all communities if absent.")] = None,
    format_: Annotated[str, typer.Option("--format", help="table or geojson "
                                         "(the defects as GeoJSON).")] = "table",
    output: Annotated[Path | None, typer.Option(help="Write the GeoJSON here "
                                                "instead of standard output.")] = None,
) -> None:
    """Validate grid partitions (gaps, overlaps, spill-over, pieces, slivers) and balance.

    Exits 1 when the partition has defects, 0 when it is clean (balance is reported only).
    """
    from gridmap.reports import CheckRules, ReportError, check_report

    if format_ not in ("table", "geojson"):
        raise fail("--format is table or geojson")
    settings = get_settings()
    engine = _engine(settings)
    rules = CheckRules(standard=settings.standard, tolerance_m=settings.check_tolerance_m,
                       min_area_m2=settings.check_min_area_m2)
    with engine.connect() as conn:
        try:
            report, n_communities = check_report(conn, community=community, rules=rules)
        except ReportError as exc:
            raise fail(str(exc)) from exc
    if format_ == "geojson":
        text_ = report.defects.to_json(drop_id=True)
        if output:
            output.write_text(text_)
        else:
            typer.echo(text_)
    else:
        _print_check(report, n_communities)
    if len(report.defects):
        raise typer.Exit(1)


def _table(frame: Any, *, labels: dict[str, i18n.LabelKind] | None = None,
           **options: Any) -> str:
    """A table for the terminal without its index, the headers in the deployment's language
    (in English the columns' own names, as scripts read them) and the values of the columns
    in *labels* by their labels."""
    if i18n.current() != "en":
        frame = frame.copy()
        for column, kind in (labels or {}).items():
            frame[column] = frame[column].map(lambda value, kind=kind: i18n.label(kind, value))
        frame = frame.rename(columns=lambda column: i18n.label("column", str(column)))
        import pandas as pd

        with pd.option_context("display.unicode.east_asian_width", True):  # 2 cells each
            return str(frame.to_string(index=False, **options))
    return str(frame.to_string(index=False, **options))


def _print_check(report: object, n_communities: int) -> None:
    from gridmap.analysis.report import CheckReport

    assert isinstance(report, CheckReport)
    defects = report.defects
    typer.echo(_("{communities} communities, {grids} comprehensive grids: {defects} partition "
                 "defect(s)", communities=n_communities, grids=len(report.balance),
                 defects=len(defects)))
    if len(defects):
        cols = ["defect", "community_code", "grid_code", "other_code", "area_m2", "detail"]
        table = defects[cols].copy()
        cent = defects.geometry.representative_point()
        table["at (lon, lat)"] = [f"{p.x:.6f}, {p.y:.6f}" for p in cent]
        typer.echo(_table(table.fillna("")))
    off = report.unbalanced
    typer.echo("\n" + _("balance: {within} grids within their band, {off} outside it; "
                        "{outside} households outside every grid",
                        within=len(report.balance) - len(off), off=len(off),
                        outside=report.outside_households))
    if len(off):
        cols = ["code", "urban_rural", "households", "band_low", "band_high", "status",
                "excess", "residents", "residents_excess"]
        typer.echo(_table(off[cols], labels={"status": "band", "urban_rural": "urban_rural"}))


@app.command("coverage")
def coverage(
    division: Annotated[str | None, typer.Option(help="12-digit code of a county, township "
                                                 "or community; everything if absent.")] = None,
    type_: Annotated[list[str] | None, typer.Option("--type", help="Facility type "
                                                    "(repeatable); all if absent.")] = None,
    distance: Annotated[list[float] | None, typer.Option(help="Metres (repeatable); each "
                                                         "type's life-circle distance if "
                                                         "absent.")] = None,
    metric: Annotated[str, typer.Option(help="straight or network (along the imported "
                                        "walking network).")] = "straight",
    level: Annotated[str, typer.Option(help="grid, community, township or all.")] = "all",
    uncovered_out: Annotated[Path | None, typer.Option(
        "--uncovered", help="Write the households out of reach (first type and distance) "
        "to this file (.gpkg, .geojson, .parquet).")] = None,
    compliance_: Annotated[bool, typer.Option(
        "--compliance", help="Per community: which life-circle types are missing or partial "
        "at their level's distance, and the residents affected.")] = False,
) -> None:
    """Share of residents, households and vulnerable residents within reach of facilities."""
    from gridmap.io.write import write_layer
    from gridmap.reports import ReportError
    from gridmap.reports import coverage as coverage_of

    if metric not in ("straight", "network"):
        raise fail("--metric is straight or network")
    if level not in ("grid", "community", "township", "all"):
        raise fail("--level is grid, community, township or all")
    engine = _engine(get_settings())
    with engine.connect() as conn, progress(_("coverage"), total=1) as bar:
        bar.set_postfix_str(_("read and measure ({metric})",
                              metric=i18n.pgettext("metric", metric)))
        try:
            result = coverage_of(conn, division=division, types=type_, distances=distance,
                                 metric=metric)  # type: ignore[arg-type]
        except ReportError as exc:
            raise fail(str(exc)) from exc
        bar.update()
    households, cov = result.households, result.cov
    in_grids = int(households["grid_code"].notna().sum())
    if (compliance_ or level != "all") and not in_grids:
        raise fail(f"none of the {len(households):,} households is in a grid, so there is no "
                   f"{'community' if compliance_ else level} to report on: import the "
                   "communities and grids (gridmap import communities|grids FILE; publishing "
                   "grids assigns the households in them) — or use --level all")
    if result.network_pieces is not None:
        typer.echo(result.network_pieces)
    for said in result.warnings:
        typer.secho(_("warning: {text}", text=i18n.translate(said)), err=True,
                    fg=typer.colors.YELLOW)
    if compliance_:
        from gridmap.analysis.coverage import compliance

        report = compliance(households, cov)
        short = report[report["status"] != "ok"]
        if short.empty:
            typer.echo(_("all {n} communities have every life-circle type within reach of "
                         "all their residents", n=report["community_code"].nunique()))
            return
        typer.echo(_table(short, float_format=lambda v: f"{v:.3f}",
                          labels={"type": "facility_type", "level": "level",
                                  "status": "compliance"}))
        return
    if in_grids < len(households):
        typer.echo(_("note: {outside} of {n} households are outside every grid (unit "
                     "'outside')", outside=f"{len(households) - in_grids:,}",
                     n=f"{len(households):,}"))
    table = result.table(level)  # type: ignore[arg-type]
    cols = ["unit", "type", "distance_m", "residents", "residents_share", "households_share",
            "vulnerable", "vulnerable_share"]
    typer.echo(_("{households} households, {residents} residents; {metric} distance",
                 households=f"{len(households):,}",
                 residents=f"{int(households['residents'].sum()):,}",
                 metric=i18n.pgettext("metric", metric)))
    typer.echo(_table(table[cols], float_format=lambda v: f"{v:.3f}",
                      labels={"unit": "unit", "type": "facility_type"}))
    if uncovered_out:
        column = result.column()
        layer = result.uncovered()
        write_layer(layer, uncovered_out)
        typer.echo(_("wrote {n} households out of reach of {column} to {path}", n=len(layer),
                     column=column, path=uncovered_out))


def _siting_status(result: SitingResult) -> str:
    """What the solver proved, in the deployment's language: the status's sentence and the
    sources it names (H3 cells, the caller's sites) from the catalogue."""
    template, values = result.status_message()
    return _(template).format(**{name: i18n.translate(value) for name, value in values.items()})


@app.command("site")
def site(
    type_: Annotated[str, typer.Option("--type", help="Facility type to place.")],
    k: Annotated[int | None, typer.Option(help="How many new sites (maximal covering); "
                                          "absent: the fewest that reach everyone.")] = None,
    distance: Annotated[float | None, typer.Option(help="Metres; the type's life-circle "
                                                   "distance if absent.")] = None,
    division: Annotated[str | None, typer.Option(help="Division code to plan for.")] = None,
    weight: Annotated[str, typer.Option(help="residents or vulnerable.")] = "residents",
    capacity: Annotated[float | None, typer.Option(
        help="What one new site holds, in the unit of the facilities' capacity (places, "
        "beds); existing sites keep their own where recorded. Absent: no limit.")] = None,
    demand_rate: Annotated[float, typer.Option(
        help="Capacity one person needs (kindergarten places per resident, say); 1: "
        "capacity counts people.")] = 1.0,
    output: Annotated[Path | None, typer.Option(help="Write the sites to this file.")] = None,
    metric: Annotated[str, typer.Option(help="straight or network (along the imported "
                                        "walking network).")] = "straight",
    time_limit: Annotated[float, typer.Option(
        min=0.1, help="Seconds the solver may take; then the best found is reported with "
        "its gap.")] = 60.0,
) -> None:
    """Suggest sites for new facilities of one type."""
    from gridmap.analysis.coverage import thresholds_for
    from gridmap.analysis.siting import site_facilities
    from gridmap.io.write import write_layer
    from gridmap.store.network import read_network
    from gridmap.store.read import read_coverage_inputs

    if weight not in ("residents", "vulnerable"):
        raise fail("--weight is residents or vulnerable")
    if metric not in ("straight", "network"):
        raise fail("--metric is straight or network")
    try:
        (ftype, (dist, *_more)), = thresholds_for([type_], [distance] if distance else None).items()
    except ValueError as exc:
        raise fail(str(exc)) from exc
    engine = _engine(get_settings())
    with engine.connect() as conn:
        try:
            households, facilities = read_coverage_inputs(conn, division=division)
            network = read_network(conn) if metric == "network" else None
        except ValueError as exc:
            raise fail(str(exc)) from exc
    try:
        result = site_facilities(households, facilities[facilities["type"] == ftype],
                                 distance=dist, k=k, weight=weight,  # type: ignore[arg-type]
                                 capacity=capacity, demand_rate=demand_rate,
                                 metric=metric, network=network,  # type: ignore[arg-type]
                                 time_limit=time_limit)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    whom = i18n.label("column", weight)
    typer.echo(_("{type} within {distance} m ({metric}): {covered} of {total} {whom} reached "
                 "with {sites} new site(s) ({model}: {status})",
                 type=ftype if i18n.current() == "en" else i18n.label("facility_type", ftype),
                 distance=f"{dist:.0f}", metric=i18n.pgettext("metric", metric),
                 covered=f"{result.covered_residents:,}", total=f"{result.total_residents:,}",
                 whom=whom, sites=len(result.sites),
                 model=i18n.pgettext("model", result.model), status=_siting_status(result)))
    if result.served_residents is not None:
        typer.echo(_("served within capacity: {served} {whom}",
                     served=f"{result.served_residents:,}", whom=whom))
    for row in result.sites.to_crs(4326).itertuples():
        serves = _(", serves {n}", n=f"{row.serves:,}") if "serves" in result.sites else ""
        typer.echo(f"  {row.geometry.x:.6f}, {row.geometry.y:.6f}  "
                   + _("reaches {n}", n=f"{row.reaches:,}") + serves)
    if output:
        write_layer(result.sites, output)


@app.command("make-demo-data")
def make_demo_data(
    out: Annotated[Path, typer.Argument(help="Folder to write the demo layers to.")] = Path(
        "data/boundaries"),
    seed: Annotated[int, typer.Option(help="Random seed.")] = 2026,
) -> None:
    """Regenerate the demo district deterministically (what data/boundaries holds)."""
    from gridmap.demodata import generate, write_demo

    written = write_demo(generate(seed=seed), out)
    for path in written:
        typer.echo(_("wrote {path}", path=path))


# one account per role, so a newcomer can sign in to each view of the demo district
DEMO_ACCOUNTS: tuple[tuple[str, RoleChoice, tuple[str, ...]], ...] = (
    ("demo-admin", RoleChoice.admin, ()),
    ("demo-planner", RoleChoice.planner, ("610199001000",)),
    ("demo-dispatcher", RoleChoice.dispatcher, ("610199000000",)),
    ("demo-worker", RoleChoice.grid_worker, ("610199001001001",)),
    ("demo-analyst", RoleChoice.analyst, ("610199000000",)),
)


def _demo_accounts(engine: Engine, settings: Settings) -> dict[str, str]:
    """Create, or reset to a new random password and the demo's grants, one account per
    role (one transaction); print them, write them to ``data_dir/demo-accounts.txt``
    (mode 0600) and return name → password."""
    import secrets

    from gridmap import access
    from gridmap.store import accounts

    passwords: dict[str, str] = {}
    lines: list[str] = []
    try:
        with engine.begin() as conn:
            for name, role, codes in DEMO_ACCOUNTS:
                password = secrets.token_urlsafe(9)
                user = accounts.find_user(conn, name)
                if user is None:
                    access.add_user(conn, name, role.value, codes, password,
                                    actor=access.CLI)
                else:
                    if user.role != role.value:
                        typer.secho(_("note: {name} has the role {role}, not {wanted}; left "
                                      "so", name=name, role=_role_name(user.role),
                                      wanted=_role_name(role.value)), err=True,
                                    fg=typer.colors.YELLOW)
                    access.set_password(conn, name, password, actor=access.CLI)
                    access.set_divisions(conn, name, codes, actor=access.CLI)
                    if user.disabled_at is not None:
                        access.set_disabled(conn, name, False, actor=access.CLI)
                passwords[name] = password
                lines.append(f"{name:<16} {password}  {_padded(_role_name(role.value), 11)} "
                             f"{', '.join(codes) or _('every division')}")
    except access.AccountError as exc:
        raise fail(f"demo accounts: {exc}") from exc
    path = Path(settings.data_dir) / "demo-accounts.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)  # an older file keeps no wider mode
    os.ftruncate(fd, 0)
    with os.fdopen(fd, "w") as f:
        f.write("# " + _("gridmap demo accounts (new passwords on every load-demo)") + "\n")
        f.write("".join(line + "\n" for line in lines))
    typer.echo(_("demo accounts (sign in at /login; new passwords on every load-demo):"))
    for line in lines:
        typer.echo(f"  {line}")
    typer.echo(_("written to {path} (readable by you only)", path=path))
    return passwords


@app.command("load-demo")
def load_demo() -> None:
    """Load the demo district into the database (idempotent) and create or reset one demo
    account per role, with new passwords."""
    from gridmap.demodata import load_demo_files

    settings = get_settings()
    engine = _engine(settings)
    try:
        for line in load_demo_files(engine):
            typer.echo(line)
    except ImportRejected as exc:
        raise _rejected(exc) from exc
    _demo_accounts(engine, settings)


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
    log_level: Annotated[LogLevel, typer.Option(
        help="warning and above leave out the access log.")] = LogLevel.info,
    workers: Annotated[int, typer.Option(
        min=1, max=64, help="Server processes (one per core is a good start).")] = 1,
) -> None:
    """Serve the API and map pages."""
    import os

    import uvicorn

    from gridmap.api.app import create_app
    from gridmap.api.fastproto import http_protocol
    from gridmap.api.logs import log_config

    settings = get_settings()
    engine = _engine(settings)
    host, port = host or settings.host, port or settings.port
    # below info the access log is never written: leave it out altogether (uvicorn would
    # still build each line's arguments)
    access_log = log_level in (LogLevel.debug, LogLevel.info)
    if workers == 1:
        uvicorn.run(create_app(settings, engine=engine), host=host, port=port,
                    log_level=log_level.value, access_log=access_log,
                    log_config=log_config(), http=http_protocol(), timeout_graceful_shutdown=5)
        return
    # the database is resolved (the local cluster started) once, here; the workers inherit it
    os.environ["GRIDMAP_DATABASE_URL"] = engine.url.render_as_string(hide_password=False)
    engine.dispose()
    # a worker that does not answer the supervisor's health check in time is killed and
    # restarted: building the locate index on a busy machine can hold it up for more than
    # uvicorn's default 5 s, and every restart would start the build again
    uvicorn.run("gridmap.api.app:app_from_environment", factory=True, workers=workers,
                host=host, port=port, log_level=log_level.value, access_log=access_log,
                log_config=log_config(),
                http=http_protocol(), timeout_worker_healthcheck=60,
                timeout_graceful_shutdown=5)  # open live streams end within 5 s


@app.command("demo")
def demo(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
    serve_: Annotated[bool, typer.Option("--serve/--no-serve",
                                         help="Serve after loading.")] = True,
) -> None:
    """Start the local PostGIS, load the demo district and serve the map."""
    load_demo()
    if serve_:
        settings = get_settings()
        typer.echo(_("map: {url}", url=f"http://{host or settings.host}:"
                                       f"{port or settings.port}/"))
        serve(host, port)


grids_app = typer.Typer(help="A community's published grid versions: history, what "
                        "changed, restore.", no_args_is_help=True)
app.add_typer(grids_app, name="grids")
CommunityArg = Annotated[str, typer.Argument(help="12-digit community code.",
                                             show_default=False)]


@grids_app.command("history")
def grids_history(community: CommunityArg) -> None:
    """Every published version of a community's grids, newest first."""
    from gridmap import plans
    from gridmap.access import CLI_PRINCIPAL, NotVisible

    engine = _engine(get_settings())
    with engine.connect() as conn:
        try:
            rows = plans.history(conn, CLI_PRINCIPAL, community)
        except (NotVisible, ValueError) as exc:
            raise fail(str(exc)) from exc
    for v in rows:  # each note in the deployment's language (what gridmap wrote)
        until = _local(v["valid_to"]) if v["valid_to"] else _("current")
        restored = _(" (restores {version})", version=v["restored_from"]) \
            if v["restored_from"] else ""
        typer.echo(f"v{v['version']:<3} {_local(v['valid_from'])} → {until}  "
                   + _("{n} grids", n=v["grids"])
                   + f"  {v['author'] or '-'}  {_printable(v['note'] or '')}{restored}")


@grids_app.command("diff")
def grids_diff(
    community: CommunityArg,
    from_version: Annotated[int, typer.Argument(help="The older version.", min=1)],
    to_version: Annotated[int | None, typer.Argument(
        help="The newer version (the current one if absent).", min=1)] = None,
) -> None:
    """What changed between two versions: grids, the households and incidents that change
    grid, the workers of retired grids."""
    from gridmap import plans
    from gridmap.access import CLI_PRINCIPAL, NotVisible

    engine = _engine(get_settings())
    with engine.connect() as conn:
        try:
            d = plans.diff(conn, CLI_PRINCIPAL, community, from_version, to_version)
        except (NotVisible, ValueError) as exc:
            raise fail(str(exc)) from exc
    typer.echo(_("{community}: version {old} → {new}", community=community,
                 old=d.from_version, new=d.to_version))
    _print_changes(d)
    if d.workers:
        typer.echo("  " + _("workers of retired grids: {workers}",
                            workers=", ".join(d.workers)))


@grids_app.command("restore")
def grids_restore(
    community: CommunityArg,
    version: Annotated[int, typer.Argument(help="The version to bring back.", min=1)],
    note: Annotated[str, typer.Option(help="Why (kept with the new version).")],
) -> None:
    """Undo a publish: publish a new version equal to an earlier one (same grids, same
    codes), checked and re-assigned like any publish."""
    from gridmap import plans
    from gridmap.access import CLI_PRINCIPAL, NotVisible

    settings = get_settings()
    engine = _engine(settings)
    try:
        published, changes = plans.restore(
            engine, CLI_PRINCIPAL, community, version, note=note, expected=None,
            client="cli", tolerance=settings.check_tolerance_m,
            min_area=settings.check_min_area_m2)
    except (NotVisible, plans.PlanError) as exc:
        raise fail(str(exc)) from exc
    if not published:
        typer.echo(_("{community} is at version {version}'s grids already: nothing "
                     "published", community=community, version=version))
        return
    typer.echo(_("{community}: published a new version equal to version {version}",
                 community=community, version=version))
    if changes.grids:
        typer.echo(str(changes))


drafts_app = typer.Typer(help="Drafts of a community's (or township's) grids: list, show, "
                         "diff, submit, approve, publish, abandon (edit them on the map or "
                         "through /api/drafts).", no_args_is_help=True)
app.add_typer(drafts_app, name="drafts")
DraftArg = Annotated[int, typer.Argument(metavar="DRAFT", help="The draft's number.",
                                         min=1, max=2**63 - 1, show_default=False)]
NoteOpt = Annotated[str | None, typer.Option(help="Why (kept with the draft).")]


def _draft_call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a drafts use case as the command line (an admin), errors as messages."""
    from gridmap import drafts
    from gridmap.access import AccessError

    try:
        return fn(*args, **kwargs)
    except (AccessError, drafts.DraftError, drafts.IllegalState, drafts.StaleBase,
            drafts.StaleRevision) as exc:
        raise fail(str(exc)) from exc


def _draft_options(settings: Settings) -> dict[str, Any]:
    return {"standard": settings.standard, "tolerance": settings.check_tolerance_m,
            "min_area": settings.check_min_area_m2}


def _draft_status(status: str) -> str:
    """A draft's status as the CLI names it: its value in English (what ``--status``
    takes), its label in Chinese."""
    return status if i18n.current() == "en" else i18n.label("draft_status", status)


def _print_draft_stats(view: Any) -> None:
    d = view.draft
    typer.echo(_("draft {id} {area} {status} revision {revision}  {title}  by {author}",
                 id=d["id"], area=d["area_code"], status=_draft_status(d["status"]),
                 revision=d["revision"], title=_printable(d["title"]), author=d["author"]))
    for r in view.stats.grids:
        status = r["status"] if i18n.current() == "en" else i18n.label("band", r["status"])
        typer.echo(f"  {r['code']} {r['kind']:<13} " + _(
            "{households} households {residents} residents {vulnerable} vulnerable  "
            "{full_time}/{workers} full-time/workers  {status} compactness {compactness}",
            households=f"{r['households']:>6}", residents=f"{r['residents']:>6}",
            vulnerable=f"{r['vulnerable']:>4}", full_time=r["full_time_workers"],
            workers=r["workers"], status=f"{status:<14}",
            compactness=f"{r['compactness']:.2f}") + (_("  locked") if r["locked"] else ""))
    if view.stats.households_outside:
        typer.echo("  " + _("households in no grid: {n}", n=view.stats.households_outside))
    for line in view.stats.blocking:
        typer.echo("  " + _("blocks publishing: {text}", text=i18n.translate(line)))
    for line in view.stats.warnings:
        typer.echo("  " + _("warning: {text}", text=i18n.translate(line)))


@drafts_app.command("list")
def drafts_list(status: Annotated[str | None, typer.Option(
        help="open, submitted, approved, published or abandoned")] = None) -> None:
    """The drafts, newest first."""
    from gridmap import drafts
    from gridmap.access import CLI_PRINCIPAL

    engine = _engine(get_settings())
    with engine.connect() as conn:
        rows = _draft_call(drafts.list_drafts, conn, CLI_PRINCIPAL, status)
    for d in rows:
        typer.echo(f"{d['id']:>5} {d['area_code']} {_draft_status(d['status']):<10} "
                   f"r{d['revision']:<4} "
                   f"{_local(d['updated_at'])}  {d['author']}  {_printable(d['title'])}")


@drafts_app.command("show")
def drafts_show(draft: DraftArg) -> None:
    """A draft's grids with their statistics, what blocks publishing, the warnings."""
    from gridmap import drafts
    from gridmap.access import CLI_PRINCIPAL

    settings = get_settings()
    engine = _engine(settings)
    with engine.connect() as conn:
        view = _draft_call(drafts.show, conn, CLI_PRINCIPAL, draft, drafts.DraftCache(),
                           **_draft_options(settings))
    _print_draft_stats(view)


def _print_changes(d: Any) -> None:
    """The grids a new version adds, reshapes, renames, retires, and what changes grid."""
    for what in i18n.CHANGES:
        codes = [c for c, ch in d.grids if ch == what]
        if codes:
            typer.echo(f"  {i18n.label('change', what)}: {', '.join(codes)}")
    typer.echo("  " + _("households changing grid: {n}", n=len(d.households)))
    typer.echo("  " + _("incidents changing grid: {n}", n=len(d.incidents)))


def _print_draft_diff(d: Any) -> None:
    _print_changes(d)
    for w, f, t in d.workers:
        typer.echo("  " + _("worker {name}: {old} → {new}", name=w, old=f or "-",
                            new=t or "-"))


@drafts_app.command("diff")
def drafts_diff(draft: DraftArg) -> None:
    """What publishing the draft would change."""
    from gridmap import drafts
    from gridmap.access import CLI_PRINCIPAL

    engine = _engine(get_settings())
    with engine.connect() as conn:
        d = _draft_call(drafts.diff, conn, CLI_PRINCIPAL, draft, drafts.DraftCache())
    typer.echo(_("draft {draft} against the published grids:", draft=draft))
    _print_draft_diff(d)


@drafts_app.command("submit")
def drafts_submit(draft: DraftArg, note: NoteOpt = None, acknowledge: Annotated[bool, typer.Option(
        "--acknowledge", help="The warnings were read (a note says why they are fine).")
        ] = False) -> None:
    """Submit a draft for approval (gaps, overlaps and spill-over block it)."""
    from gridmap import drafts
    from gridmap.access import CLI_PRINCIPAL

    settings = get_settings()
    view = _draft_call(drafts.submit, _engine(settings), CLI_PRINCIPAL, draft,
                       drafts.DraftCache(), note=note, acknowledge=acknowledge, expected=None,
                       client="cli", one_step=settings.draft_approval == "one_step",
                       **_draft_options(settings))
    typer.echo(_("draft {draft} is {status}", draft=draft,
                 status=_draft_status(view.draft["status"])))


@drafts_app.command("approve")
def drafts_approve(draft: DraftArg, note: NoteOpt = None, send_back: Annotated[bool, typer.Option(
        "--send-back", help="Send it back to its author instead (a note says why).")
        ] = False) -> None:
    """Approve a submitted draft (or send it back)."""
    from gridmap import drafts
    from gridmap.access import CLI_PRINCIPAL

    row = _draft_call(drafts.decide, _engine(get_settings()), CLI_PRINCIPAL, draft,
                      approve=not send_back, note=note, expected=None, client="cli")
    typer.echo(_("draft {draft} is {status}", draft=draft,
                 status=_draft_status(row["status"])))


@drafts_app.command("publish")
def drafts_publish(draft: DraftArg) -> None:
    """Publish an approved draft in one transaction."""
    from gridmap import drafts
    from gridmap.access import CLI_PRINCIPAL

    settings = get_settings()
    done = _draft_call(drafts.publish, _engine(settings), CLI_PRINCIPAL, draft,
                       drafts.DraftCache(), expected=None, client="cli",
                       **_draft_options(settings))
    typer.echo(_("draft {draft} published: {versions} community version(s), {moved} "
                 "worker(s) moved", draft=draft, versions=done.versions,
                 moved=done.workers_moved))
    if done.diff.grids:
        typer.echo(str(done.diff))


@drafts_app.command("abandon")
def drafts_abandon(draft: DraftArg, note: NoteOpt = None) -> None:
    """Abandon a draft (nothing is published; it stays readable)."""
    from gridmap import drafts
    from gridmap.access import CLI_PRINCIPAL

    row = _draft_call(drafts.abandon, _engine(get_settings()), CLI_PRINCIPAL, draft,
                      note=note, expected=None, client="cli")
    typer.echo(_("draft {draft} is {status}", draft=draft,
                 status=_draft_status(row["status"])))
# ----------------------------------------------------------------------------- province
province_app = typer.Typer(help="A generated province (GeoParquet partitioned by county) "
                           "and its analysis on a dask cluster (GRIDMAP_DASK_SCHEDULER, or a "
                           "LocalCluster of one process per core).", no_args_is_help=True)
app.add_typer(province_app, name="province")
ProvinceDir = Annotated[Path, typer.Argument(help="Folder of the generated province.")]


@province_app.command("generate")
def province_generate(
    folder: ProvinceDir,
    seed: Annotated[int, typer.Option(help="Same seed, same province.")] = 2026,
    prefecture: Annotated[list[str] | None, typer.Option(
        "--prefecture", metavar="CODE", help="4-digit code (3901..3911) of a prefecture to "
        "write fully (repeatable); with neither this nor --sample: the whole province.")] = None,
    sample: Annotated[int, typer.Option(
        help="Counties drawn from each other prefecture.", min=0, max=8)] = 0,
) -> None:
    """Write a province-sized district (88 counties, ~88,000 grids, ~31.7 M households,
    ~600 facilities per county) as GeoParquet, one file per county and layer."""
    from gridmap.province import Written, generate_province

    with progress(_("generate"), unit=_("county")) as bar:
        def show(w: Written) -> None:
            bar.update()
            say(_("{county}: {grids} grids, {households} households, {facilities} facilities "
                  "in {seconds} s", county=w.county, grids=f"{w.grids:,}",
                  households=f"{w.households:,}", facilities=w.facilities,
                  seconds=f"{w.seconds:.1f}"))

        try:
            written = generate_province(folder, seed=seed, full=prefecture or (),
                                        sample=sample, progress=show)
        except (ValueError, OSError) as exc:
            raise fail(str(exc)) from exc
    typer.echo(_("wrote {counties} counties, {grids} grids, {households} households to "
                 "{folder}", counties=len(written), grids=f"{sum(w.grids for w in written):,}",
                 households=f"{sum(w.households for w in written):,}", folder=folder))


@province_app.command("run")
def province_run(
    folder: ProvinceDir,
    workers: Annotated[int | None, typer.Option(
        help="Worker processes of the LocalCluster (default: one per core); ignored with "
        "GRIDMAP_DASK_SCHEDULER.", min=1)] = None,
    type_: Annotated[list[str] | None, typer.Option("--type", help="Facility type "
                                                    "(repeatable); all if absent.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the per-grid totals and coverage "
                                             "here (two .parquet files with this stem).")
                   ] = None,
) -> None:
    """Assign every county's households to grids, total them per grid and measure coverage,
    one dask task per county; prints each partition's and each worker's throughput."""
    from gridmap.analysis.coverage import thresholds_for
    from gridmap.province import Figures, dask_client, run_province

    settings = get_settings()
    try:
        thresholds = thresholds_for(type_)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    if not (folder / "counties.parquet").exists():
        raise fail(f"{folder} holds no generated province: run `gridmap province generate "
                   f"{folder}` first")

    counties = len(list((folder / "households").glob("*.parquet"))) or None
    with dask_client(settings.dask_scheduler, workers=workers) as client, \
            progress(_("province"), total=counties, unit=_("county")) as bar:
        def show(f: Figures) -> None:
            bar.update()
            say(_("{county} on {worker}: {households} households in {seconds} s ({rate} M/s; "
                  "index {index}, assign {assign}, coverage {coverage})", county=f.county,
                  worker=f.worker, households=f"{f.households:,}",
                  seconds=f"{f.compute_s:.2f}", rate=f"{f.households / f.compute_s / 1e6:.2f}",
                  index=f"{f.index_s:.2f}", assign=f"{f.assign_s:.2f}",
                  coverage=f"{f.coverage_s:.2f}"))

        say(_("cluster: {n} workers at {address}",
              n=len(client.scheduler_info()["workers"]), address=client.scheduler.address))
        run = run_province(folder, client, thresholds=thresholds, on_partition=show)
    typer.echo(_table(run.per_worker().reset_index(), float_format=lambda v: f"{v:,.0f}"))
    typer.echo(_("{households} households, {grids} grids in {seconds} s: {rate} M households/s",
                 households=f"{run.households:,}", grids=f"{len(run.totals):,}",
                 seconds=f"{run.wall_s:.1f}", rate=f"{run.households / run.wall_s / 1e6:.2f}"))
    if out:
        run.totals.to_parquet(out.with_name(out.stem + "_grids.parquet"))
        run.coverage.to_parquet(out.with_name(out.stem + "_coverage.parquet"))
        typer.echo(_("wrote {grids} and {coverage}", grids=f"{out.stem}_grids.parquet",
                     coverage=f"{out.stem}_coverage.parquet"))


@grids_app.command("suggest")
def grids_suggest(
    community: CommunityArg,
    min_: Annotated[int | None, typer.Option("--min", min=1, help="Fewest households per "
                                             "grid (the standard's band if absent).")] = None,
    max_: Annotated[int | None, typer.Option("--max", min=1, help="Most households per "
                                             "grid (the standard's band if absent).")] = None,
    lock: Annotated[list[str] | None, typer.Option(
        "--lock", metavar="CODE", help="A grid to keep as it is (repeatable).")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the proposed grids to this "
                                             "GeoJSON file.")] = None,
    resolution: Annotated[int | None, typer.Option(min=0, max=15, help="H3 resolution of "
                                                   "the building blocks (chosen if "
                                                   "absent).")] = None,
    seed: Annotated[int, typer.Option(min=0, max=2**32 - 1, help="Random seed of the "
                                      "heuristic.")] = 0,
    draft: Annotated[bool, typer.Option(
        "--draft", help="Open a draft holding the proposal (the locked grids kept), to edit "
                        "further on the map or with `gridmap drafts`.")] = False,
) -> None:
    """Propose a balanced partition of a community (spopt max-p over H3 cells) and print
    its report; with --draft it becomes a new draft, else nothing is written to the store.
    Exits 1 when a grid is out of band."""
    from gridmap.access import CLI_PRINCIPAL, NotVisible
    from gridmap.analysis.suggest import SuggestError
    from gridmap.suggestions import suggest_for_community

    if out is not None and out.suffix.lower() not in (".geojson", ".json"):
        raise fail(f"--out must be a .geojson file, not {out.name}")
    settings = get_settings()
    engine = _engine(settings)
    with engine.connect() as conn:
        try:
            result = suggest_for_community(
                conn, CLI_PRINCIPAL, community, standard=settings.standard,
                band=(min_, max_), locked=lock or [], resolution=resolution, seed=seed)
        except (NotVisible, SuggestError) as exc:
            raise fail(str(exc)) from exc
    report = result.report
    for line in report.lines():
        typer.echo(i18n.translate(line))
    cols = ["label", "households", "residents", "status", "deviation", "compactness",
            "pieces"]
    typer.echo(_table(result.grids[cols], float_format=lambda v: f"{v:.2f}",
                      labels={"status": "band"}))
    if out is not None:
        out.write_text(result.grids.to_crs(4326).to_json(drop_id=True))
        typer.echo(_("wrote {n} proposed grids to {path}", n=report.grids, path=out))
    if draft:
        from gridmap import drafts

        view = _draft_call(drafts.draft_from_suggestion, engine, CLI_PRINCIPAL, community,
                           list(result.grids.to_crs(4326).geometry.values),
                           drafts.DraftCache(), title=f"suggested partition (seed {seed})",
                           client="cli", locked=lock or [], **_draft_options(settings))
        _print_draft_stats(view)
        typer.echo(_("draft {id} holds the suggestion: edit it on the map, then `gridmap "
                     "drafts submit {draft}`", id=view.draft["id"], draft=view.draft["id"]))
    if not report.all_in_band:
        raise typer.Exit(1)


photos_app = typer.Typer(help="The photo folder of incidents.", no_args_is_help=True)
app.add_typer(photos_app, name="photos")


@photos_app.command("prune")
def photos_prune(
    apply: Annotated[bool, typer.Option(
        "--apply", help="Remove the files listed (without it, only list them).")] = False,
    older_than: Annotated[int, typer.Option(
        min=1, max=100_000, help="Only files last changed more than this many minutes ago "
        "(a younger one may belong to a step still being saved).")] = 60,
) -> None:
    """List the photo files that have no row (left by a server stopped mid-step), and
    with --apply remove them. Lists only, by default."""
    from datetime import timedelta

    from gridmap.incidents import orphan_photos
    from gridmap.store.photos import PhotoFiles

    settings = get_settings()
    folder = settings.photo_folder()
    orphans = orphan_photos(_engine(settings), PhotoFiles(folder),
                            older_than=timedelta(minutes=older_than))
    size = 0
    for path in orphans:
        size += path.stat().st_size
        typer.echo(str(path))
    if not orphans:
        typer.echo(_("no photo files without a row in {folder}", folder=str(folder)))
    elif not apply:
        typer.echo(_("{n} files without a row ({size} bytes) would be removed: run again "
                     "with --apply to remove them", n=len(orphans), size=size))
    else:
        for path in orphans:
            path.unlink(missing_ok=True)
        typer.echo(_("removed {n} files without a row ({size} bytes)", n=len(orphans),
                     size=size))


if __name__ == "__main__":
    app()
