"""Devices and their alarms (机器发现: 物联感知设备、视频智能分析) — pure rules, no I/O.

A **device** (a manhole-cover tilt sensor, a water-level sensor, a camera with video analytics)
is registered with its source (``iot`` or ``video``), its place (a city part it watches, or a
point) and the classes its alarms map to (``tilt`` → ``P0101``). An **alarm** is what it sends:
the device, the alarm's kind, ``alarm`` or ``normal``, when, a message id. The rules
(:func:`decide`) turn an alarm into what intake and the lifecycle do:

* an alarm whose class has no open case of this device → a **new case** (auto-verified when the
  device is trusted);
* an alarm whose class already has an open case of this device → a **repeat**: an event on that
  case (``alarm`` step, 重复告警), no new case;
* ``normal`` → for each open case of this device it clears (one kind, or every kind when none is
  named) a **close**: closed by the system when the class may be closed on a machine's word
  (:func:`closes_without_check`, data: ``gridcore/data/machine_close.csv``), else a **close
  proposal** (建议结案) that a person still checks;
* ``normal`` with nothing open → nothing to do (counted).

An alarm that cannot be read is a :class:`gridcore.errors.ValidationError` naming the field:
the consumer counts and logs it, and goes on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from gridcore.class_flags import class_flags
from gridcore.errors import ValidationError
from gridcore.taxonomy import default_taxonomy

DEVICE_SOURCES = ("iot", "video")  # 物联感知 · 视频智能分析
ALARM_STATES = ("alarm", "normal")
MAX_TEXT = 500


class Outcome(StrEnum):
    FILED = "filed"  # a new case
    REPEAT = "repeat"  # an event on the open case
    PROPOSED = "close_proposed"  # normal again: closing proposed, a person checks
    CLOSED = "closed"  # normal again: closed by the system (the class allows it)
    IGNORED = "ignored"  # normal with nothing open


@dataclass(frozen=True)
class Device:
    code: str
    source: str
    lon: float
    lat: float
    alarms: Mapping[str, str]  # alarm kind → category key
    name: str = ""
    kind: str = ""
    part_code: str | None = None
    trusted: bool = False
    active: bool = True

    def category_of(self, alarm_kind: str) -> str:
        try:
            return self.alarms[alarm_kind]
        except KeyError:
            known = ", ".join(sorted(self.alarms)) or "none"
            raise ValidationError(f"device {self.code} has no class for alarm "
                                  f"{alarm_kind!r} (its alarms: {known})", field="alarm",
                                  value=alarm_kind, device=self.code) from None


def check_device(device: Device) -> None:
    """A device as registered: a known source, a finite place, classes that exist."""
    if device.source not in DEVICE_SOURCES:
        raise ValidationError(f"source {device.source!r} must be one of "
                              f"{', '.join(DEVICE_SOURCES)}", field="source",
                              value=device.source)
    if not (math.isfinite(device.lon) and math.isfinite(device.lat)):
        raise ValidationError("a device needs a place: a city part or finite lon/lat",
                              field="lon")
    if not device.alarms:
        raise ValidationError("a device needs at least one alarm → class (e.g. tilt=P0101)",
                              field="alarms")
    taxonomy = default_taxonomy()
    for kind, category in device.alarms.items():
        if not kind or kind in ALARM_STATES:
            raise ValidationError(f"alarm kind {kind!r} is reserved or empty", field="alarms")
        taxonomy.get(category)


def parse_alarm_map(text: str) -> dict[str, str]:
    """``tilt=P0101;open=P0101`` → {"tilt": "P0101", "open": "P0101"}."""
    out: dict[str, str] = {}
    for item in (text or "").replace(",", ";").split(";"):
        if not item.strip():
            continue
        kind, sep, category = item.partition("=")
        if not sep or not kind.strip() or not category.strip():
            raise ValidationError(f"alarm mapping {item.strip()!r} must read kind=CLASS "
                                  "(e.g. tilt=P0101)", field="alarms", value=item.strip())
        out[kind.strip()] = category.strip()
    return out


@dataclass(frozen=True)
class Alarm:
    """One alarm as received (MQTT or HTTP), validated."""

    device: str
    kind: str | None  # the alarm's kind; None for "normal" of every kind
    state: str  # alarm | normal
    at: datetime | None = None
    message_id: str | None = None
    value: float | None = None
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def normal(self) -> bool:
        return self.state == "normal"


def _text(body: Mapping[str, Any], name: str, limit: int = MAX_TEXT) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ValidationError(f"{name} must be text", field=name)
    text = str(value).strip()
    if len(text) > limit:
        raise ValidationError(f"{name} is longer than {limit} characters", field=name)
    return text or None


def parse_alarm(body: Any, device: str | None = None) -> Alarm:
    """An alarm from its JSON object; ``device`` when the channel names it (an MQTT topic),
    in which case a device in the body must agree. ValidationError names what is wrong."""
    if not isinstance(body, dict):
        raise ValidationError("an alarm is a JSON object", field="body")
    named = _text(body, "device", 64)
    if device and named and named != device:
        raise ValidationError(f"the body names device {named!r}, the channel {device!r}",
                              field="device", value=named)
    code = device or named
    if not code:
        raise ValidationError("device is required", field="device")
    state = (_text(body, "state", 16) or "alarm").lower()
    kind = _text(body, "alarm", 64)
    if kind == "normal":  # {"alarm": "normal"}: every kind of the device is normal again
        state, kind = "normal", None
    if state not in ALARM_STATES:
        raise ValidationError(f"state {state!r} must be alarm or normal", field="state",
                              value=state)
    if state == "alarm" and not kind:
        raise ValidationError("alarm (its kind, e.g. tilt) is required", field="alarm")
    at = None
    raw_at = body.get("at")
    if raw_at is not None:
        if not isinstance(raw_at, str):
            raise ValidationError("at must be an ISO 8601 time with its offset", field="at")
        try:
            at = datetime.fromisoformat(raw_at.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError(f"at {raw_at!r} is not an ISO 8601 time", field="at") from None
        if at.tzinfo is None:
            raise ValidationError("at must carry its offset (e.g. +08:00)", field="at")
    value = body.get("value")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                              or not math.isfinite(value)):
        raise ValidationError("value must be a finite number", field="value")
    return Alarm(code, kind, state, at, _text(body, "id", 128), value,
                 _text(body, "description") or "",
                 {k: v for k, v in body.items() if k in ("image_url", "confidence", "unit")})


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    category: str | None = None
    case_id: int | None = None


def decide(device: Device, alarm: Alarm, open_cases: Mapping[str, int]) -> list[Decision]:
    """What to do with ``alarm`` given the device's open cases (category key → case id)."""
    if not device.active:
        raise ValidationError(f"device {device.code} is disabled", field="device",
                              value=device.code)
    if not alarm.normal:
        category = device.category_of(str(alarm.kind))
        if category in open_cases:
            return [Decision(Outcome.REPEAT, category, open_cases[category])]
        return [Decision(Outcome.FILED, category)]
    cleared = ([device.category_of(alarm.kind)] if alarm.kind is not None
               else sorted(open_cases))
    out = []
    for category in cleared:
        if category in open_cases:
            outcome = Outcome.CLOSED if closes_without_check(category) else Outcome.PROPOSED
            out.append(Decision(outcome, category, open_cases[category]))
    return out or [Decision(Outcome.IGNORED)]


def case_key(device: str, alarm: Alarm, category: str) -> str:
    """The idempotency key of the case an alarm files: the message id when the device sends
    one (a redelivered message is the same report), else the device, class and time."""
    if alarm.message_id:
        return f"alarm:{device}:{alarm.message_id}"[:128]
    when = alarm.at.isoformat() if alarm.at else "now"
    return f"alarm:{device}:{category}:{when}"[:128]


def _machine_close() -> dict[str, bool]:
    return class_flags("machine_close", "closes_without_check")


def closes_without_check(category: str) -> bool:
    """May a device's "normal" close a case of this class without a person checking on site?
    Only the classes ``machine_close.csv`` names (the water has drained, the car has left);
    every other class keeps its on-site check."""
    return _machine_close().get(category, False)
