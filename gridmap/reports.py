"""Reports: the partition check, facility coverage and the households out of reach.

One use case each, called by ``gridmap check|coverage`` and by the API (the same reading,
the same rules, the same errors). The API runs them as *jobs* in a :class:`ReportPool` of
worker processes, so a report of the whole district takes no time from locate, tiles or
search in the server process: each job has a time limit (the worker is stopped when it is
passed), the pool a bounded size, and a GeoJSON of households comes a page at a time.
Results are kept in a :class:`ReportCache` until the database's change notices say the data
under them changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode

import geopandas as gpd
import pandas as pd
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import OperationalError as SQLAlchemyOperationalError

from gridmap.analysis.coverage import (
    CoverageWarning,
    coverage_by,
    household_coverage,
    metric_crs,
    thresholds_for,
    uncovered,
)
from gridmap.analysis.network import network_report
from gridmap.analysis.report import CheckReport, check_communities
from gridmap.domain.access import EVERYTHING, FieldRules, Scope, household_view
from gridmap.domain.notes import Note
from gridmap.domain.notes import note as system_note
from gridmap.domain.standards import GridStandard
from gridmap.store.network import read_network
from gridmap.store.read import division_exists, read_check_inputs, read_coverage_inputs

if TYPE_CHECKING:
    from gridmap.store.listen import Change

log = logging.getLogger("gridmap")

Metric = Literal["straight", "network"]
Level = Literal["grid", "community", "township", "all"]
GEOJSON = "application/geo+json"
JSON = "application/json"
HTML = "text/html; charset=utf-8"


# --- errors: each kind has its HTTP status in gridmap/api/errors.py -------------------------

class ReportError(Exception):
    """A report that cannot be made as asked; the message says why and what to do."""


class UnknownDivision(ReportError):
    """A division code that is not in the store."""


class NothingToReport(ReportError):
    """No communities or no households where the report looks."""


class InvalidReport(ReportError):
    """Parameters that do not make a report (unknown type, a distance out of range…)."""


class ReportTooLarge(ReportError):
    """More than a response may hold."""


class ReportTimeout(ReportError):
    """The report ran past its time limit and was stopped."""


class ReportsBusy(ReportError):
    """Every report worker stayed busy while the request waited."""


class ReportDatabaseUnavailable(ReportError):
    """The report's worker lost (or could not open) its database connection."""


class ReportWorkerLost(ReportError):
    """The worker process making the report ended before answering (killed, out of
    memory); the pool replaces it."""


# --- the use cases ----------------------------------------------------------------------------

@dataclass(frozen=True)
class CheckRules:
    """What a check measures against (from the settings)."""

    standard: GridStandard = field(default_factory=GridStandard)
    tolerance_m: float = 0.1
    min_area_m2: float = 1.0


def check_report(conn: Connection, *, community: str | None = None, scope: Scope = EVERYTHING,
                 rules: CheckRules | None = None) -> tuple[CheckReport, int]:
    """Partition defects and grid balance of one community or all (within *scope*); and
    how many communities were checked.

    Raises :class:`UnknownDivision` for a community not in the store and
    :class:`NothingToReport` when no community lies (wholly) in *scope*."""
    rules = rules or CheckRules()
    if community is not None and not division_exists(conn, community, "community"):
        raise UnknownDivision(f"no village/community with code {community} in the store")
    frames = read_check_inputs(conn, community=community, scope=scope)
    if frames["communities"].empty:
        raise NothingToReport("no communities in the store: import them first "
                              "(gridmap import communities FILE)" if scope.everything else
                              "no communities (wholly) among your divisions")
    report = check_communities(
        frames["communities"], frames["grids"], frames["households"],
        workers=frames["workers"], standard=rules.standard, tolerance=rules.tolerance_m,
        min_area=rules.min_area_m2)
    return report, len(frames["communities"])


