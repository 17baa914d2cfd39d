"""Warnings and automatic supervision (预警 · 自动督办): what is due when, once per clock, per
class, and a parked clock standing still."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from gridcore.errors import ValidationError
from gridcore.lifecycle import State
from gridcore.supervision import AutoSupervision, ClockState, Signals, marks, signals

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
WARN, DEADLINE = T0 + timedelta(hours=8), T0 + timedelta(hours=10)
CLOCK = ClockState(State.ACCEPTED, "P0120", WARN, DEADLINE)
ALL = AutoSupervision()


def test_green_yellow_red() -> None:
    assert not signals(CLOCK, T0 + timedelta(hours=1), ALL)
    assert signals(CLOCK, WARN, ALL) == Signals(warn=True)
    assert signals(CLOCK, DEADLINE, ALL) == Signals(overdue=True, supervise=True)


def test_each_signal_once_per_clock() -> None:
    warned = replace(CLOCK, **marks(CLOCK, Signals(warn=True)))
    assert warned.warned_for == DEADLINE
    assert not signals(warned, WARN + timedelta(minutes=5), ALL)  # no second warning
    due = signals(warned, DEADLINE, ALL)
    red = replace(warned, supervised=True, **marks(warned, due))
    assert not signals(red, DEADLINE + timedelta(days=3), ALL)  # no second red
    # A new clock (extension, next stage) warns again.
    later = replace(red, warn_at=DEADLINE + timedelta(hours=8),
                    deadline_at=DEADLINE + timedelta(hours=10))
    assert signals(later, DEADLINE + timedelta(hours=9), ALL) == Signals(warn=True)


def test_straight_to_red_needs_no_warning_afterwards() -> None:
    due = signals(CLOCK, DEADLINE + timedelta(hours=1), ALL)
    assert due == Signals(overdue=True, supervise=True)
    assert marks(CLOCK, due) == {"overdue_for": DEADLINE, "warned_for": DEADLINE}


def test_already_supervised_or_reported_cases_are_not_supervised_again() -> None:
    assert signals(replace(CLOCK, supervised=True), DEADLINE, ALL) == Signals(overdue=True)
    # 督办 is not a step of a case nobody has verified yet: it is signalled red only.
    assert signals(replace(CLOCK, state=State.REPORTED), DEADLINE, ALL) == Signals(overdue=True)
    assert not signals(replace(CLOCK, state=State.CLOSED), DEADLINE, ALL)


def test_a_parked_clock_stands_still() -> None:
    parked = replace(CLOCK, parked_since=T0 + timedelta(hours=1))
    assert not signals(parked, DEADLINE + timedelta(days=5), ALL)


def test_auto_supervision_per_class() -> None:
    policy = AutoSupervision.parse("P01, E0103", exempt="P0102")
    assert policy.applies("P0101") and policy.applies("E0103")
    assert not policy.applies("P0102") and not policy.applies("P0201")
    assert signals(replace(CLOCK, category_key="P0201"), DEADLINE, policy) == Signals(
        overdue=True)  # P0201: red only
    assert not AutoSupervision.parse("").applies("P0101")
    assert AutoSupervision.parse("*", exempt="E").applies("P0120")
    assert not AutoSupervision.parse("*", exempt="E").applies("E0103")


@pytest.mark.parametrize("spec", ["lamps", "P01x", "X0101", "P012345"])
def test_bad_class_lists_are_refused(spec: str) -> None:
    with pytest.raises(ValidationError):
        AutoSupervision.parse(spec)
