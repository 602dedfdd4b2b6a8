"""Incident statistics: performance indicators (绩效) and hotspots (early warning).

Pure functions over two frames the store reads (:mod:`gridmap.store.incident_stats`):

- *cases*, one row per incident: ``id``, ``category``, ``status``, ``reported_at``,
  ``grid_code``, ``community_code``, ``township_code``, ``assignee``, ``dispatch_due``,
  ``handle_due``, ``verify_due``, ``closed_at`` (for hotspots only ``reported_at``, the unit's
  column and, for H3 cells, ``lon`` / ``lat``); optional names ``grid_name``,
  ``community_name``, ``township_name``, ``assignee_name``.
- *events*, the timeline: ``incident_id``, ``at``, ``action``, ``to_stage`` (optional ``id``
  to order events of the same instant).

Times may be timestamps or ISO strings; naive ones are taken as UTC.

**Indicators** (:func:`kpis`) are a cohort view: every measure of a row is about the cases
*reported* in that unit and period, whenever their later steps happened.

**Hotspots** (:func:`hotspots`) compare each unit's count in the latest window with the
mean of its own previous windows under a Poisson model; see that function for the rule and
its false-alarm rate.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy.stats import poisson

from gridmap.analysis.aggregate import h3_to_polygons, lonlat_to_h3
from gridmap.domain.incidents import STAGE_DEADLINES, TRANSITIONS, Stage

Unit = Literal["grid", "worker", "community", "township", "category"]
Period = Literal["day", "week", "month"]
HotspotUnit = Literal["grid", "h3"]

UNIT_COLUMNS: dict[str, str] = {"grid": "grid_code", "worker": "assignee",
                                "community": "community_code", "township": "township_code",
                                "category": "category"}
NAME_COLUMNS: dict[str, str] = {"grid": "grid_name", "worker": "assignee_name",
                                "community": "community_name", "township": "township_name"}
CASE_COLUMNS = ("id", "category", "status", "reported_at", "grid_code", "community_code",
                "township_code", "assignee", "dispatch_due", "handle_due", "verify_due",
                "closed_at")
EVENT_COLUMNS = ("incident_id", "at", "action", "to_stage")

CLOSED = frozenset({Stage.closed.value, Stage.evaluated.value})
# Stages a case can leave, in workflow order: the ones with a time per stage.
TIMED_STAGES: tuple[str, ...] = tuple(s.value for s in Stage if TRANSITIONS[s])
PERIOD_FREQ: dict[str, str] = {"day": "D", "week": "W-SUN", "month": "M"}
MIN_ALPHA = 1e-12  # smaller: 1 − alpha rounds towards 1 and the quantile is no longer finite
COUNTS = ("cases", "cancelled", "closed", "closed_with_deadline", "closed_on_time", "overdue",
          "returned")


def kpis(cases: pd.DataFrame, events: pd.DataFrame, *, by: Unit, period: Period | None = None,
         now: datetime | pd.Timestamp, tz: str = "Asia/Shanghai") -> pd.DataFrame:
    """Performance indicators per unit (and period) of the cases reported there.

    Parameters
    ----------
    cases, events : the frames described in the module's docstring
    by : grid, worker (the case's assignee), community, township or category
    period : None for one row per unit, else per calendar day, week (Monday first) or month
        of ``reported_at`` in *tz*
    now : the moment "overdue" is judged at
    tz : the time zone of the calendar periods

    Returns
    -------
    DataFrame, one row per unit (and period), sorted by them:

    - ``unit``: the code (grid, community, township), worker id or category; missing (no
      grid, nobody assigned) is a unit of its own; ``name`` when *cases* carries the
      unit's name column; ``period``: the first day of the period, ``YYYY-MM-DD``
    - ``cases``; ``cancelled``; ``closed`` (closed or evaluated)
    - ``closure_rate`` (结案率): closed / (cases − cancelled)
    - ``closed_with_deadline``: closed cases with a ``handle_due`` and a ``closed_at``;
      ``closed_on_time``: of those, closed no later than ``handle_due``;
      ``on_time_rate`` (按期结案率) = closed_on_time / closed_with_deadline
    - ``overdue``: cases now past the deadline of the stage they are in (dispatch while
      collected, registered or returned; handling while dispatched or handling;
      verification while reported)
    - ``returned``: "return" steps in the cases' timelines
    - ``median_hours_<stage>`` for each stage a case can leave: the median time from entering
      the stage to leaving it, over the cases' timelines (cases without one add nothing;
      stays in a stage not yet left are not counted)

    A rate is NaN where its denominator is 0.

    Examples
    --------
    >>> cases = pd.DataFrame({
    ...     "id": ["a", "b", "c"], "category": "x", "status": ["closed", "cancelled", "handling"],
    ...     "reported_at": pd.to_datetime(["2026-11-02T01:00Z"] * 3),
    ...     "grid_code": "610199001001001", "community_code": "610199001001",
    ...     "township_code": "610199001000", "assignee": "W1", "dispatch_due": pd.NaT,
    ...     "handle_due": pd.to_datetime(["2026-11-03T00:00Z", None, "2026-11-03T00:00Z"]),
    ...     "verify_due": pd.NaT,
    ...     "closed_at": pd.to_datetime(["2026-11-02T09:00Z", None, None])})
    >>> events = pd.DataFrame({"incident_id": ["a", "a"], "action": ["collect", "register"],
    ...     "to_stage": ["collected", "registered"],
    ...     "at": pd.to_datetime(["2026-11-02T01:00Z", "2026-11-02T01:30Z"])})
    >>> row = kpis(cases, events, by="grid", now=pd.Timestamp("2026-11-04", tz="UTC")).iloc[0]
    >>> int(row["cases"]), float(row["closure_rate"]), float(row["on_time_rate"])
    (3, 0.5, 1.0)
    >>> int(row["overdue"]), float(row["median_hours_collected"])
    (1, 0.5)
    """
    _require(cases, CASE_COLUMNS, "cases")
    _require(events, EVENT_COLUMNS, "events")
    if by not in UNIT_COLUMNS:
        raise ValueError(f"by must be one of {', '.join(UNIT_COLUMNS)}, not {by!r}")
    if period is not None and period not in PERIOD_FREQ:
        raise ValueError(f"period must be one of {', '.join(PERIOD_FREQ)} or None, not "
                         f"{period!r}")
    cases = cases.drop_duplicates("id").set_index("id")
    keys = _keys(cases, by, period, tz)
    counts = _case_flags(cases, events, _utc_scalar(now)).join(keys)
    names = list(keys.columns)
    table = counts.groupby(names, dropna=False, sort=False)[list(COUNTS)].sum()
    table = table.join(_stage_medians(events, keys))
    for col in (f"median_hours_{s}" for s in TIMED_STAGES):
        if col not in table:
            table[col] = np.nan
    table = table.reset_index()
    table["closure_rate"] = _ratio(table["closed"], table["cases"] - table["cancelled"])
    table["on_time_rate"] = _ratio(table["closed_on_time"], table["closed_with_deadline"])
    name_col = NAME_COLUMNS.get(by)
    if name_col is not None and name_col in cases:
        lookup = (cases.dropna(subset=[UNIT_COLUMNS[by], name_col])
                  .drop_duplicates(UNIT_COLUMNS[by]).set_index(UNIT_COLUMNS[by])[name_col])
        table.insert(1, "name", table["unit"].map(lookup).astype(object))
    order = [c for c in ("unit", "name", "period") if c in table]
    rates = ["cases", "cancelled", "closed", "closure_rate", "closed_with_deadline",
             "closed_on_time", "on_time_rate", "overdue", "returned"]
    table = table.reindex(columns=order + rates + [f"median_hours_{s}" for s in TIMED_STAGES])
    table[list(COUNTS)] = table[list(COUNTS)].astype(int)
    medians = [f"median_hours_{s}" for s in TIMED_STAGES]
    table[medians] = table[medians].astype(float)
    sort = [c for c in ("unit", "period") if c in table]
    return table.sort_values(sort, na_position="last", kind="stable").reset_index(drop=True)


def stage_spells(events: pd.DataFrame) -> pd.DataFrame:
    """The stays of each case in each stage, from its timeline.

    A stay starts at the event that moved the case into a stage (a step that leaves the stage
    unchanged, such as re-routing, does not start one) and ends at the next event that moved
    it out. Stays not yet ended are left out.

    Returns
    -------
    DataFrame: ``incident_id``, ``stage``, ``entered``, ``left``, ``hours``.

    Examples
    --------
    >>> ev = pd.DataFrame({"incident_id": "a", "action": ["collect", "route", "register"],
    ...     "to_stage": ["collected", "collected", "registered"],
    ...     "at": pd.to_datetime(["2026-11-02T01:00Z", "2026-11-02T01:10Z",
    ...                           "2026-11-02T03:00Z"])})
    >>> stage_spells(ev)[["stage", "hours"]].to_dict("records")
    [{'stage': 'collected', 'hours': 2.0}]
    """
    _require(events, ("incident_id", "at", "to_stage"), "events")
    order = ["incident_id", "at"] + (["id"] if "id" in events else [])
    ev = events.assign(at=_utc(events["at"])).sort_values(order, kind="stable")
    previous = ev.groupby("incident_id", sort=False)["to_stage"].shift()
    entered = ev[previous.isna() | (ev["to_stage"] != previous)]
    left = entered.groupby("incident_id", sort=False)["at"].shift(-1)
    out = pd.DataFrame({"incident_id": entered["incident_id"].to_numpy(),
                        "stage": entered["to_stage"].to_numpy(),
                        "entered": entered["at"].to_numpy(), "left": left.to_numpy()})
    out = out[out["left"].notna()].reset_index(drop=True)
    out["entered"], out["left"] = _utc(out["entered"]), _utc(out["left"])
    out["hours"] = (out["left"] - out["entered"]) / pd.Timedelta(hours=1)
    return out


def hotspots(cases: pd.DataFrame, *, unit: HotspotUnit = "grid",
             window: timedelta = timedelta(days=7), history: int = 8,
             now: datetime | pd.Timestamp, alpha: float = 0.01, floor: float = 0.5,
             resolution: int = 9) -> pd.DataFrame:
    """Units (grids or H3 cells) whose count of cases in the latest window is far above their
    own history.

    The rule: the latest window is ``[now − window, now)``; the history is the *history*
    windows of the same length just before it. For each unit with a case in any of them,
    ``baseline_mean`` is its mean count per history window (empty windows count as 0) and
    ``expected`` is that mean raised to *floor* (so that a unit with no history does not
    flag its first case or two). Under a Poisson model with that mean, ``threshold`` is the
    ``1 − alpha`` quantile (``poisson.ppf``) and ``p_value`` the chance of at least the
    current count (``poisson.sf(current − 1, expected)``); a unit is ``flagged`` when its
    current count exceeds the threshold — equivalently, when ``p_value <= alpha``.

    False alarms: each unit is tested on its own, so over *n* steady units about
    ``alpha · n`` flags a window are to be expected by chance (500 grids at 0.01: ~5 a
    week). Because the baseline mean is estimated from *history* windows, the rate per unit
    is near but not exactly *alpha*: with 8 windows and alpha 0.01, simulated steady Poisson
    counts flag 0.8–1.2 % of units for means of 1 to 10 and well under 0.1 % for means below
    0.5 (the floor). Seasonal or weekly patterns are not modelled.

    Parameters
    ----------
    cases : ``reported_at`` and ``grid_code`` (unit ``grid``; cases outside every grid are
        left out) or ``lon`` / ``lat`` in WGS84 (unit ``h3``)
    unit : grid or h3
    window : the length of a window
    history : how many earlier windows make the baseline
    now : the end of the latest window
    alpha : the false-alarm probability per unit and window, at least :data:`MIN_ALPHA`
    floor : the least baseline mean the test assumes
    resolution : the H3 resolution (unit ``h3``)

    Returns
    -------
    DataFrame: ``unit`` (grid code or H3 cell), ``current``, ``baseline_mean``,
    ``expected``, ``threshold``, ``p_value``, ``flagged``; flagged units first, then by
    ``p_value``.

    Examples
    --------
    >>> now = pd.Timestamp("2026-11-20", tz="UTC")
    >>> at = [now - pd.Timedelta(days=d) for d in [1] * 9 + [10, 20, 30, 40]]
    >>> cases = pd.DataFrame({"reported_at": at, "grid_code": ["g1"] * 9 + ["g1", "g2"] * 2})
    >>> hotspots(cases, now=now)[["unit", "current", "baseline_mean", "threshold",
    ...                           "flagged"]].to_dict("records")  # doctest: +NORMALIZE_WHITESPACE
    [{'unit': 'g1', 'current': 9, 'baseline_mean': 0.25, 'threshold': 3, 'flagged': True},
     {'unit': 'g2', 'current': 0, 'baseline_mean': 0.25, 'threshold': 3, 'flagged': False}]
    """
    _check_hotspot_options(unit, window, history, alpha, floor, resolution)
    _require(cases, ("reported_at",) + (("grid_code",) if unit == "grid" else ("lon", "lat")),
             "cases")
    end = _utc_scalar(now)
    at = _utc(cases["reported_at"])
    offset = ((end - at) / window).to_numpy(dtype=float)  # (0, 1]: the latest window
    keep = (offset > 0) & (offset <= history + 1)
    if unit == "grid":
        keep &= cases["grid_code"].notna().to_numpy()
        units = cases["grid_code"].to_numpy()[keep]
    else:
        lon, lat = (cases[c].to_numpy(dtype=float)[keep] for c in ("lon", "lat"))
        units = lonlat_to_h3(lon, lat, resolution)
    index = np.ceil(offset[keep]).astype(int) - 1
    counts = (pd.DataFrame({"unit": units, "window": index})
              .groupby(["unit", "window"]).size().unstack("window")
              .reindex(columns=range(history + 1)).fillna(0).astype(int))
    current = counts[0].to_numpy()
    baseline = counts[list(range(1, history + 1))].to_numpy().mean(axis=1)
    expected = np.maximum(baseline, floor)
    threshold = poisson.ppf(1 - alpha, expected).astype(int)
    out = pd.DataFrame({"unit": counts.index.to_numpy(dtype=object), "current": current,
                        "baseline_mean": baseline, "expected": expected,
                        "threshold": threshold,
                        "p_value": poisson.sf(current - 1, expected),
                        "flagged": current > threshold})
    return out.sort_values(["flagged", "p_value", "current", "unit"],
                           ascending=[False, True, False, True]).reset_index(drop=True)


def hotspots_to_frame(table: pd.DataFrame, *, unit: HotspotUnit,
                      grids: gpd.GeoDataFrame | None = None) -> gpd.GeoDataFrame:
    """Hotspot rows (from :func:`hotspots`) with their shapes, in EPSG:4326: H3 cell
    polygons, or the polygons of *grids* (``code``, geometry; ``name`` is kept too) — a grid
    missing there gets no geometry.

    Examples
    --------
    >>> cell = lonlat_to_h3(np.array([109.0]), np.array([34.0]), 9)[0]
    >>> t = pd.DataFrame({"unit": [cell], "current": [4]})
    >>> hotspots_to_frame(t, unit="h3").geometry.iloc[0].geom_type
    'Polygon'
    """
    if unit == "h3":
        return gpd.GeoDataFrame(table.copy(), geometry=list(h3_to_polygons(
            table["unit"].to_numpy())), crs=4326)
    if grids is None:
        raise ValueError("grid hotspots need the grids' polygons")
    if grids.crs is None:
        raise ValueError("the grids have no CRS: set one before mapping them")
    shapes = grids.to_crs(4326).drop_duplicates("code").set_index("code")
    out = table.copy()
    if "name" in shapes:
        out["name"] = out["unit"].map(shapes["name"]).astype(object)
    geometry = out["unit"].map(shapes.geometry).astype(object)
    return gpd.GeoDataFrame(out, geometry=gpd.GeoSeries(geometry, crs=4326))


# --- the steps -----------------------------------------------------------------------------

def _require(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} need the column(s) {', '.join(missing)}")


def _utc(values: Any) -> pd.Series:
    return pd.to_datetime(pd.Series(values), utc=True)


def _utc_scalar(moment: datetime | pd.Timestamp) -> pd.Timestamp:
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _keys(cases: pd.DataFrame, by: str, period: str | None, tz: str) -> pd.DataFrame:
    """The group of each case: ``unit`` and, with *period*, the period's first day."""
    keys = pd.DataFrame({"unit": cases[UNIT_COLUMNS[by]].astype(object)}, index=cases.index)
    keys["unit"] = keys["unit"].where(keys["unit"].notna(), None)
    if period is not None:
        local = _utc(cases["reported_at"]).dt.tz_convert(tz).dt.tz_localize(None)
        starts = local.dt.to_period(PERIOD_FREQ[period]).dt.start_time
        keys["period"] = starts.dt.strftime("%Y-%m-%d").to_numpy()
    return keys


