"""Working-time deadlines, checked by hand against the real 2026 calendar.

The 2026 dates used, as chinese_calendar 1.11 gives them (and as the State Council published):
- 元旦 1–3 Jan; 春节 15–23 Feb (Sat 14 Feb and Sat 28 Feb are working days, 调休);
  端午 Fri 19 – Sun 21 Jun; 中秋 Fri 25 – Sun 27 Sep (Sun 20 Sep is a working day);
  国庆 Thu 1 – Wed 7 Oct (Sat 10 Oct is a working day).
- Wed 30 Sep 2026 is the eve of the National Day holiday; Thu 8 Oct is the first working day
  after it.
- Sat 13 / Sun 14 Jun 2026 is an ordinary weekend (Fri 12 and Mon 15 Jun are working days).
- Thu 31 Dec 2026 is a working day; 2027 is not in chinese_calendar 1.11.
Office time: 08:30–12:00 and 13:30–17:30, 7.5 h a day.
"""

from __future__ import annotations

import warnings
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridmap.domain.worktime import (
    CalendarCoverageWarning,
    WorkCalendar,
    add_calendar_hours,
    add_working_days,
    add_working_hours,
    deadline,
    working_time_between,
)

CAL = WorkCalendar()
SH = ZoneInfo("Asia/Shanghai")


def at(text: str) -> datetime:
    """A Beijing-time moment from 'YYYY-MM-DD HH:MM'."""
    return datetime.fromisoformat(text).replace(tzinfo=SH)


def test_the_package_covers_2026_and_agrees_with_the_dates_above() -> None:
    holidays = [date(2026, 10, d) for d in range(1, 8)] + [
        date(2026, 9, 25), date(2026, 6, 19), date(2026, 2, 23), date(2026, 1, 2)]
    workdays = [date(2026, 10, 10), date(2026, 9, 20), date(2026, 2, 14), date(2026, 2, 28),
                date(2026, 1, 4), date(2026, 10, 8), date(2026, 9, 30)]
    for day in holidays:
        assert chinese_calendar.is_holiday(day) and not CAL.is_workday(day), day
    for day in workdays:
        assert chinese_calendar.is_workday(day) and CAL.is_workday(day), day
    assert not CAL.is_workday(date(2026, 6, 13)) and not CAL.is_workday(date(2026, 6, 14))
    assert CAL.coverage_note(date(2026, 12, 31)) is None


# --- working days -------------------------------------------------------------------------

def test_one_working_day_on_the_eve_of_national_day_lands_after_the_holiday() -> None:
    # Wed 30 Sep 16:00 → Thu 8 Oct 16:00 (1–7 Oct off)
    assert add_working_days(at("2026-09-30 16:00"), 1, CAL) == at("2026-10-08 16:00")
    # two working days: Fri 9 Oct; three: Sat 10 Oct (调休 working Saturday)
    assert add_working_days(at("2026-09-30 16:00"), 2, CAL) == at("2026-10-09 16:00")
    assert add_working_days(at("2026-09-30 16:00"), 3, CAL) == at("2026-10-10 16:00")
    # four: Sun 11 Oct is off → Mon 12 Oct
    assert add_working_days(at("2026-09-30 16:00"), 4, CAL) == at("2026-10-12 16:00")


def test_adjusted_working_weekend_days_count() -> None:
    # Fri 13 Feb 16:00 + 1 → Sat 14 Feb (调休); + 2 → Tue 24 Feb (15–23 Feb 春节)
    assert add_working_days(at("2026-02-13 16:00"), 1, CAL) == at("2026-02-14 16:00")
    assert add_working_days(at("2026-02-13 16:00"), 2, CAL) == at("2026-02-24 16:00")
    # Sat 19 Sep (a day off) 10:00, 1 working hour → Sun 20 Sep (调休) 09:30
    assert add_working_hours(at("2026-09-19 10:00"), 1, CAL) == at("2026-09-20 09:30")
    # Fri 9 Oct 16:00 + 5 working hours: 1.5 on Friday, 3.5 on Sat 10 Oct → 12:00
    assert add_working_hours(at("2026-10-09 16:00"), 5, CAL) == at("2026-10-10 12:00")


