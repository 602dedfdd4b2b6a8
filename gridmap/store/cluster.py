"""A PostgreSQL cluster in the project's own folder, created and started on demand.

When no ``GRIDMAP_DATABASE_URL`` is configured, gridmap runs its own cluster under
``Settings.data_dir`` so that a new user needs nothing set up by hand. PostgreSQL refuses
to run as root, so when gridmap runs as root the server runs as the ``postgres`` system
user (created by Debian's PostgreSQL packages), which then owns the cluster folder.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from gridmap.settings import Settings


class ClusterError(RuntimeError):
    """The local cluster cannot be created or started; the message says what to do."""


@dataclass(frozen=True)
class PgInstall:
    """The PostgreSQL server binaries found on this machine."""

    version: int
    bindir: Path
    sharedir: Path

    @property
    def has_postgis(self) -> bool:
        return (self.sharedir / "extension" / "postgis.control").exists()

    def require_postgis(self) -> None:
        if not self.has_postgis:
            raise ClusterError(
                f"PostGIS is not installed for PostgreSQL {self.version}. Install it with:\n"
                f"    apt-get install postgresql-{self.version}-postgis-3\n"
                "(or run `make setup`, which does this), then run the command again."
            )


def find_postgres() -> PgInstall:
    """Find the newest PostgreSQL server installation (Debian layout first, then PATH)."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
        reverse=True,
    )
    for postgres in candidates:
        version = int(postgres.parent.parent.name)
        return PgInstall(version, postgres.parent, Path(f"/usr/share/postgresql/{version}"))
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir", "--sharedir", "--version"],
                             capture_output=True, text=True, check=True).stdout.split("\n")
        bindir, sharedir = Path(out[0]), Path(out[1])
        if (bindir / "postgres").exists():
            version = int(out[2].split()[1].split(".")[0])
            return PgInstall(version, bindir, sharedir)
    raise ClusterError(
        "No PostgreSQL server is installed. Install it with:\n"
        "    apt-get install postgresql-15 postgresql-15-postgis-3\n"
        "or set GRIDMAP_DATABASE_URL to an existing PostGIS database."
    )


class LocalCluster:
    """Create, start, stop and describe the project's own cluster.

    Examples
    --------
    >>> from gridmap.settings import Settings
    >>> LocalCluster(Settings(data_dir="/tmp/gm-doc", local_pg_port=55999)).url("gridmap")
    'postgresql+psycopg://postgres@127.0.0.1:55999/gridmap'
    """

    FIRST_PORT = 55432

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = Path(settings.data_dir)

    @property
    def port(self) -> int:
        """The configured port, else the one chosen when the cluster was created."""
        if self.settings.local_pg_port:
            return self.settings.local_pg_port
        saved = self.root / "port"
        if saved.exists():
            return int(saved.read_text().strip())
        return self._free_port()

    def _free_port(self) -> int:
        for port in range(self.FIRST_PORT, self.FIRST_PORT + 200):
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
        raise ClusterError("no free port in 55432-55631 for the local cluster; "
                           "set GRIDMAP_LOCAL_PG_PORT")

    @property
    def pgdata(self) -> Path:
        return self.root / "pgdata"

    @property
    def sockdir(self) -> Path:
        return self.root / "run"

    @property
    def logfile(self) -> Path:
        return self.root / "postgres.log"

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{dbname}"

    # -- running commands as the right user ---------------------------------------------
    def _run_as(self) -> list[str]:
        if os.geteuid() != 0:
            return []
        try:
            pwd.getpwnam("postgres")
        except KeyError as exc:
            raise ClusterError(
                "PostgreSQL will not run as root and there is no 'postgres' user. Create one "
                "(useradd --system postgres) or run gridmap as an ordinary user."
            ) from exc
        return ["runuser", "-u", "postgres", "--"]

    def _pg(self, install: PgInstall, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [*self._run_as(), str(install.bindir / tool), *args]
        return subprocess.run(cmd, capture_output=True, text=True, check=False)

    def _own(self, *paths: Path) -> None:
        if os.geteuid() != 0:
            return
        pw = pwd.getpwnam("postgres")
        for path in paths:
            os.chown(path, pw.pw_uid, pw.pw_gid)
        # postgres must be able to reach the folder through its parents
        for parent in [self.root, *self.root.parents]:
            mode = parent.stat().st_mode
            if not mode & 0o001:
                os.chmod(parent, mode | 0o001)

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def exists(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def is_running(self) -> bool:
        if not self.exists:
            return False
        install = find_postgres()
        return self._pg(install, "pg_ctl", "-D", str(self.pgdata), "status").returncode == 0

    def init(self) -> bool:
        """Create the cluster if it does not exist yet; return True when it was created."""
        install = find_postgres()
        install.require_postgis()
        if self.exists:
            return False
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "port").write_text(f"{self.port}\n")
        self.pgdata.mkdir(exist_ok=True)
        self.sockdir.mkdir(exist_ok=True)
        self.logfile.touch()
        self._own(self.pgdata, self.sockdir, self.logfile)
        os.chmod(self.pgdata, 0o700)
        res = self._pg(install, "initdb", "-D", str(self.pgdata), "-U", "postgres",
                       "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8")
        if res.returncode != 0:
            raise ClusterError(f"initdb failed:\n{res.stderr or res.stdout}")
        conf = self.pgdata / "postgresql.conf"
        with conf.open("a") as fh:
            fh.write(
                "\n# gridmap local cluster: the server options are given at each start\n"
                "# (LocalCluster.server_options)\n"
            )
        return True

    def server_options(self) -> list[str]:
        """Settings passed at every start, so a changed default reaches old clusters too.

        A development cluster of one machine: no replication, so ``wal_level = minimal``
        lets bulk loads into a table emptied in the same transaction skip the WAL. Commits are
        synchronous: an incident the API acknowledged survives a crash of the machine (a bulk
        load has one commit, so it would gain nothing from skipping the flush).
        """
        return [
            "-c", "listen_addresses=127.0.0.1", "-c", f"port={self.port}",
            "-c", f"unix_socket_directories={self.sockdir}",
            "-c", "shared_buffers=512MB", "-c", "work_mem=64MB",
            "-c", "maintenance_work_mem=1GB", "-c", "max_wal_size=4GB",
            "-c", "synchronous_commit=on", "-c", "max_connections=200",
            "-c", "wal_level=minimal", "-c", "max_wal_senders=0",
        ]

    def start(self) -> bool:
        """Start the cluster (creating it first if needed); return True if it was started."""
        self.init()
        if self.is_running():
            return False
        install = find_postgres()
        res = self._pg(install, "pg_ctl", "-D", str(self.pgdata), "-l", str(self.logfile),
                       "-w", "-t", "60", "-o", shlex.join(self.server_options()), "start")
        if res.returncode != 0:
            tail = self.logfile.read_text(errors="replace").splitlines()[-15:]
            raise ClusterError(
                f"The local PostgreSQL cluster in {self.pgdata} did not start "
                f"(is port {self.port} taken? set GRIDMAP_LOCAL_PG_PORT):\n"
                + "\n".join([*tail, (res.stderr or res.stdout).strip()])
            )
        return True

    def stop(self) -> bool:
        """Stop the cluster; return True if it was running."""
        if not self.is_running():
            return False
        install = find_postgres()
        res = self._pg(install, "pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop")
        if res.returncode != 0:
            raise ClusterError(f"pg_ctl stop failed:\n{res.stderr or res.stdout}")
        return True
