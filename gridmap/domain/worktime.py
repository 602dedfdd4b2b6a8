"""Deadlines in working time on the Chinese working calendar.

Handling limits of city-management cases are given in working hours, working days or
emergency (calendar) hours. Working time is office time on working days; which days are
working days comes from the maintained ``chinesecalendar`` package (public holidays and the
adjusted working weekend days, 调休, as the State Council publishes them each year), with a
deployment's own overrides on top.

Rules
-----
* **Office time** is the calendar's periods on each working day, by default 08:30–12:00 and
  13:30–17:30 (7.5 h), measured on the wall clock of the calendar's zone (Asia/Shanghai).
* **Working days**: a day listed in ``extra_workdays`` is a working day and one in
  ``extra_holidays`` is not (the deployment's word wins); otherwise ``chinesecalendar``
  decides. For a year the package does not cover (1.11 covers 2004–2026; the next year's
  schedule is published around December) Monday–Friday are assumed and a
  :class:`CalendarCoverageWarning` names the year (once per year and call site under
  Python's default warning filter); :meth:`WorkCalendar.coverage_note` says the same as
  text. Nothing raises: a deadline in an uncovered year is computed, possibly a holiday off.
  Add that year's holidays to ``extra_holidays`` / ``extra_workdays`` or upgrade the package.
* **Working hours** (:func:`add_working_hours`): the earliest moment at which that much
  office time has passed after the start; a start outside office time counts from the next
  office period.
* **Working days** (:func:`add_working_days`): the same clock time on the *n*-th next working
  day. A start outside office time (before opening, at lunch, in the evening, on a day off)
  counts from the start of the next office period: dispatched on Monday at 20:00, one
  working day is due on Wednesday at 08:30 — the whole of Tuesday's office day is given.
  In office time this is always *n* × the office hours of a day.
* **Emergency hours** and **minutes** are calendar time, the calendar is ignored.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import chinese_calendar

TimeUnit = Literal["working_hours", "working_days", "emergency_hours", "minutes"]

DEFAULT_PERIODS: tuple[tuple[time, time], ...] = (
    (time(8, 30), time(12, 0)),
    (time(13, 30), time(17, 30)),
)
# A calendar with no working day this long is broken (overrides that close every day).
_MAX_IDLE_DAYS = 3660


class CalendarCoverageWarning(UserWarning):
    """A date lies in a year ``chinesecalendar`` does not cover: Monday–Friday assumed."""


@functools.cache
def _package_workday(day: date) -> bool | None:
    """``chinesecalendar``'s answer for *day*, or None when it does not cover the year."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return None


@dataclass(frozen=True)
class WorkCalendar:
    """Office periods, time zone and working days of one deployment.

    Parameters
    ----------
    periods
        Office periods of a working day as ``(start, end)`` clock times, in order and not
        overlapping.
    tz
        IANA time zone the office clock runs in.
    extra_holidays, extra_workdays
        Per-deployment overrides of the national calendar; they win over the package.

    Examples
    --------
    >>> cal = WorkCalendar()
    >>> cal.hours_per_day
    7.5
    >>> cal.is_workday(date(2026, 10, 1)), cal.is_workday(date(2026, 10, 10))  # 国庆, 调休
    (False, True)
    >>> WorkCalendar(extra_holidays=frozenset({date(2026, 10, 10)})).is_workday(
    ...     date(2026, 10, 10))
    False
    """

    periods: tuple[tuple[time, time], ...] = DEFAULT_PERIODS
    tz: str = "Asia/Shanghai"
    extra_holidays: frozenset[date] = field(default_factory=frozenset)
    extra_workdays: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if not self.periods:
            raise ValueError("a working calendar needs at least one office period")
        previous_end: time | None = None
        for start, end in self.periods:
            if start.tzinfo is not None or end.tzinfo is not None:
                raise ValueError("office periods are clock times without a time zone")
            if not start < end:
                raise ValueError(f"office period {start}–{end} does not end after it starts")
            if previous_end is not None and start < previous_end:
                raise ValueError(f"office period {start}–{end} overlaps the one before it or "
                                 "is out of order")
            previous_end = end
        both = self.extra_holidays & self.extra_workdays
        if both:
            days = ", ".join(d.isoformat() for d in sorted(both))
            raise ValueError(f"{days}: both an extra holiday and an extra working day")
        try:  # an unknown zone fails here, not at the first deadline
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {self.tz!r}") from exc

    @property
    def zone(self) -> ZoneInfo:
        """The calendar's time zone."""
        return ZoneInfo(self.tz)

    @property
    def hours_per_day(self) -> float:
        """Office hours in one working day."""
        return self.day_length / timedelta(hours=1)

    @property
    def day_length(self) -> timedelta:
        """Office time in one working day."""
        return sum((_clock_span(s, e) for s, e in self.periods), timedelta(0))

    def is_workday(self, day: date) -> bool:
        """Whether *day* is a working day (a datetime counts by its date in the calendar's
        zone).

        Overrides first, then ``chinesecalendar``; outside the years it covers,
        Monday–Friday with a :class:`CalendarCoverageWarning`.
        """
        day = self._local_date(day)
        if day in self.extra_workdays:
            return True
        if day in self.extra_holidays:
            return False
        known = _package_workday(day)
        if known is None:
            warnings.warn(self._uncovered(day), CalendarCoverageWarning, stacklevel=2)
            return day.weekday() < 5
        return known

    def coverage_note(self, day: date) -> str | None:
        """None when *day*'s status is known (the package covers its year, or an override
        names it); otherwise a sentence saying what was assumed.

        Examples
        --------
        >>> WorkCalendar().coverage_note(date(2026, 5, 1)) is None
        True
        >>> print(WorkCalendar().coverage_note(date(2099, 5, 1)))
        2099 is not covered by chinesecalendar ...: Monday–Friday assumed, ...
        """
        day = self._local_date(day)
        if day in self.extra_workdays or day in self.extra_holidays:
            return None
        return None if _package_workday(day) is not None else self._uncovered(day)

    def office_intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        """The office periods of *day* as aware datetimes; empty on a day off."""
        if not self.is_workday(day):
            return []
        zone = self.zone
        return [(datetime.combine(day, s, tzinfo=zone), datetime.combine(day, e, tzinfo=zone))
                for s, e in self.periods]

    def _local_date(self, day: date) -> date:
        if isinstance(day, datetime):
            return day.astimezone(self.zone).date() if day.tzinfo else day.date()
        return day

    @staticmethod
    def _uncovered(day: date) -> str:
        version = getattr(chinese_calendar, "__version__", "?")
        return (f"{day.year} is not covered by chinesecalendar {version}: Monday–Friday "
                "assumed, its public holidays and adjusted working days (调休) are unknown; "
                "add them to extra_holidays / extra_workdays or upgrade chinesecalendar")


