"""What the dispatchers' map asks besides features and tiles: a grid's details and the choices
of the filter boxes (search: ``layers.ogc.search``)."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, text

from layers.db.partitions import report_time
from layers.ogc import part_cells
from layers.schema.cases import TERMINAL_SQL

OPEN_CASES_SHOWN = 50


def _has_table(conn: Connection, name: str) -> bool:
    return conn.execute(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": name}).scalar_one()


def grid_details(conn: Connection, code: str, tz: ZoneInfo | None = None
                 ) -> dict[str, Any] | None:
    """A current grid with its hierarchy (社区 → 街道 → 区), workers and open cases."""
    grid = conn.execute(text(
        "SELECT g.code, g.name, g.area_m2, g.community_code, g.worker_codes, g.gen_from, "
        "ST_AsGeoJSON(ST_Envelope(g.geom), 7)::json AS bbox, "
        "ST_X(ST_PointOnSurface(g.geom)) AS lon, ST_Y(ST_PointOnSurface(g.geom)) AS lat "
        "FROM unit_grid g WHERE g.code = :c AND g.gen_to IS NULL"), {"c": code}).mappings().first()
    if grid is None:
        return None
    hierarchy = [dict(r) for r in conn.execute(text(
        "SELECT code, level, name FROM admin_area WHERE code IN (:d, :s, :c) "
        "ORDER BY length(code)"),
        {"d": code[:6], "s": code[:9], "c": code[:12]}).mappings()]
    workers = [dict(r) for r in conn.execute(text(
        "SELECT code, name, phone, active FROM grid_worker WHERE code = ANY(:w) ORDER BY code"),
        {"w": list(grid["worker_codes"] or [])}).mappings()]
    out: dict[str, Any] = {
        "code": grid["code"], "name": grid["name"], "area_m2": round(grid["area_m2"], 1),
        "generation": grid["gen_from"], "hierarchy": hierarchy, "workers": workers,
        "centre": [grid["lon"], grid["lat"]], "open_cases": [], "open_case_count": 0,
        "parts": parts_summary(conn, code),
    }
    if _has_table(conn, "case_record"):
        rows = conn.execute(text(
            f"SELECT id, public_no, state, category_key, deadline_at, count(*) OVER () AS n "
            f"FROM case_record WHERE grid_code = :c AND state NOT IN {TERMINAL_SQL} "
            f"ORDER BY deadline_at NULLS LAST, id LIMIT {OPEN_CASES_SHOWN}"),
            {"c": code}).mappings().all()
        out["open_case_count"] = int(rows[0]["n"]) if rows else 0
        out["open_cases"] = [{"id": r["id"], "public_no": r["public_no"], "state": r["state"],
                              "category_key": r["category_key"],
                              "deadline_at": r["deadline_at"].astimezone(tz).isoformat()
                              if r["deadline_at"] else None} for r in rows]
    return out


def parts_summary(conn: Connection, grid_code: str) -> dict[str, int]:
    """City parts of the grid by state (完好 / 破损 / 丢失 / 占用)."""
    return {r.state: int(r.n) for r in conn.execute(text(
        "SELECT state, count(*) AS n FROM city_part WHERE grid_code = :c GROUP BY state"),
        {"c": grid_code})}


def filter_choices(conn: Connection) -> dict[str, Any]:
    """Values for the filter boxes: departments, part classes present, event classes."""
    departments = [dict(r) for r in conn.execute(text(
        "SELECT code, name FROM department ORDER BY code")).mappings()]
    # the parts per class from the tiles' cell counts (not a scan of every part)
    part_classes = [dict(r) for r in conn.execute(text(
        "SELECT k.class_code AS code, coalesce(c.name_en, k.class_code) AS name, "
        "coalesce(c.name_zh, '') AS name_zh, k.n FROM (" + part_cells.CLASS_COUNTS + ") k "
        "LEFT JOIN category c ON c.key = 'P' || k.class_code ORDER BY k.class_code"))
        .mappings()]
    categories = [dict(r) for r in conn.execute(text(
        "SELECT key, name_en AS name, name_zh FROM category ORDER BY key")).mappings()]
    return {"departments": departments, "part_classes": part_classes,
            "categories": categories}


def case_facts_row(conn: Connection, case_id: int) -> Any:
    """The fields the lifecycle needs to say which steps are possible now."""
    if not _has_table(conn, "case_record"):
        return None
    at = report_time(conn, case_id)  # planned on the case's own year
    return None if at is None else conn.execute(text(
        "SELECT state, parked_since, check_result, department_code, grid_code, version "
        "FROM case_record WHERE id = :i AND created_at = :at"), {"i": case_id, "at": at}).first()
