"""GCJ-02 and BD-09, the obfuscated coordinate systems of Chinese web maps and geocoders.

GCJ-02 is WGS84 shifted by a published non-linear offset (the "Mars" transform, in the
form first reverse-engineered in the public domain eviltransform / prcoords libraries);
BD-09 is Baidu's further rotation of GCJ-02. There is no closed-form inverse: WGS84 is
recovered by fixed-point iteration to well under a millimetre. These are vectorised
NumPy versions, checked point for point against prcoords in ``tests/domain``.

Outside mainland China the offset is zero, as in every reference implementation.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = np.pi * 3000.0 / 180.0

Floats = NDArray[np.float64]


def _in_china(lon: Floats, lat: Floats) -> NDArray[np.bool_]:
    return (lon > 73.66) & (lon < 135.05) & (lat > 3.86) & (lat < 53.55)


def _offset(lon: Floats, lat: Floats) -> tuple[Floats, Floats]:
    x, y = lon - 105.0, lat - 35.0
    dlat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
            + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
            + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
            + (160.0 * np.sin(y / 12.0 * np.pi) + 320 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0)
    dlon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
            + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
            + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
            + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0)
    radlat = lat / 180.0 * np.pi
    magic = 1 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    inside = _in_china(lon, lat)
    return np.where(inside, dlon, 0.0), np.where(inside, dlat, 0.0)


def _arrays(lon: ArrayLike, lat: ArrayLike) -> tuple[Floats, Floats]:
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[Floats, Floats]:
    """Shift WGS84 longitudes/latitudes to GCJ-02.

    Examples
    --------
    >>> lon, lat = wgs84_to_gcj02(116.397, 39.909)
    >>> round(float(lon), 6), round(float(lat), 6)
    (116.403244, 39.910403)
    """
    lon_a, lat_a = _arrays(lon, lat)
    dlon, dlat = _offset(lon_a, lat_a)
    return lon_a + dlon, lat_a + dlat


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike, *, tol: float = 1e-10) -> tuple[Floats, Floats]:
    """Recover WGS84 from GCJ-02 by fixed-point iteration (error far below 1 mm).

    Examples
    --------
    >>> lon, lat = gcj02_to_wgs84(116.40324, 39.910403)
    >>> round(float(lon), 5), round(float(lat), 5)
    (116.397, 39.909)
    """
    glon, glat = _arrays(lon, lat)
    wlon, wlat = glon.copy(), glat.copy()
    for _ in range(30):
        clon, clat = wgs84_to_gcj02(wlon, wlat)
        elon, elat = clon - glon, clat - glat
        wlon, wlat = wlon - elon, wlat - elat
        if np.all(np.abs(elon) < tol) and np.all(np.abs(elat) < tol):
            break
    return wlon, wlat


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[Floats, Floats]:
    x, y = _arrays(lon, lat)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike, *, tol: float = 1e-10) -> tuple[Floats, Floats]:
    """Invert :func:`gcj02_to_bd09` by iteration (the usual closed form is off by ~1 m)."""
    blon, blat = _arrays(lon, lat)
    x, y = blon - 0.0065, blat - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    glon, glat = z * np.cos(theta), z * np.sin(theta)
    for _ in range(30):
        clon, clat = gcj02_to_bd09(glon, glat)
        elon, elat = clon - blon, clat - blat
        glon, glat = glon - elon, glat - elat
        if np.all(np.abs(elon) < tol) and np.all(np.abs(elat) < tol):
            break
    return glon, glat


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[Floats, Floats]:
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[Floats, Floats]:
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def to_wgs84(lon: float, lat: float, crs: str) -> tuple[float, float]:
    """(lon, lat) in WGS84 from ``wgs84``, ``cgcs2000`` (the same to centimetres), ``gcj02``
    or ``bd09``.

    Examples
    --------
    >>> to_wgs84(109.0, 34.2, "cgcs2000")
    (109.0, 34.2)
    """
    if crs in ("wgs84", "cgcs2000"):
        return lon, lat
    if crs not in ("gcj02", "bd09"):
        raise ValueError(f"unknown coordinate system {crs!r}: wgs84, cgcs2000, gcj02 or bd09")
    x, y = (gcj02_to_wgs84 if crs == "gcj02" else bd09_to_wgs84)(lon, lat)
    return float(x), float(y)
