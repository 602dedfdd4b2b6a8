"""Import speed: 1M households from GeoParquet, gridmap vs GeoDataFrame.to_postgis.

Run: .venv/bin/python bench/bench_import.py [--rows N]

Both load the same file into databases of the same server (the local cluster, or the server
of GRIDMAP_DATABASE_URL), each into a fresh database migrated to head. gridmap's figure is
end to end — read, validate (CRS, geometry, columns, values), binary COPY ... FREEZE of each
county's rows into a table made for them and attached as its partition, primary key,
constraints and indexes built after the load, commit, then the trigram (search) index built
concurrently — as `gridmap import` does it; each phase is
printed, and the time to the commit beside the whole. to_postgis writes into an empty
table with no constraints and no index and validates nothing, so it is the lower bound of
effort, not a like-for-like job.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from pathlib import Path

import geopandas as gpd
import numpy as np
from sqlalchemy import Engine, create_engine, make_url, text

from gridmap.domain.layers import LAYERS
from gridmap.io.read import read_layer
from gridmap.settings import Settings
from gridmap.store.binary_copy import column_kind, frame_to_copy
from gridmap.store.db import create_database, database_url, drop_database, migrate
from gridmap.store.load import (
    _binary_source,
    build_deferred_indexes,
    column_types,
    copy_into,
    load_layer,
)


def make_households(n: int, path: Path) -> None:
    rng = np.random.default_rng(7)
    lon = rng.uniform(108.9, 109.2, n)
    lat = rng.uniform(34.1, 34.3, n)
    frame = gpd.GeoDataFrame({
        "id": np.char.add("B", np.arange(n).astype(str)),
        "address": np.char.add("长安路", (np.arange(n) % 9999).astype(str)),
        "residents": rng.integers(1, 6, n).astype(np.int16),
        "elderly_alone": rng.random(n) < 0.05,
        "disabled": rng.random(n) < 0.02,
        "left_behind_child": rng.random(n) < 0.02,
        "low_income": rng.random(n) < 0.03,
    }, geometry=gpd.points_from_xy(lon, lat), crs=4326)
    frame.to_parquet(path, compression="zstd")


def copy_ceiling(engine: Engine, frame: gpd.GeoDataFrame) -> tuple[float, float]:
    """(seconds to build the binary COPY stream of *frame*, seconds to build and send it into
    a table of household's columns with no CHECK, foreign key, primary key or index): the
    most the COPY phase could be made to gain by checking less in the database."""
    spec = LAYERS["households"]
    columns = [c for c in spec.columns if c in frame.columns] + ["geom"]
    with engine.begin() as conn:
        kinds = [column_kind(t) for t in column_types(conn, "household", columns)]
        start = time.perf_counter()
        for _ in frame_to_copy(_binary_source(frame, columns), columns, kinds):
            pass
        encode = time.perf_counter() - start
        conn.execute(text("CREATE TEMP TABLE household_raw (LIKE household INCLUDING DEFAULTS)"
                          " ON COMMIT DROP"))  # a partitioned household's county default
        start = time.perf_counter()
        copy_into(conn, "household_raw", frame, columns)
        return encode, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    settings = Settings()
    server = database_url(settings)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "households.parquet"
        make_households(args.rows, path)
        results = {}
        phases: dict[str, float] = {}
        committed = 0.0
        ceiling = (0.0, 0.0)
        for name in ("gridmap", "to_postgis"):
            dbname = f"gridmap_bench_{uuid.uuid4().hex[:8]}"
            create_database(server, dbname)
            url = make_url(server).set(database=dbname)
            engine = create_engine(url)
            try:
                with engine.begin() as conn:
                    migrate(conn)
                start = time.perf_counter()
                if name == "gridmap":
                    frame = read_layer(path, "households").frame
                    phases["read + validate"] = time.perf_counter() - start
                    with engine.begin() as conn:
                        loaded = load_layer(conn, "households", frame,
                                            defer_search_index=True)
                        mark = time.perf_counter()
                    phases.update(loaded.phases)
                    phases["commit"] = time.perf_counter() - mark
                    committed = time.perf_counter() - start
                    mark = time.perf_counter()
                    build_deferred_indexes(engine)
                    phases["trigram index, concurrently after commit"] = \
                        time.perf_counter() - mark
                    seconds = time.perf_counter() - start
                    ceiling = copy_ceiling(engine, frame)  # not part of the import's time
                else:
                    frame = gpd.read_parquet(path)
                    frame.to_postgis("household_plain", engine, if_exists="replace",
                                     index=False, chunksize=100_000)
                    seconds = time.perf_counter() - start
                with engine.connect() as conn:
                    table = "household" if name == "gridmap" else "household_plain"
                    count = conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()
                assert count == args.rows, (name, count)
                results[name] = seconds
            finally:
                engine.dispose()
                drop_database(server, dbname)
        for phase, seconds in phases.items():
            print(f"  gridmap {phase}: {seconds:6.2f} s")
        encode, copy = ceiling
        print(f"  the COPY's ceiling: the same frame into a table of the same columns with no "
              f"constraint, key or index: {copy:6.2f} s ({args.rows / copy:,.0f} rows/s), of "
              f"which building the binary stream in Python {encode:6.2f} s")
        print(f"    gridmap (committed; search without its trigram index until that is "
              f"built): {args.rows:,} rows in {committed:6.2f} s = "
              f"{args.rows / committed:,.0f} rows/s")
        for name, seconds in results.items():
            print(f"{name:>11}: {args.rows:,} rows in {seconds:6.2f} s = "
                  f"{args.rows / seconds:,.0f} rows/s")
        print(f"gridmap / to_postgis speed: {results['to_postgis'] / results['gridmap']:.1f}x "
              f"(committed: {results['to_postgis'] / committed:.1f}x); load "
              f"{os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
