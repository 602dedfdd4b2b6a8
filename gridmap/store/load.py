"""Bulk writes: a validated frame goes through ``COPY`` into a temporary stage table, is
checked against what the database already holds, and is upserted on its key.

Everything runs on the caller's connection and inside its transaction: an import either
loads completely or, on any error, leaves the database as it was.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import shapely
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter
from psycopg.types.json import Jsonb
from sqlalchemy.engine import Connection, Engine
from tqdm import tqdm

from gridmap.analysis.assign import GridIndexError
from gridmap.domain import notes
from gridmap.domain.codes import division_level
from gridmap.domain.layers import LAYERS, LayerSpec
from gridmap.domain.notes import Note
from gridmap.i18n import CHANGES, label
from gridmap.i18n import gettext as _t
from gridmap.io.errors import ImportRejected, Problem
from gridmap.store.assign import (
    POINT_TABLES,
    assign_frame,
    assign_layer,
    follow_assignment,
    grid_index,
    store_counted_load,
)
from gridmap.store.binary_copy import OutOfRange, check_ranges, column_kind, frame_to_copy
from gridmap.store.partitions import (
    PARTITION_KEYS,
    conflict_key,
    move_changed_partitions,
    place_households_in_counties,
    with_partition_key,
)
from gridmap.store.sqlfiles import read_sql

STAGE = "gm_stage"
# a load into an empty table with at least this many rows rebuilds the indexes afterwards
BULK_MIN_ROWS = 50_000
# indexes a bulk load builds after its commit, concurrently: the trigram (search) ones
DEFERRED_INDEX = "gin_trgm_ops"


@dataclass
class LoadResult:
    layer: str
    rows: int
    inserted: int
    updated: int
    versions: int = 0
    diff: GridDiff | None = None
    phases: dict[str, float] = field(default_factory=dict)  # seconds per step of a bulk load
    deferred: list[str] = field(default_factory=list)  # index definitions to build after commit
    inside: int | None = None  # points: how many of the file's lie in a grid (stored so)

    def __str__(self) -> str:
        text = _t("{layer}: {rows} rows read, {inserted} inserted, {updated} updated, "
                 "{unchanged} unchanged", layer=label("resource", self.layer), rows=self.rows,
                 inserted=self.inserted, updated=self.updated,
                 unchanged=self.rows - self.inserted - self.updated)
        if self.inside is not None:
            text += _t("; {inside} in a grid, {outside} outside every grid",
                       inside=self.inside, outside=self.rows - self.inside)
        if self.layer == "grids":
            text += _t("; {versions} community grid version(s) published",
                      versions=self.versions)
        if self.diff is not None and self.diff.grids:
            text += "\n" + str(self.diff)
        return text


@dataclass
class GridDiff:
    """What a grids import changed: grids added, retired, reshaped or renamed, and what moved
    with them (points re-assigned in the same transaction, workers left without a grid)."""

    grids: list[tuple[str, str]] = field(default_factory=list)  # (code, change)
    workers_detached: int = 0
    moved: dict[str, int] = field(default_factory=dict)  # layer → points whose grid changed

    def codes(self, change: str) -> list[str]:
        return [code for code, what in self.grids if what == change]

    def __str__(self) -> str:
        lines = [f"  {label('change', what)}: {', '.join(self.codes(what))}"
                 for what in CHANGES if self.codes(what)]
        lines += ["  " + _t("{layer} moved to another grid (or out of every grid): {n}",
                           layer=label("resource", layer), n=n)
                  for layer, n in self.moved.items()]
        if self.workers_detached:
            lines.append("  " + _t("workers left without a grid (their grid retired): {n} — "
                                  "assign them again", n=self.workers_detached))
        return "\n".join(lines)


def _raw(conn: Connection) -> psycopg.Connection:
    """The psycopg connection under a SQLAlchemy one (COPY needs it)."""
    raw = conn.connection.driver_connection
    if not isinstance(raw, psycopg.Connection):
        raise TypeError("gridmap's store needs the psycopg (3) driver: postgresql+psycopg://")
    return raw


def _table_columns(spec: LayerSpec) -> list[str]:
    cols = list(spec.columns)
    if spec.table == "division":
        cols += ["level", "parent_code"]
    if spec.table == "grid":
        cols += ["community_code"]
    if spec.table in PARTITION_KEYS:
        cols.append(PARTITION_KEYS[spec.table])
    if spec.geometry != "none":
        cols.append("geom")
    return cols


def _prepare(frame: pd.DataFrame, spec: LayerSpec) -> tuple[pd.DataFrame, list[Problem]]:
    """Add derived columns (level, parent, community) and check the code hierarchy."""
    frame = frame.copy()
    problems: list[Problem] = []
    if spec.table == "division":
        levels = [division_level(c) for c in frame["code"]]
        for i, level in enumerate(levels):
            if level != spec.division_level:
                problems.append(Problem(i, frame["code"].iat[i],
                                        f"the code denotes a {level}, not a {spec.division_level}"))
        frame["level"] = spec.division_level
        frame["parent_code"] = [None if spec.division_level == "county"
                                else c[:6] + "000000" if spec.division_level == "township"
                                else c[:9] + "000" for c in frame["code"]]
    if spec.table == "grid":
        frame["community_code"] = frame["code"].str.slice(0, 12)
    return frame, problems


def _arrow(frame: pd.DataFrame, columns: list[str]) -> pa.Table:
    arrays = {}
    for col in columns:
        if col in ("gx", "gy"):
            xy = shapely.get_coordinates(np.asarray(frame.geometry.values))
            arrays["gx"], arrays["gy"] = pa.array(xy[:, 0]), pa.array(xy[:, 1])
            continue
        if col == "geom":
            geoms = shapely.set_srid(np.asarray(frame.geometry.values), 4326)
            arrays[col] = pa.array(shapely.to_wkb(geoms, hex=True, include_srid=True))
        elif isinstance(frame[col].dtype, pd.DatetimeTZDtype):
            arrays[col] = pa.array(frame[col].dt.strftime("%Y-%m-%dT%H:%M:%S.%f%z"))
        else:
            arrays[col] = pa.array(frame[col], from_pandas=True)
    return pa.table(arrays)


def column_types(conn: Connection, table: str, columns: list[str]) -> list[str]:
    """The declared types of *table*'s *columns* (as ``format_type`` spells them)."""
    rows: dict[str, str] = dict(_raw(conn).execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
        (table,)).fetchall())
    return [rows[c] for c in columns]