@dataclass
class Coverage:
    """Households (with their grid) and, per household, whether each facility type lies
    within each distance (``type@distance`` columns) and how far the nearest one is."""

    households: gpd.GeoDataFrame
    cov: pd.DataFrame
    thresholds: dict[str, list[float]]
    metric: Metric
    # what the analyst should know: types no threshold measures, a disconnected network
    warnings: list[str] = field(default_factory=list)
    network_pieces: str | None = None  # the walking network's connected pieces (network)

    def column(self, ftype: str | None = None) -> str:
        """The ``type@distance`` column of *ftype* (the first type if None), first distance."""
        ftype = ftype or next(iter(self.thresholds))
        return f"{ftype}@{self.thresholds[ftype][0]:g}"

    def table(self, level: Level = "all") -> pd.DataFrame:
        return coverage_by(self.households, self.cov, level=level)

    def uncovered(self, ftype: str | None = None, *, vulnerable: bool = False
                  ) -> gpd.GeoDataFrame:
        return uncovered(self.households, self.cov, self.column(ftype),
                         vulnerable_only=vulnerable)


def coverage(conn: Connection, *, division: str | None = None, types: Iterable[str] | None = None,
             distances: Iterable[float] | None = None, metric: Metric = "straight",
             scope: Scope = EVERYTHING) -> Coverage:
    """Coverage of the households of *division* (or all, within *scope*) by facility *types*
    (all if None) at *distances* (each type's life-circle distance if None), in a straight
    line or along the walking network.

    Raises :class:`InvalidReport`, :class:`UnknownDivision` or :class:`NothingToReport`."""
    try:
        thresholds = thresholds_for(list(types) if types else None,
                                    list(distances) if distances else None)
    except ValueError as exc:
        raise InvalidReport(str(exc)) from exc
    if division is not None and not division_exists(conn, division):
        raise UnknownDivision(f"no division with code {division!r} in the store")
    try:
        households, facilities = read_coverage_inputs(conn, division=division, scope=scope)
    except ValueError as exc:
        raise NothingToReport(str(exc)) from exc
    pieces = None
    try:
        network = read_network(conn) if metric == "network" else None
        if network is not None:
            pieces = str(network_report(network, households, facilities,
                                        crs=metric_crs(households)))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CoverageWarning)
            cov = household_coverage(households, facilities, thresholds=thresholds,
                                     metric=metric, network=network)
    except ValueError as exc:
        raise InvalidReport(str(exc)) from exc
    said = [str(w.message) for w in caught if issubclass(w.category, CoverageWarning)]
    return Coverage(households, cov, thresholds, metric, said, pieces)


# --- jobs: what the API asks the pool for -----------------------------------------------------

@dataclass(frozen=True)
class Output:
    """A finished report: the response body, its media type, and the ids of the personal
    rows it shows whole (for the audit log)."""

    body: bytes
    media_type: str
    row_ids: tuple[str, ...] = ()
    detail: str | Note = ""  # for the audit log: gridmap's words as a note


def _records(frame: pd.DataFrame) -> Any:
    return json.loads(frame.to_json(orient="records"))


def _features(frame: gpd.GeoDataFrame) -> Any:
    return json.loads(frame.to_json(drop_id=True, na="null"))


