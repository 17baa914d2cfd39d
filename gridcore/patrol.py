"""Patrols (巡查): a grid worker's shifts on duty and the positions recorded during them — pure
rules, no I/O.

A shift starts and ends by the worker's explicit action on the phone; in between the phone
records a position every few seconds and uploads them in batches (also later, when it was
offline). Nothing is kept from outside a shift: a position before its start or after its end is
refused, and so is one from the future. A shift left open longer than the longest shift is
taken as ended at its last position (a phone that died on duty).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from gridcore.errors import ValidationError

CLOCK_SKEW = timedelta(minutes=5)  # a phone's clock may run this far ahead of the server's


@dataclass(frozen=True, slots=True)
class Position:
    at: datetime
    lon: float
    lat: float
    accuracy_m: float | None = None


@dataclass(frozen=True, slots=True)
class Refused:
    index: int
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "reason": self.reason}


def instant(value: Any, field: str) -> datetime:
    """A time from the phone: epoch milliseconds, or ISO 8601 with a timezone."""
    if isinstance(value, bool):
        raise ValidationError(f"{field} must be a time", field=field, value=value)
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(value / 1000, UTC)
        except (OverflowError, OSError, ValueError):  # NaN, infinite, beyond year 9999
            raise ValidationError(f"{field} must be epoch milliseconds of a real time",
                                  field=field, value=str(value)) from None
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        raise ValidationError(f"{field} must be epoch milliseconds or ISO 8601", field=field,
                              value=value) from None
    if at.tzinfo is None:
        raise ValidationError(f"{field} must carry a timezone", field=field, value=value)
    return at


def check_start(started_at: datetime, now: datetime, longest: timedelta) -> None:
    if started_at > now + CLOCK_SKEW:
        raise ValidationError("a shift cannot start in the future (is the phone's clock "
                              "right?)", field="started_at", value=started_at.isoformat())
    if started_at < now - longest:
        raise ValidationError(f"a shift that started more than {longest} ago is over",
                              field="started_at", value=started_at.isoformat())


def check_end(started_at: datetime, ended_at: datetime, now: datetime) -> None:
    if ended_at < started_at:
        raise ValidationError("a shift cannot end before it started", field="ended_at",
                              value=ended_at.isoformat())
    if ended_at > now + CLOCK_SKEW:
        raise ValidationError("a shift cannot end in the future", field="ended_at",
                              value=ended_at.isoformat())


def effective_end(started_at: datetime, ended_at: datetime | None, last_point: datetime | None,
                  now: datetime, longest: timedelta) -> datetime | None:
    """When the shift ended: as the worker said; else, if it is older than the longest shift,
    at its last position (or its start); else it is still on."""
    if ended_at is not None:
        return ended_at
    if now - started_at > longest:
        return last_point or started_at
    return None


def sort_positions(raw: list[dict[str, Any]], started_at: datetime, ended_at: datetime | None,
                   now: datetime) -> tuple[list[Position], list[Refused]]:
    """The positions of a batch that belong to the shift, and the others with the reason
    (outside the shift — off duty — in the future, or not a place on Earth)."""
    kept: list[Position] = []
    refused: list[Refused] = []
    for i, p in enumerate(raw):
        try:
            at = instant(p.get("t", p.get("at")), f"points[{i}].t")
            lon, lat = float(p["lon"]), float(p["lat"])
            acc = p.get("accuracy_m", p.get("acc"))
            accuracy = None if acc is None else float(acc)
        except (KeyError, TypeError, ValueError, ValidationError) as exc:
            refused.append(Refused(i, f"not a position: {exc}"))
            continue
        if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180
                and -90 <= lat <= 90):
            refused.append(Refused(i, "lon/lat must be WGS 84 degrees"))
        elif accuracy is not None and not (math.isfinite(accuracy) and accuracy >= 0):
            refused.append(Refused(i, "accuracy_m must be metres ≥ 0"))
        elif at < started_at:
            refused.append(Refused(i, "before the shift started (off duty)"))
        elif ended_at is not None and at > ended_at:
            refused.append(Refused(i, "after the shift ended (off duty)"))
        elif at > now + CLOCK_SKEW:
            refused.append(Refused(i, "in the future (is the phone's clock right?)"))
        else:
            kept.append(Position(at, lon, lat, accuracy))
    return kept, refused
