"""Worklists (待办) and a user's own reports, read from PostGIS (which case is whose task:
``gridcore.worklist``).

A worklist page is ordered by the stage deadline, soonest first (cases without one last), and
continues after the last (deadline, id) seen — keyset paging, so a page never skips or repeats
a case while others are added. Scoping is in the query (``layers.security.scoping``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, text

from gridcore.errors import ValidationError
from gridcore.lifecycle import CaseFacts, State, allowed_actions
from gridcore.security.access import Principal
from gridcore.settings import CaseSettings
from gridcore.taxonomy import default_taxonomy
from gridcore.worklist import TASK_ZH, Task, Worklist
from layers.cases.queries import COLOUR_SQL
from layers.cases.view import case_clock, photo_links
from layers.security.scoping import case_scope_sql

_DUE = "coalesce(c.deadline_at, 'infinity'::timestamptz)"
_COLUMNS = """c.id, c.public_no, c.state, c.category_key, c.description, c.grid_code,
    c.department_code, c.source, c.reporter, c.filed_by, c.stage, c.stage_started_at,
    c.stage_limit, c.deadline_at, c.parked_since, c.parked_intervals, c.check_result,
    c.supervised, c.created_at, c.updated_at, c.part_code, c.version, c.assignee,
    ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat, g.name AS grid_name,
    (SELECT count(*) FROM case_photo p WHERE p.case_id = c.id) AS photo_count"""
_GRID = "LEFT JOIN unit_grid g ON g.code = c.grid_code AND g.gen_to IS NULL"


def encode_cursor(due: datetime | None, case_id: int) -> str:
    raw = json.dumps([due.isoformat() if due else None, case_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime | None, int]:
    try:
        due, case_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return (datetime.fromisoformat(due) if due else None), int(case_id)
    except (ValueError, TypeError):
        raise ValidationError("after must be the `next` cursor of an earlier page",
                              field="after", value=cursor) from None


def _conditions(worklist: Worklist, principal: Principal, tasks: set[Task] | None,
                params: dict[str, Any]) -> str:
    """The SQL of "this case is a task of this user" (with the scope)."""
    if worklist.overdue:
        return f"{COLOUR_SQL['red']} AND {case_scope_sql(_no_user(principal), params)}"
    states = worklist.states(tasks)
    if not states:
        return "FALSE"
    params["states"] = [s.value for s in states]
    if worklist.by_department:
        params["department"] = principal.department or ""
        sent_back = "c.state = 'sent_back' AND :department = ANY(c.refused_departments)"
        mine = "c.state = ANY(:states) AND c.state <> 'sent_back' AND " \
               "c.department_code = :department"
        return f"(({mine}) OR ({sent_back} AND 'sent_back' = ANY(:states)))"
    where = f"c.state = ANY(:states) AND {case_scope_sql(_no_user(principal), params)}"
    if worklist.skip_own_reports:
        params["me"] = principal.name
        where += " AND NOT (c.state = 'reported' AND c.filed_by IS NOT DISTINCT FROM :me)"
    return where


def _only_mine(worklist: Worklist, principal: Principal, mine: bool) -> str:
    if not mine:
        return ""
    if not worklist.by_department:
        raise ValidationError("mine narrows a department's worklist to the cases assigned to "
                              "its handler; this worklist is already the user's own",
                              field="mine", value=True, role=worklist.role.value)
    # not held by another handler: assigned to me, or not yet taken (accepting takes it)
    return " AND (c.assignee IS NULL OR c.assignee = :assignee)"


def _no_user(principal: Principal) -> Any:
    """The principal's scope without "the cases I filed": a task is where one works."""
    from dataclasses import replace

    return replace(principal.scope, user=None)


def tasks(engine: Engine, settings: CaseSettings, principal: Principal, worklist: Worklist,
          wanted: set[Task] | None = None, after: str | None = None, limit: int = 50,
          now: datetime | None = None, mine: bool = False) -> dict[str, Any]:
    """One page of the user's worklist, the cursor of the next, and the count per task;
    ``mine``: a department's cases held by this handler (accepted by them or 指派 to them)
    or by nobody yet — not those another handler holds."""
    now = now or datetime.now(UTC)
    params: dict[str, Any] = {"now": now, "limit": limit + 1}
    only = _only_mine(worklist, principal, mine)
    where = _conditions(worklist, principal, wanted, params) + only
    page_where = where
    if after:
        due, params["after_id"] = decode_cursor(after)
        if due is None:  # past every deadline: among the cases without one, by id
            page_where += " AND c.deadline_at IS NULL AND c.id > :after_id"
        else:
            params["after_due"] = due
            page_where += f" AND ({_DUE}, c.id) > (:after_due, :after_id)"
    sql = (f"SELECT {_COLUMNS} FROM case_record c {_GRID} WHERE {page_where} "
           f"ORDER BY {_DUE}, c.id LIMIT :limit")
    # The counts are of every task of the role, whichever the page shows: the tabs of a
    # worklist show them all.
    count_params: dict[str, Any] = {"now": now}
    every = _conditions(worklist, principal, None, count_params) + only
    if only:
        params["assignee"] = count_params["assignee"] = principal.name
    count_sql = f"SELECT c.state, count(*) AS n FROM case_record c WHERE {every} GROUP BY 1"
    with engine.connect() as conn:
        rows: list[Any] = list(conn.execute(text(sql), params).mappings())
        counted = conn.execute(text(count_sql), count_params).all()
    more = len(rows) > limit
    rows = rows[:limit]
    counts: dict[str, int] = {t.value: 0 for t in worklist.tasks}
    for state, n in counted:
        task = worklist.task_of(state).value
        counts[task] = counts.get(task, 0) + int(n)
    items = [task_item(r, settings, now, principal, worklist.task_of(r["state"]))
             for r in rows]
    cursor = encode_cursor(rows[-1]["deadline_at"], rows[-1]["id"]) if more and rows else None
    return {"items": items, "counts": counts, "next": cursor}