def copy_into(conn: Connection, table: str, frame: pd.DataFrame, columns: list[str], *,
              batch_rows: int = 500_000, progress: bool = False, freeze: bool = False) -> None:
    """``COPY`` *frame*'s *columns* into *table*: in PostgreSQL's binary format, built column
    by column (:mod:`gridmap.store.binary_copy`), when every column's type has an encoder;
    otherwise as CSV with geometry as hex EWKB. A frame's geometry column is ``geom``.

    A thread sends each block while the next is encoded (psycopg's ``QueuedLibpqWriter``),
    so the server parses one batch while Python builds the next. With *freeze* the rows are
    written frozen (``COPY … FREEZE``: *table* must have been created or emptied in the
    current subtransaction), so no reader after the commit rewrites every page to set its
    hint bits."""
    raw = _raw(conn)
    kinds = [column_kind(t) for t in column_types(conn, table, columns)]
    binary = all(k is not None for k in kinds)
    # the text built here (Arrow's strings, its CSV) is UTF-8: a connection speaking another
    # encoding (GBK, say) speaks UTF-8 for the COPY; its rollback undoes this on a failure
    spoken = raw.info.parameter_status("client_encoding")
    if spoken not in (None, "UTF8"):
        raw.execute("SET LOCAL client_encoding = 'UTF8'")
    _copy(raw, table, frame, columns, kinds, binary=binary, batch_rows=batch_rows,
          progress=progress, freeze=freeze)
    if spoken not in (None, "UTF8"):
        raw.execute(sql.SQL("SET LOCAL client_encoding = {}").format(sql.Literal(spoken)))


def _copy(raw: psycopg.Connection, table: str, frame: pd.DataFrame, columns: list[str],
          kinds: list[str | None], *, binary: bool, batch_rows: int, progress: bool,
          freeze: bool) -> None:
    stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT {}{})").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL("binary" if binary else "csv"), sql.SQL(", FREEZE" if freeze else ""))
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    bar = tqdm(total=len(frame), unit=_t("rows"), disable=not progress,
               desc=_t("copy {table}", table=table))
    with raw.cursor() as cur:
        if binary:
            named = _binary_source(frame, columns)
            encoded = [k for k in kinds if k is not None]
            check_ranges(named, columns, encoded)  # every bad row, before the first byte
            with cur.copy(stmt, writer=QueuedLibpqWriter(cur)) as copy:
                for block in frame_to_copy(named, columns, encoded, batch_rows=batch_rows):
                    copy.write(block)
            bar.update(len(frame))
            bar.close()
            return
        with cur.copy(stmt) as copy:
            for start in range(0, len(frame), batch_rows):
                part = frame.iloc[start:start + batch_rows]
                sink = pa.BufferOutputStream()
                pacsv.write_csv(_arrow(part, columns), sink, write_options=options)
                copy.write(sink.getvalue().to_pybytes())
                bar.update(len(part))
    bar.close()


