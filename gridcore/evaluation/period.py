"""Evaluation periods (考评周期): a month ``2026-11``, a quarter ``2026-Q4``, a year ``2026`` or
any interval ``2026-11-03/2026-11-17`` — local midnights in the city's timezone, start
inclusive, end exclusive. A period knows the one before it and the same period a year earlier
(the briefings compare with both)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from gridcore.errors import ValidationError
from gridcore.health.window import Window

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$", re.IGNORECASE)
_YEAR = re.compile(r"^(\d{4})$")


def _month_start(year: int, month: int) -> date:
    year += (month - 1) // 12
    return date(year, (month - 1) % 12 + 1, 1)


@dataclass(frozen=True, slots=True)
class Period:
    kind: str  # month | quarter | year | interval
    first: date  # first day
    after: date  # the day after the last
    label: str  # 2026-11, 2026-Q4, 2026 or 2026-11-03/2026-11-17

    @classmethod
    def parse(cls, spec: str) -> Period:
        found = cls._parse(spec)
        if not 1970 <= found.first.year <= 2999:
            raise ValidationError(f"period {spec!r} lies outside 1970–2999", field="period",
                                  value=spec)
        return found

    @classmethod
    def _parse(cls, spec: str) -> Period:
        spec = (spec or "").strip()
        try:
            if m := _MONTH.match(spec):
                y, mo = int(m.group(1)), int(m.group(2))
                if not 1 <= mo <= 12:
                    raise ValueError
                return cls("month", date(y, mo, 1), _month_start(y, mo + 1), spec)
            if m := _QUARTER.match(spec):
                y, q = int(m.group(1)), int(m.group(2))
                return cls("quarter", date(y, 3 * q - 2, 1), _month_start(y, 3 * q + 1),
                           f"{y}-Q{q}")
            if m := _YEAR.match(spec):
                y = int(m.group(1))
                return cls("year", date(y, 1, 1), date(y + 1, 1, 1), spec)
            if "/" in spec:
                a, b = (date.fromisoformat(x.strip()) for x in spec.split("/", 1))
                if b <= a or (b - a).days > 3660:
                    raise ValueError
                return cls("interval", a, b, f"{a.isoformat()}/{b.isoformat()}")
        except ValueError:
            pass
        raise ValidationError(f"period {spec!r} must be a month (2026-11), a quarter (2026-Q4), "
                              "a year (2026) or dates (2026-11-03/2026-11-17, end exclusive)",
                              field="period", value=spec)

    def window(self, timezone: str = "Asia/Shanghai") -> Window:
        tz = ZoneInfo(timezone)
        return Window(datetime.combine(self.first, datetime.min.time(), tz),
                      datetime.combine(self.after, datetime.min.time(), tz))

    def previous(self) -> Period:
        """The period just before (the month before, the quarter before…)."""
        if self.kind == "month":
            return Period.parse(_month_start(self.first.year, self.first.month - 1)
                                .strftime("%Y-%m"))
        if self.kind == "quarter":
            q = (self.first.month - 1) // 3 + 1
            y, q = (self.first.year, q - 1) if q > 1 else (self.first.year - 1, 4)
            return Period.parse(f"{y}-Q{q}")
        if self.kind == "year":
            return Period.parse(str(self.first.year - 1))
        span = self.after - self.first
        return Period.parse(f"{(self.first - span).isoformat()}/{self.first.isoformat()}")

    def year_before(self) -> Period:
        """The same period one year earlier (同比)."""
        if self.kind == "month":
            return Period.parse(f"{self.first.year - 1}-{self.first.month:02d}")
        if self.kind == "quarter":
            return Period.parse(f"{self.first.year - 1}-Q{(self.first.month - 1) // 3 + 1}")
        if self.kind == "year":
            return Period.parse(str(self.first.year - 1))

        def back(d: date) -> date:
            try:
                return d.replace(year=d.year - 1)
            except ValueError:  # 29 February
                return d.replace(year=d.year - 1, day=28)
        return Period.parse(f"{back(self.first).isoformat()}/{back(self.after).isoformat()}")

    def contains(self, day: date) -> bool:
        return self.first <= day < self.after

    @property
    def days(self) -> int:
        return (self.after - self.first).days

    def __str__(self) -> str:
        return self.label


def last_day(period: Period) -> date:
    return period.after - timedelta(days=1)
