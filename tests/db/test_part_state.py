"""Cases change the city parts (部件): a registered case linked to a part puts it in its
class's case state, closing puts it back to intact — unless another open registered case still
holds it — each change recorded with the case that caused it; health sees the real state."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, text

from gridcore.calendar import WorkingCalendar
from gridcore.health import Window
from layers.health.scores import aggregate
from tests.support.health_planting import G1, _insert_case, _steps, plant_city, t

PART = "3205080101000001"  # a water-supply cover (上水井盖) in G1, intact when planted
LAMP_CLASS_PART = "3205080201000006"  # a bus stop in G2
CAL = WorkingCalendar.chinese()
WINDOW = Window.parse("2026-09-21/2026-10-12", datetime(2026, 11, 1, tzinfo=UTC))


def _case_on(engine: Engine, key: str, category: str, part: str, at: datetime) -> int:
    case_id = _insert_case(engine, key, category, G1, f"h-{key}", at)
    with engine.begin() as conn:
        conn.execute(text("UPDATE case_record SET part_code = :p WHERE id = :c"),
                     {"p": part, "c": case_id})
    return case_id


def _state(engine: Engine, part: str) -> str:
    with engine.connect() as conn:
        return str(conn.execute(text("SELECT state FROM city_part WHERE code = :p"),
                                {"p": part}).scalar_one())


def _history(engine: Engine, part: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT from_state, to_state, case_id, action FROM part_state_history "
            "WHERE part_code = :p ORDER BY id"), {"p": part})]


def _close(engine: Engine, case_id: int, day: str) -> None:
    _steps(engine, case_id, [
        ("dispatch", t(day, "09:00"), {"department": "D1"}), ("accept", t(day, "09:05"), {}),
        ("handle", t(day, "10:00"), {}), ("feed_back", t(day, "10:05"), {}),
        ("check", t(day, "10:30"), {"check_result": "pass"}), ("close", t(day, "10:40"), {})])


def test_register_sets_the_class_state_and_closing_sets_it_back(db: Engine) -> None:
    plant_city(db)
    first = _case_on(db, "K1", "P0101", PART, t("09-22", "08:50"))
    _steps(db, first, [("verify", t("09-22", "08:55"), {})])
    assert _state(db, PART) == "intact"  # a report alone changes nothing
    _steps(db, first, [("register", t("09-22", "09:00"), {})])
    assert _state(db, PART) == "missing"  # part_case_states.csv: covers go missing
    second = _case_on(db, "K2", "P0101", PART, t("09-23", "08:50"))
    _steps(db, second, [("verify", t("09-23", "08:55"), {}),
                        ("register", t("09-23", "09:00"), {})])
    _close(db, first, "09-24")
    assert _state(db, PART) == "missing"  # the second case still holds the part
    _close(db, second, "09-25")
    assert _state(db, PART) == "intact"
    assert _history(db, PART) == [("intact", "missing", first, "register"),
                                  ("missing", "intact", second, "close")]
    with db.connect() as conn:
        changed_on = conn.execute(text("SELECT changed_on FROM city_part WHERE code = :p"),
                                  {"p": PART}).scalar_one()
        details = conn.execute(text(
            "SELECT details FROM case_history WHERE case_id = :c AND action = 'register'"),
            {"c": first}).scalar_one()
    assert str(changed_on) == "2026-09-25"
    assert details["part_state"] == {"part": PART, "state": "missing"}


def test_reopening_a_closed_case_damages_the_part_again(db: Engine) -> None:
    plant_city(db)
    case = _case_on(db, "K3", "P0201", LAMP_CLASS_PART, t("09-22", "08:50"))
    _steps(db, case, [("verify", t("09-22", "08:55"), {}), ("register", t("09-22", "09:00"), {})])
    assert _state(db, LAMP_CLASS_PART) == "damaged"  # the default case state
    _close(db, case, "09-22")
    _steps(db, case, [("reopen", t("09-24", "09:00"), {"reason": "broken again"})])
    assert _state(db, LAMP_CLASS_PART) == "damaged"
    assert [h[3] for h in _history(db, LAMP_CLASS_PART)] == ["register", "close", "reopen"]


def test_event_cases_and_voided_reports_leave_parts_alone(db: Engine) -> None:
    plant_city(db)
    event = _case_on(db, "K4", "E0102", PART, t("09-22", "08:50"))
    _steps(db, event, [("verify", t("09-22", "08:55"), {}), ("register", t("09-22", "09:00"), {})])
    voided = _case_on(db, "K5", "P0101", PART, t("09-22", "08:50"))
    _steps(db, voided, [("void", t("09-22", "09:10"), {"reason": "not a case"})])
    assert _state(db, PART) == "intact" and _history(db, PART) == []


def test_health_terms_follow_the_part_state(db: Engine) -> None:
    plant_city(db)
    with db.connect() as conn:
        before = aggregate(conn, WINDOW, "grid", CAL).row(G1)
    case = _case_on(db, "K6", "P0101", PART, t("09-22", "08:50"))
    _steps(db, case, [("verify", t("09-22", "08:55"), {}), ("register", t("09-22", "09:00"), {})])
    with db.connect() as conn:
        after = aggregate(conn, WINDOW, "grid", CAL).row(G1)
    assert (before["parts_intact"], before["parts_missing"]) == (2, 1)
    assert (after["parts_intact"], after["parts_missing"]) == (1, 2)
    assert after["parts_bad_0101"] == pytest.approx(before["parts_bad_0101"] + 1)
