"""A small planted city and case history for the city-health tests and notebooks.

Three grids in two communities of one street (Gusu-like codes); cases are inserted as intake
writes them and then moved through the real lifecycle (``layers.cases.transitions.transition``)
at chosen instants, so the history rows are exactly what the product writes. Window of the
tests: 2026-09-21/2026-10-12 (Asia/Shanghai) — it holds the Mid-Autumn holiday (Fri 25 Sep),
the National Day week (1–7 Oct) and the make-up working Saturday 10 Oct.
"""

from __future__ import annotations

import inspect
import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, text

from gridcore.settings import CaseSettings
from layers.cases.transitions import transition

TZ = ZoneInfo("Asia/Shanghai")
_PARAMS = inspect.signature(transition).parameters
WINDOW = "2026-09-21/2026-10-12"
PREVIOUS = "2026-08-31/2026-09-21"
DISTRICT, STREET = "320508", "320508001"
C1, C2 = "320508001001", "320508001002"
G1, G2, G3 = "320508001001001", "320508001001002", "320508001002001"


def t(day: str, hhmm: str) -> datetime:
    return datetime.fromisoformat(f"2026-{day}T{hhmm}").replace(tzinfo=TZ)


def _square(x: float, y: float, d: float = 0.005) -> str:
    return (f"SRID=4326;MULTIPOLYGON((({x} {y},{x + d} {y},{x + d} {y + d},{x} {y + d},"
            f"{x} {y})))")


def plant_city(engine: Engine) -> None:
    areas = [(DISTRICT, "district", "姑苏区", None, _square(120.6, 31.3, 0.02)),
             (STREET, "street", "平江街道", DISTRICT, _square(120.6, 31.3, 0.02)),
             (C1, "community", "一社区", STREET, _square(120.6, 31.3, 0.01)),
             (C2, "community", "二社区", STREET, _square(120.61, 31.3, 0.01))]
    grids = [(G1, C1, _square(120.6, 31.3)), (G2, C1, _square(120.605, 31.3)),
             (G3, C2, _square(120.61, 31.3))]
    with engine.begin() as conn:
        for code, level, name, parent, geom in areas:
            conn.execute(text(
                "INSERT INTO admin_area (code, level, name, parent_code, geom, area_m2) "
                "VALUES (:c, :l, :n, :p, ST_GeomFromEWKT(:g), 1e6)"),
                {"c": code, "l": level, "n": name, "p": parent, "g": geom})
        conn.execute(text("INSERT INTO grid_generation (id, note) VALUES (1, 'planted')"))
        for code, community, geom in grids:
            # 0.25 km² each (the stored area, as the grid import computes it)
            conn.execute(text(
                "INSERT INTO unit_grid (code, name, community_code, geom, area_m2, gen_from) "
                "VALUES (:c, :c, :m, ST_GeomFromEWKT(:g), 250000, 1)"),
                {"c": code, "m": community, "g": geom})
        conn.execute(text("INSERT INTO department (code, name) VALUES ('D1', '市容环卫')"))
        parts = [(G1, "0101", "intact"), (G1, "0101", "intact"), (G1, "0101", "damaged"),
                 (G1, "0105", "missing"), (G2, "0101", "intact"), (G2, "0201", "intact")]
        for i, (grid, cls, state) in enumerate(parts, start=1):
            conn.execute(text(
                "INSERT INTO city_part (code, class_code, state, grid_code, geom) VALUES "
                "(:code, :cls, :state, :grid, ST_SetSRID(ST_MakePoint(120.601, 31.301), 4326))"),
                {"code": f"320508{cls}{i:06d}", "cls": cls, "state": state, "grid": grid})
        for i, grid in enumerate((G1, G1, G2), start=1):
            conn.execute(text(
                "INSERT INTO governance_entity (code, area, type, grid_code, geom) VALUES "
                "(:c, 'security', 'patrol_point', :g, "
                "ST_SetSRID(ST_MakePoint(120.601, 31.301), 4326))"), {"c": f"E{i}", "g": grid})


def _insert_case(engine: Engine, key: str, category: str, grid: str, h3: str,
                 at: datetime) -> int:
    with engine.begin() as conn:
        return int(conn.execute(text("""
            INSERT INTO case_record (idempotency_key, payload_hash, category_key, geom, input_x,
                input_y, grid_id, grid_code, community_code, street_code, district_code, h3,
                state, stage, stage_started_at, stage_limit, deadline_at, warn_at, created_at,
                updated_at)
            SELECT :key, repeat('0', 64), :cat, ST_SetSRID(ST_MakePoint(120.601, 31.301), 4326),
                120.601, 31.301, g.id, g.code, left(g.code, 12), left(g.code, 9),
                left(g.code, 6), :h3, 'reported', 'dispatch', :at, '30m',
                :at + interval '30 minutes', :at + interval '24 minutes', :at, :at
            FROM unit_grid g WHERE g.code = :grid
            RETURNING id"""), {"key": key, "cat": category, "h3": h3, "at": at,
                              "grid": grid}).scalar_one())