def _binary_source(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The frame's columns under the table's names: ``geom`` is the geometry, (``gx``,
    ``gy``) its coordinates."""
    out = {c: frame[c] for c in columns if c not in ("geom", "gx", "gy")}
    if "geom" in columns:
        out["geom"] = gpd.GeoSeries(frame.geometry.values, index=frame.index)
    if "gx" in columns:
        xy = shapely.get_coordinates(np.asarray(frame.geometry.values))
        out["gx"] = pd.Series(xy[:, 0], index=frame.index)
        out["gy"] = pd.Series(xy[:, 1], index=frame.index)
    return pd.DataFrame(out, index=frame.index)[columns]


def _check_points(frame: pd.DataFrame, spec: LayerSpec, source: str) -> None:
    """Refuse, naming every such row, points the table's check would refuse: missing, empty,
    or with a coordinate that is not a finite longitude/latitude — before the first byte is
    sent, so a bulk load never starts on a file it would roll back, and every bad row is
    named rather than the first the database meets."""
    if spec.geometry != "point" or not isinstance(frame, gpd.GeoDataFrame):
        return
    geoms = np.asarray(frame.geometry.values)
    x, y = np.full(len(geoms), np.nan), np.full(len(geoms), np.nan)  # NaN: no coordinates
    points = (shapely.get_type_id(geoms) == 0) & ~shapely.is_empty(geoms)
    x[points], y[points] = shapely.get_x(geoms[points]), shapely.get_y(geoms[points])
    with np.errstate(invalid="ignore"):
        bad = ~((np.abs(x) <= 180) & (np.abs(y) <= 90))
    if not bad.any():
        return
    keys = frame[spec.key].astype("string") if spec.key in frame else None
    problems = [Problem(int(i), None if keys is None else keys.iat[i],
                        f"({x[i]}, {y[i]}) is not a longitude/latitude",
                        "not a longitude/latitude") for i in np.flatnonzero(bad)]
    raise ImportRejected(source, f"{len(problems)} problem(s) in {len(problems)} feature(s); "
                         "nothing was imported", problems)


def _stage_columns(spec: LayerSpec, columns: list[str]) -> list[str]:
    """Points travel as two doubles (gx, gy): much cheaper to encode and parse than WKB."""
    if spec.geometry == "point":
        return [c for c in columns if c != "geom"] + ["gx", "gy"]
    return columns


def _stage(conn: Connection, spec: LayerSpec, columns: list[str]) -> None:
    raw = _raw(conn)
    raw.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(STAGE)))
    plain = [c for c in columns if c != "geom"] if spec.geometry == "point" else columns
    raw.execute(sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA")
                .format(sql.Identifier(STAGE), sql.SQL(", ").join(map(sql.Identifier, plain)),
                        sql.Identifier(spec.table)))
    if spec.geometry == "point":
        raw.execute(sql.SQL("ALTER TABLE {} ADD COLUMN gx float8 NOT NULL, "
                            "ADD COLUMN gy float8 NOT NULL").format(sql.Identifier(STAGE)))


def _reference_problems(conn: Connection, spec: LayerSpec) -> list[Problem]:
    """Staged rows that name divisions or grids the store does not hold."""
    checks: list[tuple[str, str]] = []
    if spec.table == "division" and spec.division_level != "county":
        checks.append((
            "SELECT s.code, 'parent division ' || s.parent_code || ' does not exist; import the "
            "parent level first' FROM gm_stage s WHERE NOT EXISTS (SELECT 1 FROM division d "
            "WHERE d.code = s.parent_code)", ""))
    if spec.table == "grid":
        checks.append((
            "SELECT s.code, 'community ' || s.community_code || ' (the first 12 digits of the grid "
            "code) is not a village/community in the store; import communities first' FROM "
            "gm_stage s WHERE NOT EXISTS (SELECT 1 FROM division d WHERE d.code = "
            "s.community_code AND d.level = 'community')", ""))
        checks.append((
            "SELECT s.code, 'the code was retired in an earlier version of its community and "
            "cannot be reused; take the next free sequence' FROM gm_stage s WHERE NOT EXISTS "
            "(SELECT 1 FROM grid g WHERE g.code = s.code) AND EXISTS (SELECT 1 FROM grid_history "
            "h WHERE h.code = s.code)", ""))
        checks.append((
            "SELECT s.code, 'parent grid ' || s.parent_grid_code || ' is not a comprehensive grid "
            "of the same community' FROM gm_stage s WHERE s.parent_grid_code IS NOT NULL AND NOT "
            "EXISTS (SELECT 1 FROM gm_stage p WHERE p.code = s.parent_grid_code AND p.kind = "
            "'comprehensive' AND p.community_code = s.community_code)", ""))
        checks.append((
            "SELECT s.code, 'a comprehensive grid cannot have a parent grid' FROM gm_stage s "
            "WHERE s.kind = 'comprehensive' AND s.parent_grid_code IS NOT NULL", ""))
    if spec.table == "grid_worker":
        checks.append((
            "SELECT s.id, 'grid ' || s.grid_code || ' does not exist' FROM gm_stage s WHERE "
            "s.grid_code IS NOT NULL AND NOT EXISTS (SELECT 1 FROM grid g WHERE g.code = "
            "s.grid_code)", ""))
        checks.append((
            "SELECT s.id, 'division ' || s.division_code || ' does not exist' FROM gm_stage s "
            "WHERE s.division_code IS NOT NULL AND NOT EXISTS (SELECT 1 FROM division d WHERE "
            "d.code = s.division_code)", ""))
    raw = _raw(conn)
    problems: list[Problem] = []
    for query, _ in checks:
        for key, message in raw.execute(query).fetchmany(1000):
            problems.append(Problem(None, key.strip() if key else key, message))
    return problems


def _upsert(conn: Connection, spec: LayerSpec, columns: list[str]) -> tuple[int, int]:
    keys = conflict_key(spec.table, spec.key)  # a partitioned table's key holds its partition's
    moved = move_changed_partitions(conn, spec.table, spec.key, columns, STAGE,
                                    points=spec.geometry == "point")
    key = sql.SQL(", ").join(map(sql.Identifier, keys))
    cols = sql.SQL(", ").join(map(sql.Identifier, columns))
    values = _select_list(spec, columns)
    others = [c for c in columns if c not in keys]
    sets = sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c))
                              for c in others)
    target = sql.Identifier(spec.table)
    changed = sql.SQL(" OR ").join(
        sql.SQL("{t}.{c} IS DISTINCT FROM EXCLUDED.{c}").format(t=target, c=sql.Identifier(c))
        for c in others)
    counts: sql.Composable = sql.SQL("SELECT count(*) FILTER (WHERE ins), count(*) FILTER "
                                     "(WHERE NOT ins) FROM up")
    if len(keys) > 1:  # a partitioned table's RETURNING has no xmax: count the staged rows
        # new to the table in the statement's snapshot, taken before its insert
        counts = sql.SQL(
            "SELECT n.new, (SELECT count(*) FROM up) - n.new FROM (SELECT count(*) AS new "
            "FROM {stage} AS s WHERE NOT EXISTS (SELECT 1 FROM {target} AS t WHERE {match})) "
            "AS n").format(stage=sql.Identifier(STAGE), target=target, match=sql.SQL(
                " AND ").join(sql.SQL("t.{0} = s.{0}").format(sql.Identifier(k)) for k in keys))
    query = sql.SQL(
        "WITH up AS (INSERT INTO {target} ({cols}) SELECT {values} FROM {stage} "
        "ON CONFLICT ({key}) DO UPDATE SET {sets} WHERE {changed} RETURNING {ins} AS ins) "
        "{counts}"
    ).format(target=target, cols=cols, values=values, stage=sql.Identifier(STAGE), key=key,
             sets=sets, changed=changed, counts=counts,
             ins=sql.SQL("true" if len(keys) > 1 else "(xmax = 0)"))
    row = _raw(conn).execute(query).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]) + moved


def _select_list(spec: LayerSpec, columns: list[str]) -> sql.Composed:
    """The stage's columns as the target's, points built from (gx, gy)."""
    return sql.SQL(", ").join(
        sql.SQL("ST_SetSRID(ST_MakePoint(gx, gy), 4326)") if c == "geom"
        and spec.geometry == "point" else sql.Identifier(c) for c in columns)


def _bulk_load(conn: Connection, spec: LayerSpec, frame: pd.DataFrame, columns: list[str], *,
               batch_rows: int, progress: bool, defer_search_index: bool
               ) -> LoadResult | None:
    """Fill an empty point table fast: its indexes and primary key dropped, the frame sent by
    binary ``COPY … FREEZE`` straight into the table — a partitioned one's rows into new
    partitions, attached after (:func:`_fill_partitions`) — with no stage, no per-row index
    maintenance and no WAL where the server allows it (``wal_level = minimal``, as in the
    local cluster), then the key and indexes built again with parallel maintenance workers.
    Frozen rows are visible at once to other transactions' older snapshots too, as after a
    ``TRUNCATE``: the table was empty before. Inside the caller's
    transaction like everything else, so a failure leaves the table, and its indexes, as they
    were. With *defer_search_index* the trigram (search) indexes are not built here but
    recorded in ``pending_index`` (and named in ``LoadResult.deferred``) for
    :func:`build_deferred_indexes` to build concurrently after the commit; until then
    search reads the table without them. Returns
    None (and does nothing) when the fast path does not apply: a small frame, a table with
    rows, or a table that other tables refer to."""
    raw = _raw(conn)
    target = sql.Identifier(spec.table)
    if len(frame) < BULK_MIN_ROWS or spec.geometry != "point":
        return None
    state = raw.execute(sql.SQL(
        "SELECT NOT EXISTS (SELECT 1 FROM {t}), NOT EXISTS (SELECT 1 FROM pg_constraint "
        "WHERE confrelid = %s::regclass)").format(t=target), (spec.table,)).fetchone()
    if state is None or not (state[0] and state[1]):
        return None
    phases: dict[str, float] = {}
    clock = time.perf_counter()
    pkey = raw.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype = 'p'", (spec.table,)).fetchone()
    # a partitioned table's index reads "ON ONLY" (the parent alone): rebuilt without it, so
    # that every partition gets its own index
    indexes = raw.execute(
        "SELECT i.indexrelid::regclass::text, replace(pg_get_indexdef(i.indexrelid), "
        "' ON ONLY ', ' ON ') FROM pg_index i "
        "WHERE i.indrelid = %s::regclass AND NOT i.indisprimary", (spec.table,)).fetchall()
    trigger = f"{spec.table}_notify_ins"
    notify = raw.execute("SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = "
                         "%s::regclass AND tgname = %s", (spec.table, trigger)).fetchone()
    notifies = notify is not None
    raw.execute(sql.SQL("TRUNCATE {}").format(target))
    for name, _ in indexes:
        raw.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    if pkey:
        raw.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
            target, sql.Identifier(pkey[0])))
    phases["prepare"] = time.perf_counter() - clock
    clock = time.perf_counter()
    key = PARTITION_KEYS.get(spec.table)
    if key is not None:  # a partitioned table's statement triggers never see these rows
        phases.update(_fill_partitions(conn, spec.table, key, frame, columns,
                                       batch_rows=batch_rows, progress=progress))
    else:
        # one notice with the frame's extent instead of the trigger's; dropped, not
        # disabled: PostgreSQL fills a disabled trigger's transition table all the same
        if notify is not None:
            raw.execute(sql.SQL("DROP TRIGGER {} ON {}").format(
                sql.Identifier(trigger), target))
        copy_into(conn, spec.table, frame, columns, batch_rows=batch_rows, progress=progress,
                  freeze=_may_freeze(raw))
        if notify is not None:
            raw.execute(sql.SQL(notify[0]))
        phases["copy"] = time.perf_counter() - clock
    if notifies:
        x0, y0, x1, y1 = (float(v) for v in frame.geometry.total_bounds)
        raw.execute("SELECT gridmap_send_change(%s, ST_MakeBox2D(ST_Point(%s, %s), "
                    "ST_Point(%s, %s)))", (spec.table, x0, y0, x1, y1))
    clock = time.perf_counter()
    raw.execute("SET LOCAL max_parallel_maintenance_workers = 2")
    # at least 256 MB (a parallel build splits it between its workers), never less than
    # the server gives (the local cluster: 1 GB)
    raw.execute("SELECT set_config('maintenance_work_mem', greatest(setting::bigint, "
                "262144)::text || 'kB', true) FROM pg_settings "
                "WHERE name = 'maintenance_work_mem'")
    if pkey:
        raw.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(
            target, sql.Identifier(pkey[0])) + sql.SQL(pkey[1]))
    phases["primary key"] = time.perf_counter() - clock
    deferred = []
    for name, definition in indexes:
        if defer_search_index and DEFERRED_INDEX in definition:
            deferred.append(definition)  # and recorded, in case the build never comes
            raw.execute("INSERT INTO pending_index (name, definition) VALUES (%s, %s) "
                        "ON CONFLICT (name) DO UPDATE SET definition = EXCLUDED.definition, "
                        "since = now()", (_index_name(definition), definition))
            continue
        clock = time.perf_counter()
        raw.execute(sql.SQL(definition))
        phases[f"index {name}"] = time.perf_counter() - clock
    clock = time.perf_counter()
    raw.execute(sql.SQL("ANALYZE {}").format(target))
    phases["analyze"] = time.perf_counter() - clock
    return LoadResult(spec.name, len(frame), len(frame), 0, phases=phases, deferred=deferred)


def _may_freeze(raw: psycopg.Connection) -> bool:
    """Whether ``COPY … FREEZE`` may run now: PostgreSQL refuses it while the transaction
    holds a snapshot of its own (repeatable read, serializable)."""
    row = raw.execute("SELECT current_setting('transaction_isolation')").fetchone()
    return row is not None and row[0] == "read committed"


def _fill_partitions(conn: Connection, table: str, key: str, frame: pd.DataFrame,
                     columns: list[str], *, batch_rows: int, progress: bool
                     ) -> dict[str, float]:
    """Load *frame* into the emptied, partitioned *table*: each partition key's rows by
    ``COPY … FREEZE`` straight into a table made for them in this transaction, then
    attached as the partition of that key (replacing the empty one there was).

    Why not ``COPY`` into the parent: PostgreSQL then inserts row by row (the parent has a
    statement trigger with a transition table, even a disabled one) and routes every row;
    into a partition it still queues a foreign-key check per row. A table that is not yet a
    partition has neither; attaching it checks its rows once, by a query per constraint
    (the foreign key's takes a lock that stops writers, not readers, of the referenced
    table until the commit). The partition key is checked on every row as it is copied (a
    ``CHECK`` that lets the attach skip its scan), then dropped. All in the caller's
    transaction: a failure leaves the old, empty partitions as they were. Returns the
    seconds of each step."""
    raw = _raw(conn)
    phases: dict[str, float] = {"copy": 0.0, "attach": 0.0}
    freeze = _may_freeze(raw)
    codes, values = pd.factorize(frame[key], sort=True)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(values) + 1))
    for code, value in enumerate(values):
        clock = time.perf_counter()
        part = _fresh_partition(raw, table, key, str(value))
        rows = frame if len(values) == 1 else \
            frame.iloc[order[bounds[code]:bounds[code + 1]]]
        copy_into(conn, part, rows, columns, batch_rows=batch_rows, progress=progress,
                  freeze=freeze)
        phases["copy"] += time.perf_counter() - clock
        clock = time.perf_counter()
        raw.execute(sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES IN ({})").format(
            sql.Identifier(table), sql.Identifier(part), sql.Literal(str(value))))
        raw.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
            sql.Identifier(part), sql.Identifier(f"{part}_bulk_key")))
        phases["attach"] += time.perf_counter() - clock
    return phases


def _fresh_partition(raw: psycopg.Connection, table: str, key: str, value: str) -> str:
    """A new, unattached table for *table*'s rows whose *key* is *value*, with the parent's
    columns, defaults and checks (and one of the key), named as the partition it replaces;
    the empty partition holding *value*, if any, is detached and dropped."""
    old = raw.execute(
        "SELECT c.oid::regclass::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = %s::regclass AND pg_get_expr(c.relpartbound, c.oid) = "
        "format('FOR VALUES IN (%%L)', %s::text)", (table, value)).fetchone()
    if old is not None:
        raw.execute(sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(
            sql.Identifier(table), sql.SQL(old[0])))
        raw.execute(sql.SQL("DROP TABLE {}").format(sql.SQL(old[0])))
    part = f"{table}_{value}"
    raw.execute(sql.SQL(
        "CREATE TABLE {part} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS, "
        "CONSTRAINT {check} CHECK ({key} IS NOT NULL AND {key} = {value}))").format(
            part=sql.Identifier(part), table=sql.Identifier(table),
            check=sql.Identifier(f"{part}_bulk_key"), key=sql.Identifier(key),
            value=sql.Literal(value)))
    return part


def build_deferred_indexes(engine: Engine) -> None:
    """Build the indexes bulk loads left for after their commit (``CREATE INDEX
    CONCURRENTLY``: reads and writes go on meanwhile): those on record in
    ``pending_index`` — the last import's, and any an earlier one did not get to build (it
    was stopped after its commit) — each struck off the record once built. An index left
    invalid by an earlier interrupted build is dropped first. A partitioned table's index
    cannot be built concurrently: it is declared on the parent alone, built concurrently on
    each partition and attached, partition by partition (the parent's becomes valid with
    the last)."""
    with engine.connect() as conn:
        pending: dict[str, str] = {str(name): str(definition) for name, definition in _raw(
            conn).execute("SELECT name, definition FROM pending_index ORDER BY since")}
        conn.rollback()
    for name, definition in pending.items():
        with engine.connect() as conn:
            raw = _raw(conn)
            raw.autocommit = True  # CONCURRENTLY runs outside a transaction block
            try:
                table, partitions = _partitions_of(raw, definition)
                if partitions:
                    _build_partitioned_index(raw, name, definition, table, partitions)
                else:
                    _build_concurrently(raw, name, definition)
                raw.execute("DELETE FROM pending_index WHERE name = %s", (name,))
            finally:
                raw.autocommit = False  # the connection goes back to the pool


def _index_name(definition: str) -> str:
    """The name in ``CREATE INDEX name ON …``."""
    return definition.split(" ON ", 1)[0].rsplit(" ", 1)[1]


def _build_concurrently(raw: psycopg.Connection, name: str, definition: str) -> None:
    invalid = raw.execute("SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(%s) AND NOT "
                          "indisvalid", (name,)).fetchone()
    if invalid:
        raw.execute(sql.SQL("DROP INDEX CONCURRENTLY {}").format(sql.Identifier(name)))
    raw.execute(sql.SQL(definition.replace(
        "CREATE INDEX ", "CREATE INDEX CONCURRENTLY IF NOT EXISTS ", 1)))


def _partitions_of(raw: psycopg.Connection, definition: str) -> tuple[str, list[str]]:
    """The table an index definition is on, and its partitions (none: not partitioned)."""
    table = definition.split(" ON ", 1)[1].removeprefix("ONLY ").split(" USING ", 1)[0]
    rows = raw.execute("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = "
                       "i.inhrelid WHERE i.inhparent = %s::regclass ORDER BY 1",
                       (table,)).fetchall()
    return table, [str(r[0]) for r in rows]


def _build_partitioned_index(raw: psycopg.Connection, name: str, definition: str,
                             table: str, partitions: list[str]) -> None:
    """*definition* on a partitioned *table*: ``ON ONLY`` the parent, then concurrently on
    each partition and attached (PostgreSQL's documented way, "CREATE INDEX", partitioned
    tables)."""
    head, using = definition.split(" USING ", 1)
    raw.execute(sql.SQL(head.replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1)
                        .replace(f" ON {table}", f" ON ONLY {table}", 1) + " USING " + using))
    suffix = name.removeprefix(table.rsplit(".", 1)[-1] + "_")
    for partition in partitions:
        attached = raw.execute(
            "SELECT 1 FROM pg_inherits i JOIN pg_index x ON x.indexrelid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass AND x.indrelid = %s::regclass AND x.indisvalid",
            (name, partition)).fetchone()
        if attached:  # built by an earlier run, or with a partition made since
            continue
        child = f"{partition}_{suffix}"
        _build_concurrently(raw, child, f"CREATE INDEX {child} ON {partition} USING {using}")
        raw.execute(sql.SQL("ALTER INDEX {} ATTACH PARTITION {}").format(
            sql.Identifier(name), sql.Identifier(child)))


BLOCKING = ("invalid", "gap", "overlap", "outside")


def _publish_grids(conn: Connection, *, source: str, replace: bool, tolerance: float,
                   min_area: float, note: str | Note = "import", author: str | None = None,
                   approver: str | None = None, restored_from: int | None = None
                   ) -> tuple[int, int, GridDiff]:
    """Check, publish and re-assign: (grid rows written to history, versions, the diff)."""
    from gridmap.analysis.partition import check_partition

    raw = _raw(conn)
    raw.execute("DROP TABLE IF EXISTS gm_next, gm_changed")
    raw.execute(read_sql("grids_next.sql"), {"replace": replace})
    raw.execute(read_sql("grids_changed.sql"))
    grids = gpd.read_postgis(
        "SELECT n.code, n.kind, n.community_code, n.geom FROM gm_next n "
        "JOIN gm_changed c USING (community_code)", conn, geom_col="geom", crs=4326)
    diff = GridDiff()
    if grids.empty:
        raw.execute("DROP TABLE gm_next, gm_changed")
        return 0, 0, diff
    communities = gpd.read_postgis(
        "SELECT d.code, d.geom FROM division d JOIN gm_changed c ON c.community_code = d.code",
        conn, geom_col="geom", crs=4326)
    defects = check_partition(communities, grids, tolerance=tolerance, min_area=min_area)
    defects = defects[defects["defect"].isin(BLOCKING)]
    if len(defects):
        hint = "" if replace else (" (grids the file leaves out stay as they are: give "
                                   "--replace if the file holds each community whole)")
        raise ImportRejected(source, f"the grids would not partition their communities, "
                             f"nothing was imported{hint}", [
            Problem(None, r.grid_code, f"{r.defect} of {r.area_m2:,.0f} m²"
                    + (f" with {r.other_code}" if isinstance(r.other_code, str) else "")
                    + f" in community {r.community_code}")
            for r in defects.itertuples()])
    rows = raw.execute(read_sql("grids_diff.sql")).fetchall()
    diff.grids = [(str(code).strip(), change) for code, change, _ in rows]
    diff.workers_detached = sum(int(n) for _, _, n in rows)
    before = raw.execute("SELECT count(*) FROM grid_history").fetchone()
    raw.execute("DROP TABLE IF EXISTS gm_area")
    raw.execute(read_sql("assign_area.sql"))
    raw.execute(read_sql("publish_grids.sql"))
    said = None if isinstance(note, str) else Jsonb(notes.stored(note))  # gridmap's words
    raw.execute("UPDATE grid_version SET note = %s, note_notes = %s, author = %s, "
                "approver = %s, restored_from = %s WHERE id IN (SELECT id FROM gm_new_version)",
                (note if isinstance(note, str) else note.english()[:2000], said, author,
                 approver, restored_from))
    versions = raw.execute("SELECT count(*) FROM gm_new_version").fetchone()
    after = raw.execute("SELECT count(*) FROM grid_history").fetchone()
    assert before is not None and versions is not None and after is not None
    raw.execute("DROP TABLE gm_next, gm_changed, gm_new_version, gm_moment")
    index = grid_index(conn)
    for layer in POINT_TABLES:  # only the points in the changed grids' area can move
        diff.moved[layer] = assign_layer(conn, layer, index=index, area=True).changed
    raw.execute("DROP TABLE gm_area")
    return int(after[0]) - int(before[0]), int(versions[0]), diff


def load_layer(conn: Connection, layer_name: str, frame: gpd.GeoDataFrame | pd.DataFrame, *,
               source: str = "input", batch_rows: int = 500_000,
               progress: bool = False, replace: bool = False,
               tolerance: float = 0.1, min_area: float = 1.0,
               author: str | None = None, defer_search_index: bool = False) -> LoadResult:
    """Write a frame from :func:`gridmap.io.read.read_layer` into the store.

    A large load into an empty point table takes the bulk path (binary ``COPY`` straight
    into the table, indexes built after it). With *defer_search_index* its trigram (search)
    index is left out, recorded and named in ``LoadResult.deferred``: the caller calls
    :func:`build_deferred_indexes` after committing (``gridmap import`` does).

    Runs inside the transaction of *conn* (open a savepoint around it to keep a failed load
    from poisoning an outer transaction). Raises :class:`ImportRejected` naming every row that
    refers to something the store does not hold.

    Grids: a community's grids the frame leaves out stay as they are, unless *replace* says
    the frame holds each of its communities whole. The grids each changed community would
    then have must partition it — no gap, overlap or spill-over wider than 2 × *tolerance*
    metres and larger than *min_area* m² — or nothing is written; when they do, a version is
    published and the households, facilities and incidents are re-assigned in the same
    transaction, so every view agrees at once.
    """
    try:
        return _load(conn, layer_name, frame, source=source, batch_rows=batch_rows,
                     progress=progress, replace=replace, tolerance=tolerance,
                     min_area=min_area, author=author, defer_search_index=defer_search_index)
    except (psycopg.errors.DataError, psycopg.errors.IntegrityError) as exc:
        raise ImportRejected(source, "the database refused the file, nothing was imported: "
                             + _refusal(exc)) from exc
    except OutOfRange as exc:
        spec = LAYERS[layer_name]
        keys = frame[spec.key].astype("string") if spec.key in frame else None
        raise ImportRejected(source, f"the database refused the file, nothing was imported: "
                             f"{exc}", [
                                 Problem(int(i), None if keys is None else keys.iat[i],
                                         f"{exc.column} {frame[exc.column].iat[i]} is out of "
                                         f"range for {exc.pg_type}",
                                         f"{exc.column} out of range")
                                 for i in exc.rows]) from exc


def _refusal(exc: psycopg.Error) -> str:
    """The database's reason, naming the row by its key rather than dumping it (a failing
    row's detail holds its geometry as hex WKB)."""
    detail = exc.diag.message_detail or ""
    constraint = exc.diag.constraint_name or ""
    prefix = "Failing row contains ("
    key = detail[len(prefix):].split(",", 1)[0] if detail.startswith(prefix) else None
    if key is not None and constraint.endswith("_geom_valid"):
        return (f"the geometry of {key} is not valid ({constraint}); repair it (for example "
                "with shapely.make_valid) and import again")
    if key is not None:
        return f"{exc.diag.message_primary} (the row {key})"
    return f"{exc.diag.message_primary}" + (f" ({detail})" if detail else "")