def test_dragon_boat_long_weekend() -> None:
    # Thu 18 Jun 16:00 + 1 → Mon 22 Jun 16:00 (Fri 19 Jun 端午, then the weekend)
    assert add_working_days(at("2026-06-18 16:00"), 1, CAL) == at("2026-06-22 16:00")


def test_working_days_started_outside_office_time() -> None:
    # lunch: Mon 15 Jun 12:15 counts from 13:30 → Tue 16 Jun 13:30
    assert add_working_days(at("2026-06-15 12:15"), 1, CAL) == at("2026-06-16 13:30")
    # night: Mon 15 Jun 20:00 counts from Tue 08:30 → Wed 17 Jun 08:30
    assert add_working_days(at("2026-06-15 20:00"), 1, CAL) == at("2026-06-17 08:30")
    # early morning: Mon 15 Jun 06:00 counts from 08:30 the same day → Tue 08:30
    assert add_working_days(at("2026-06-15 06:00"), 1, CAL) == at("2026-06-16 08:30")
    # on a day off: Sat 13 Jun → from Mon 15 Jun 08:30 → Tue 16 Jun 08:30
    assert add_working_days(at("2026-06-13 11:00"), 1, CAL) == at("2026-06-16 08:30")
    # the evening of the National Day eve: from Thu 8 Oct 08:30 → Fri 9 Oct 08:30
    assert add_working_days(at("2026-09-30 20:00"), 1, CAL) == at("2026-10-09 08:30")
    # the ends of an office period are office time: 12:00 and 17:30 keep their clock time
    assert add_working_days(at("2026-06-15 12:00"), 1, CAL) == at("2026-06-16 12:00")
    assert add_working_days(at("2026-06-15 17:30"), 1, CAL) == at("2026-06-16 17:30")


def test_fractional_and_zero_working_days() -> None:
    # 1.5 days from Fri 12 Jun 16:00: Mon 15 Jun 16:00, then 3.75 h → Tue 16 Jun 10:45
    # (1.5 h to 17:30 on Monday, 2.25 h from 08:30 on Tuesday)
    assert add_working_days(at("2026-06-12 16:00"), 1.5, CAL) == at("2026-06-16 10:45")
    assert add_working_days(at("2026-06-12 16:00"), 0, CAL) == at("2026-06-12 16:00")
    assert add_working_days(at("2026-06-12 20:00"), 0, CAL) == at("2026-06-15 08:30")


# --- working hours ------------------------------------------------------------------------

def test_working_hours_over_an_ordinary_weekend() -> None:
    # Fri 12 Jun 16:00: 1.5 h to 17:30, then Mon 15 Jun 08:30–12:00 is 3.5 h → exactly 12:00
    assert add_working_hours(at("2026-06-12 16:00"), 5, CAL) == at("2026-06-15 12:00")
    # one more hour jumps lunch: 13:30 + 1 h
    assert add_working_hours(at("2026-06-12 16:00"), 6, CAL) == at("2026-06-15 14:30")
    assert add_working_hours(at("2026-06-12 16:00"), 5.25, CAL) == at("2026-06-15 13:45")


def test_working_hours_from_lunch_and_night() -> None:
    # lunch Mon 15 Jun 12:15: counts from 13:30 → 15:30
    assert add_working_hours(at("2026-06-15 12:15"), 2, CAL) == at("2026-06-15 15:30")
    # night Tue 16 Jun 22:00 → Wed 17 Jun 09:30
    assert add_working_hours(at("2026-06-16 22:00"), 1, CAL) == at("2026-06-17 09:30")
    # 02:00 on Wed 17 Jun → the same morning
    assert add_working_hours(at("2026-06-17 02:00"), 4, CAL) == at("2026-06-17 14:00")
    # a full day from the morning's start ends at the close, not the next morning
    assert add_working_hours(at("2026-06-15 08:30"), 7.5, CAL) == at("2026-06-15 17:30")
    # zero hours: the start itself
    assert add_working_hours(at("2026-06-13 11:00"), 0, CAL) == at("2026-06-13 11:00")


