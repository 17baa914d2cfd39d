"""Time windows for the health check: ``2026-09-01/2026-10-01`` (start inclusive, end
exclusive; dates are local midnight in the city's timezone, full ISO instants are accepted too)
or ``30d`` / ``12w`` / ``24h`` (the span ending now). The previous window, for trends, is the
span of the same length just before."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from gridcore.errors import ValidationError

_RELATIVE = re.compile(r"^(\d{1,4})([hdw])$")
_UNIT = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
_MAX_SPAN = timedelta(days=3660)


def _instant(text: str, tz: ZoneInfo, spec: str) -> datetime:
    text = text.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), tz)
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"window {spec!r}: {text!r} is not a date (YYYY-MM-DD) or an "
                              "ISO instant", field="window", value=spec) from None
    return value if value.tzinfo else value.replace(tzinfo=tz)


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime

    @classmethod
    def parse(cls, spec: str, now: datetime, timezone: str = "Asia/Shanghai") -> Window:
        """Parse a window; ``now`` anchors relative windows (pass it in: the domain has no
        clock)."""
        tz = ZoneInfo(timezone)
        spec = (spec or "").strip()
        match = _RELATIVE.match(spec)
        if match:
            span = int(match.group(1)) * _UNIT[match.group(2)]
            if span <= timedelta(0):
                raise ValidationError(f"window {spec!r} is empty", field="window", value=spec)
            window = cls(now - span, now)
        elif "/" in spec:
            a, b = spec.split("/", 1)
            window = cls(_instant(a, tz, spec), _instant(b, tz, spec))
        else:
            raise ValidationError(
                f"window {spec!r} must look like 2026-09-01/2026-10-01 or 30d (h, d, w)",
                field="window", value=spec)
        if window.end <= window.start:
            raise ValidationError(f"window {spec!r} ends before it starts", field="window",
                                  value=spec)
        if window.end - window.start > _MAX_SPAN:
            raise ValidationError(f"window {spec!r} is longer than ten years", field="window",
                                  value=spec)
        return window

    @property
    def span(self) -> timedelta:
        return self.end - self.start

    def previous(self) -> Window:
        return Window(self.start - self.span, self.start)

    def __str__(self) -> str:
        return f"{self.start.isoformat()}/{self.end.isoformat()}"