def _load(conn: Connection, layer_name: str, frame: gpd.GeoDataFrame | pd.DataFrame, *,
          source: str, batch_rows: int, progress: bool, replace: bool, tolerance: float,
          min_area: float, author: str | None, defer_search_index: bool) -> LoadResult:
    spec = LAYERS[layer_name]
    absent = {c: spec.defaults.get(c) for c in spec.optional if c not in frame.columns}
    if absent:  # a frame built in code (the OSM import) may leave optional columns out
        frame = frame.assign(**absent)
    frame, problems = _prepare(frame, spec)
    if problems:
        raise ImportRejected(source, f"{len(problems)} code(s) of the wrong level", problems)
    _check_points(frame, spec, source)
    frame = with_partition_key(conn, spec.table, frame)  # households: their county
    columns = _table_columns(spec)
    if spec.table == "grid":
        columns = [c for c in columns if c != "version"]
    assign_after, inside, clock = False, None, time.perf_counter()
    if layer_name in POINT_TABLES and len(frame):
        # stored already assigned to their grids, so every view counts them at once and no
        # pass rewrites every row after (before the point table is touched: see assign_frame)
        try:
            grids = assign_frame(conn, frame.geometry)
        except GridIndexError:
            assign_after = True
        else:
            inside = 0 if grids is None else int(pd.notna(grids).sum())
            if grids is not None:
                frame["grid_code"] = grids  # frame is _prepare's copy: no second one
                columns.append("grid_code")
    assigning = time.perf_counter() - clock
    bulk = _bulk_load(conn, spec, frame, columns, batch_rows=batch_rows, progress=progress,
                      defer_search_index=defer_search_index)
    if bulk is not None:
        clock = time.perf_counter()
        if spec.table == "household" and "grid_code" in columns:  # the table was empty
            store_counted_load(conn, frame["grid_code"], frame["residents"])
        else:
            _follow(conn, spec, layer_name, assigned="grid_code" in columns,
                    assign=assign_after)
        bulk.phases = {"assign": assigning, **bulk.phases,
                       "grid counts": time.perf_counter() - clock}
        bulk.inside = inside
        return bulk
    _stage(conn, spec, columns)
    copy_into(conn, STAGE, frame, _stage_columns(spec, columns), batch_rows=batch_rows,
              progress=progress)
    problems = _reference_problems(conn, spec)
    if problems:
        raise ImportRejected(source, f"{len(problems)} row(s) refer to what the store does not "
                             "hold; nothing was imported", problems)
    if spec.table == "grid":
        said = notes.note("version_import", source=source)
        inserted, versions, diff = _publish_grids(conn, source=source, replace=replace,
                                                  note=said, author=author,
                                                  tolerance=tolerance, min_area=min_area)
        result = LoadResult(layer_name, len(frame), inserted, 0, versions, diff)
    else:
        inserted, updated = _upsert(conn, spec, columns)
        result = LoadResult(layer_name, len(frame), inserted, updated, inside=inside)
        _follow(conn, spec, layer_name, assigned="grid_code" in columns, assign=assign_after)
    if spec.division_level == "county":  # households imported before their county join it
        place_households_in_counties(conn)
    _raw(conn).execute(
        sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(STAGE)))
    return result