def my_reports(engine: Engine, settings: CaseSettings, principal: Principal,
               after: int | None = None, limit: int = 50,
               now: datetime | None = None) -> dict[str, Any]:
    """The cases the user filed, newest first, each with where it stands now."""
    now = now or datetime.now(UTC)
    params: dict[str, Any] = {"me": principal.name, "limit": limit + 1}
    page = " AND c.id < :after" if after is not None else ""
    if after is not None:
        params["after"] = after
    sql = (f"SELECT {_COLUMNS}, h.action AS last_action, h.at AS last_at, "
           "c.primary_case_id, pc.public_no AS primary_no, pc.state AS primary_state, "
           "pc.closed_at AS primary_closed_at FROM case_record c "
           f"{_GRID} LEFT JOIN LATERAL (SELECT action, at FROM case_history "
           "WHERE case_id = c.id ORDER BY id DESC LIMIT 1) h ON TRUE "
           "LEFT JOIN case_record pc ON pc.id = c.primary_case_id "
           f"WHERE c.filed_by = :me{page} ORDER BY c.id DESC LIMIT :limit")
    with engine.connect() as conn:
        rows: list[Any] = list(conn.execute(text(sql), params).mappings())
    more = len(rows) > limit
    rows = rows[:limit]
    items = []
    for r in rows:
        item = task_item(r, settings, now, principal, None)
        item["last_step"] = {"action": r["last_action"], "at": _iso(r["last_at"])}
        if r["primary_case_id"]:  # merged (并案): where the report's matter went
            item["outcome"] = {"primary_case_id": r["primary_case_id"],
                               "primary_public_no": r["primary_no"],
                               "state": r["primary_state"],
                               "closed_at": _iso(r["primary_closed_at"])}
        items.append(item)
    return {"items": items, "next": rows[-1]["id"] if more and rows else None}


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def task_item(row: Mapping[str, Any], settings: CaseSettings, now: datetime,
              principal: Principal, task: Task | None) -> dict[str, Any]:
    """One case as a worklist line: enough to list, sort and act on it from a phone."""
    cls = default_taxonomy().get(row["category_key"])
    clock = case_clock(row, settings.working_calendar, now)
    facts = CaseFacts(State(row["state"]), row["parked_since"] is not None,
                      row["check_result"], row["department_code"], row["id"])
    actions = allowed_actions(facts, principal.role) if task is not Task.SENT_BACK else []
    cid = row["id"]
    links: dict[str, Any] = {"self": f"/cases/{cid}",
                             "photos": [photo_links(cid, n)["url"]
                                        for n in range(1, int(row["photo_count"]) + 1)],
                             "actions": {a: f"/cases/{cid}/{a}" for a in actions}}
    if task is Task.SENT_BACK:  # no longer the department's: it cannot open the case
        links = {}
    return {
        "id": cid, "public_no": row["public_no"], "state": row["state"],
        "version": row["version"], "task": task.value if task else None,
        "task_zh": TASK_ZH[task] if task else None,
        "actions": actions, "category": cls.key,
        "category_name": {"zh-CN": cls.name_zh, "en": cls.name_en},
        "description": row["description"], "grid_code": row["grid_code"],
        "grid_name": row["grid_name"], "department": row["department_code"],
        "assignee": row["assignee"],  # the handler a team leader assigned (指派), if any
        "part_code": row["part_code"], "source": row["source"],
        "location": {"lon": row["lon"], "lat": row["lat"]},
        "deadline": clock.deadline.astimezone(UTC).isoformat()
        if clock and clock.deadline else None,
        "colour": clock.colour.value if clock else None,
        "clock": clock.as_dict() if clock else None,
        "parked": row["parked_since"] is not None, "supervised": row["supervised"],
        "check_result": row["check_result"], "photo_count": int(row["photo_count"]),
        "reported_at": _iso(row["created_at"]), "updated_at": _iso(row["updated_at"]),
        "links": links,
    }
