"""The rules of levels and co-handling (gridcore.coordination), without a database."""

from __future__ import annotations

import pytest

from gridcore import coordination as co
from gridcore.errors import Conflict, ValidationError
from gridcore.taxonomy import default_taxonomy


def test_levels_go_up_one_at_a_time() -> None:
    assert co.level_above("community") == "street"
    assert co.level_above("street") == "district"
    assert co.level_above("district") is None and co.level_above(None) is None
    grid = "110101001001001"
    assert co.area_of("street", grid) == "110101001"
    assert co.area_of("community", grid) == "110101001001"
    assert co.area_of("district", None) is None


def test_escalation_table_names_real_classes() -> None:
    taxonomy = default_taxonomy()
    for key in co._escalation():
        taxonomy.get(key)  # raises for a class the taxonomy does not know
    assert co.escalates_when_overdue("E0101") and not co.escalates_when_overdue("E0103")
    assert not co.escalates_when_overdue("P0120")  # not listed: stays put


def test_self_handling_needs_before_and_after() -> None:
    with pytest.raises(ValidationError) as info:
        co.plan_side("self_handle", "grid_worker", None, (), {"attachments": [{"role": "x"}]})
    assert info.value.details["missing"] == ["before", "after"]
    updates, _ = co.plan_side("self_handle", "grid_worker", None, (),
                              {"attachments": [{"role": "before"}, {"role": "after"}]})
    assert updates == {"check_result": "pass", "self_handled": True}


def test_department_lists() -> None:
    _, side = co.plan_side("whistle", None, "D1", (), {"departments": "D2; D3,D2"})
    assert side["departments"] == ("D2", "D3") and side["limit"] == "30m"
    with pytest.raises(ValidationError):
        co.plan_side("assist", None, "D1", (), {"departments": ["D1", "D2"]})
    with pytest.raises(ValidationError):
        co.plan_side("assist", None, "D1", (), {"departments": []})
    with pytest.raises(ValidationError):
        co.plan_side("whistle", None, "D1", (),
                     {"departments": [f"D{i}" for i in range(co.MAX_PARTIES + 1)]})


def test_feedback_waits_for_open_tasks_and_escalation_needs_a_holder() -> None:
    with pytest.raises(Conflict) as info:
        co.plan_side("feed_back", None, "D1", ("D2",), {})
    assert info.value.details["open_tasks"] == ["D2"]
    assert co.plan_side("feed_back", None, "D1", (), {}) == ({}, {})
    with pytest.raises(Conflict):
        co.plan_side("escalate", None, None, (), {"reason": "x"})


@pytest.mark.parametrize("payload,field", [
    ({"reached": "yes"}, "reached"),
    ({"reached": True, "resolved": True, "satisfaction": "great"}, "satisfaction"),
    ({"reached": True, "satisfaction": "satisfied"}, "resolved"),
])
def test_callback_values(payload: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        co.plan_side("callback", "hotline", None, (), payload)
    assert info.value.details["field"] == field


def test_callback_only_for_callers() -> None:
    updates, _ = co.plan_side("callback", "citizen", None, (), {"reached": False})
    assert updates["callback"] == {"reached": False, "resolved": None, "satisfaction": None}
    with pytest.raises(Conflict):
        co.plan_side("callback", "iot", None, (), {"reached": False})
