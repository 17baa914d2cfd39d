"""The working calendar (工作日历) that case time limits (时限) run on.

A calendar says which days are working days and which hours of a working day count. The
default follows the PRC State Council schedule of public holidays (法定节假日) and make-up
working days (调休上班) through the maintained ``chinese-calendar`` package; for a year beyond
that package's data it falls back to "Monday–Friday are working days" and says so
(``Clock.fallback``), so a planner sees that the figure is provisional rather than silently wrong.
Other cities pass their own holiday / make-up lists as data or use a plain weekday calendar.

Limits (``gridcore.taxonomy.TimeLimit``):

* ``m`` / ``h`` — calendar minutes / hours (emergencies): the clock runs day and night;
* ``wh`` — working hours: only the working periods of working days count;
* ``wd`` — working days: ``n`` × the length of a working day, counted in working time. From a
  start inside working hours this lands at the same time of day ``n`` working days later, and
  it keeps elapsed share and deadline consistent (one clock, not two).

Parked intervals (挂账) are excluded from every kind of clock. Everything here is pure: instants
are timezone-aware ``datetime``; the calendar's timezone decides what "a day" is.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from functools import cached_property, lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from gridcore.errors import ValidationError
from gridcore.taxonomy import LimitUnit, TimeLimit

Interval = tuple[datetime, datetime]
DEFAULT_HOURS: tuple[tuple[time, time], ...] = ((time(8, 30), time(12, 0)),
                                                 (time(13, 30), time(17, 30)))
_MAX_DAYS = 3660  # a limit that needs more than ten years of days is a data error
YELLOW_AT = 0.8  # the share of a limit used at which a clock turns yellow (warn_at)


def city_time(instant: datetime | None, timezone: str | ZoneInfo) -> str:
    """The ONE way a time is written for people: the city's wall clock with its offset,
    ``2026-12-06 17:30 +08:00`` — what ``api/static/i18n.js``'s ``cityTime`` writes in the pages
    (a browser test holds the two to the same text)."""
    if instant is None:
        return ""
    tz = timezone if isinstance(timezone, ZoneInfo) else ZoneInfo(timezone)
    local = instant.astimezone(tz)
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M} {offset[:3]}:{offset[3:]}"


def city_iso(instant: datetime | None, timezone: ZoneInfo) -> str | None:
    """An instant in the API's JSON: ISO 8601 with the city's offset
    (``2026-12-06T17:30:00+08:00``), the same instant whatever the session's TimeZone."""
    return instant.astimezone(timezone).isoformat() if instant is not None else None


class ClockColour(StrEnum):
    """Clock colour (亮灯): green ≤ 80 % of the limit used, yellow ≤ 100 %, red overdue."""

    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"


@dataclass(frozen=True, slots=True)
class Clock:
    """Where a case stands against one limit at one moment."""

    deadline: datetime | None  # None while parked with the limit not yet used up
    elapsed_share: float  # 0.0 … (>1.0 when overdue)
    colour: ClockColour
    parked: bool
    fallback: bool  # True when some day involved lies beyond the holiday data (weekends only)

    def as_dict(self) -> dict[str, object]:
        return {"deadline": self.deadline.isoformat() if self.deadline else None,
                "elapsed_share": round(self.elapsed_share, 4), "colour": self.colour.value,
                "parked": self.parked, "calendar_fallback": self.fallback}


def colour_for(share: float) -> ClockColour:
    if share <= YELLOW_AT:
        return ClockColour.GREEN
    if share <= 1.0:
        return ClockColour.YELLOW
    return ClockColour.RED


@lru_cache(maxsize=8192)
def _chinese_workday(day: date) -> bool | None:
    """True/False from the State Council schedule, None when the year is beyond the data."""
    import chinese_calendar  # optional at import time: other cities' calendars do not need it

    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return None


