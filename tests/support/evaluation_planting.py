"""A planted month of cases for the evaluation tests (period 2026-10, Asia/Shanghai), on the
health test city (tests/support/health_planting.py) with two departments and two grid workers:
W1 walks G1 and G2 (community C1), W2 walks G3 (community C2). Every step is the product's
own (``layers.cases.transitions.transition``) with the actor and role who takes it; reports
get their history row as intake writes it. tests/db/test_evaluation.py has the hand counts.

October 2026: 1–7 October is the National Day holiday, Saturday 10 October a make-up working
day; working hours 08:30–12:00 and 13:30–17:30 (450 minutes a day).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, text

from gridcore.settings import CaseSettings
from layers.cases.transitions import transition
from layers.grids.resolver import Resolver
from tests.support.health_planting import G1, G2, G3, _insert_case, plant_city, t

PERIOD = "2026-10"
D = "演示派遣员"
M1, M2 = "manager-one", "manager-two"


def plant_org(engine: Engine) -> None:
    plant_city(engine)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO department (code, name) VALUES ('D2', '市政设施')"))
        conn.execute(text("INSERT INTO grid_worker (code, name) VALUES "
                          "('W1', '网格员一'), ('W2', '网格员二')"))
        conn.execute(text("UPDATE unit_grid SET worker_codes = ARRAY['W1']::varchar[] "
                          "WHERE code IN (:a, :b)"), {"a": G1, "b": G2})
        conn.execute(text("UPDATE unit_grid SET worker_codes = ARRAY['W2']::varchar[] "
                          "WHERE code = :c"), {"c": G3})


def _report(engine: Engine, key: str, grid: str, at: datetime, actor: str, role: str,
            source: str) -> int:
    case_id = _insert_case(engine, key, "E0102", grid, f"h-{key}", at)
    with engine.begin() as conn:
        conn.execute(text("UPDATE case_record SET source = :s WHERE id = :c"),
                     {"s": source, "c": case_id})
        conn.execute(text(
            "INSERT INTO case_history (case_id, at, actor, role, action, to_state) "
            "VALUES (:c, :at, :a, :r, 'report', 'reported')"),
            {"c": case_id, "at": at, "a": actor, "r": role})
    return case_id


def _steps(engine: Engine, case_id: int, steps: list[tuple]) -> None:
    settings = CaseSettings(calendar="chinese", city_timezone="Asia/Shanghai")
    resolver = Resolver(engine)  # a send-back asks it for a new proposal
    for action, at, actor, role, payload in steps:
        transition(engine=engine, settings=settings, resolver=resolver, case_id=case_id,
                   action=action, actor=actor, role=role, payload=payload, now=at)


def _handled(dept: str, dispatched: datetime, fed_back: datetime) -> list[tuple]:
    return [("dispatch", dispatched, D, "dispatcher", {"department": dept}),
            ("accept", dispatched, dept, "department_handler", {}),
            ("handle", fed_back, dept, "department_handler", {}),
            ("feed_back", fed_back, dept, "department_handler", {})]


def plant_month(engine: Engine) -> dict[str, int]:
    plant_org(engine)
    ids: dict[str, int] = {}
    # K9: across the National Day holiday: dispatched 30 Sep 16:20, fed back 8 Oct 09:30 =
    # 70 + 60 working minutes (1–7 Oct are holidays) → on time; checked 8 Oct 09:45
    ids["K9"] = k = _report(engine, "K9", G2, t("09-30", "16:00"), "W1", "grid_worker",
                            "grid_worker")
    _steps(engine, k, [("verify", t("09-30", "16:10"), "W1", "grid_worker", {}),
                       ("register", t("09-30", "16:15"), D, "dispatcher", {}),
                       *_handled("D1", t("09-30", "16:20"), t("10-08", "09:30")),
                       ("check", t("10-08", "09:45"), "W1", "grid_worker",
                        {"check_result": "pass"}),
                       ("close", t("10-08", "10:00"), D, "dispatcher", {})])
    # K1: handled across the make-up Saturday: 9 Oct 09:30 → 10 Oct 10:30 = 390 + 120 =
    # 510 working minutes > 450 (1wd) → late; whole case 9 Oct 09:25 → 10 Oct 11:10 = 555 >
    # 540 → closed late
    ids["K1"] = k = _report(engine, "K1", G1, t("10-09", "09:00"), "W1", "grid_worker",
                            "grid_worker")
    _steps(engine, k, [("verify", t("10-09", "09:20"), "W1", "grid_worker", {}),
                       ("register", t("10-09", "09:25"), D, "dispatcher", {}),
                       *_handled("D1", t("10-09", "09:30"), t("10-10", "10:30")),
                       ("check", t("10-10", "11:00"), "W1", "grid_worker",
                        {"check_result": "pass"}),
                       ("close", t("10-10", "11:10"), D, "dispatcher", {})])
    # K2: verified late (2 working hours), parked one working day, reworked once
    ids["K2"] = k = _report(engine, "K2", G2, t("10-12", "09:00"), "W1", "grid_worker",
                            "grid_worker")
    _steps(engine, k, [
        ("verify", t("10-12", "11:00"), "W1", "grid_worker", {}),
        ("register", t("10-12", "11:05"), D, "dispatcher", {}),
        ("dispatch", t("10-12", "11:10"), D, "dispatcher", {"department": "D1"}),
        ("accept", t("10-12", "11:10"), "D1", "department_handler", {}),
        ("park", t("10-12", "13:30"), M1, "manager", {"reason": "waiting for a contractor"}),
        ("unpark", t("10-13", "13:30"), M1, "manager", {}),
        ("handle", t("10-13", "15:00"), "D1", "department_handler", {}),
        ("feed_back", t("10-13", "15:00"), "D1", "department_handler", {}),
        ("check", t("10-13", "15:30"), "W1", "grid_worker",
         {"check_result": "fail", "reason": "仍有垃圾"}),
        ("rework", t("10-13", "15:35"), D, "dispatcher", {"reason": "still dirty"}),
        ("handle", t("10-14", "09:00"), "D1", "department_handler", {}),
        ("feed_back", t("10-14", "09:10"), "D1", "department_handler", {}),
        ("check", t("10-14", "09:30"), "W1", "grid_worker", {"check_result": "pass"}),
        ("close", t("10-14", "09:40"), D, "dispatcher", {})])
    # K3: a hotline call in W1's grid (a missed problem), sent back by D2, handled by D1
    ids["K3"] = k = _report(engine, "K3", G1, t("10-13", "10:00"), "12345", "system",
                            "hotline")
    _steps(engine, k, [
        ("verify", t("10-13", "10:30"), "W1", "grid_worker", {}),
        ("register", t("10-13", "10:35"), D, "dispatcher", {}),
        ("dispatch", t("10-13", "10:40"), D, "dispatcher", {"department": "D2"}),
        ("send_back", t("10-13", "10:50"), "D2", "department_handler",
         {"reason": "not ours"}),
        *_handled("D1", t("10-13", "11:00"), t("10-13", "14:00")),
        ("check", t("10-13", "14:20"), "W1", "grid_worker", {"check_result": "pass"}),
        ("close", t("10-13", "14:30"), D, "dispatcher", {})])
    # K4: W1's report found not to be a case
    ids["K4"] = k = _report(engine, "K4", G1, t("10-14", "09:00"), "W1", "grid_worker",
                            "grid_worker")
    _steps(engine, k, [("void", t("10-14", "09:30"), D, "dispatcher", {"reason": "no case"})])
    # K5: W2's report, dispatched to D2 and never handled: due 16 Oct 09:20, overdue
    ids["K5"] = k = _report(engine, "K5", G3, t("10-15", "09:00"), "W2", "grid_worker",
                            "grid_worker")
    _steps(engine, k, [("verify", t("10-15", "09:10"), "W2", "grid_worker", {}),
                       ("register", t("10-15", "09:15"), D, "dispatcher", {}),
                       ("dispatch", t("10-15", "09:20"), D, "dispatcher", {"department": "D2"}),
                       ("accept", t("10-15", "09:25"), "D2", "department_handler", {})])
    # K6: W2's report at the end of the month, not verified yet
    ids["K6"] = _report(engine, "K6", G3, t("10-30", "16:00"), "W2", "grid_worker",
                        "grid_worker")
    # K8: a hotline call in W2's grid; D2 sends it back and gets it again (a wrongful
    # send-back), then handles it in 20 minutes
    ids["K8"] = k = _report(engine, "K8", G3, t("10-16", "09:00"), "12345", "system",
                            "hotline")
    _steps(engine, k, [
        ("verify", t("10-16", "09:10"), "W2", "grid_worker", {}),
        ("register", t("10-16", "09:15"), D, "dispatcher", {}),
        ("dispatch", t("10-16", "09:20"), D, "dispatcher", {"department": "D2"}),
        ("send_back", t("10-16", "09:30"), "D2", "department_handler", {"reason": "no"}),
        *_handled("D2", t("10-16", "09:40"), t("10-16", "10:00")),
        ("check", t("10-16", "10:10"), "W2", "grid_worker", {"check_result": "pass"}),
        ("close", t("10-16", "10:20"), D, "dispatcher", {})])
    return ids
