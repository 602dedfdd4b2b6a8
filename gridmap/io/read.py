"""Read a layer file into a validated GeoDataFrame in EPSG:4326.

Every check that can be made without the database is made here, and all problems of a
file are collected before anything is refused, so that a user fixes a file in one pass:
CRS present and plausible (no lying ``.prj``, no swapped lon/lat, no points outside the
CRS's area of use), geometry non-empty and valid (repaired when that is safe, and said),
required columns present, values of the right type and vocabulary.
"""

from __future__ import annotations

import difflib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pyogrio
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

from gridmap.domain import chinacrs
from gridmap.domain.codes import DIVISION_CODE, GRID_CODE
from gridmap.domain.layers import LAYERS, LayerSpec
from gridmap.io.errors import ImportRejected, Problem

ChinaCRS = Literal["gcj02", "bd09"]
# (lon, lat) bounds of mainland China and its waters: used to spot swapped coordinates
CHINA_BOUNDS = (73.5, 3.8, 135.1, 53.6)
# a repair may change a polygon's area by at most this share before it is refused
MAX_REPAIR_AREA_CHANGE = 0.01


@dataclass
class ReadResult:
    frame: gpd.GeoDataFrame | pd.DataFrame
    repaired: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def parse_crs(value: str) -> CRS | ChinaCRS:
    """``EPSG:4326``, ``4490``, ``wgs84``, ``cgcs2000``, ``gcj02``, ``bd09`` or any PROJ string.

    Examples
    --------
    >>> parse_crs("gcj02")
    'gcj02'
    >>> parse_crs("cgcs2000").to_epsg()
    4490
    """
    low = value.strip().lower().replace("-", "")
    if low in ("gcj02", "gcj"):
        return "gcj02"
    if low in ("bd09", "baidu"):
        return "bd09"
    aliases = {"wgs84": "EPSG:4326", "cgcs2000": "EPSG:4490"}
    try:
        return CRS.from_user_input(aliases.get(low, value))
    except CRSError as exc:
        raise ValueError(
            f"unknown CRS {value!r}: give an EPSG code (EPSG:4326, EPSG:4490, EPSG:32650 …), "
            "'gcj02' or 'bd09'"
        ) from exc


def _read_any(path: Path, layer: str | None, x: str | None, y: str | None,
              spec: LayerSpec) -> gpd.GeoDataFrame | pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".geoparquet"):
            if spec.geometry == "none":
                return pd.read_parquet(path)
            return _read_point_parquet(path) if spec.geometry == "point" else \
                gpd.read_parquet(path)
        if suffix == ".csv" and spec.geometry == "none":
            return pd.read_csv(path, dtype=str, keep_default_na=False)
        if suffix == ".csv":
            return _read_csv(path, x, y)
        source = str(path)
        if suffix == ".zip":
            names = zipfile.ZipFile(path).namelist()
            if not any(n.lower().endswith((".shp", ".gpkg", ".geojson", ".json")) for n in names):
                raise ImportRejected(str(path), "the zip file holds no .shp, .gpkg or .geojson")
            source = f"/vsizip/{path}"
        return pyogrio.read_dataframe(source, layer=layer, use_arrow=True)
    except ImportRejected:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, pd.errors.ParserError,
            pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError,
            pyogrio.errors.FieldError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ImportRejected(
            str(path), f"cannot be read ({first}); is it complete (not truncated) and of the "
            "format its name says?") from exc


_WKB_POINT = np.dtype([("order", "u1"), ("type", "<u4"), ("x", "<f8"), ("y", "<f8")])


def _wkb_points(chunk: pa.Array) -> np.ndarray | None:
    """The points of one chunk of a WKB column as a view of its bytes (byte order, type, x,
    y), or None unless every value is a non-empty 2D point in little-endian WKB."""
    if chunk.type != pa.binary() or chunk.null_count:
        return None
    _, offsets, data = chunk.buffers()
    if not len(chunk):
        return np.zeros(0, _WKB_POINT)
    ends = np.frombuffer(offsets, np.int32, len(chunk) + 1, chunk.offset * 4)
    if not (np.diff(ends) == _WKB_POINT.itemsize).all():
        return None
    points = np.frombuffer(data, _WKB_POINT, len(chunk), int(ends[0]))
    if not ((points["order"] == 1).all() and (points["type"] == 1).all()) \
            or np.isnan(points["x"]).any() or np.isnan(points["y"]).any():  # NaN: empty
        return None
    return points


