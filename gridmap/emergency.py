"""The emergency view, the use case: everyone inside an area, by grid, for mobilisation.

Draw or pick an area — a polygon, or a radius around a point — and get, within the caller's
divisions, every grid holding households inside it: the grid's workers and their phones,
the households and residents inside, and the vulnerable among them (households with a care
flag: elderly living alone, disabled, left-behind child, low income; and their residents),
in all and per flag. Roles that see care flags in full (admin, planner, grid worker) also
get the vulnerable households themselves, with names, phones and addresses; the others get
the counts only.

Called by the API (``api/routes_emergency.py``). The input is checked here (a valid, not
empty polygon of at most :data:`MAX_VERTICES` corners and :data:`MAX_AREA_KM2` km², or a
radius of :data:`RADIUS_M` metres); the SQL is in :mod:`gridmap.store.emergency`; how
personal fields are shown is :mod:`gridmap.domain.access`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import Geod
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient
from sqlalchemy.engine import Connection

from gridmap.access import Principal
from gridmap.domain.access import Resource, Show, household_view, worker_view
from gridmap.domain.chinacrs import bd09_to_wgs84, gcj02_to_wgs84, to_wgs84
from gridmap.domain.layers import CARE_FLAGS
from gridmap.domain.notes import Note, note
from gridmap.store.emergency import read_area_by_grid

Crs = Literal["wgs84", "cgcs2000", "gcj02", "bd09"]
CRS_CHOICES: tuple[str, ...] = ("wgs84", "cgcs2000", "gcj02", "bd09")
MAX_AREA_KM2 = 2_000.0  # a district is a few hundred km²; a city's whole area is not a drill
MAX_VERTICES = 10_000
RADIUS_M = (10.0, 20_000.0)
COUNTS = ("households", "residents", "vulnerable_households", "vulnerable_residents")
_GEOD = Geod(ellps="WGS84")
SHAPES = {"Polygon": "a list of rings, each a list of [lon, lat] pairs",
          "MultiPolygon": "a list of polygons, each a list of rings of [lon, lat] pairs"}
_REASON = re.compile(r"^(?P<what>[^\[]+)\[(?P<x>\S+) (?P<y>\S+)\]$")


class EmergencyError(ValueError):
    """An area that cannot be searched as sent; the message says what to fix."""


@dataclass(frozen=True)
class Area:
    """Where to look: a WGS84 polygon, or a circle of ``radius_m`` metres around
    ``center`` (WGS84 lon, lat)."""

    polygon: BaseGeometry | None = None
    center: tuple[float, float] | None = None
    radius_m: float | None = None

    @property
    def km2(self) -> float:
        if self.polygon is not None:
            return geodesic_km2(self.polygon)
        assert self.radius_m is not None
        return math.pi * self.radius_m**2 / 1e6

    def describe(self) -> str:
        """One line for the audit log and the answer.

        Examples
        --------
        >>> area_around(109.0, 34.2, 500).describe()
        '500 m around (109.0000000, 34.2000000)'
        """
        if self.center is not None:
            return (f"{self.radius_m:g} m around ({self.center[0]:.7f}, "
                    f"{self.center[1]:.7f})")
        assert self.polygon is not None
        return (f"{self.polygon.geom_type} of {shapely.get_num_coordinates(self.polygon)} "
                f"vertices, {self.km2:.3f} km²")

    def note(self) -> Note:
        """:meth:`describe` as a note of the audit log, shown in its reader's language.

        >>> area_around(109.0, 34.2, 500).note().english()
        'emergency 500 m around (109.0000000, 34.2000000)'
        """
        if self.center is not None:
            return note("emergency_circle", radius=f"{self.radius_m:g}",
                        lon=f"{self.center[0]:.7f}", lat=f"{self.center[1]:.7f}")
        assert self.polygon is not None
        return note("emergency_polygon", shape=self.polygon.geom_type,
                    vertices=int(shapely.get_num_coordinates(self.polygon)),
                    km2=f"{self.km2:.3f}")


@dataclass(frozen=True)
class Survey:
    """What an emergency query found, as the caller may see it.

    ``totals`` and each of ``grids`` hold ``households``, ``residents``,
    ``vulnerable_households``, ``vulnerable_residents`` and ``by_flag`` (per care flag:
    ``households`` and ``residents``); a grid also its ``code`` (None: households outside
    every grid), ``name``, ``kind``, ``community_code``, ``community_name``, ``workers``
    (masked as the role says) and, when asked, ``shape`` (GeoJSON). ``households``: the
    vulnerable households, None for a role that sees counts only."""

    area: Area
    totals: dict[str, Any]
    grids: list[dict[str, Any]]
    households: list[dict[str, Any]] | None
    workers_in_full: int  # workers whose name and phone were shown whole (audited)

    @property
    def household_ids(self) -> list[str]:
        return [str(h["id"]) for h in self.households or []]


# --- the area --------------------------------------------------------------------------------

def geodesic_km2(geom: BaseGeometry) -> float:
    """The area of a WGS84 polygon on the ellipsoid, in km² (any ring orientation).

    Examples
    --------
    >>> round(geodesic_km2(shapely.box(109.0, 34.0, 109.01, 34.01)), 3)
    1.025
    """
    parts = shapely.get_parts(geom)
    return sum(abs(_GEOD.geometry_area_perimeter(orient(p, 1.0))[0]) for p in parts) / 1e6


def area_from_geojson(geometry: Mapping[str, Any], *, crs: str = "wgs84") -> Area:
    """An :class:`Area` from a GeoJSON Polygon or MultiPolygon (or a Feature holding one)
    whose coordinates are in *crs*; :class:`EmergencyError` says what is wrong with it.

    Examples
    --------
    >>> area_from_geojson({"type": "Polygon", "coordinates": [[[109, 34], [109.01, 34],
    ...                    [109.01, 34.01], [109, 34]]]}).polygon.geom_type
    'Polygon'
    >>> area_from_geojson({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0],
    ...                    [0, 1], [0, 0]]]})
    Traceback (most recent call last):
    ...
    gridmap.emergency.EmergencyError: the area is not a valid polygon: Self-intersection at
    (0.5, 0.5): redraw it so that no edge crosses another
    """
    geometry = _unwrap(geometry)
    kind = geometry.get("type")
    if isinstance(kind, str) and "\x00" in kind:
        raise EmergencyError("the area's type must not contain a NUL character (\\x00)")
    if kind not in ("Polygon", "MultiPolygon"):
        raise EmergencyError(f"the area must be a GeoJSON Polygon or MultiPolygon, not "
                             f"{kind!r}")
    try:
        with np.errstate(invalid="ignore"):  # NaN coordinates are refused just below
            polygon = shape({"type": kind, "coordinates": geometry.get("coordinates")})
    except (ValueError, ArithmeticError, shapely.errors.ShapelyError) as exc:
        raise EmergencyError(f"the area's coordinates do not make a {kind}: {exc}") from exc
    except (TypeError, IndexError, KeyError, AttributeError) as exc:
        raise EmergencyError(f"the area's coordinates do not make a {kind}: a {kind} is "
                             f"{SHAPES[kind]}") from exc
    if polygon.is_empty:
        raise EmergencyError("the area is empty: draw a polygon of three corners at least")
    polygon = shapely.force_2d(polygon)
    _check_coordinates(shapely.get_coordinates(polygon))
    vertices = shapely.get_num_coordinates(polygon)
    if vertices > MAX_VERTICES:
        raise EmergencyError(f"the area has {vertices} vertices, more than {MAX_VERTICES}: "
                             "simplify it")
    _check_valid(polygon)
    crs = _check_crs(crs)
    if crs in ("gcj02", "bd09"):
        shift = gcj02_to_wgs84 if crs == "gcj02" else bd09_to_wgs84
        polygon = shapely.transform(polygon, lambda xy: np.column_stack(shift(xy[:, 0],
                                                                              xy[:, 1])))
        _check_valid(polygon)
    km2 = geodesic_km2(polygon)
    if km2 > MAX_AREA_KM2:
        raise EmergencyError(f"the area is {km2:,.0f} km², more than {MAX_AREA_KM2:,.0f} km²: "
                             "draw a smaller one (a district, a township)")
    if km2 == 0:
        raise EmergencyError("the area has no extent: draw a polygon around something")
    return Area(polygon=polygon)


def area_around(lon: float, lat: float, radius_m: float, *, crs: str = "wgs84") -> Area:
    """The circle of *radius_m* metres around (*lon*, *lat*) in *crs*.

    Examples
    --------
    >>> area_around(109.0, 34.2, 0)
    Traceback (most recent call last):
    ...
    gridmap.emergency.EmergencyError: radius_m must be between 10 and 20000 metres, not 0
    """
    _check_coordinates(np.array([[lon, lat]], dtype=np.float64))
    low, high = RADIUS_M
    if not (math.isfinite(radius_m) and low <= radius_m <= high):
        raise EmergencyError(f"radius_m must be between {low:g} and {high:g} metres, not "
                             f"{radius_m:g}")
    x, y = to_wgs84(lon, lat, _check_crs(crs))
    return Area(center=(x, y), radius_m=float(radius_m))


def _unwrap(geometry: Mapping[str, Any]) -> Mapping[str, Any]:
    if not isinstance(geometry, Mapping):
        raise EmergencyError("the area must be a GeoJSON object")
    if geometry.get("type") == "Feature":
        inner = geometry.get("geometry")
        if not isinstance(inner, Mapping):
            raise EmergencyError("the area's Feature holds no geometry")
        return inner
    return geometry


def _check_crs(crs: str) -> str:
    if crs not in CRS_CHOICES:
        raise EmergencyError(f"unknown coordinate system {crs!r}: "
                             f"{', '.join(CRS_CHOICES)}")
    return crs


def _check_coordinates(xy: NDArray[np.float64]) -> None:
    if not np.isfinite(xy).all():
        raise EmergencyError("the coordinates must be finite numbers")
    bad = (np.abs(xy[:, 0]) > 180) | (np.abs(xy[:, 1]) > 90)
    if bad.any():
        x, y = xy[bad][0]
        raise EmergencyError(f"coordinate ({x:g}, {y:g}) is out of range: longitude is "
                             "-180…180 and latitude -90…90 (lon, lat in that order)")


def _check_valid(polygon: BaseGeometry) -> None:
    reason = shapely.is_valid_reason(polygon)
    if reason == "Valid Geometry":
        return
    hit = _REASON.match(reason)
    what = hit["what"] if hit else reason
    if hit:
        reason = f"{what} at ({hit['x']}, {hit['y']})"
    fix = ("a ring needs three corners at least, and its first point again at the end"
           if what.startswith("Too few points") else "redraw it so that no edge crosses "
           "another" if "intersection" in what.lower() else "redraw it")
    raise EmergencyError(f"the area is not a valid polygon: {reason}: {fix}")


# --- the query -------------------------------------------------------------------------------

def lists_households(caller: Principal) -> bool:
    """Whether *caller* gets the vulnerable households themselves (else counts only)."""
    return caller.may(Resource.households) and caller.fields.care_flags == Show.full


def survey(conn: Connection, caller: Principal, area: Area, *,
           with_shapes: bool = False) -> Survey:
    """Everyone of the caller's divisions inside *area*, by grid (see :class:`Survey`)."""
    listed = lists_households(caller)
    rows = read_area_by_grid(
        conn, caller.scope,
        polygon_wkb=shapely.to_wkb(area.polygon) if area.polygon is not None else None,
        center=area.center, radius_m=area.radius_m, with_list=listed,
        with_shapes=with_shapes)
    grids, households, in_full = [], [], 0
    for row in rows:
        workers = _workers(caller, row.get("workers") or [])
        if caller.fields.worker_contact == Show.full:
            in_full += len(workers)
        grid = {"code": row["grid_code"], "name": row["grid_name"], "kind": row["kind"],
                "community_code": row["community_code"],
                "community_name": row["community_name"], **_counts(row),
                "workers": workers}
        if with_shapes:
            grid["shape"] = row["shape"]
        grids.append(grid)
        if listed:
            households += [_household(h, row["grid_code"], caller)
                           for h in row["vulnerable_list"] or []]
    return Survey(area, _totals(grids), grids, households if listed else None, in_full)


