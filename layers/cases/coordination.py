"""Storage of the steps of levels and channels (``gridcore.coordination``): what they look up
before :func:`gridcore.lifecycle.changes` (the team of the level above, the resolved place, the
departments named, the open task or whistle a department answers) and the rows they write
beside the case (assisting tasks, whistles, their reports).

Called by ``layers.cases.transitions`` inside the step's transaction, under its lock on the
case.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from gridcore.coordination import area_of, level_above
from gridcore.errors import Conflict, GridcoreError, ValidationError
from gridcore.intake import require_inside
from gridcore.lifecycle import Action, Plan
from layers.cases.resolving import Resolves


def open_tasks(conn: Connection, case_id: int) -> tuple[str, ...]:
    """The assisting departments whose tasks on the case are still open (协同)."""
    return tuple(r[0] for r in conn.execute(text(
        "SELECT department_code FROM case_task WHERE case_id = :c AND state = 'open' "
        "ORDER BY id"), {"c": case_id}))


def team_above(conn: Connection, department: str, grid_code: str | None) -> dict[str, Any]:
    """The team a case held by ``department`` escalates to: the level team one level up, of
    the area the case lies in. A Conflict that says why when there is none."""
    row = conn.execute(text("SELECT level FROM department WHERE code = :d"),
                       {"d": department}).first()
    level = row.level if row is not None else None
    up = level_above(level)
    if up is None:
        why = (f"department {department} has no level (a city department)" if level is None
               else f"{department} is at the {level} level, the top")
        raise Conflict(f"cannot escalate (上报): {why}; the dispatcher re-dispatches instead",
                       department=department, level=level, allowed=["send_back"])
    area = area_of(up, grid_code)
    team = conn.execute(text("SELECT code FROM department WHERE level = :l AND area_code = :a "
                             "AND level_team"), {"l": up, "a": area}).first()
    if team is None:
        raise Conflict(f"cannot escalate (上报): the {up} {area} has no level team "
                       "(gridcore departments import … level_team=true)", level=up, area=area)
    return {"department": team.code, "level": up, "from_level": level}


def _departments_exist(conn: Connection, codes: tuple[str, ...]) -> None:
    found = {r[0] for r in conn.execute(text("SELECT code FROM department WHERE code = ANY(:c)"),
                                        {"c": list(codes)})}
    missing = [c for c in codes if c not in found]
    if missing:
        raise ValidationError(f"department(s) {', '.join(missing)} do not exist",
                              field="departments", value=missing)


def _location(resolver: Resolves, row: Mapping[str, Any], side: Mapping[str, Any]
              ) -> dict[str, Any]:
    lon, lat, crs = side["locate"]
    from gridcore.intake import Report

    res = resolver.resolve(lon, lat, crs, row["category_key"])
    require_inside(res, Report("locate", row["category_key"], lon, lat, crs))
    assert res.grid is not None
    proposal = res.responsible
    return {
        "lonlat": (res.lon, res.lat), "input_crs": crs, "input_x": lon, "input_y": lat,
        "grid_id": res.grid.grid_id, "grid_code": res.grid.grid_code,
        "community_code": res.community.code if res.community else None,
        "street_code": res.street.code if res.street else None,
        "district_code": res.district.code if res.district else None, "h3": res.h3,
        "part_code": res.linked_part.code if res.linked_part else None,
        "proposed_department": proposal.department_code if proposal else None,
        "proposal_rule": proposal.rule if proposal else "no resolution of responsibility",
        "location_source": "map", "resolution": res.as_dict()}


def _filer(conn: Connection, case_id: int) -> str | None:
    return conn.execute(text("SELECT actor FROM case_history WHERE case_id = :c "
                             "AND action = 'report' ORDER BY id LIMIT 1"), {"c": case_id}).scalar()


def look_up(conn: Connection, step: Plan, row: Mapping[str, Any], resolver: Resolves,
            actor: str = "", role: str = "") -> dict[str, Any]:
    """What ``step`` needs from storage (``found`` of :func:`gridcore.lifecycle.changes`)."""
    side, case_id = step.side, row["id"]
    if step.action is Action.SELF_HANDLE and role != "admin":
        filer = _filer(conn, case_id)
        if filer != actor:  # 自处置 is the reporter's own work on the spot, not another's
            raise Conflict(f"only the one who reported case {case_id} ({filer}) can file it "
                           "as self-handled (自处置)", case_id=case_id, allowed=["verify"])
    if step.action is Action.ESCALATE:
        return {"team": team_above(conn, side["escalate_from"], row["grid_code"])}
    if step.action is Action.LOCATE:
        try:
            return {"location": _location(resolver, row, side)}
        except GridcoreError as exc:
            details = {k: v for k, v in exc.details.items() if k != "field"}
            raise ValidationError(f"cannot place the case there: {exc}", field="lon",
                                  **details) from None
    if step.action in (Action.WHISTLE, Action.ASSIST):
        _departments_exist(conn, side["departments"])
        table = "case_whistle" if step.action is Action.WHISTLE else "case_task"
        waiting = "reported_at IS NULL" if step.action is Action.WHISTLE else "state = 'open'"
        taken = [r[0] for r in conn.execute(text(
            f"SELECT department_code FROM {table} WHERE case_id = :c AND {waiting} "
            "AND department_code = ANY(:d)"), {"c": case_id, "d": list(side["departments"])})]
        if taken:
            what = "wait on a whistle" if step.action is Action.WHISTLE else "assist"
            raise Conflict(f"{', '.join(taken)} already {what} on this case",
                           departments=taken)
    if step.action in (Action.REPORT_IN, Action.ASSIST_DONE, Action.RELEASE):
        code = side["task_department"]
        if step.action is Action.REPORT_IN:
            sql = ("SELECT 1 FROM case_whistle WHERE case_id = :c AND department_code = :d "
                   "AND reported_at IS NULL")
            what = "no whistle waiting for its report"
        else:
            sql = ("SELECT 1 FROM case_task WHERE case_id = :c AND department_code = :d "
                   "AND state = 'open'")
            what = "no open assisting task"
        if conn.execute(text(sql), {"c": case_id, "d": code}).first() is None:
            raise Conflict(f"department {code} has {what} on case {case_id}",
                           department=code, case_id=case_id)
    return {}


def write_records(conn: Connection, case_id: int, records: Mapping[str, Any], actor: str,
                  now: datetime, reason: str, attachments: list[Any]) -> None:
    """The rows a step writes beside the case."""
    for item in records.get("whistle", []):
        conn.execute(text(
            "INSERT INTO case_whistle (case_id, department_code, blown_at, blown_by, "
            "report_limit, deadline_at) VALUES (:c, :d, :now, :by, :l, :dl)"),
            {"c": case_id, "d": item["department"], "now": now, "by": actor,
             "l": item["limit"], "dl": item["deadline"]})
    for item in records.get("assist", []):
        conn.execute(text(
            "INSERT INTO case_task (case_id, department_code, task_limit, created_at, "
            "created_by, deadline_at) VALUES (:c, :d, :l, :now, :by, :dl)"),
            {"c": case_id, "d": item["department"], "now": now, "by": actor,
             "l": item["limit"], "dl": item["deadline"]})
    if "report_in" in records:
        conn.execute(text(
            "UPDATE case_whistle SET reported_at = :now, reported_by = :by WHERE case_id = :c "
            "AND department_code = :d AND reported_at IS NULL"),
            {"c": case_id, "d": records["report_in"]["department"], "now": now, "by": actor})
    if "assist_done" in records:
        conn.execute(text(
            "UPDATE case_task SET state = 'done', done_at = :now, done_by = :by, "
            "feedback = :f, attachments = CAST(:a AS jsonb) WHERE case_id = :c "
            "AND department_code = :d AND state = 'open'"),
            {"c": case_id, "d": records["assist_done"]["department"], "now": now, "by": actor,
             "f": reason, "a": json.dumps(attachments)})
    if "release" in records:
        conn.execute(text(
            "UPDATE case_task SET state = 'released', released_at = :now, released_by = :by, "
            "release_reason = :r WHERE case_id = :c AND department_code = :d "
            "AND state = 'open'"),
            {"c": case_id, "d": records["release"]["department"], "now": now, "by": actor,
             "r": reason})


def parties(conn: Connection, case_id: int) -> dict[str, Any]:
    """The case's assisting tasks and whistles, for its answer."""
    tasks = [dict(r) for r in conn.execute(text(
        "SELECT department_code AS department, state, task_limit AS limit, created_at, "
        "deadline_at, done_at, done_by, feedback, attachments, released_at, release_reason "
        "FROM case_task WHERE case_id = :c ORDER BY id"), {"c": case_id}).mappings()]
    whistles = [dict(r) for r in conn.execute(text(
        "SELECT department_code AS department, blown_at, blown_by, report_limit AS limit, "
        "deadline_at, reported_at, reported_by, "
        "reported_at IS NOT NULL AND reported_at <= deadline_at AS on_time "
        "FROM case_whistle WHERE case_id = :c ORDER BY id"), {"c": case_id}).mappings()]
    for row in (*tasks, *whistles):
        for k, v in row.items():
            if isinstance(v, datetime):
                row[k] = v.isoformat()
    return {"assisting": tasks, "whistles": whistles}


def waiting_whistles(conn: Connection, case_id: int) -> tuple[str, ...]:
    """The departments a whistle called to the case that have not reported in yet (吹哨)."""
    return tuple(r[0] for r in conn.execute(text(
        "SELECT department_code FROM case_whistle WHERE case_id = :c AND reported_at IS NULL "
        "ORDER BY id"), {"c": case_id}))


def escalation_target(conn: Connection, department: str | None, grid_code: str | None
                      ) -> tuple[dict[str, Any] | None, str | None]:
    """(the team a case held by ``department`` would go up to, or None with why not)."""
    if department is None:
        return None, "no department holds the case"
    try:
        return team_above(conn, department, grid_code), None
    except Conflict as exc:
        return None, str(exc)


def department_names(conn: Connection, codes: list[str]) -> dict[str, dict[str, Any]]:
    """Names and levels of departments, by code."""
    if not codes:
        return {}
    return {r.code: {"name": r.name, "level": r.level} for r in conn.execute(text(
        "SELECT code, name, level FROM department WHERE code = ANY(:c)"), {"c": codes})}