def _dumps(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class CheckJob:
    """``GET /api/check``: defects (GeoJSON) and balance; ``geojson``: the defects alone."""

    community: str | None
    scope: Scope
    rules: CheckRules
    form: Literal["report", "geojson"] = "report"

    def run(self, conn: Connection) -> Output:
        report, _ = check_report(conn, community=self.community, scope=self.scope,
                                 rules=self.rules)
        defects = _features(report.defects)
        if self.form == "geojson":
            return Output(_dumps(defects), GEOJSON)
        balance = report.balance.drop(columns=report.balance.geometry.name)
        return Output(_dumps({"defects": defects, "balance": _records(balance),
                              "grids_outside_band": len(report.unbalanced),
                              "households_outside_grids": report.outside_households}), JSON)


@dataclass(frozen=True)
class CommunityMapJob:
    """``GET /maps/community/{code}``: a folium map of one community's check."""

    community: str
    scope: Scope
    rules: CheckRules
    facilities: bool  # whether the caller may see facilities

    def run(self, conn: Connection) -> Output:
        from gridmap.store.read import read_layer
        from gridmap.tiles.maps import community_map

        report, _ = check_report(conn, community=self.community, scope=self.scope,
                                 rules=self.rules)
        facilities = read_layer(conn, "facilities", community=self.community,
                                scope=self.scope) if self.facilities else None
        page = community_map(report.balance, defects=report.defects, facilities=facilities,
                             title=f"{self.community}: households per grid", assets="server")
        return Output(page.get_root().render().encode(), HTML)


@dataclass(frozen=True)
class CoverageJob:
    """``GET /api/coverage``: shares within reach per unit, type and distance."""

    division: str | None
    types: tuple[str, ...]
    distances: tuple[float, ...]
    metric: Metric
    level: Level
    scope: Scope

    def run(self, conn: Connection) -> Output:
        result = coverage(conn, division=self.division, types=self.types,
                          distances=self.distances, metric=self.metric, scope=self.scope)
        return Output(_dumps(_records(result.table(self.level))), JSON)


@dataclass(frozen=True)
class UncoveredJob:
    """``GET /api/coverage/uncovered.geojson``: one page of the households out of reach of
    one facility type, with ``numberMatched`` and ``next``/``prev`` links."""

    ftype: str
    distance: float | None
    division: str | None
    metric: Metric
    vulnerable: bool
    scope: Scope
    fields: FieldRules
    audited: bool  # the caller sees some personal field whole
    limit: int
    offset: int
    url: str  # this endpoint's URL, without a query
    query: tuple[tuple[str, str], ...]  # the request's query, offset left out
    max_bytes: int  # a page larger than this is refused (ReportTooLarge)

    def run(self, conn: Connection) -> Output:
        result = coverage(conn, division=self.division, types=[self.ftype],
                          distances=[self.distance] if self.distance is not None else None,
                          metric=self.metric, scope=self.scope)
        column = result.column()
        layer = result.uncovered(vulnerable=self.vulnerable).replace([float("inf")], None)
        matched = len(layer)
        page = layer.iloc[self.offset:self.offset + self.limit]
        body = _features(page)
        for feature in body["features"]:
            feature["properties"] = household_view(feature["properties"], self.fields)
        links = [{"href": self._at(self.offset), "rel": "self", "type": GEOJSON}]
        if self.offset + len(page) < matched:
            links.append({"href": self._at(self.offset + self.limit), "rel": "next",
                          "type": GEOJSON})
        if self.offset > 0:
            links.append({"href": self._at(max(self.offset - self.limit, 0)), "rel": "prev",
                          "type": GEOJSON})
        body.update(numberMatched=matched, numberReturned=len(page), links=links)
        data = _dumps(body)
        if len(data) > self.max_bytes:
            raise ReportTooLarge(
                f"this page of {len(page)} households is {len(data) / 1e6:.1f} MB, over the "
                f"limit of {self.max_bytes / 1e6:g} MB: ask for fewer at a time (limit=, "
                "then the next link) or narrow the report (division=, vulnerable=true)")
        ftype, _, distance = column.rpartition("@")
        detail = system_note("read_uncovered_vulnerable" if self.vulnerable else
                             "read_uncovered", facility_type=ftype, distance=distance)
        ids = tuple(str(v) for v in page["id"]) if self.audited else ()
        return Output(data, GEOJSON, ids, detail)

    def _at(self, offset: int) -> str:
        return f"{self.url}?{urlencode([*self.query, ('offset', str(offset))])}"


@dataclass(frozen=True)
class CoverageMapJob:
    """``GET /maps/coverage``: share within reach per grid on a map and, for roles that see
    care flags, the vulnerable households out of reach."""

    ftype: str
    distance: float | None
    division: str | None
    metric: Metric
    scope: Scope
    fields: FieldRules
    vulnerable: bool  # the caller may see vulnerable households (they are audited)

    def run(self, conn: Connection) -> Output:
        from gridmap.store.read import read_layer
        from gridmap.tiles.maps import coverage_map

        result = coverage(conn, division=self.division, types=[self.ftype],
                          distances=[self.distance] if self.distance is not None else None,
                          metric=self.metric, scope=self.scope)
        column = result.column()
        grids = read_layer(conn, "grids", scope=self.scope)
        units = grids.merge(result.table("grid"), left_on="code", right_on="unit",
                            how="inner")
        if units.empty:
            raise NothingToReport("these households are not in any grid: run `gridmap "
                                  "assign`")
        out, ids = None, tuple[str, ...]()
        if self.vulnerable:
            out = result.uncovered(vulnerable=True)
            out = out[[c for c in out.columns
                       if c in household_view(dict.fromkeys(out.columns), self.fields)]]
            ids = tuple(str(v) for v in out["id"])
        distance = result.thresholds[self.ftype][0]
        page = coverage_map(units, uncovered=out, assets="server",
                            title=f"Residents within {distance:g} m of {self.ftype}")
        return Output(page.get_root().render().encode(), HTML, ids,
                      f"vulnerable out of reach {column}")


Job = CheckJob | CommunityMapJob | CoverageJob | UncoveredJob | CoverageMapJob


# --- the worker processes ---------------------------------------------------------------------

def _serve(pipe: Pipe) -> None:
    """A worker process: takes the database URL, then runs the jobs sent down *pipe*, one at
    a time, on a connection of its own; answers ``(id, "ok", Output)`` or ``(id, "error",
    ReportError)``; ends when the server closes the pipe."""
    from gridmap.store.db import make_engine

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server stops its workers itself
    # on a busy machine the server's own process (locate, tiles, search) gets the CPU first
    os.nice(10)
    try:
        engine = make_engine(pipe.recv())
    except (EOFError, OSError):
        return
    _warm_up()
    while True:
        try:
            number, job = pipe.recv()
        except (EOFError, OSError):
            return
        try:
            with engine.connect() as conn:
                answer: tuple[str, Any] = ("ok", job.run(conn))
        except ReportError as exc:
            answer = ("error", exc)
        except Exception as exc:
            if database_away(exc):
                answer = ("error", ReportDatabaseUnavailable(
                    "the database is unavailable: retry shortly"))
            else:  # a bug (any other database error included): a 500 for this request;
                # the worker goes on — ending it left a dead worker in the pool
                log.exception("report worker: %r failed", job)
                answer = ("error", RuntimeError(
                    f"the report failed: {type(exc).__name__}: {exc}"))
        pipe.send((number, *answer))


def database_away(exc: BaseException) -> bool:
    """Whether *exc* — or what it was raised from, as pandas' ``read_sql`` wraps the driver's
    error in its own ``DatabaseError`` — says the database went away (shut down, restarted,
    unreachable) rather than that the report is wrong.

    >>> import psycopg
    >>> try:
    ...     try:
    ...         raise psycopg.errors.AdminShutdown("terminating connection")
    ...     except psycopg.Error as inner:
    ...         raise RuntimeError("Execution failed on sql 'SELECT 1'") from inner
    ... except RuntimeError as outer:
    ...     database_away(outer)
    True
    >>> database_away(ValueError("no such facility type"))
    False
    """
    import psycopg

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (SQLAlchemyOperationalError, psycopg.OperationalError)):
            return True
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        current = current.__cause__ or current.__context__
    return False