def add_working_hours(start: datetime, hours: float, cal: WorkCalendar) -> datetime:
    """The moment when *hours* of office time have passed after *start*.

    A start outside office time counts from the next office period. The result is the
    earliest such moment (so it may be the end of an office period, e.g. 17:30), in the
    calendar's zone.

    Parameters
    ----------
    start
        A time-zone-aware moment.
    hours
        Office hours to add, not negative.
    cal
        The working calendar.

    Examples
    --------
    >>> cal = WorkCalendar()
    >>> friday = datetime(2026, 6, 12, 16, 0, tzinfo=cal.zone)
    >>> add_working_hours(friday, 5, cal).isoformat()  # 1.5 h on Friday, 3.5 h on Monday
    '2026-06-15T12:00:00+08:00'
    >>> add_working_hours(friday.replace(hour=12, minute=30), 1, cal).isoformat()  # lunch
    '2026-06-12T14:30:00+08:00'
    """
    remaining = _amount(hours, "hours")
    at = _localize(start, cal)
    if not remaining:
        return at
    for day in _working_days_from(at.date(), cal):
        for lo, hi in cal.office_intervals(day):
            if hi <= at:
                continue
            lo = max(lo, at)
            if remaining <= hi - lo:
                return lo + remaining
            remaining -= hi - lo
    raise AssertionError("unreachable: _working_days_from never ends")  # pragma: no cover


def add_working_days(start: datetime, days: float, cal: WorkCalendar) -> datetime:
    """The same clock time on the *days*-th next working day.

    A start outside office time (before opening, at lunch, after closing, on a day off)
    counts from the start of the next office period. A fractional part of *days* is added
    as that share of a day's office hours after the whole days.

    Parameters
    ----------
    start
        A time-zone-aware moment.
    days
        Working days to add, not negative.
    cal
        The working calendar.

    Examples
    --------
    >>> cal = WorkCalendar()
    >>> eve = datetime(2026, 9, 30, 16, 0, tzinfo=cal.zone)  # the eve of 国庆 2026
    >>> add_working_days(eve, 1, cal).isoformat()  # holiday 1–7 October
    '2026-10-08T16:00:00+08:00'
    >>> add_working_days(eve.replace(hour=20), 1, cal).isoformat()  # counted from 8 Oct 08:30
    '2026-10-09T08:30:00+08:00'
    """
    amount = _amount(days, "days")
    whole = math.floor(amount / timedelta(days=1))
    fraction = amount / timedelta(days=1) - whole
    anchor = _office_anchor(_localize(start, cal), cal)
    day = anchor.date()
    if whole:
        following = _working_days_from(day + timedelta(days=1), cal)
        for _ in range(whole):
            day = next(following)
    due = datetime.combine(day, anchor.time(), tzinfo=cal.zone)
    if fraction:
        due = add_working_hours(due, fraction * cal.hours_per_day, cal)
    return due