def _steps(engine: Engine, case_id: int, steps: list[tuple[str, datetime, dict]]) -> None:
    settings = CaseSettings(calendar="chinese", city_timezone="Asia/Shanghai")
    for action, at, payload in steps:
        # the resolver only re-proposes a department after a send-back, which is not planted
        extra = {"resolver": None} if "resolver" in _PARAMS else {}
        transition(engine=engine, settings=settings, case_id=case_id, action=action,
                   actor="tester", role="admin", payload=payload, now=at, **extra)


def _to_close(reg: datetime, close: datetime) -> list[tuple[str, datetime, dict]]:
    m = timedelta(minutes=1)
    return [("verify", reg, {}), ("register", reg, {}),
            ("dispatch", reg + m, {"department": "D1"}), ("accept", reg + 2 * m, {}),
            ("handle", close - 4 * m, {}), ("feed_back", close - 3 * m, {}),
            ("check", close - 2 * m, {"check_result": "pass"}), ("close", close, {})]


def plant_history(engine: Engine) -> dict[str, int]:
    """The planted cases (see tests/db/test_health.py for the hand-computed expectations)."""
    ids: dict[str, int] = {}
    m = timedelta(minutes=1)
    # A: exposed garbage across the National Day holiday: 立案 30 Sep 16:30 → 结案 8 Oct 10:00
    ids["A"] = _insert_case(engine, "A", "E0102", G1, "h-a", t("09-30", "16:00"))
    _steps(engine, ids["A"], _to_close(t("09-30", "16:30"), t("10-08", "10:00")))
    # B: rework and one day parked: 立案 22 Sep 09:00 → 结案 24 Sep 09:30
    ids["B"] = _insert_case(engine, "B", "E0102", G1, "h-b", t("09-22", "09:00"))
    reg = t("09-22", "09:00")
    _steps(engine, ids["B"], [
        ("verify", reg, {}), ("register", reg, {}), ("dispatch", reg + m, {"department": "D1"}),
        ("accept", reg + 2 * m, {}), ("handle", t("09-22", "10:00"), {}),
        ("feed_back", t("09-22", "10:10"), {}),
        ("check", t("09-22", "11:00"), {"check_result": "fail", "reason": "still dirty"}),
        ("rework", t("09-22", "11:05"), {"reason": "still dirty"}),
        ("park", t("09-22", "13:30"), {"reason": "waiting for a contractor"}),
        ("unpark", t("09-23", "13:30"), {}),
        *_to_close(reg, t("09-24", "09:30"))[4:]])
    # C: dirty road across the Mid-Autumn Friday and a weekend: 24 Sep 09:00 → 28 Sep 10:00
    ids["C"] = _insert_case(engine, "C", "E0103", G1, "h-c", t("09-24", "09:00"))
    _steps(engine, ids["C"], _to_close(t("09-24", "09:00"), t("09-28", "10:00")))
    # D: dispatched 9 Oct, still open at the window end and past its 1-working-day limit
    ids["D"] = _insert_case(engine, "D", "E0102", G1, "h-d", t("10-09", "09:00"))
    _steps(engine, ids["D"], _to_close(t("10-09", "09:00"), t("10-09", "10:00"))[:3])
    # E: an emergency only reported; G: same class and cell as A two days later (a repeat)
    ids["E"] = _insert_case(engine, "E", "E0401", G1, "h-e", t("09-21", "10:00"))
    ids["G"] = _insert_case(engine, "G", "E0102", G1, "h-a", t("10-02", "09:00"))
    # F: voided (not counted); H: after the window; P: previous window, closed on time
    ids["F"] = _insert_case(engine, "F", "E0102", G1, "h-f", t("09-23", "09:00"))
    _steps(engine, ids["F"], [("void", t("09-23", "09:10"), {"reason": "not a case"})])
    ids["H"] = _insert_case(engine, "H", "E0102", G1, "h-h", t("10-12", "10:00"))
    ids["P"] = _insert_case(engine, "P", "E0102", G1, "h-p", t("09-07", "09:00"))
    _steps(engine, ids["P"], _to_close(t("09-07", "09:00"), t("09-07", "11:00")))
    return ids


def history_json(engine: Engine, case_id: int) -> str:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT action, at FROM case_history WHERE case_id = :c "
                                 "ORDER BY id"), {"c": case_id}).all()
    return json.dumps([(a, str(b)) for a, b in rows])