def _warm_up() -> None:
    """Import what the reports use before the first job arrives: seconds of start-up a first
    report would otherwise spend inside its time limit (under load, enough to pass it — the
    flaky first ``/api/check``)."""
    import gridmap.analysis.coverage
    import gridmap.analysis.report
    import gridmap.tiles.maps  # noqa: F401


class _Worker:
    """A worker process (``python -m gridmap.reports``: a fresh interpreter, never a fork of
    the threaded server) and the socket to it."""

    def __init__(self, database_url: str) -> None:
        ours, theirs = socket.socketpair()
        with theirs:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gridmap.reports", str(theirs.fileno())],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL)
        self.pipe = Pipe(ours.detach())
        self.pipe.send(database_url)  # not on the command line, where `ps` would show it

    def alive(self) -> bool:
        return self.process.poll() is None

    def call(self, number: int, job: Job, timeout: float) -> tuple[str, Any]:
        """Send *job*, wait at most *timeout* s for its answer (TimeoutError); the worker
        ending meanwhile is a :class:`ReportWorkerLost`."""
        deadline = time.monotonic() + timeout
        try:
            self.pipe.send((number, job))
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not self.pipe.poll(left):
                    raise TimeoutError
                answer, *result = self.pipe.recv()
                if answer == number:  # anything else is stale (cannot happen: see run)
                    return result[0], result[1]
        except TimeoutError:  # an OSError too, but not the worker's end
            raise
        except (EOFError, OSError) as exc:  # the other end closed: the process ended
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(5)
            raise ReportWorkerLost(
                f"the report worker stopped (exit status {self.process.returncode}) while "
                "making this report: retry shortly; if it happens again, narrow the report "
                "(a division, one facility type)") from exc

    def stop(self) -> None:
        self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)  # a kill ends it; a machine under load may be slow to say so
        self.pipe.close()