def _read_point_parquet(path: Path) -> gpd.GeoDataFrame:
    """A GeoParquet file of points, as ``geopandas.read_parquet`` reads it — without a
    WKB parser call per point when every geometry is a 2D point in little-endian WKB (what
    geopandas and GDAL write): x and y are then at fixed places in the column's buffer, read
    by numpy, chunk by chunk (``from_wkb`` took 1.0 s of a million households' 2.0 s read
    and check). Any other file — another encoding, null, empty or 3D points, another
    geometry column — is read by geopandas."""
    table = pq.read_table(path)
    try:
        geo = json.loads((table.schema.metadata or {})[b"geo"])
        name = geo["primary_column"]
        column = geo["columns"][name]
        declared = column.get("crs", "OGC:CRS84")  # absent: the spec's default
        crs = None if declared is None else CRS.from_user_input(declared)
    except (KeyError, TypeError, ValueError, CRSError):
        return gpd.read_parquet(path)
    if len(geo["columns"]) != 1 or column.get("encoding") != "WKB" \
            or name not in table.column_names:
        return gpd.read_parquet(path)
    pieces = []
    for chunk in table[name].chunks:
        piece = _wkb_points(chunk)
        if piece is None:
            return gpd.read_parquet(path)
        pieces.append(piece)
    points = np.concatenate(pieces) if pieces else np.zeros(0, _WKB_POINT)
    frame = table.drop_columns([name]).to_pandas()
    # where geopandas puts it: among the columns as pandas reads them (an index aside)
    frame.insert(list(table.slice(0, 0).to_pandas().columns).index(name), name,
                 gpd.points_from_xy(points["x"], points["y"], crs=crs))
    return gpd.GeoDataFrame(frame, geometry=name)


def _read_csv(path: Path, x: str | None, y: str | None) -> gpd.GeoDataFrame:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if frame.empty and not len(frame.columns):
        raise ImportRejected(str(path), "the CSV file is empty")
    lower = {c.lower(): c for c in frame.columns}
    xcol = x or next((lower[c] for c in ("lon", "lng", "longitude", "x") if c in lower), None)
    ycol = y or next((lower[c] for c in ("lat", "latitude", "y") if c in lower), None)
    if xcol not in frame.columns or ycol not in frame.columns:
        raise ImportRejected(
            str(path), f"no coordinate columns found (looked for {x or 'lon/lng/longitude/x'} "
            f"and {y or 'lat/latitude/y'}; the file has {', '.join(frame.columns)}); "
            "name them with --x and --y")
    xs = pd.to_numeric(frame[xcol], errors="coerce")
    ys = pd.to_numeric(frame[ycol], errors="coerce")
    bad = np.flatnonzero(xs.isna() | ys.isna())
    if len(bad):
        raise ImportRejected(str(path), "coordinates that are not numbers", [
            Problem(int(i), None, f"{xcol}={frame[xcol].iat[i]!r}, {ycol}={frame[ycol].iat[i]!r}")
            for i in bad])
    geometry = gpd.points_from_xy(xs.to_numpy(), ys.to_numpy())
    return gpd.GeoDataFrame(frame.drop(columns=[xcol, ycol]), geometry=geometry, crs=None)