def _follow(conn: Connection, spec: LayerSpec, layer_name: str, *, assigned: bool,
            assign: bool) -> None:
    """After points are written: their grids' counts and a case's divisions follow the grids
    written with them (*assigned*), or the points are assigned in PostGIS now (*assign*:
    the stored grids could not be indexed, e.g. two that overlap)."""
    if assigned:
        follow_assignment(conn, spec.table)
    elif assign:
        assign_layer(conn, layer_name, engine="postgis")


def restore_version(conn: Connection, community: str, version: int, *, note: str,
                    author: str | None, tolerance: float = 0.1, min_area: float = 1.0
                    ) -> tuple[int, GridDiff]:
    """Publish a new version of *community* equal to its *version*: the same grids under the
    same codes (restoring a grid is not reusing its code), through the same partition check
    and re-assignment as an import. Returns (versions published: 0 when it is the current
    one already, the diff). Raises LookupError for a version that does not exist."""
    raw = _raw(conn)
    found = raw.execute("SELECT id FROM grid_version WHERE community_code = %s AND version = %s",
                        (community, version)).fetchone()
    if found is None:
        raise LookupError(f"community {community} has no version {version}")
    raw.execute("DROP TABLE IF EXISTS gm_stage")
    raw.execute("CREATE TEMP TABLE gm_stage ON COMMIT DROP AS SELECT code, name, kind, "
                "community_code, parent_grid_code, geom FROM grid WITH NO DATA")
    raw.execute("INSERT INTO gm_stage SELECT h.code, h.name, h.kind, left(h.code, 12), "
                "h.parent_grid_code, h.geom FROM grid_history h WHERE h.version_id = %s",
                (found[0],))
    _, versions, diff = _publish_grids(conn, source=f"version {version} of {community}",
                                       replace=True, tolerance=tolerance, min_area=min_area,
                                       note=note, author=author, restored_from=version)
    raw.execute("DROP TABLE IF EXISTS gm_stage")
    return versions, diff