class ReportPool:
    """At most *workers* reports at a time, each in a process of its own (the server's own
    threads keep the GIL for locate, tiles and search). A job that runs past *timeout_s*
    (queueing included) is stopped by killing its worker, which is replaced; a request that
    goes away stops its job the same way. Workers start with :meth:`start` (else on first
    use), so that a first report does not wait for an interpreter to start."""

    def __init__(self, database_url: str, *, workers: int, timeout_s: float) -> None:
        self.database_url = database_url
        self.workers = workers
        self.timeout_s = timeout_s
        self._numbers = itertools.count(1)
        self._idle: asyncio.Queue[_Worker | None] | None = None
        self._all: set[_Worker] = set()

    def _queue(self) -> asyncio.Queue[_Worker | None]:
        if self._idle is None:  # made on the server's event loop
            self._idle = asyncio.Queue()
            for _ in range(self.workers):
                self._idle.put_nowait(None)  # a slot whose worker starts when first needed
        return self._idle

    def start(self) -> None:
        """Start every worker now (call on the server's event loop)."""
        idle = self._queue()
        for _ in range(idle.qsize()):
            worker = idle.get_nowait()
            idle.put_nowait(worker or self._start())

    def _start(self) -> _Worker:
        worker = _Worker(self.database_url)
        self._all.add(worker)
        return worker

    def _stop(self, worker: _Worker) -> None:
        self._all.discard(worker)
        worker.stop()

    async def run(self, job: Job) -> Output:
        """Run *job* in a worker; its :class:`ReportError` is raised here."""
        idle = self._queue()
        started = time.monotonic()
        try:
            slot = await asyncio.wait_for(idle.get(), self.timeout_s)
        except TimeoutError:
            raise ReportsBusy(f"all {self.workers} report workers stayed busy for "
                              f"{self.timeout_s:g} s: retry shortly") from None
        worker: _Worker | None = None
        try:
            if slot is not None and not slot.alive():
                # it ended while idle (killed, out of memory): a job sent to it would fail
                log.warning("a report worker had ended (exit status %s): starting another",
                            slot.process.returncode)
                self._stop(slot)
                slot = None
            worker = slot or await asyncio.to_thread(self._start)
            left = self.timeout_s - (time.monotonic() - started)
            status, value = await asyncio.to_thread(worker.call,  # type: ignore[union-attr]
                                                    next(self._numbers), job, max(left, 0.001))
        except TimeoutError:
            self._stop(worker)  # type: ignore[arg-type]
            worker = None
            raise ReportTimeout(
                f"the report took longer than its limit of {self.timeout_s:g} s and was "
                "stopped: narrow it (a division, one facility type) or ask the administrator "
                "to raise GRIDMAP_REPORT_TIMEOUT_S") from None
        except BaseException:
            # cancelled (the client went away) or the worker ended (ReportWorkerLost): stop
            # it, so that no answer for this job can reach the next one
            if worker is not None:
                self._stop(worker)
                worker = None
            raise
        finally:
            idle.put_nowait(worker)
        if status == "error":
            raise value
        assert isinstance(value, Output)
        return value

    def close(self) -> None:
        for worker in list(self._all):
            self._stop(worker)


