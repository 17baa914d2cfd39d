"""Evaluation rules without a database: the data file, periods, appeal rules."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from gridcore.calendar import WorkingCalendar
from gridcore.errors import Conflict, Forbidden, ValidationError
from gridcore.evaluation import EvaluationModel, Period
from gridcore.evaluation.appeals import AppealRules, check_decision, check_filing, clock_colour
from gridcore.security.access import Principal, Role

TZ = ZoneInfo("Asia/Shanghai")


def test_every_indicator_names_its_source_and_says_the_formula_is_unverified() -> None:
    model = EvaluationModel.default()
    assert set(model.kinds) == {"department", "area", "worker"}
    for kind in model.kinds.values():
        for m in kind.measures:
            assert m.term and m.source and m.verified is False, m.key
            if m.indicator.weight > 0:
                assert m.indicator.normalise == "target"
    assert "NOT verified" in model.source_note
    dept = model.kind("department")
    assert dept.measure("on_time_rate").indicator.formula.text == \
        "handled_on_time / due_timed"
    assert dept.measure("on_time_rate").penalty == "overdue"


@pytest.mark.parametrize("bad, field", [
    ({"formula": "handled / nonsense"}, "formula"),
    ({"direction": "up"}, "direction"),
    ({"penalty": "smiling"}, "penalty"),
    ({"weight": 1, "target": None}, "target"),
])
def test_bad_indicator_data_is_refused(bad: dict, field: str) -> None:
    row = {"key": "x", "name_zh": "x", "term": "x", "formula": "handled / due", "source": "s",
           "direction": "better", "weight": 0, **bad}
    with pytest.raises(ValidationError) as err:
        EvaluationModel.from_dict({"kinds": {"department": {
            "penalties": {"overdue": {}}, "indicators": [row]}}})
    assert err.value.details["field"] == field


def test_periods() -> None:
    nov = Period.parse("2026-11")
    w = nov.window()
    assert (w.start.isoformat(), w.end.isoformat()) == ("2026-11-01T00:00:00+08:00",
                                                        "2026-12-01T00:00:00+08:00")
    assert str(nov.previous()) == "2026-10" and str(nov.year_before()) == "2025-11"
    assert str(Period.parse("2026-01").previous()) == "2025-12"
    assert str(Period.parse("2026-q1").previous()) == "2025-Q4"
    assert Period.parse("2026-Q4").days == 92 and Period.parse("2024").days == 366
    span = Period.parse("2026-11-03/2026-11-17")
    assert str(span.previous()) == "2026-10-20/2026-11-03"
    assert str(Period.parse("2024-02-29/2024-03-10").year_before()) == "2023-02-28/2023-03-10"
    for bad in ("2026-13", "last month", "2026-11-17/2026-11-03", "0001-01", ""):
        with pytest.raises(ValidationError):
            Period.parse(bad)


def test_appeal_rules() -> None:
    kind, cal, rules = EvaluationModel.default().kind("department"), WorkingCalendar.chinese(), \
        AppealRules(window_days=5, decision_days=5)
    p = Period.parse("2026-10")
    handler = Principal("h", Role.DEPARTMENT_HANDLER, department="D1")
    # filed Tue 3 Nov: decision due 5 working days later, Tue 10 Nov, same time
    due = check_filing(handler, kind, "D1", "overdue", "why", p,
                       datetime(2026, 11, 3, 10, tzinfo=TZ), cal, rules)
    assert due == datetime(2026, 11, 10, 10, tzinfo=TZ)
    with pytest.raises(Conflict):  # after 5 working days past 1 November
        check_filing(handler, kind, "D1", "overdue", "why", p,
                     datetime(2026, 11, 10, 10, tzinfo=TZ), cal, rules)
    with pytest.raises(Forbidden):
        check_filing(handler, kind, "D2", "overdue", "why", p,
                     datetime(2026, 11, 3, tzinfo=TZ), cal, rules)
    with pytest.raises(ValidationError):
        check_filing(handler, kind, "D1", "laziness", "why", p,
                     datetime(2026, 11, 3, tzinfo=TZ), cal, rules)
    boss = Principal("boss", Role.MANAGER)
    assert check_decision(boss, "filed", "h", "approve", "ok") == "approved"
    with pytest.raises(Forbidden):
        check_decision(handler, "filed", "x", "approve", "ok")
    assert clock_colour(datetime(2026, 11, 10, tzinfo=TZ), None,
                        datetime(2026, 11, 11, tzinfo=TZ)) == "red"