def add_calendar_hours(start: datetime, hours: float) -> datetime:
    """*start* plus *hours* of elapsed time, whatever the calendar (emergency limits), in
    *start*'s zone.

    Examples
    --------
    >>> from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    >>> night = datetime(2026, 10, 1, 23, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    >>> add_calendar_hours(night, 3).isoformat()
    '2026-10-02T02:00:00+08:00'
    """
    if start.tzinfo is None:
        raise ValueError(f"start {start} has no time zone")
    elapsed = start.astimezone(ZoneInfo("UTC")) + _amount(hours, "hours")
    return elapsed.astimezone(start.tzinfo)


def working_time_between(a: datetime, b: datetime, cal: WorkCalendar) -> timedelta:
    """Office time elapsed from *a* to *b* (negative when *b* is before *a*).

    The measure for on-time checks: a case is on time when the working time from dispatch to
    feed-back is at most its limit.

    Examples
    --------
    >>> cal = WorkCalendar()
    >>> a = datetime(2026, 6, 12, 16, 0, tzinfo=cal.zone)  # a Friday
    >>> str(working_time_between(a, a + timedelta(days=3), cal))  # to Monday 16:00
    '7:30:00'
    """
    a, b = _localize(a, cal), _localize(b, cal)
    if b < a:
        return -working_time_between(b, a, cal)
    total = timedelta(0)
    day = a.date()
    while day <= b.date():
        for lo, hi in cal.office_intervals(day):
            overlap = min(hi, b) - max(lo, a)
            if overlap > timedelta(0):
                total += overlap
        day += timedelta(days=1)
    return total


def deadline(start: datetime, amount: float, unit: TimeUnit, cal: WorkCalendar) -> datetime:
    """When a limit of *amount* *unit* started at *start* runs out, in the calendar's zone.

    ``working_hours`` and ``working_days`` follow the working calendar;
    ``emergency_hours`` and ``minutes`` are elapsed time.

    Examples
    --------
    >>> cal = WorkCalendar()
    >>> sat = datetime(2026, 10, 10, 9, 0, tzinfo=cal.zone)  # 调休: a working Saturday
    >>> deadline(sat, 1, "working_days", cal).isoformat()  # Sunday off
    '2026-10-12T09:00:00+08:00'
    >>> deadline(sat, 3, "emergency_hours", cal).isoformat()
    '2026-10-10T12:00:00+08:00'
    >>> deadline(sat, 10, "minutes", cal).isoformat()
    '2026-10-10T09:10:00+08:00'
    """
    if unit == "working_hours":
        return add_working_hours(start, amount, cal)
    if unit == "working_days":
        return add_working_days(start, amount, cal)
    if unit == "emergency_hours":
        return add_calendar_hours(start, amount).astimezone(cal.zone)
    if unit == "minutes":
        return add_calendar_hours(start, _amount(amount, "minutes") / timedelta(hours=1)
                                  ).astimezone(cal.zone)
    raise ValueError(f"unknown time unit {unit!r}: expected working_hours, working_days, "
                     "emergency_hours or minutes")


def _amount(value: float, unit: Literal["hours", "days", "minutes"]) -> timedelta:
    if isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{value!r} {unit}: a limit must be a finite number, not negative")
    return timedelta(**{unit: value})


def _localize(moment: datetime, cal: WorkCalendar) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment} has no time zone: pass an aware datetime")
    return moment.astimezone(cal.zone)


def _clock_span(start: time, end: time) -> timedelta:
    return datetime.combine(date.min, end) - datetime.combine(date.min, start)


def _working_days_from(day: date, cal: WorkCalendar) -> Iterator[date]:
    """Working days from *day* on (inclusive), for ever."""
    idle = 0
    while True:
        if cal.is_workday(day):
            idle = 0
            yield day
        else:
            idle += 1
            if idle > _MAX_IDLE_DAYS:
                raise ValueError(f"no working day in the {_MAX_IDLE_DAYS} days before {day}: "
                                 "check the calendar's extra holidays")
        day += timedelta(days=1)


def _office_anchor(at: datetime, cal: WorkCalendar) -> datetime:
    """*at* itself when it is in office time (ends included), else the start of the next
    office period."""
    for day in _working_days_from(at.date(), cal):
        for lo, hi in cal.office_intervals(day):
            if lo <= at <= hi:
                return at
            if lo > at:
                return lo
    raise AssertionError("unreachable: _working_days_from never ends")  # pragma: no cover