# --- the cache ----------------------------------------------------------------------------------

# the tables a report reads: a change to any of them makes every kept report stale
READS = frozenset({"division", "grid", "grid_worker", "household", "facility", "grid_load"})


class ReportCache:
    """Finished reports by job, up to *max_bytes* (least recently used out first), until a
    change notice of a table they read (:meth:`apply`, a change subscriber)."""

    def __init__(self, *, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        # by the job's repr: every field, values compared (some are unhashable models)
        self._kept: OrderedDict[str, Output] = OrderedDict()
        self._bytes = 0
        self._generation = 0
        self._lock = threading.Lock()

    @property
    def generation(self) -> int:
        return self._generation

    def apply(self, changes: list[Change]) -> None:
        if any(change.table in READS for change in changes):
            with self._lock:
                self._generation += 1
                self._kept.clear()
                self._bytes = 0

    def get(self, job: Job) -> Output | None:
        key = repr(job)
        with self._lock:
            found = self._kept.get(key)
            if found is not None:
                self._kept.move_to_end(key)
            return found

    def put(self, job: Job, output: Output, *, generation: int) -> None:
        """Keep *output*, unless the data changed since *generation* (when it was asked)."""
        size, key = len(output.body), repr(job)
        with self._lock:
            if generation != self._generation or size > self.max_bytes:
                return
            with contextlib.suppress(KeyError):
                self._bytes -= len(self._kept.pop(key).body)
            self._kept[key] = output
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, dropped = self._kept.popitem(last=False)
                self._bytes -= len(dropped.body)


class Reports:
    """The API's way to a report: from the cache, or from the pool (and then kept)."""

    def __init__(self, pool: ReportPool, cache: ReportCache) -> None:
        self.pool = pool
        self.cache = cache
        # reports under way, by job and data generation: callers asking for the same report
        # at once share one computation instead of taking a worker each
        self._running: dict[tuple[str, int], asyncio.Future[Output]] = {}

    async def get(self, job: Job) -> Output:
        found = self.cache.get(job)
        if found is not None:
            return found
        generation = self.cache.generation
        key = (repr(job), generation)
        running = self._running.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[Output] = asyncio.get_running_loop().create_future()
        self._running[key] = future
        try:
            output = await self.pool.run(job)
        except BaseException as exc:
            # a leader that went away (cancelled) leaves its followers a retryable 503
            future.set_exception(exc if isinstance(exc, Exception) else ReportsBusy(
                "the same report, started by another request, was abandoned; ask again"))
            future.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        finally:
            self._running.pop(key, None)
        future.set_result(output)
        self.cache.put(job, output, generation=generation)
        return output

    def close(self) -> None:
        self.pool.close()


if __name__ == "__main__":  # a worker process of a ReportPool
    from gridmap.reports import _serve as serve  # the module's own classes, not __main__'s

    serve(Pipe(int(sys.argv[1])))
