"""The ``gridmap`` command: thin Typer commands over library functions."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import Engine

from gridmap.domain.layers import LAYERS
from gridmap.io.errors import ImportRejected
from gridmap.settings import Settings, get_settings
from gridmap.store.cluster import ClusterError, LocalCluster

app = typer.Typer(help="gridmap: grid-based community governance on PostGIS.",
                  no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Show and control the database (the local cluster when "
                     "GRIDMAP_DATABASE_URL is not set).", no_args_is_help=True)
app.add_typer(db_app, name="db")

LayerArg = Annotated[str, typer.Argument(
    help=f"Layer: {', '.join(LAYERS)}.", show_default=False)]


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def _layer(name: str) -> str:
    if name not in LAYERS:
        raise fail(f"unknown layer {name!r}: choose one of {', '.join(LAYERS)}")
    return name


def _engine(settings: Settings) -> Engine:
    from gridmap.store.db import open_database

    try:
        return open_database(settings)
    except ClusterError as exc:
        raise fail(str(exc)) from exc


@db_app.command("status")
def db_status() -> None:
    """Say which database gridmap uses and whether it is running."""
    settings = get_settings()
    if settings.database_url:
        typer.echo(f"using GRIDMAP_DATABASE_URL: {settings.database_url} (nothing is started)")
        return
    cluster = LocalCluster(settings)
    if not cluster.exists:
        typer.echo(f"local cluster: not created yet (it will be, in {cluster.pgdata})")
        raise typer.Exit(3)
    state = "running" if cluster.is_running() else "stopped"
    typer.echo(f"local cluster: {state}, {cluster.pgdata}, "
               f"url {cluster.url(settings.local_db_name)}")
    if state != "running":
        raise typer.Exit(3)


@db_app.command("start")
def db_start() -> None:
    """Create (first time), start and migrate the local cluster."""
    settings = get_settings()
    engine = _engine(settings)
    typer.echo(f"ready: {engine.url.render_as_string(hide_password=True)}")


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
    typer.echo("stopped" if stopped else "was not running")


@db_app.command("url")
def db_url() -> None:
    """Print the database URL (starting the local cluster if needed)."""
    from gridmap.store.db import database_url

    try:
        typer.echo(database_url(get_settings()))
    except ClusterError as exc:
        raise fail(str(exc)) from exc


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
) -> None:
    """Import one layer file; all of it, or (on any problem) nothing."""
    from gridmap.io.read import read_layer
    from gridmap.store.load import load_layer

    name = _layer(layer)
    settings = get_settings()
    start = time.perf_counter()
    try:
        result = read_layer(path, name, crs=crs, columns=_parse_map(map_ or []),
                            layer=source_layer, x=x, y=y)
    except (ImportRejected, ValueError) as exc:
        raise fail(str(exc)) from exc
    for note in result.notes:
        typer.echo(f"note: {note}")
    for fix in result.repaired:
        typer.echo(f"repaired {fix}")
    engine = _engine(settings)
    try:
        with engine.begin() as conn:
            loaded = load_layer(conn, name, result.frame, source=str(path),
                                batch_rows=settings.copy_batch_rows,
                                progress=len(result.frame) > 200_000 and sys.stderr.isatty())
    except ImportRejected as exc:
        raise fail(str(exc)) from exc
    typer.echo(f"{loaded} in {time.perf_counter() - start:.2f} s")


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
    typer.echo(f"wrote {len(frame)} {name} to {path}")


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
        typer.echo(f"wrote {path}")


@app.command("load-demo")
def load_demo() -> None:
    """Load the demo district into the database (idempotent)."""
    from gridmap.demodata import load_demo_files

    engine = _engine(get_settings())
    try:
        for line in load_demo_files(engine):
            typer.echo(line)
    except ImportRejected as exc:
        raise fail(str(exc)) from exc


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
) -> None:
    """Serve the API and map pages."""
    import uvicorn

    from gridmap.api.app import create_app

    settings = get_settings()
    engine = _engine(settings)
    application = create_app(settings, engine=engine)
    uvicorn.run(application, host=host or settings.host, port=port or settings.port)


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
        typer.echo(f"map: http://{host or settings.host}:{port or settings.port}/")
        serve(host, port)


if __name__ == "__main__":
    app()