def _check_lonlat(xs: np.ndarray, ys: np.ndarray, declared: str, source: str) -> None:
    """Refuse geographic coordinates that are swapped or cannot be longitudes/latitudes."""
    if not len(xs):
        return
    x0, y0, x1, y1 = CHINA_BOUNDS
    # a latitude column holding longitudes (|y| > 90) is certainly swapped; inside China
    # (lat, lon) pairs also land outside the country when read as (lon, lat)
    certain = (np.abs(xs) <= 90) & (np.abs(ys) > 90) & (np.abs(ys) <= 180)
    in_china_swapped = (ys >= x0) & (ys <= x1) & (xs >= y0) & (xs <= y1)
    in_china = (xs >= x0) & (xs <= x1) & (ys >= y0) & (ys <= y1)
    swapped = certain | (in_china_swapped & ~in_china)
    if swapped.any():
        idx = np.flatnonzero(swapped)
        raise ImportRejected(
            source, f"{len(idx)} of {len(xs)} coordinates look like (latitude, longitude): x must "
            "be the longitude. Swap the columns (for a CSV: pass --x and --y the other way "
            "round)", [Problem(int(i), None, f"({xs[i]}, {ys[i]}) reads as latitude {xs[i]}, "
                       f"longitude {ys[i]}") for i in idx])
    projected = (np.abs(xs) > 180) | (np.abs(ys) > 90)
    if projected.any():
        n = int(projected.sum())
        raise ImportRejected(
            source, f"{n} of {len(xs)} coordinates are outside ±180/±90 (up to "
            f"{np.nanmax(np.abs(xs)):.0f}, {np.nanmax(np.abs(ys)):.0f}) although the file "
            f"declares {declared}: these look like projected metres or feet. Give the real "
            "CRS with --crs (for example --crs EPSG:32650)", [
                Problem(int(i), None, f"({xs[i]}, {ys[i]}) is not a longitude/latitude")
                for i in np.flatnonzero(projected)])


def _to_wgs84(frame: gpd.GeoDataFrame, declared: CRS | ChinaCRS, source: str) -> gpd.GeoDataFrame:
    if frame.empty:
        return frame.set_crs(4326, allow_override=True)
    coords = shapely.get_coordinates(frame.geometry.values)
    if isinstance(declared, str):
        _check_lonlat(coords[:, 0], coords[:, 1], declared, source)
        convert = chinacrs.gcj02_to_wgs84 if declared == "gcj02" else chinacrs.bd09_to_wgs84

        def to_wgs(xy: np.ndarray) -> np.ndarray:
            lon, lat = convert(xy[:, 0], xy[:, 1])
            return np.column_stack([lon, lat])

        geoms = shapely.transform(frame.geometry.values, to_wgs)
        return frame.set_geometry(gpd.GeoSeries(geoms, index=frame.index, crs=4326))
    if declared.is_geographic:
        _check_lonlat(coords[:, 0], coords[:, 1], declared.name, source)
    frame = frame.set_crs(declared, allow_override=True)
    out = frame.to_crs(4326)
    area = declared.area_of_use
    if area is not None and not declared.is_geographic:
        bounds = out.geometry.bounds
        margin = 1.0
        outside = ((bounds.minx < area.west - margin) | (bounds.maxx > area.east + margin)
                   | (bounds.miny < area.south - margin) | (bounds.maxy > area.north + margin)
                   | ~np.isfinite(bounds.to_numpy()).all(axis=1)) \
            & ~(shapely.is_missing(out.geometry.values) | shapely.is_empty(out.geometry.values))
        if outside.any():
            idx = np.flatnonzero(outside.to_numpy())
            raise ImportRejected(
                source, f"{len(idx)} features fall outside the area where {declared.name} is "
                f"defined ({area.name}): their coordinates are probably in another CRS "
                "(lon/lat mixed with projected numbers?). Fix them or give the right --crs", [
                    Problem(int(i), None, f"coordinates {_first_xy(frame, int(i))} do not "
                            "belong to this CRS") for i in idx])
    return out


def _first_xy(frame: gpd.GeoDataFrame, i: int) -> tuple[float, float]:
    x, y = shapely.get_coordinates(frame.geometry.iat[i])[0]
    return round(float(x), 3), round(float(y), 3)


