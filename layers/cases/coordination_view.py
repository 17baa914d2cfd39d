"""A case's coordination state as the desk's pages read it (协同状态): who was whistled and who
reported in (吹哨报到), the assisting departments' tasks (协同处置), whether the lead's feedback
waits for them, where an escalation (上报) would go, the consultation thread's size (会商), and
the steps the caller may take now — the state machine's steps narrowed by
:func:`gridcore.coordination.follow_coordination`, so a page offers 报到 only while a whistle
waits and 协同反馈 only on an open task."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, text

from gridcore.coordination import COORDINATION_STEPS, follow_coordination
from gridcore.errors import NotFound
from gridcore.lifecycle import allowed_actions
from gridcore.security.access import Role
from layers.cases import coordination
from layers.cases.transitions import facts_of
from layers.cases.view import fetch_case


def _past(iso: str | None, now: datetime) -> bool:
    return iso is not None and datetime.fromisoformat(iso) < now


def offered_steps(conn: Connection, row: Any, role: Role | None,
                  my_department: str | None) -> tuple[list[str], dict[str, Any]]:
    """(the steps ``role`` may take on the case now, the coordination facts behind them)."""
    case_id = row["id"]
    tasks = coordination.open_tasks(conn, case_id)
    whistles = coordination.waiting_whistles(conn, case_id)
    held = row["state"] in ("dispatched", "accepted", "rework")
    target, why = (coordination.escalation_target(conn, row["department_code"],
                                                  row["grid_code"])
                   if held else (None, "no department holds the case"))
    steps = follow_coordination(
        allowed_actions(facts_of(row, tasks), role), role=role.value if role else None,
        my_department=my_department, lead=row["department_code"], waiting_whistles=whistles,
        open_tasks=tasks, can_escalate=target is not None)
    return steps, {"open_tasks": tasks, "waiting_whistles": whistles,
                   "escalate_to": target, "escalate_blocked": None if target else why}


def coordination_state(engine: Engine, case_id: int, role: Role | None,
                       my_department: str | None, now: datetime | None = None
                       ) -> dict[str, Any]:
    """The coordination answer of one case for a caller of ``role`` in ``my_department``."""
    now = now or datetime.now(UTC)
    # one snapshot for the whole answer: read statement by statement, a step committed
    # meanwhile gave a case row and tasks from before it with parties from after it (an open
    # assisting task drawn without the step that releases it)
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        row = fetch_case(conn, case_id)
        if row is None:
            raise NotFound(f"case {case_id} does not exist", case_id=case_id)
        steps, facts = offered_steps(conn, row, role, my_department)
        parties = coordination.parties(conn, case_id)
        messages = conn.execute(text("SELECT count(*) FROM case_message WHERE case_id = :c"),
                                {"c": case_id}).scalar()
        codes = {row["department_code"], *(p["department"] for p in parties["assisting"]),
                 *(p["department"] for p in parties["whistles"])}
        if facts["escalate_to"]:
            codes.add(facts["escalate_to"]["department"])
        may_name = any(s in steps for s in ("whistle", "assist"))
        everyone = conn.execute(text(
            "SELECT code, name, level FROM department ORDER BY level NULLS FIRST, code")
        ).mappings().all() if may_name else []
        names = coordination.department_names(conn, sorted(c for c in codes if c))
    for p in parties["whistles"]:
        p["name"] = names.get(p["department"], {}).get("name")
        p["overdue"] = p["reported_at"] is None and _past(p["deadline_at"], now)
    for p in parties["assisting"]:
        p["name"] = names.get(p["department"], {}).get("name")
        p["overdue"] = p["state"] == "open" and _past(p["deadline_at"], now)
    lead = row["department_code"]
    escalate_to = facts["escalate_to"]
    if escalate_to:
        escalate_to = {**escalate_to, "name": names.get(escalate_to["department"], {}).get("name")}
    busy = {*facts["open_tasks"], *facts["waiting_whistles"], lead}
    return {
        "case_id": case_id, "public_no": row["public_no"], "state": row["state"],
        "version": row["version"],
        "lead": {"code": lead, **names.get(lead, {})} if lead else None,
        "my_department": my_department,
        "role": role.value if role else None,
        "whistles": parties["whistles"], "assisting": parties["assisting"],
        "waiting_whistles": list(facts["waiting_whistles"]),
        "open_tasks": list(facts["open_tasks"]),
        # the lead's 反馈 waits until every assisting task is done or released
        "lead_feedback_waits_for": list(facts["open_tasks"]),
        "escalate_to": escalate_to, "escalate_blocked": facts["escalate_blocked"],
        "messages": messages,
        "actions": steps,
        "steps": [s for s in steps if s in COORDINATION_STEPS],
        "candidates": [dict(d) for d in everyone if d["code"] not in busy],
    }


def party_cases(engine: Engine, department: str | None, limit: int = 100) -> list[dict[str, Any]]:
    """Open cases on which ``department`` is a party beside the lead and has something to do:
    a whistle waiting for its report (报到) or an open assisting task (协同), soonest first."""
    if department is None:
        return []
    with engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT c.id, c.public_no, c.state, c.category_key AS category, c.description,
                   c.grid_code, c.department_code AS lead, p.kind, p.deadline_at
            FROM (SELECT case_id, 'report_in' AS kind, deadline_at FROM case_whistle
                  WHERE department_code = :d AND reported_at IS NULL
                  UNION ALL
                  SELECT case_id, 'assist_done', deadline_at FROM case_task
                  WHERE department_code = :d AND state = 'open') p
            JOIN case_record c ON c.id = p.case_id
            WHERE c.state NOT IN ('closed', 'voided', 'merged')
            ORDER BY p.deadline_at, c.id LIMIT :n"""), {"d": department, "n": limit})
        return [{**r, "deadline_at": r["deadline_at"].isoformat()} for r in rows.mappings()]
