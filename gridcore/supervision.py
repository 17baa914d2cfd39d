"""Warnings and automatic supervision (预警 · 自动督办).

When a case's clock reaches its warning mark (80 % of the stage's time, ``warn_at``) its
handler and the dispatchers are warned once; when the deadline passes the case is signalled
overdue once and — if its class is under automatic supervision — supervised by the system, a
supervise step recorded and audited like a manager's with the actor ``system``.

"Once" is per clock: the stored ``warned_for`` / ``overdue_for`` hold the deadline the signal
was given for, so a new clock (the next stage, an extension, a rework) warns again and the
same clock never twice, however many sweeps or server processes look at it. A parked case's
clock stands still: it is judged at the moment it was parked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gridcore.errors import ValidationError
from gridcore.lifecycle import OPEN_STATES, TRANSITIONS, Action, State
from gridcore.taxonomy import is_class_prefix

AUTO_SUPERVISE_REASON = "自动督办：已超过时限"


@dataclass(frozen=True, slots=True)
class AutoSupervision:
    """Which classes are supervised automatically when red: class keys or prefixes (``P01``
    all manhole covers, ``E0103`` dirty roads, ``*`` every class), minus the exempt ones."""

    classes: tuple[str, ...] = ("*",)
    exempt: tuple[str, ...] = ()

    @classmethod
    def parse(cls, classes: str, exempt: str = "") -> AutoSupervision:
        def split(spec: str, field: str) -> tuple[str, ...]:
            out = []
            for item in spec.split(","):
                item = item.strip()
                if not item:
                    continue
                if item != "*" and not is_class_prefix(item):
                    raise ValidationError(
                        f"{field}: {item!r} is not a class key or prefix (P0120, E01, P or *)",
                        field=field, value=item)
                out.append(item)
            return tuple(out)

        return cls(split(classes, "auto_supervise"), split(exempt, "auto_supervise_exempt"))

    def applies(self, category_key: str | None) -> bool:
        if not category_key:
            return False
        if category_key.startswith(tuple(p for p in self.exempt if p != "*")) or \
                "*" in self.exempt:
            return False
        return "*" in self.classes or category_key.startswith(self.classes)


@dataclass(frozen=True, slots=True)
class ClockState:
    """The stored facts of a case's clock that the sweep judges."""

    state: State
    category_key: str | None
    warn_at: datetime | None
    deadline_at: datetime | None
    parked_since: datetime | None = None
    supervised: bool = False
    warned_for: datetime | None = None
    overdue_for: datetime | None = None


@dataclass(frozen=True, slots=True)
class Signals:
    warn: bool = False  # 预警: raise a YELLOW event
    overdue: bool = False  # 超期: raise a RED event
    supervise: bool = False  # 自动督办: take a supervise step as the system

    def __bool__(self) -> bool:
        return self.warn or self.overdue or self.supervise


def signals(clock: ClockState, now: datetime, policy: AutoSupervision) -> Signals:
    """What is due for this case at ``now`` — nothing twice for the same clock."""
    if clock.state not in OPEN_STATES or clock.deadline_at is None:
        return Signals()
    at = min(now, clock.parked_since) if clock.parked_since else now
    deadline = clock.deadline_at
    if deadline <= at:
        if clock.overdue_for == deadline:
            return Signals()
        supervise = (policy.applies(clock.category_key) and not clock.supervised
                     and clock.state in TRANSITIONS[Action.SUPERVISE].targets)
        return Signals(overdue=True, supervise=supervise)
    if clock.warn_at is not None and clock.warn_at <= at and clock.warned_for != deadline:
        return Signals(warn=True)
    return Signals()


def marks(clock: ClockState, due: Signals) -> dict[str, datetime]:
    """The marks storage writes with the signals: an overdue clock needs no warning later."""
    out = {}
    if due.overdue:
        out["overdue_for"] = out["warned_for"] = clock.deadline_at
    elif due.warn:
        out["warned_for"] = clock.deadline_at
    return {k: v for k, v in out.items() if v is not None}