def _counts(row: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {k: int(row[k]) for k in COUNTS}
    out["by_flag"] = {f: {"households": int(row[f"{f}_households"]),
                          "residents": int(row[f"{f}_residents"])} for f in CARE_FLAGS}
    return out


def _totals(grids: list[dict[str, Any]]) -> dict[str, Any]:
    totals: dict[str, Any] = {k: sum(g[k] for g in grids) for k in COUNTS}
    totals["by_flag"] = {f: {k: sum(g["by_flag"][f][k] for g in grids)
                             for k in ("households", "residents")} for f in CARE_FLAGS}
    totals["grids"] = sum(1 for g in grids if g["code"] is not None)
    return totals


def _workers(caller: Principal, workers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not caller.may(Resource.workers):
        return []
    return [w for w in (worker_view(w, caller.fields) for w in workers) if w is not None]


def _household(row: dict[str, Any], grid_code: str | None, caller: Principal
               ) -> dict[str, Any]:
    seen = household_view(row, caller.fields)
    return {"id": seen["id"], "grid_code": grid_code, "address": seen.get("address"),
            "head_name": seen.get("head_name"), "phone": seen.get("phone"),
            "flags": [f for f in CARE_FLAGS if seen.get(f)],
            "lon": seen["lon"], "lat": seen["lat"]}