def test_other_zones_in_calendar_zone_out() -> None:
    start = datetime(2026, 9, 30, 8, 0, tzinfo=UTC)  # 16:00 in Beijing
    due = add_working_days(start, 1, CAL)
    assert due == at("2026-10-08 16:00")
    assert due.tzinfo == SH and due.utcoffset() == timedelta(hours=8)
    assert add_working_hours(start, 1, CAL).tzinfo == SH


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="time zone"):
        add_working_hours(datetime(2026, 6, 15, 9), 1, CAL)
    with pytest.raises(ValueError, match="negative"):
        add_working_hours(at("2026-06-15 09:00"), -1, CAL)
    with pytest.raises(ValueError, match="finite"):
        add_working_days(at("2026-06-15 09:00"), float("nan"), CAL)
    with pytest.raises(ValueError, match="unknown time unit"):
        deadline(at("2026-06-15 09:00"), 1, "fortnights", CAL)  # type: ignore[arg-type]


# --- overrides ----------------------------------------------------------------------------

def test_an_extra_holiday_or_workday_changes_the_answer() -> None:
    eve = at("2026-09-30 16:00")
    closed_8th = WorkCalendar(extra_holidays=frozenset({date(2026, 10, 8)}))
    assert add_working_days(eve, 1, closed_8th) == at("2026-10-09 16:00")
    open_3rd = WorkCalendar(extra_workdays=frozenset({date(2026, 10, 3)}))
    assert add_working_days(eve, 1, open_3rd) == at("2026-10-03 16:00")
    # an override wins over the package for the adjusted Saturday too
    off_10th = WorkCalendar(extra_holidays=frozenset({date(2026, 10, 10)}))
    assert not off_10th.is_workday(date(2026, 10, 10))
    assert add_working_hours(at("2026-10-09 16:00"), 5, off_10th) == at("2026-10-12 12:00")


def test_calendar_validation() -> None:
    with pytest.raises(ValueError, match="both an extra holiday and an extra working day"):
        WorkCalendar(extra_holidays=frozenset({date(2026, 1, 5)}),
                     extra_workdays=frozenset({date(2026, 1, 5)}))
    with pytest.raises(ValueError, match="overlaps"):
        WorkCalendar(periods=((time(8), time(12)), (time(11), time(17))))
    with pytest.raises(ValueError, match="does not end after"):
        WorkCalendar(periods=((time(12), time(8)),))
    with pytest.raises(ValueError, match="at least one"):
        WorkCalendar(periods=())
    with pytest.raises(ValueError, match="unknown time zone"):
        WorkCalendar(tz="Asia/Beijing")
    with pytest.raises(ValueError, match="no working day"):
        everything_off = frozenset(date(2026, 1, 1) + timedelta(days=i) for i in range(3700))
        add_working_hours(at("2026-01-01 09:00"), 1, WorkCalendar(extra_holidays=everything_off))


def test_custom_office_periods() -> None:
    cal = WorkCalendar(periods=((time(9), time(17)),))
    assert cal.hours_per_day == 8
    assert add_working_hours(at("2026-06-12 16:00"), 2, cal) == at("2026-06-15 10:00")
    assert add_working_days(at("2026-06-12 12:30"), 1, cal) == at("2026-06-15 12:30")


# --- years the package does not cover -----------------------------------------------------

def test_an_uncovered_year_falls_back_to_monday_to_friday_with_a_warning() -> None:
    # Thu 31 Dec 2026 16:00 + 1 working day: Fri 1 Jan 2027 is assumed a working day (it will
    # be 元旦, which chinese_calendar 1.11 does not know yet)
    with pytest.warns(CalendarCoverageWarning, match="2027 is not covered"):
        due = add_working_days(at("2026-12-31 16:00"), 1, CAL)
    assert due == at("2027-01-01 16:00")
    with pytest.warns(CalendarCoverageWarning):
        assert not CAL.is_workday(date(2027, 1, 2))  # a Saturday
    note = CAL.coverage_note(date(2027, 1, 1))
    assert note is not None and "Monday–Friday assumed" in note
    # the deployment's own entries settle it, without a warning for that day
    cal = WorkCalendar(extra_holidays=frozenset({date(2027, 1, 1)}))
    assert cal.coverage_note(date(2027, 1, 1)) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not cal.is_workday(date(2027, 1, 1))
    with pytest.warns(CalendarCoverageWarning):  # Mon 4 Jan 2027 is still a guess
        assert add_working_days(at("2026-12-31 16:00"), 1, cal) == at("2027-01-04 16:00")
    # years before the package's data too
    with pytest.warns(CalendarCoverageWarning, match="2003"):
        assert CAL.is_workday(date(2003, 6, 2))


