"""Configuration, read from ``GRIDMAP_*`` environment variables when the app or CLI starts.

Nothing here runs at import time: call :func:`get_settings` (or build :class:`Settings`
yourself in tests) where the program starts.
"""

from __future__ import annotations

from datetime import date, time
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from gridmap.domain.access import PUBLIC_CHOICES, Resource
from gridmap.domain.osm import OsmRules
from gridmap.domain.standards import GridStandard
from gridmap.domain.worktime import WorkCalendar
from gridmap.i18n import Language

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """All of gridmap's configuration.

    Examples
    --------
    >>> Settings(database_url="postgresql+psycopg://u@h/db").database_url
    'postgresql+psycopg://u@h/db'
    """

    model_config = SettingsConfigDict(env_prefix="GRIDMAP_", extra="ignore",
                                      env_nested_delimiter="__")

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of a PostGIS database. Unset: a local cluster is started.",
    )
    data_dir: Path = Field(
        default=PROJECT_ROOT / ".gridmap",
        description="Folder of the project's own local PostgreSQL cluster and caches.",
    )
    local_pg_port: int | None = Field(
        default=None, ge=1024, le=65535,
        description="Port of the local cluster. Unset: a free port from 55432 up is chosen "
        "when the cluster is created and kept in its folder.")
    local_db_name: str = "gridmap"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    copy_batch_rows: int = Field(default=500_000, ge=1000)
    standard: GridStandard = Field(default_factory=GridStandard)
    check_tolerance_m: float = Field(
        default=0.1, gt=0, le=100,
        description="Gaps, overlaps and spill-over thinner than twice this are boundary noise.")
    check_min_area_m2: float = Field(default=1.0, ge=0)
    draft_approval: Literal["two_step", "one_step"] = Field(
        default="two_step",
        description="two_step: a submitted draft is approved by another user holding the "
        "county (or an admin) before it is published; one_step: submitting approves it.")
    osm: OsmRules = Field(default_factory=OsmRules)
    locate_margin_m: float = Field(
        default=10.0, ge=0, le=1000,
        description="Within this distance of a grid edge, locate lists the other candidates.")
    tile_cache_tiles: int = Field(
        default=50_000, ge=0,
        description="Vector tiles kept in memory per server process (0: render every request).")
    tile_connections: int = Field(
        default=8, ge=1, le=100, description="Database connections that render tiles.")
    report_workers: int = Field(
        default=2, ge=1, le=64,
        description="Worker processes per server process that make the heavy reports "
        "(check, coverage, households out of reach, their maps), off the request path.")
    report_timeout_s: float = Field(
        default=60, gt=0, le=3600,
        description="Longest a report may take, waiting for a worker included: past it the "
        "request gets a 504 and the report is stopped.")
    report_page_mb: float = Field(
        default=20, gt=0, le=1000,
        description="Largest page of households out of reach, in MB (larger: 413, asking "
        "for a smaller limit).")
    report_cache_mb: float = Field(
        default=64, ge=0, le=10_000,
        description="Finished reports kept per server process until the data under them "
        "changes (0: none).")
    secret_key: SecretStr | None = Field(
        default=None, min_length=32,
        description="Key that signs access tokens. Unset: one is generated and kept in "
        "data_dir/secret_key (never commit it).")
    token_minutes: int = Field(
        default=480, ge=1, le=60 * 24 * 30,
        description="How long an access token (and a page session) lasts.")
    public: list[Resource] = Field(
        default=[Resource.boundaries],
        description="What callers who are not signed in may read (boundaries, counts, "
        "facilities); [] for nothing.")
    cors_origins: list[str] = Field(
        default=[], description="Origins other web sites may call the API from; none by "
        "default (CORS off).")
    sign_in_free_failures: int = Field(
        default=5, ge=1, le=100,
        description="Failed sign-ins to one account before each further attempt must wait "
        "(1 s, doubling up to sign_in_max_wait_s).")
    sign_in_max_wait_s: int = Field(default=900, ge=1)
    cookie_secure: bool = Field(
        default=False, description="Send the page session cookie over HTTPS only (set it "
        "when served behind TLS).")

    dask_scheduler: str | None = Field(
        default=None, description="Address of the dask.distributed scheduler the province "
        "runs use (tcp://host:8786). Unset: a LocalCluster of one process per core.")

    incident_categories: Path | None = Field(
        default=None, description="CSV of incident categories and their handling limits "
        "(columns as gridmap/domain/data/categories.csv, which is used when unset).")
    office_hours: list[tuple[time, time]] = Field(
        default=[(time(8, 30), time(12)), (time(13, 30), time(17, 30))],
        description="Office periods of a working day, for deadlines in working time.")
    time_zone: str = Field(default="Asia/Shanghai", description="The deployment's time zone "
                           "(pages and the CLI show times in it).")
    language: Language = Field(
        default="zh-CN", description="What the API, pages and CLI speak when the caller "
        "names no language (Accept-Language, the page's switch): zh-CN or en.")
    extra_holidays: list[date] = Field(
        default=[], description="Days off beyond the national calendar (chinesecalendar).")
    extra_workdays: list[date] = Field(
        default=[], description="Working days beyond the national calendar.")

    photo_dir: Path | None = Field(
        default=None, description="Folder of incident photos (unset: data_dir/photos). "
        "Shared by every server process; back it up with the database.")
    photo_max_bytes: int = Field(
        default=5 * 1024 * 1024, ge=1024, le=100 * 1024 * 1024,
        description="Largest photo accepted (bytes); a larger one is refused with 413.")

    overdue_interval_s: float = Field(
        default=60, ge=0, description="How often the service looks for cases near or past a "
        "deadline (0: never; the job's state is in the database).")
    overdue_warn_minutes: int = Field(
        default=60, ge=0, le=24 * 60,
        description="Warn the worker this long before a deadline.")
    slow_report_ms: float = Field(
        default=200, ge=0, description="A report (POST /api/incidents) that takes longer is "
        "logged as a warning with where its time went (0: never).")

    def work_calendar(self) -> WorkCalendar:
        return WorkCalendar(periods=tuple(self.office_hours), tz=self.time_zone,
                            extra_holidays=frozenset(self.extra_holidays),
                            extra_workdays=frozenset(self.extra_workdays))

    def photo_folder(self) -> Path:
        return self.photo_dir if self.photo_dir is not None else self.data_dir / "photos"

    def public_resources(self) -> frozenset[Resource]:
        chosen = frozenset(self.public)
        if not chosen <= frozenset(PUBLIC_CHOICES):
            raise ValueError(f"public may hold {', '.join(PUBLIC_CHOICES)} only")
        return chosen


def get_settings() -> Settings:
    """Build the settings from the environment (call once at start-up)."""
    return Settings()
