"""Write layers to GeoPackage, GeoJSON, GeoParquet (and CSV for tables without geometry)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

FORMATS = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON",
           ".parquet": "parquet", ".csv": "CSV"}


def write_layer(frame: gpd.GeoDataFrame | pd.DataFrame, path: str | Path, *,
                layer: str | None = None) -> Path:
    """Write *frame* to *path*; the format follows the suffix (.gpkg .geojson .parquet .csv)."""
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"cannot write {path.name}: use one of {', '.join(FORMATS)}")
    if not isinstance(frame, gpd.GeoDataFrame):
        if fmt != "CSV":
            raise ValueError("this layer has no geometry: export it as .csv")
        frame.to_csv(path, index=False)
        return path
    if fmt == "parquet":
        frame.to_parquet(path, index=False, compression="zstd")
    elif fmt == "CSV":
        out = pd.DataFrame(frame.drop(columns=frame.geometry.name))
        out["lon"], out["lat"] = frame.geometry.x, frame.geometry.y
        out.to_csv(path, index=False)
    else:
        pyogrio.write_dataframe(frame, path, driver=fmt, layer=layer)
    return path


CSV_RISKY = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet runs a cell starting so


def rows_to_csv(rows: list[dict[str, object]] | pd.DataFrame) -> bytes:
    """CSV for spreadsheets: UTF-8 with a byte-order mark (so Chinese reads right), CRLF
    lines, and a text cell a spreadsheet would run as a formula quoted with a leading
    apostrophe.

    Examples
    --------
    >>> rows_to_csv([{"name": "张三", "note": "=1+1"}]).decode("utf-8-sig").splitlines()
    ['name,note', "张三,'=1+1"]
    """
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    frame = frame.map(lambda v: "'" + v if isinstance(v, str) and v.startswith(CSV_RISKY)
                      else v)
    return frame.to_csv(index=False, lineterminator="\r\n").encode("utf-8-sig")
