"""Working-calendar deadlines: weekends, 2025 National Day (国庆), a make-up working day
(调休), parked time (挂账), calendar-hour emergencies, fallback beyond the holiday data."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gridcore.calendar import ClockColour, WorkingCalendar
from gridcore.errors import ValidationError
from gridcore.taxonomy import LimitUnit, TimeLimit
from tests.support.cases import at

CN = WorkingCalendar.chinese()
L = TimeLimit.parse


def test_working_hours_across_a_weekend() -> None:
    # Friday 2025-06-13 16:30 + 5 working hours: 1 h on Friday, 4 h from Monday 08:30
    # (3.5 h morning + 0.5 h after lunch) → Monday 14:00.
    deadline, fallback = CN.deadline(at(2025, 6, 13, 16, 30), L("5wh"))
    assert deadline == at(2025, 6, 16, 14, 0) and not fallback


def test_national_day_holiday_is_skipped() -> None:
    # Tuesday 2025-09-30 16:00 + 5 wh: 1.5 h on the 30th, then 1–8 October are holidays.
    assert CN.deadline(at(2025, 9, 30, 16, 0), L("5wh"))[0] == at(2025, 10, 9, 12, 0)
    # The plain weekday calendar would work on Thursday 2 October.
    assert WorkingCalendar.weekdays("Asia/Shanghai").deadline(
        at(2025, 9, 30, 16, 0), L("5wh"))[0] == at(2025, 10, 1, 12, 0)


def test_make_up_working_day_counts() -> None:
    # Saturday 2025-10-11 is a make-up working day (调休上班); Sunday 12th is not.
    assert CN.is_workday(at(2025, 10, 11, 0, 0).date())
    assert not CN.is_workday(at(2025, 10, 12, 0, 0).date())
    assert CN.deadline(at(2025, 10, 10, 16, 0), L("1wd"))[0] == at(2025, 10, 11, 16, 0)
    # Sunday 2025-09-28 too (before National Day).
    assert CN.deadline(at(2025, 9, 27, 9, 0), L("2wh"))[0] == at(2025, 9, 28, 10, 30)


def test_parked_time_is_excluded() -> None:
    start = at(2025, 6, 16, 9, 0)  # Monday
    pause = [(at(2025, 6, 16, 10, 0), at(2025, 6, 17, 10, 0))]  # a whole working day parked
    assert CN.deadline(start, L("2wh"))[0] == at(2025, 6, 16, 11, 0)
    assert CN.deadline(start, L("2wh"), pause)[0] == at(2025, 6, 17, 11, 0)
    assert CN.elapsed(start, at(2025, 6, 17, 10, 30), LimitUnit.WORKING_HOURS, pause) \
        == timedelta(hours=1, minutes=30)
    clock = CN.clock(start, L("2wh"), at(2025, 6, 17, 10, 30), pause)
    assert clock.elapsed_share == pytest.approx(0.75) and clock.colour is ClockColour.GREEN
    # While parked the clock stands still and has no deadline.
    parked = CN.clock(start, L("2wh"), at(2025, 6, 20, 10, 0),
                      parked_since=at(2025, 6, 16, 10, 0))
    assert parked.deadline is None and parked.parked and parked.elapsed_share == 0.5


def test_colours_and_calendar_hours() -> None:
    start = at(2025, 10, 1, 22, 0)  # a holiday night: emergencies count calendar time
    assert CN.deadline(start, L("2h"))[0] == at(2025, 10, 2, 0, 0)
    assert CN.clock(start, L("2h"), at(2025, 10, 1, 23, 36)).colour is ClockColour.GREEN
    assert CN.clock(start, L("2h"), at(2025, 10, 1, 23, 40)).colour is ClockColour.YELLOW
    assert CN.clock(start, L("2h"), at(2025, 10, 2, 0, 0)).colour is ClockColour.YELLOW
    red = CN.clock(start, L("30m"), at(2025, 10, 2, 0, 0))
    assert red.colour is ClockColour.RED and red.elapsed_share == pytest.approx(4.0)


def test_fallback_beyond_holiday_data_is_flagged() -> None:
    deadline, fallback = CN.deadline(at(2031, 10, 1, 9, 0), L("1wd"))
    assert fallback is True and deadline == at(2031, 10, 2, 9, 0)  # weekdays only
    assert CN.clock(at(2031, 10, 1, 9, 0), L("1wd"), at(2031, 10, 1, 10, 0)).fallback


def test_other_city_calendars_as_data() -> None:
    cal = WorkingCalendar.from_data({"timezone": "Europe/Helsinki", "base": "weekdays",
                                     "hours": "08:00-16:00", "holidays": ["2025-12-24"],
                                     "workdays": ["2025-12-27"]})
    from datetime import datetime
    from zoneinfo import ZoneInfo

    hel = ZoneInfo("Europe/Helsinki")
    start = datetime(2025, 12, 23, 15, 0, tzinfo=hel)
    # 1 h on the 23rd, 24th is a holiday, 25th/26th weekdays, so 3 wh lands on the 25th 10:00.
    assert cal.deadline(start, L("3wh"))[0] == datetime(2025, 12, 25, 10, 0, tzinfo=hel)
    assert cal.is_workday(datetime(2025, 12, 27).date())
    with pytest.raises(ValidationError):
        WorkingCalendar.from_data({"hours": "17:00-08:00"})
    with pytest.raises(ValidationError):
        WorkingCalendar.from_data({"base": "lunar"})
    with pytest.raises(ValidationError):
        CN.deadline(datetime(2025, 1, 1), L("1wh"))  # naive instants are refused


@pytest.mark.parametrize("limit", ["5wh", "1wd", "3wd", "2h", "45m"])
def test_marks_in_one_walk_equal_separate_deadlines(limit: str) -> None:
    # warn_at (80 %) and deadline_at (100 %) come from one calendar walk; each must be the
    # instant a separate walk for that share finds, across National Day, a make-up working
    # day, a weekend and a parked interval.
    lim = L(limit)
    parked = [(at(2025, 9, 30, 9, 0), at(2025, 9, 30, 10, 15))]
    for start in (at(2025, 9, 29, 16, 0), at(2025, 10, 10, 15, 0), at(2025, 6, 13, 17, 0)):
        (warn, warn_fb), (deadline, fb) = CN.marks(start, lim, (0.8, 1.0), parked)
        assert (warn, warn_fb) == CN.deadline(
            start, TimeLimit(lim.amount * 0.8, lim.unit), parked)
        assert (deadline, fb) == CN.deadline(start, lim, parked)
        assert warn <= deadline


@pytest.mark.parametrize("start", [at(2025, 9, 30, 16, 0), at(2025, 6, 14, 11, 0),
                                   at(2031, 3, 1, 9, 0)])  # the last: beyond the holiday data
def test_fresh_clock_is_the_clock_of_a_stage_that_starts_now(start) -> None:  # type: ignore[no-untyped-def]
    warn, deadline, clock = CN.new_clock(start, L("5wh"))
    assert (warn, deadline) == CN.stage_marks(start, L("5wh"), [])
    assert clock == CN.clock(start, L("5wh"), start)


def _walked(cal: WorkingCalendar, start, end, unit, paused=()) -> timedelta:  # noqa: ANN001
    """Counted time by walking the counting periods one by one (what ``elapsed`` once did)."""
    total = timedelta()
    if end <= start:
        return total
    for (lo, hi), _ in cal._counted(start, unit, paused):
        if lo >= cal._local(end):
            break
        total += min(hi, cal._local(end)) - lo
    return total


@pytest.mark.parametrize("cal", [CN, WorkingCalendar.weekdays("UTC"),
                                 WorkingCalendar.from_data({"base": "chinese",
                                                            "holidays": ["2026-03-02"],
                                                            "workdays": ["2026-03-07"],
                                                            "hours": "09:00-12:00,14:00-18:00"})])
def test_elapsed_counts_what_a_walk_of_the_days_counts(cal: WorkingCalendar) -> None:
    # Elapsed time no longer walks the days (the overdue list asks it for clocks years old):
    # it must count exactly what the walk counts, across years, holidays, make-up days, the
    # years beyond the holiday data, within one day, and with overlapping parked intervals.
    import random

    rng = random.Random(25)
    base = at(2023, 12, 20, 0, 0)
    for _ in range(300):
        start = base + timedelta(minutes=rng.randrange(0, 60 * 24 * 900))
        end = start + timedelta(minutes=rng.choice([rng.randrange(0, 600),
                                                    rng.randrange(0, 60 * 24 * 1500)]))
        paused = []
        for _ in range(rng.randrange(0, 4)):
            a = start + timedelta(minutes=rng.randrange(-3000, 60 * 24 * 200))
            paused.append((a, a + timedelta(minutes=rng.randrange(1, 60 * 24 * 40))))
        for unit in (LimitUnit.WORKING_HOURS, LimitUnit.WORKING_DAYS, LimitUnit.CALENDAR_HOURS):
            assert cal.elapsed(start, end, unit, paused) == _walked(cal, start, end, unit,
                                                                    paused), (start, end, paused)


def test_working_days_between_across_years() -> None:
    # The running counts per year give what counting day by day gives, within a year, across
    # a year's end and over the National Day holidays (1–8 October 2025: none).
    from datetime import date

    def one_by_one(first: date, last: date) -> int:
        return sum(CN.is_workday(first + timedelta(days=i)) for i in range((last - first).days))

    for first, last in ((date(2025, 1, 1), date(2026, 1, 1)), (date(2024, 12, 30),
                        date(2027, 2, 3)), (date(2025, 3, 5), date(2025, 3, 6))):
        assert CN.workdays_between(first, last) == one_by_one(first, last)
    assert CN.workdays_between(date(2025, 10, 1), date(2025, 10, 9)) == 0
    assert CN.workdays_between(date(2025, 10, 9), date(2025, 10, 1)) == 0
