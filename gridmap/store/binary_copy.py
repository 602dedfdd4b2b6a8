"""PostgreSQL's binary ``COPY`` format, built from whole columns with numpy.

A frame goes to the server as one buffer per batch, built column by column (no Python per
row): fixed-width fields by numpy, rows joined by Arrow (:func:`encode_rows`), text from
Arrow's string buffers, points as EWKB assembled from their coordinates, other geometry as
shapely's EWKB. Only the types the
store's point and division tables use are encoded; :func:`encodable` says whether a table's
columns all are, so a caller can fall back to CSV otherwise.

The format (PostgreSQL manual, "COPY", binary format): a signature and two 32-bit words,
then per row a 16-bit field count and, per field, a 32-bit length (−1 for NULL) and the value
in the type's binary send format, all big-endian; a 16-bit −1 ends the data.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # flags and header-extension length: 0
TRAILER = b"\xff\xff"
# PostgreSQL counts timestamps in microseconds from 2000-01-01 UTC
PG_EPOCH_NS = pd.Timestamp("2000-01-01", tz="UTC").value
FIXED = {"smallint": ">i2", "integer": ">i4", "bigint": ">i8", "boolean": "u1",
         "double precision": ">f8", "timestamp with time zone": ">i8"}
# EWKB of a point with an SRID: byte order 1 (little-endian), type 0x20000001, the SRID, x, y
POINT_EWKB_TYPE = 0x20000001


def column_kind(pg_type: str) -> str | None:
    """How a column of *pg_type* (as ``format_type`` spells it) is encoded, or None."""
    if pg_type in FIXED:
        return pg_type
    if pg_type == "text" or pg_type.startswith(("character(", "character varying")):
        return "text"
    if pg_type.startswith("geometry"):
        return "geometry"
    return None


def encodable(pg_types: Sequence[str]) -> bool:
    return all(column_kind(t) is not None for t in pg_types)


class _Field:
    """One column of a batch: its per-row byte length (−1 for NULL) and how to place it."""

    def __init__(self, sizes: np.ndarray, *, fixed: np.ndarray | None = None,
                 offsets: np.ndarray | None = None, data: np.ndarray | None = None) -> None:
        self.sizes = sizes.astype(np.int64)
        self.fixed = fixed  # (rows, width) uint8, for fixed-width values
        self.offsets = offsets  # Arrow-style offsets into data, for variable-width values
        self.data = data


class OutOfRange(ValueError):
    """Values that do not fit their column's type (a smallint of 40,000): refused, never
    wrapped around. *rows* are positions in the frame."""

    def __init__(self, column: str, pg_type: str, rows: np.ndarray) -> None:
        super().__init__(f"{len(rows)} value(s) of {column} out of range for {pg_type}")
        self.column, self.pg_type, self.rows = column, pg_type, rows


def _fixed_field(values: np.ndarray, dtype: str, null: np.ndarray) -> _Field:
    if np.dtype(dtype).kind == "i" and values.dtype.kind in "iuf":
        info = np.iinfo(np.dtype(dtype))
        bad = ~null & ((values < info.min) | (values > info.max))
        if bad.any():
            raise OutOfRange("", "", np.flatnonzero(bad))
    raw = np.ascontiguousarray(values.astype(dtype))
    width = raw.dtype.itemsize
    return _Field(np.where(null, -1, width), fixed=raw.view(np.uint8).reshape(-1, width))


def _variable_field(array: pa.Array | pa.ChunkedArray) -> _Field:
    """A string or binary Arrow array as lengths and its data buffer."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.offset:
        array = pa.concat_arrays([array])
    large = pa.types.is_large_string(array.type) or pa.types.is_large_binary(array.type)
    buffers = array.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int64 if large else np.int32,
                            count=len(array) + 1).astype(np.int64)
    data = (np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None
            else np.zeros(0, np.uint8))
    null = array.is_null().to_numpy(zero_copy_only=False)
    return _Field(np.where(null, -1, np.diff(offsets)), offsets=offsets, data=data)


def _text_field(series: pd.Series) -> _Field:
    if not (pd.api.types.is_string_dtype(series.dtype) or series.dtype == object):
        series = series.astype("string")
    array = pa.array(series, from_pandas=True)
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        array = array.cast(pa.string())
    return _variable_field(array)


def _geometry_field(geoms: np.ndarray, srid: int) -> _Field:
    missing = shapely.is_missing(geoms)
    types = shapely.get_type_id(geoms)
    if len(geoms) and not missing.any() and (types == 0).all() \
            and not shapely.is_empty(geoms).any():
        xy = shapely.get_coordinates(geoms)
        rows = np.zeros(len(geoms), dtype=[("order", "u1"), ("type", "<u4"), ("srid", "<i4"),
                                           ("x", "<f8"), ("y", "<f8")])
        rows["order"], rows["type"], rows["srid"] = 1, POINT_EWKB_TYPE, srid
        rows["x"], rows["y"] = xy[:, 0], xy[:, 1]
        return _Field(np.full(len(geoms), rows.itemsize),
                      fixed=rows.view(np.uint8).reshape(-1, rows.itemsize))
    wkb = shapely.to_wkb(shapely.set_srid(geoms, srid), include_srid=True)
    return _variable_field(pa.array(wkb, type=pa.binary(), from_pandas=True))