def _fix_geometry(frame: gpd.GeoDataFrame, spec: LayerSpec, keys: pd.Series
                  ) -> tuple[gpd.GeoDataFrame, list[Problem], list[Problem]]:
    """Check and repair the geometry in the file's own CRS; bad rows come back as problems
    (their geometry set to None so that reprojection passes over them)."""
    geoms = frame.geometry.values
    problems: list[Problem] = []
    repaired: list[Problem] = []
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    for i in np.flatnonzero(missing):
        problems.append(Problem(int(i), keys.iat[i], "empty or missing geometry",
                                "empty or missing geometry"))
    types = np.asarray(shapely.get_type_id(geoms))
    if spec.geometry == "point":
        wrong = ~missing & ~np.isin(types, [0, 4])
        multi = ~missing & (types == 4)
        counts = np.asarray(shapely.get_num_geometries(geoms))
        wrong |= multi & (counts != 1)
        for i in np.flatnonzero(wrong):
            problems.append(Problem(int(i), keys.iat[i],
                                    f"a {geoms[i].geom_type} where a point is expected",
                                    "not a point"))
        out = np.array(geoms, dtype=object)
        out[multi & (counts == 1)] = shapely.get_geometry(geoms[multi & (counts == 1)], 0)
        out[wrong] = None
        return frame.set_geometry(gpd.GeoSeries(out, index=frame.index, crs=frame.crs)), \
            problems, repaired
    wrong = ~missing & ~np.isin(types, [3, 6])
    for i in np.flatnonzero(wrong):
        problems.append(Problem(int(i), keys.iat[i],
                                f"geometry type {geoms[i].geom_type}, a polygon is expected",
                                "not a polygon"))
    out = np.array(geoms, dtype=object)
    failed = _repair_invalid(out, ~missing & ~wrong, keys, problems, repaired, "")
    ok = ~missing & ~wrong & ~failed
    out[ok] = [g if g.geom_type == "MultiPolygon" else shapely.MultiPolygon([g])
               for g in out[ok]]
    out[~ok] = None
    series = gpd.GeoSeries(out, index=frame.index, crs=frame.crs)
    return frame.set_geometry(series), problems, repaired


def _repair_invalid(out: np.ndarray, candidates: np.ndarray, keys: pd.Series,
                    problems: list[Problem], repaired: list[Problem], when: str
                    ) -> np.ndarray:
    """Repair (in place in *out*) the invalid polygons among *candidates* when that changes
    their area by at most 1 %; returns the mask of those that could not be repaired."""
    failed = np.zeros(len(out), dtype=bool)
    check = np.flatnonzero(candidates)
    invalid = check[~shapely.is_valid(out[check])] if len(check) else check
    for i in invalid:
        reason = shapely.is_valid_reason(out[i])
        fixed = _polygonal(shapely.make_valid(out[i], method="structure", keep_collapsed=False))
        before, after = abs(out[i].area), fixed.area if fixed is not None else 0.0
        change = abs(after - before) / before if before > 0 else np.inf
        if fixed is None or fixed.is_empty or change > MAX_REPAIR_AREA_CHANGE \
                or not fixed.is_valid:
            problems.append(Problem(int(i), keys.iat[i],
                                    f"invalid polygon{when} ({reason}) that cannot be repaired "
                                    "without changing its area; redraw it",
                                    f"invalid polygon{when}"))
            failed[i] = True
        else:
            out[i] = fixed if fixed.geom_type == "MultiPolygon" else shapely.MultiPolygon([fixed])
            repaired.append(Problem(int(i), keys.iat[i], f"repaired{when}: {reason}",
                                    f"repaired{when}"))
    return failed


def _check_after_reprojection(frame: gpd.GeoDataFrame, keys: pd.Series,
                              problems: list[Problem], repaired: list[Problem]
                              ) -> gpd.GeoDataFrame:
    """Reprojection can break a valid polygon (a ring too small for the new coordinates
    collapses): the database stores WGS84, so validity is checked, and repaired, there."""
    out = np.array(frame.geometry.values, dtype=object)
    present = ~(shapely.is_missing(out) | shapely.is_empty(out))
    _repair_invalid(out, present, keys, problems, repaired, " after reprojection to WGS84")
    return frame.set_geometry(gpd.GeoSeries(out, index=frame.index, crs=frame.crs))


def _shown(value: object) -> str:
    """A cell value as a user wrote it (2.5, 'abc'), not as numpy spells it."""
    item = getattr(value, "item", None)
    return repr(item() if callable(item) else value)


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry | None:
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")]
    if not parts:
        return None
    return shapely.union_all(parts)


