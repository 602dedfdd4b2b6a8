"""The project's own PostgreSQL cluster: created, started, reused and stopped for real."""

from __future__ import annotations

import socket
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from gridmap.cli import app
from gridmap.settings import Settings
from gridmap.store.cluster import ClusterError, LocalCluster, PgInstall, find_postgres
from gridmap.store.db import database_url


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_cluster_lifecycle_in_a_folder_of_its_own(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "cluster", local_pg_port=_free_port(),
                        database_url=None)
    cluster = LocalCluster(settings)
    assert not cluster.exists
    try:
        url = database_url(settings)  # creates, starts, creates the database
        assert cluster.exists and cluster.is_running()
        with psycopg.connect(url.replace("+psycopg", "")) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
            version = conn.execute("SELECT postgis_lib_version()").fetchone()
            assert version and version[0].startswith("3.")
        assert cluster.start() is False  # already running: reused
    finally:
        assert cluster.stop() is True
    assert not cluster.is_running()
    assert cluster.start() is True  # a second start reuses the existing folder
    assert cluster.stop() is True


def test_missing_postgis_names_the_package(tmp_path: Path) -> None:
    install = PgInstall(version=15, bindir=find_postgres().bindir, sharedir=tmp_path)
    with pytest.raises(ClusterError, match="apt-get install postgresql-15-postgis-3"):
        install.require_postgis()


def test_status_of_a_cluster_not_created_yet(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["db", "status"], env={
        "GRIDMAP_DATA_DIR": str(tmp_path / "none"), "GRIDMAP_DATABASE_URL": ""})
    assert result.exit_code == 3
    assert "not created yet" in result.output


def test_configured_url_starts_nothing(tmp_path: Path) -> None:
    settings = Settings(database_url="postgresql+psycopg://u@127.0.0.1:1/x",
                        data_dir=tmp_path / "never")
    assert database_url(settings) == settings.database_url
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize("command", [[], ["db"], ["import"], ["export"], ["demo"],
                                     ["serve"], ["load-demo"], ["make-demo-data"],
                                     ["db", "start"], ["db", "stop"], ["db", "status"]])
def test_every_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output
