"""Stored case clocks on the working calendar: stage deadlines through the lifecycle, across a
weekend, the 2025 National Day holiday, with parked time, and the overdue list at a moment."""

from __future__ import annotations

import pytest

from gridcore.intake import Report
from layers.cases.intake import Intake
from layers.cases.queries import CaseFilter, list_cases, overdue
from layers.cases.transitions import transition
from layers.grids.resolver import Resolver
from tests.support.cases import INSIDE_001, at, key, plant, settings


@pytest.fixture
def env(db, tmp_path):  # type: ignore[no-untyped-def]
    plant(db)
    return db, settings(tmp_path), Resolver(db)


def run(env, cid, steps):  # type: ignore[no-untyped-def]
    db, s, r = env
    out = None
    for action, role, when, payload in steps:
        out = transition(db, s, r, cid, action, "t", role, payload, now=when)
    return out


def test_deadline_across_weekend_with_parked_day(env) -> None:  # type: ignore[no-untyped-def]
    db, s, r = env
    case = Intake(db, r, s).file_report(Report(key(), "E0103", *INSIDE_001),
                  now=at(2025, 6, 13, 16, 30)).case  # Friday
    assert case["clock"]["deadline"] == at(2025, 6, 13, 17, 0).isoformat()
    c = run(env, case["id"], [
        ("verify", "dispatcher", at(2025, 6, 13, 16, 35), {}),
        ("register", "dispatcher", at(2025, 6, 13, 16, 38), {}),
        ("dispatch", "dispatcher", at(2025, 6, 13, 16, 40), {}),  # accepts the proposal
    ])
    assert c["department"] == "D_GRID" and c["history"][-1]["details"]["override"] is False
    # 5 working hours from Friday 16:40: 50 min on Friday, then 3 h 30 min before lunch and
    # 40 min after it on Monday → 14:10.
    assert c["clock"]["deadline"] == at(2025, 6, 16, 14, 10).isoformat()
    c = run(env, case["id"], [("park", "manager", at(2025, 6, 16, 9, 0), {"reason": "等待"}),
                              ("unpark", "manager", at(2025, 6, 17, 9, 0), {})])
    # A whole working day (7.5 h) parked: the deadline moves to Tuesday 14:10.
    assert c["clock"]["deadline"] == at(2025, 6, 17, 14, 10).isoformat()
    red = [x["id"] for x in overdue(db, s, now=at(2025, 6, 17, 15, 0))]
    assert red == [case["id"]]
    assert overdue(db, s, now=at(2025, 6, 17, 14, 0)) == []
    yellow, _ = list_cases(db, s, CaseFilter(colour="yellow"), now=at(2025, 6, 17, 14, 0))
    assert [x["id"] for x in yellow] == [case["id"]]


def test_deadline_across_national_day_and_make_up_day(env) -> None:  # type: ignore[no-untyped-def]
    db, s, r = env
    case = Intake(db, r, s).file_report(Report(key(), "E0102", *INSIDE_001),  # handling limit 1wd
                  now=at(2025, 9, 30, 15, 0)).case
    c = run(env, case["id"], [
        ("verify", "dispatcher", at(2025, 9, 30, 15, 5), {}),
        ("register", "dispatcher", at(2025, 9, 30, 15, 6), {}),
        ("dispatch", "dispatcher", at(2025, 9, 30, 16, 0), {"department": "D_CITY"}),
    ])
    # 1 working day = 7.5 working hours: 1.5 h on 30 Sep, holidays 1–8 Oct, 6 h on 9 Oct
    # (the same time of day on the next working day).
    assert c["clock"]["deadline"] == at(2025, 10, 9, 16, 0).isoformat()
    case2 = Intake(db, r, s).file_report(Report(key(), "E0102", *INSIDE_001),
                   now=at(2025, 10, 10, 15, 0)).case
    c2 = run(env, case2["id"], [
        ("verify", "dispatcher", at(2025, 10, 10, 15, 1), {}),
        ("register", "dispatcher", at(2025, 10, 10, 15, 2), {}),
        ("dispatch", "dispatcher", at(2025, 10, 10, 16, 0), {"department": "D_CITY"}),
    ])
    # Saturday 11 October is a make-up working day (调休上班).
    assert c2["clock"]["deadline"] == at(2025, 10, 11, 16, 0).isoformat()
    # While parked the clock stands still: not overdue however late it gets.
    run(env, case2["id"], [("park", "manager", at(2025, 10, 11, 9, 0), {"reason": "x"})])
    late = [x["id"] for x in overdue(db, s, now=at(2025, 12, 1, 9, 0))]
    assert case2["id"] not in late and case["id"] in late