def _case_flags(cases: pd.DataFrame, events: pd.DataFrame, now: pd.Timestamp
                ) -> pd.DataFrame:
    """Per case: 1/0 for each count of :data:`COUNTS` (``returned``: how many returns)."""
    status = cases["status"]
    closed = status.isin(CLOSED)
    handle_due, closed_at = _utc(cases["handle_due"]), _utc(cases["closed_at"])
    with_deadline = closed & handle_due.notna() & closed_at.notna()
    overdue = pd.Series(False, index=cases.index)
    for stage, (_, column) in STAGE_DEADLINES.items():
        due = _utc(cases[column])
        overdue |= (status == stage.value) & due.notna() & (due < now)
    returns = events.loc[events["action"] == "return", "incident_id"].value_counts()
    return pd.DataFrame({
        "cases": 1, "cancelled": status == Stage.cancelled.value, "closed": closed,
        "closed_with_deadline": with_deadline,
        "closed_on_time": with_deadline & (closed_at <= handle_due), "overdue": overdue,
        "returned": pd.Series(cases.index, index=cases.index).map(returns).fillna(0)
        .astype(int)}, index=cases.index)


def _stage_medians(events: pd.DataFrame, keys: pd.DataFrame) -> pd.DataFrame:
    """Median hours per stage, per group of *keys*, as ``median_hours_<stage>`` columns."""
    names = list(keys.columns)
    spells = stage_spells(events).join(keys, on="incident_id", how="inner")
    if spells.empty:
        return pd.DataFrame(columns=[f"median_hours_{s}" for s in TIMED_STAGES],
                            index=pd.MultiIndex.from_arrays([[]] * len(names), names=names)
                            if len(names) > 1 else pd.Index([], name=names[0]))
    medians = (spells.groupby([*names, "stage"], dropna=False)["hours"].median()
               .unstack("stage"))
    medians.columns = [f"median_hours_{s}" for s in medians.columns]
    return medians


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    num, den = numerator.to_numpy(dtype=float), denominator.to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return pd.Series(np.where(den > 0, num / np.where(den > 0, den, 1), np.nan),
                         index=numerator.index)


def _check_hotspot_options(unit: str, window: timedelta, history: int, alpha: float,
                           floor: float, resolution: int) -> None:
    if unit not in ("grid", "h3"):
        raise ValueError(f"unit must be grid or h3, not {unit!r}")
    if not window > timedelta(0):
        raise ValueError(f"the window must be longer than 0, not {window}")
    if not history >= 1:
        raise ValueError(f"history must be at least 1 window, not {history}")
    if not MIN_ALPHA <= alpha < 1:
        raise ValueError(f"alpha must lie in [{MIN_ALPHA:g}, 1), not {alpha}")
    if not floor > 0:
        raise ValueError(f"floor must be above 0, not {floor}")
    if not 0 <= resolution <= 15:
        raise ValueError(f"H3 resolution must be 0..15, not {resolution}")