def _field(series: pd.Series, kind: str, srid: int) -> _Field:
    if kind == "geometry":
        return _geometry_field(np.asarray(series.values), srid)
    if kind == "text" and isinstance(series.dtype, gpd.array.GeometryDtype):
        # geometry into a text column: hex EWKB, as the CSV path writes it
        geoms = shapely.set_srid(np.asarray(series.values), srid)
        return _variable_field(pa.array(shapely.to_wkb(geoms, hex=True, include_srid=True),
                                        type=pa.string(), from_pandas=True))
    if kind == "text":
        return _text_field(series)
    null = series.isna().to_numpy()
    if kind == "timestamp with time zone":
        stamps = pd.to_datetime(series, utc=True)
        nanos = stamps.to_numpy(dtype="datetime64[ns]").view(np.int64)
        return _fixed_field((nanos - PG_EPOCH_NS) // 1000, FIXED[kind], null)
    if kind == "boolean":
        values = series.fillna(False).to_numpy(dtype=bool)
    elif kind == "double precision":
        values = series.fillna(0).to_numpy(dtype=np.float64)
    else:
        values = series.fillna(0).to_numpy(dtype=np.int64)
    return _fixed_field(values, FIXED[kind], null)


def encode_rows(fields: Sequence[_Field]) -> memoryview:
    """The rows of one batch in binary COPY format (no signature, no trailer).

    Each run of fixed-width bytes between two variable values (the field count, lengths,
    fixed-width values) is laid out for all rows at once by numpy, one row per line; Arrow's
    ``binary_join_element_wise`` then puts runs and variable values together row by row in
    C++. Its result's data buffer is the COPY stream. No compiler is involved: the first
    batch of a process costs what every other does."""
    n = len(fields[0].sizes) if fields else 0
    if not n:
        return memoryview(b"")
    parts: list[pa.Array] = []
    run = [np.full(n, len(fields), dtype=">i2").view(np.uint8).reshape(n, 2)]
    for f in fields:
        run.append(f.sizes.astype(">i4").view(np.uint8).reshape(n, 4))
        null = f.sizes < 0
        if f.fixed is not None and not null.any():
            run.append(f.fixed)
            continue
        parts.append(_run(run))
        run = []
        mask = pa.py_buffer(np.packbits(~null, bitorder="little")) if null.any() else None
        if f.fixed is not None:  # NULLs: the value's bytes left out (the join's "")
            width = f.fixed.shape[1]
            parts.append(pa.Array.from_buffers(
                pa.binary(width), n, [mask, pa.py_buffer(np.ascontiguousarray(f.fixed))]
            ).cast(pa.large_binary()))
        else:
            assert f.offsets is not None and f.data is not None
            parts.append(pa.Array.from_buffers(pa.large_binary(), n, [
                mask, pa.py_buffer(np.ascontiguousarray(f.offsets, dtype=np.int64)),
                pa.py_buffer(f.data)]))
    if run:
        parts.append(_run(run))
    joined = pc.binary_join_element_wise(*parts, pa.scalar(b"", pa.large_binary()),
                                         null_handling="replace", null_replacement=b"")
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int64, count=n + 1,
                            offset=joined.offset * 8)
    return memoryview(joined.buffers()[2])[offsets[0]:offsets[-1]]


def _run(columns: list[np.ndarray]) -> pa.Array:
    """(rows, width) byte blocks side by side, as one binary value per row."""
    block = np.ascontiguousarray(np.hstack(columns) if len(columns) > 1 else columns[0])
    return pa.Array.from_buffers(pa.binary(block.shape[1]), len(block),
                                 [None, pa.py_buffer(block)]).cast(pa.large_binary())


def check_ranges(frame: pd.DataFrame, columns: Sequence[str], kinds: Sequence[str]) -> None:
    """Raise :class:`OutOfRange` naming every row of the first integer column whose value
    does not fit its type — over the whole frame, before anything is sent (the encoder
    finds them batch by batch, once the earlier batches are on their way)."""
    for column, kind in zip(columns, kinds, strict=True):
        if kind not in FIXED or np.dtype(FIXED[kind]).kind != "i" or kind.startswith("time"):
            continue
        values = frame[column]
        if values.dtype.kind not in "iuf" and not pd.api.types.is_integer_dtype(values.dtype):
            continue
        info = np.iinfo(np.dtype(FIXED[kind]))
        if kind == "bigint" and values.dtype.kind == "i":
            continue  # every signed 64-bit value fits
        numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = (numbers < info.min) | (numbers > info.max)
        if bad.any():
            raise OutOfRange(column, kind, np.flatnonzero(bad))


def frame_to_copy(frame: pd.DataFrame, columns: Sequence[str], kinds: Sequence[str], *,
                  srid: int = 4326, batch_rows: int = 250_000) -> Iterator[bytes | memoryview]:
    """*frame*'s *columns* (encoded as *kinds*, from :func:`column_kind`) as the blocks of
    one binary ``COPY … FROM STDIN (FORMAT binary)`` stream, signature to trailer.

    Examples
    --------
    >>> frame = pd.DataFrame({"id": ["a", None], "n": [1, 2]})
    >>> data = b"".join(frame_to_copy(frame, ["id", "n"], ["text", "smallint"]))
    >>> data[len(SIGNATURE):len(SIGNATURE) + 17].hex(" ")
    '00 02 00 00 00 01 61 00 00 00 02 00 01 00 02 ff ff'
    >>> list(frame_to_copy(pd.DataFrame({"n": [1, 40_000]}), ["n"], ["smallint"]))
    Traceback (most recent call last):
    ...
    gridmap.store.binary_copy.OutOfRange: 1 value(s) of n out of range for smallint
    """
    yield SIGNATURE
    for start in range(0, len(frame), batch_rows):
        part = frame.iloc[start:start + batch_rows]
        fields = []
        for column, kind in zip(columns, kinds, strict=True):
            try:
                fields.append(_field(part[column], kind, srid))
            except OutOfRange as exc:
                raise OutOfRange(column, kind, exc.rows + start) from None
        yield encode_rows(fields)
    yield TRAILER