# --- calendar time ------------------------------------------------------------------------

def test_emergency_hours_and_minutes_ignore_the_calendar() -> None:
    # 22:00 on the eve of National Day + 3 h → 01:00 on 1 Oct, a holiday
    assert deadline(at("2026-09-30 22:00"), 3, "emergency_hours", CAL) == at("2026-10-01 01:00")
    assert add_calendar_hours(at("2026-10-03 12:00"), 2) == at("2026-10-03 14:00")
    assert deadline(at("2026-10-03 23:55"), 10, "minutes", CAL) == at("2026-10-04 00:05")
    utc_out = add_calendar_hours(datetime(2026, 10, 3, 4, 0, tzinfo=UTC), 2)
    assert utc_out.tzinfo == UTC and utc_out == at("2026-10-03 14:00")
    assert deadline(datetime(2026, 10, 3, 4, 0, tzinfo=UTC), 2, "emergency_hours",
                    CAL).tzinfo == SH


def test_deadline_dispatches_on_the_unit() -> None:
    start = at("2026-06-12 16:00")
    assert deadline(start, 5, "working_hours", CAL) == at("2026-06-15 12:00")
    assert deadline(start, 1, "working_days", CAL) == at("2026-06-15 16:00")
    assert deadline(start, 5, "emergency_hours", CAL) == at("2026-06-12 21:00")
    assert deadline(start, 30, "minutes", CAL) == at("2026-06-12 16:30")


# --- working time between -----------------------------------------------------------------

def test_working_time_between_by_hand() -> None:
    # Wed 30 Sep 16:00 → Thu 8 Oct 16:00: 1.5 h + 6 h = one office day
    assert working_time_between(at("2026-09-30 16:00"), at("2026-10-08 16:00"),
                                CAL) == timedelta(hours=7.5)
    # all of a holiday week is worth nothing
    assert working_time_between(at("2026-10-01 00:00"), at("2026-10-08 00:00"),
                                CAL) == timedelta(0)
    # lunch and nights are not counted; reversed order is negative
    assert working_time_between(at("2026-06-15 11:00"), at("2026-06-15 14:00"),
                                CAL) == timedelta(hours=1.5)
    assert working_time_between(at("2026-06-15 14:00"), at("2026-06-15 11:00"),
                                CAL) == -timedelta(hours=1.5)
    # an ordinary week, Mon 8 – Sun 14 Jun: 5 × 7.5 h
    assert working_time_between(at("2026-06-08 00:00"), at("2026-06-15 00:00"),
                                CAL) == timedelta(hours=37.5)
    # the next one has 端午 on Fri 19 Jun: 4 × 7.5 h
    assert working_time_between(at("2026-06-15 00:00"), at("2026-06-22 00:00"),
                                CAL) == timedelta(hours=30)


STARTS = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 10, 31),
                      timezones=st.just(SH))


@settings(max_examples=300, deadline=None)
@given(start=STARTS, hours=st.floats(min_value=0, max_value=200, allow_nan=False))
def test_working_time_between_inverts_add_working_hours(start: datetime, hours: float) -> None:
    due = add_working_hours(start, hours, CAL)
    assert due >= start
    assert working_time_between(start, due, CAL) == timedelta(hours=hours)


@settings(max_examples=200, deadline=None)
@given(start=STARTS, days=st.integers(min_value=0, max_value=30))
def test_n_working_days_are_n_office_days(start: datetime, days: int) -> None:
    due = add_working_days(start, days, CAL)
    assert working_time_between(start, due, CAL) == days * CAL.day_length
    if days:
        assert CAL.is_workday(due.date())
        assert add_working_hours(start, days * CAL.hours_per_day, CAL) <= due