def publish_stage(conn: Connection, *, source: str, note: str | Note, author: str | None,
                  approver: str | None, tolerance: float = 0.1, min_area: float = 1.0
                  ) -> tuple[int, GridDiff]:
    """Publish the grids staged in ``gm_stage`` as the whole of their communities (a draft):
    the same partition check, stable codes, version with note, author and approver, and
    re-assignment as an import. Returns (versions published, the diff)."""
    _, versions, diff = _publish_grids(conn, source=source, replace=True, tolerance=tolerance,
                                       min_area=min_area, note=note, author=author,
                                       approver=approver)
    _raw(conn).execute("DROP TABLE IF EXISTS gm_stage")
    return versions, diff


def stage_grids(conn: Connection, frame: gpd.GeoDataFrame, *, source: str, replace: bool
                ) -> list[str]:
    """Stage a grids file as an import would (the same checks of codes and references) and
    work out what each community would hold (``gm_next``); returns the communities whose
    grids would change (``gm_changed``), for a draft to take them up instead of a publish."""
    spec = LAYERS["grids"]
    absent = {c: spec.defaults.get(c) for c in spec.optional if c not in frame.columns}
    if absent:
        frame = frame.assign(**absent)
    frame, problems = _prepare(frame, spec)
    if problems:
        raise ImportRejected(source, f"{len(problems)} code(s) of the wrong level", problems)
    columns = [c for c in _table_columns(spec) if c != "version"]
    _stage(conn, spec, columns)
    copy_into(conn, STAGE, frame, _stage_columns(spec, columns))
    problems = _reference_problems(conn, spec)
    if problems:
        raise ImportRejected(source, f"{len(problems)} row(s) refer to what the store does not "
                             "hold; nothing was imported", problems)
    raw = _raw(conn)
    raw.execute("DROP TABLE IF EXISTS gm_next, gm_changed")
    raw.execute(read_sql("grids_next.sql"), {"replace": replace})
    raw.execute(read_sql("grids_changed.sql"))
    return [str(c).strip() for (c,) in raw.execute(
        "SELECT community_code FROM gm_changed ORDER BY 1").fetchall()]