def _coerce(frame: pd.DataFrame, spec: LayerSpec, keys: pd.Series) -> list[Problem]:
    problems: list[Problem] = []
    for col, kind in spec.columns.items():
        if col not in frame:
            continue
        values = frame[col]
        if kind in ("code12", "code15"):
            text = values.astype("string").str.strip()
            text = text.str.replace(r"\.0$", "", regex=True)
            pattern = DIVISION_CODE if kind == "code12" else GRID_CODE
            optional = col in spec.optional
            bad = ~text.fillna("").str.match(pattern.pattern)
            if optional:
                bad &= text.fillna("") != ""
            frame[col] = text.where(text.fillna("") != "", None) if optional else text
            for i in np.flatnonzero(bad.to_numpy()):
                width = 12 if kind == "code12" else 15
                problems.append(Problem(int(i), keys.iat[i],

                                        f"{col} {_shown(values.iat[i])} is not a "
                                        f"{width}-digit code",
                                        f"{col} not a {width}-digit code"))
        elif kind == "int":
            nums = pd.to_numeric(values, errors="coerce")
            bad = nums.isna() & values.notna()
            if bad.any():  # only then spell the values out: a million numbers as text is slow
                bad &= values.astype("string") != ""
            bad |= (nums < 0) | (nums.round() != nums) & nums.notna()
            if col in spec.required:
                bad |= nums.isna()
            for i in np.flatnonzero(bad.to_numpy()):
                problems.append(Problem(int(i), keys.iat[i],
                                        f"{col} {_shown(values.iat[i])} is not a whole number ≥ 0",
                                        f"{col} not a whole number ≥ 0"))
            frame[col] = nums.where(~bad).astype("Int64")  # fractions reported, not cast
        elif kind == "bool":
            if values.dtype == bool:
                continue
            text = values.astype("string").str.strip().str.lower().fillna("")
            truthy = text.isin(["1", "true", "t", "yes", "y", "是"])
            falsy = text.isin(["0", "false", "f", "no", "n", "否", ""])
            for i in np.flatnonzero((~truthy & ~falsy).to_numpy()):
                problems.append(Problem(int(i), keys.iat[i],
                                        f"{col} {_shown(values.iat[i])} is not true/false",
                                        f"{col} not true/false"))
            frame[col] = truthy.to_numpy()
        elif kind == "timestamp":
            stamps = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
            for i in np.flatnonzero(stamps.isna().to_numpy()):
                problems.append(Problem(int(i), keys.iat[i],
                                        f"{col} {_shown(values.iat[i])} is not a date and time",
                                        f"{col} not a date and time"))
            frame[col] = stamps
        else:
            text = values.astype("string")
            if col in spec.required:
                for i in np.flatnonzero((text.isna() | (text.str.strip() == "")).to_numpy()):
                    problems.append(Problem(int(i), keys.iat[i], f"{col} is empty",
                                            f"{col} empty"))
            frame[col] = text
    for col, allowed in spec.choices.items():
        if col in frame:
            bad = frame[col].notna() & ~frame[col].isin(allowed)
            for i in np.flatnonzero(bad.to_numpy()):
                problems.append(Problem(int(i), keys.iat[i], f"{col} {frame[col].iat[i]!r} is "
                                        f"not one of {', '.join(allowed)}",
                                        f"{col} not one of the allowed values"))
    return problems


