"""The supervision sweep (预警 · 自动督办) on a real database with the clock moved: a case turns
yellow (one warning), then red (one overdue signal and one automatic supervise step, recorded
and audited as the system's) — exactly once, also with sweeps racing in parallel — and the
outbox holds the events of every step in the transaction of the step."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from gridcore.intake import Report
from gridcore.supervision import AutoSupervision
from layers.cases.intake import Intake
from layers.cases.supervision import sweep
from layers.cases.transitions import transition
from layers.grids.resolver import Resolver
from tests.support.cases import INSIDE_001, INSIDE_002, at, key, plant, settings

ALL = AutoSupervision()


@pytest.fixture
def env(db, tmp_path):  # type: ignore[no-untyped-def]
    plant(db)
    return db, settings(tmp_path), Resolver(db)


def _dispatched(env, point=INSIDE_001, category="E0103"):  # type: ignore[no-untyped-def]
    db, s, r = env
    case = Intake(db, r, s).file_report(Report(key(), category, *point),
                                        now=at(2025, 6, 16, 9, 0)).case  # a Monday
    for action in ("verify", "register", "dispatch"):
        case = transition(db, s, r, case["id"], action, "d1", "dispatcher", {},
                          now=at(2025, 6, 16, 9, 5))
    return case


def _events(db, case_id):  # type: ignore[no-untyped-def]
    with db.connect() as conn:
        return [r[0] for r in conn.execute(text(
            "SELECT kind FROM case_event WHERE case_id = :c ORDER BY id"), {"c": case_id})]


def test_yellow_then_red_warn_and_supervise_exactly_once(env) -> None:  # type: ignore[no-untyped-def]
    db, s, r = env
    case = _dispatched(env)
    deadline = datetime.fromisoformat(case["clock"]["deadline"])
    # E0103: 5 working hours from Monday 09:05, lunch 12:00–13:30 aside → 15:35; 80 % of it
    # (4 h) → 14:35.
    assert deadline == at(2025, 6, 16, 15, 35)
    assert _events(db, case["id"]) == ["new", "changed", "changed", "dispatched"]
    assert sweep(db, s, r, ALL, now=at(2025, 6, 16, 14, 30)).as_dict() == {
        "warned": [], "overdue": [], "supervised": []}
    for _ in range(3):  # yellow: once, however often the sweep looks
        result = sweep(db, s, r, ALL, now=at(2025, 6, 16, 14, 40))
    assert _events(db, case["id"])[-1] == "yellow"
    assert _events(db, case["id"]).count("yellow") == 1 and result.warned == []
    for _ in range(3):
        sweep(db, s, r, ALL, now=deadline + timedelta(minutes=1))
    kinds = _events(db, case["id"])
    assert kinds.count("red") == 1 and kinds.count("supervised") == 1
    with db.connect() as conn:
        hist = conn.execute(text(
            "SELECT actor, role, action, reason FROM case_history WHERE case_id = :c "
            "AND action = 'supervise'"), {"c": case["id"]}).all()
        audited = conn.execute(text(
            "SELECT count(*) FROM audit_log WHERE actor = 'system' AND action = "
            "'case.supervise' AND target = :t"), {"t": f"case:{case['id']}"}).scalar()
        supervised = conn.execute(text("SELECT supervised FROM case_record WHERE id = :c"),
                                  {"c": case["id"]}).scalar()
    assert hist == [("system", "system", "supervise", "自动督办：已超过时限")]
    assert audited == 1 and supervised is True


def test_parallel_sweeps_signal_once(env) -> None:  # type: ignore[no-untyped-def]
    db, s, r = env
    cases = [_dispatched(env, INSIDE_001 if i % 2 else INSIDE_002) for i in range(6)]
    late = at(2025, 6, 17, 12, 0)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: sweep(db, s, r, ALL, now=late), range(8)))
    for case in cases:
        kinds = _events(db, case["id"])
        assert kinds.count("red") == 1 and kinds.count("supervised") == 1, kinds
        assert "yellow" not in kinds  # straight to red: no late warning


def test_classes_left_out_of_auto_supervision_are_only_signalled(env) -> None:  # type: ignore[no-untyped-def]
    db, s, r = env
    case = _dispatched(env)
    sweep(db, s, r, AutoSupervision.parse("P"), now=at(2025, 6, 18, 9, 0))
    kinds = _events(db, case["id"])
    assert "red" in kinds and "supervised" not in kinds


def test_a_new_clock_warns_again(env) -> None:  # type: ignore[no-untyped-def]
    db, s, r = env
    case = _dispatched(env)
    sweep(db, s, r, ALL, now=at(2025, 6, 16, 14, 40))
    # An extension is a new clock: it may warn again when its own mark comes.
    transition(db, s, r, case["id"], "extend", "m1", "manager",
               {"new_limit": "3wd", "reason": "需要封路"}, now=at(2025, 6, 16, 14, 45))
    sweep(db, s, r, ALL, now=at(2025, 6, 16, 15, 0))
    assert _events(db, case["id"]).count("yellow") == 1
    sweep(db, s, r, ALL, now=at(2025, 6, 19, 9, 0))
    assert _events(db, case["id"]).count("yellow") == 2


def test_every_step_writes_its_event_in_its_own_transaction(env) -> None:  # type: ignore[no-untyped-def]
    from gridcore.errors import ValidationError

    db, s, r = env
    case = _dispatched(env)
    before = _events(db, case["id"])
    with pytest.raises(ValidationError):  # a refused step writes no event
        transition(db, s, r, case["id"], "send_back", "h1", "department_handler", {})
    assert _events(db, case["id"]) == before
    transition(db, s, r, case["id"], "send_back", "h1", "department_handler",
               {"reason": "不归我们管"})
    with db.connect() as conn:
        event = conn.execute(text(
            "SELECT kind, department_code, details FROM case_event WHERE case_id = :c "
            "ORDER BY id DESC LIMIT 1"), {"c": case["id"]}).one()
    assert event.kind == "sent_back" and event.department_code == "D_GRID"
    assert event.details["reason"] == "不归我们管" and event.details["reproposed"] == "D_STREET"