def _merged(intervals: list[Interval]) -> list[Interval]:
    """Sorted intervals with the overlapping ones joined."""
    out: list[Interval] = []
    for a, b in intervals:
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _parse_hours(spec: str) -> tuple[tuple[time, time], ...]:
    """``"08:30-12:00,13:30-17:30"`` → periods; refuses overlaps and empty periods."""
    periods = []
    for part in spec.split(","):
        try:
            a, b = (time.fromisoformat(x.strip()) for x in part.split("-"))
        except ValueError as exc:
            raise ValidationError(f"working hours {spec!r}: {part!r} must look like 08:30-12:00",
                                  field="working_hours", value=spec) from exc
        periods.append((a, b))
    periods.sort()
    for (a, b), nxt in zip(periods, [*periods[1:], None], strict=True):
        if b <= a or (nxt and nxt[0] < b):
            raise ValidationError(f"working hours {spec!r}: periods must be non-empty and "
                                  "must not overlap", field="working_hours", value=spec)
    return tuple(periods)


@dataclass(frozen=True)
class WorkingCalendar:
    """A city's working calendar. Build one with :meth:`chinese`, :meth:`weekdays` or
    :meth:`from_data`."""

    timezone: str = "Asia/Shanghai"
    hours: tuple[tuple[time, time], ...] = DEFAULT_HOURS
    use_chinese_holidays: bool = True
    holidays: frozenset[date] = field(default_factory=frozenset)  # extra days off
    workdays: frozenset[date] = field(default_factory=frozenset)  # extra (make-up) working days
    weekend: frozenset[int] = frozenset({5, 6})

    @classmethod
    def chinese(cls, timezone: str = "Asia/Shanghai", hours: str | None = None) -> WorkingCalendar:
        return cls(timezone=timezone, hours=_parse_hours(hours) if hours else DEFAULT_HOURS)

    @classmethod
    def weekdays(cls, timezone: str = "UTC", hours: str | None = None) -> WorkingCalendar:
        return cls(timezone=timezone, hours=_parse_hours(hours) if hours else DEFAULT_HOURS,
                   use_chinese_holidays=False)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> WorkingCalendar:
        """A calendar from plain data (e.g. a city's JSON file): ``timezone``, ``hours``
        (``"08:30-12:00,13:30-17:30"``), ``base`` (``"chinese"`` or ``"weekdays"``),
        ``holidays`` and ``workdays`` (ISO dates), ``weekend`` (0 = Monday … 6 = Sunday)."""
        base = data.get("base", "weekdays")
        if base not in ("chinese", "weekdays"):
            raise ValidationError(f"calendar base {base!r} must be 'chinese' or 'weekdays'",
                                  field="base", value=base)
        try:
            holidays = frozenset(date.fromisoformat(d) for d in data.get("holidays", []))
            workdays = frozenset(date.fromisoformat(d) for d in data.get("workdays", []))
        except ValueError as exc:
            raise ValidationError(f"calendar dates must be ISO dates (2025-10-01): {exc}",
                                  field="holidays") from exc
        return cls(timezone=data.get("timezone", "Asia/Shanghai"),
                   hours=_parse_hours(data["hours"]) if data.get("hours") else DEFAULT_HOURS,
                   use_chinese_holidays=base == "chinese", holidays=holidays,
                   workdays=workdays, weekend=frozenset(data.get("weekend", [5, 6])))

    # Cached: every deadline walk asks for both, several times per report.
    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def day_minutes(self) -> float:
        return sum((datetime.combine(date.min, b) - datetime.combine(date.min, a))
                   .total_seconds() / 60 for a, b in self.hours)

    def day_status(self, day: date) -> tuple[bool, bool]:
        """(is a working day, decided by the weekend fallback rather than holiday data)."""
        if day in self.workdays:
            return True, False
        if day in self.holidays:
            return False, False
        if self.use_chinese_holidays:
            known = _chinese_workday(day)
            if known is not None:
                return known, False
            return day.weekday() not in self.weekend, True
        return day.weekday() not in self.weekend, False

    def is_workday(self, day: date) -> bool:
        return self.day_status(day)[0]

    def _local(self, instant: datetime) -> datetime:
        if instant.tzinfo is None:
            raise ValidationError("instants must be timezone-aware", field="time",
                                  value=str(instant))
        return instant.astimezone(self.tz)

    def periods(self, start: datetime, unit: LimitUnit) -> Iterator[tuple[Interval, bool]]:
        """Counting periods from ``start`` on: (interval, fallback) in order, forever."""
        start = self._local(start)
        if unit in (LimitUnit.CALENDAR_MINUTES, LimitUnit.CALENDAR_HOURS):
            yield (start, datetime.max.replace(tzinfo=self.tz)), False
            return
        day = start.date()
        for _ in range(_MAX_DAYS):
            working, fallback = self.day_status(day)
            if working:
                for a, b in self.hours:
                    lo = datetime.combine(day, a, self.tz)
                    hi = datetime.combine(day, b, self.tz)
                    if hi > start:
                        yield (max(lo, start), hi), fallback
            day += timedelta(days=1)
        raise ValidationError("time limit reaches more than ten years ahead", field="limit")

    def _counted(self, start: datetime, unit: LimitUnit,
                 paused: Iterable[Interval]) -> Iterator[tuple[Interval, bool]]:
        """Counting periods minus the paused intervals."""
        pauses = sorted((self._local(a), self._local(b)) for a, b in paused)
        for (lo, hi), fallback in self.periods(start, unit):
            cursor = lo
            for a, b in pauses:
                if b <= cursor or a >= hi:
                    continue
                if a > cursor:
                    yield (cursor, a), fallback
                cursor = max(cursor, b)
                if cursor >= hi:
                    break
            if cursor < hi:
                yield (cursor, hi), fallback

    def limit_minutes(self, limit: TimeLimit) -> float:
        factor = {LimitUnit.CALENDAR_MINUTES: 1.0, LimitUnit.CALENDAR_HOURS: 60.0,
                  LimitUnit.WORKING_HOURS: 60.0, LimitUnit.WORKING_DAYS: self.day_minutes}
        return limit.amount * factor[limit.unit]

    def deadline(self, start: datetime, limit: TimeLimit,
                 paused: Iterable[Interval] = ()) -> tuple[datetime, bool]:
        """The instant the limit is used up, and whether the weekend fallback was involved."""
        return self.marks(start, limit, (1.0,), paused)[0]

    def marks(self, start: datetime, limit: TimeLimit, shares: Sequence[float],
              paused: Iterable[Interval] = ()) -> list[tuple[datetime, bool]]:
        """The instants the given shares of the limit (ascending, e.g. 0.8 and 1.0) are used
        up, each with whether the weekend fallback was involved so far: one walk of the
        calendar for all of them."""
        todo = [timedelta(minutes=self.limit_minutes(TimeLimit(limit.amount * share,
                                                                limit.unit)))
                for share in shares]
        found: list[tuple[datetime, bool]] = []
        used = timedelta()
        fallback = False
        for (lo, hi), fb in self._counted(start, limit.unit, paused):
            fallback = fallback or fb
            while len(found) < len(todo) and hi - lo >= todo[len(found)] - used:
                found.append((lo + (todo[len(found)] - used), fallback))
            if len(found) == len(todo):
                return found
            used += hi - lo
        raise AssertionError("unreachable: periods() is unbounded")  # pragma: no cover

    def stage_marks(self, start: datetime, limit: TimeLimit, paused: Iterable[Interval] = ()
                    ) -> tuple[datetime, datetime]:
        """(warn_at, deadline_at): the instants the clock turns yellow and red. Stored with a
        case so that colour filters and the overdue list are index scans, not per-row
        calendar walks."""
        (warn, _), (deadline, _) = self.marks(start, limit, (YELLOW_AT, 1.0), paused)
        return warn, deadline

    def new_clock(self, start: datetime, limit: TimeLimit) -> tuple[datetime, datetime, Clock]:
        """(warn_at, deadline_at, clock) of a stage that starts at ``start``, looked at the same
        instant (a new case): one calendar walk instead of one for the marks and another for
        the clock, which would find nothing used and the same deadline."""
        (warn, _), (deadline, fallback) = self.marks(start, limit, (YELLOW_AT, 1.0))
        return warn, deadline, Clock(deadline, 0.0, colour_for(0.0), False, fallback)

    def elapsed(self, start: datetime, end: datetime, unit: LimitUnit,
                paused: Iterable[Interval] = ()) -> timedelta:
        """Counted time between two instants (working or calendar time by ``unit``).

        Not a walk of the days between them (a clock years overdue would walk a thousand days
        per case on every page of the overdue list): the working days in between are counted
        from per-year running counts, and the parked intervals are taken out the same way."""
        start, end = self._local(start), self._local(end)
        if end <= start:
            return timedelta()
        total = self._counted_span(start, end, unit)
        for a, b in _merged(sorted((self._local(a), self._local(b)) for a, b in paused
                                   if a < b)):
            lo, hi = max(a, start), min(b, end)
            if lo < hi:
                total -= self._counted_span(lo, hi, unit)
        return total

    def _counted_span(self, start: datetime, end: datetime, unit: LimitUnit) -> timedelta:
        """Counted time in [start, end) (local instants, start < end), no pauses."""
        if unit in (LimitUnit.CALENDAR_MINUTES, LimitUnit.CALENDAR_HOURS):
            return end - start
        first, last = start.date(), end.date()
        if first == last:
            return self._day_part(first, start, end)
        return (self._day_part(first, start, None) + self._day_part(last, None, end)
                + self._day_span * self.workdays_between(first + timedelta(days=1), last))

    def _day_part(self, day: date, lo: datetime | None, hi: datetime | None) -> timedelta:
        """The working time of ``day`` within [lo, hi) (None: the day's start / end)."""
        total = timedelta()
        if not self.is_workday(day):
            return total
        for a, b in self.hours:
            p0, p1 = datetime.combine(day, a, self.tz), datetime.combine(day, b, self.tz)
            p0, p1 = max(p0, lo) if lo else p0, min(p1, hi) if hi else p1
            if p1 > p0:
                total += p1 - p0
        return total

    @cached_property
    def _day_span(self) -> timedelta:
        return sum(((datetime.combine(date.min, b) - datetime.combine(date.min, a))
                    for a, b in self.hours), timedelta())

    @cached_property
    def _year_counts(self) -> dict[int, tuple[int, ...]]:
        return {}

    def _workdays_in_year_before(self, day: date) -> tuple[int, int]:
        """(working days of ``day``'s year before it, working days of the whole year)."""
        counts = self._year_counts.get(day.year)
        if counts is None:
            jan1 = date(day.year, 1, 1)
            running = [0]
            for i in range((date(day.year + 1, 1, 1) - jan1).days):
                running.append(running[-1] + self.is_workday(jan1 + timedelta(days=i)))
            counts = self._year_counts[day.year] = tuple(running)
        return counts[day.timetuple().tm_yday - 1], counts[-1]

    def workdays_between(self, first: date, last: date) -> int:
        """The number of working days in [first, last)."""
        if last <= first:
            return 0
        before_first, _ = self._workdays_in_year_before(first)
        before_last, _ = self._workdays_in_year_before(last)
        whole = sum(self._workdays_in_year_before(date(y, 1, 1))[1]
                    for y in range(first.year, last.year))
        return whole - before_first + before_last

    def clock(self, start: datetime, limit: TimeLimit, now: datetime,
              paused: Iterable[Interval] = (), parked_since: datetime | None = None) -> Clock:
        """Deadline, elapsed share and colour of a limit that started at ``start``.

        ``paused`` are closed parked intervals; ``parked_since`` an open one (the clock stands
        still from then on, so the deadline is unknown until the case is unparked)."""
        pauses = list(paused)
        upto = min(now, parked_since) if parked_since else now
        used = self.elapsed(start, upto, limit.unit, pauses)
        total = self.limit_minutes(limit)
        share = used.total_seconds() / 60 / total if total else 1.0
        deadline, fallback = self.deadline(start, limit, pauses)
        shown = None if parked_since is not None and deadline > parked_since else deadline
        return Clock(shown, share, colour_for(share), parked_since is not None, fallback)