def _map_columns(frame: pd.DataFrame, spec: LayerSpec, mapping: dict[str, str],
                 source: str) -> tuple[pd.DataFrame, list[str]]:
    unknown = [src for src in mapping if src not in frame.columns]
    if unknown:
        raise ImportRejected(source, f"--map names columns the file does not have: "
                             f"{', '.join(unknown)} (it has {', '.join(map(str, frame.columns))})")
    frame = frame.rename(columns=mapping)
    geometry_name = frame.geometry.name if isinstance(frame, gpd.GeoDataFrame) else None
    ignored = [str(c) for c in frame.columns if c not in spec.columns and c != geometry_name]
    missing = [c for c in spec.required if c not in frame.columns]
    if missing:
        hints = []
        for col in missing:
            close = difflib.get_close_matches(col, [str(c) for c in frame.columns], n=1, cutoff=0.5)
            hints.append(f"{col} (did you mean --map {close[0]}={col}?)" if close else col)
        raise ImportRejected(
            source, f"missing required column(s) for {spec.name}: {', '.join(hints)}; the file "
            f"has {', '.join(map(str, frame.columns))}. Rename them with --map FILECOL=COLUMN")
    for col, default in spec.defaults.items():
        if col not in frame:
            frame[col] = default
    for col, kind in spec.optional.items():
        if col not in frame:  # missing text made as text: not a million None to convert
            frame[col] = pd.Series(pd.NA, index=frame.index, dtype="string") \
                if kind == "text" else None
    keep = list(spec.columns) + (["geometry"] if spec.geometry != "none" else [])
    return frame[keep], ignored


def _duplicated(keys: pd.Series) -> np.ndarray:
    """Positions of the keys that occur more than once (missing keys aside). Arrow's hash
    count answers the usual case, all distinct, without factorizing every key."""
    present = pa.array(keys.dropna().astype(str), type=pa.string())
    if pc.count_distinct(present).as_py() == len(present):
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero((keys.duplicated(keep=False) & keys.notna()).to_numpy())


def read_layer(path: str | Path, layer_name: str, *, crs: str | None = None,
               columns: dict[str, str] | None = None, layer: str | None = None,
               x: str | None = None, y: str | None = None) -> ReadResult:
    """Read, check, repair and reproject one layer file.

    Parameters
    ----------
    path : the file (GeoJSON, GeoPackage, Shapefile or zipped Shapefile, GeoParquet, CSV)
    layer_name : which gridmap layer the rows are (``households``, ``grids`` …)
    crs : the CRS of the coordinates when the file has none, or to override a wrong one;
        ``gcj02`` and ``bd09`` are converted to WGS84
    columns : renames, file column → gridmap column
    layer : the layer inside a multi-layer file (GeoPackage)
    x, y : coordinate columns of a CSV

    Raises
    ------
    ImportRejected
        naming every feature that cannot be imported and why.
    """
    path = Path(path)
    source = str(path)
    spec = LAYERS[layer_name]
    if not path.exists():
        raise ImportRejected(source, "no such file")
    frame = _read_any(path, layer, x, y, spec)
    notes: list[str] = []
    frame, ignored = _map_columns(frame, spec, columns or {}, source)
    if ignored:
        optional = ", ".join(spec.optional) or "none"
        notes.append(f"columns not imported: {', '.join(ignored)} (optional columns of "
                     f"{spec.name}: {optional}; rename with --map)")
    keys = frame[spec.key].astype("string")
    if spec.geometry == "none":
        problems = _coerce(frame, spec, keys)
        if problems:
            raise ImportRejected(source, f"{len(problems)} problem(s); nothing was imported",
                                 problems)
        return ReadResult(frame, [], notes)
    if crs is not None:
        declared = parse_crs(crs)
        if frame.crs is not None and not isinstance(declared, str) and frame.crs != declared:
            notes.append(f"the file declares {frame.crs.name}; using --crs {crs} instead")
    elif frame.crs is None:
        raise ImportRejected(source, "the file has no CRS: say which one its coordinates are in "
                             "with --crs (EPSG:4326, EPSG:4490, EPSG:32650, gcj02, bd09 …)")
    else:
        declared = frame.crs
    frame, problems, repaired = _fix_geometry(frame, spec, keys)
    frame = _to_wgs84(frame, declared, source)
    if spec.geometry == "polygon":
        frame = _check_after_reprojection(frame, keys, problems, repaired)
    problems += _coerce(frame, spec, keys)
    for i in _duplicated(keys):
        problems.append(Problem(int(i), keys.iat[i], f"{spec.key} occurs more than once",
                                f"{spec.key} not unique"))
    if problems:
        problems.sort(key=lambda p: -1 if p.row is None else p.row)
        raise ImportRejected(source, f"{len(problems)} problem(s) in "
                             f"{len({p.row for p in problems})} feature(s); nothing was "
                             "imported", problems)
    return ReadResult(frame, repaired, notes)
