"""Lifecycle steps on stored cases: serialised per case (``SELECT … FOR UPDATE``), checked by
``gridcore.lifecycle.plan``, one append-only history row per step, all in one transaction.

Dispatch records whether the dispatcher accepted the proposal or overrode it (派遣 / 改派);
a send-back (退单) remembers the refusing department and re-proposes without it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, text

from gridcore.errors import Conflict, NotFound, ValidationError
from gridcore.lifecycle import Action, CaseFacts, State, plan
from gridcore.taxonomy import TimeLimit
from layers.case_settings import CaseSettings
from layers.cases.intake import _HISTORY, fetch_case
from layers.cases.resolving import Resolves, repropose
from layers.cases.view import case_dict, is_open, pauses_of, stage_limit, stage_marks
from layers.security import audit


def _history(conn: Any, case_id: int) -> list[Any]:
    return list(conn.execute(text("SELECT * FROM case_history WHERE case_id = :c ORDER BY id"),
                             {"c": case_id}).mappings())


def _photos(conn: Any, case_id: int) -> list[Any]:
    return list(conn.execute(text("SELECT * FROM case_photo WHERE case_id = :c ORDER BY id"),
                             {"c": case_id}).mappings())


def get_case(engine: Engine, settings: CaseSettings, case_id: int,
             now: datetime | None = None) -> dict[str, Any]:
    """One case with its full history; a merged case also shows its primary's outcome."""
    now = now or datetime.now(UTC)
    with engine.connect() as conn:
        row = fetch_case(conn, case_id)
        if row is None:
            raise NotFound(f"case {case_id} does not exist", case_id=case_id)
        out = case_dict(row, settings.working_calendar, now, _history(conn, case_id),
                        _photos(conn, case_id))
        if row["primary_case_id"]:
            primary = fetch_case(conn, row["primary_case_id"])
            out["outcome"] = {"primary_case_id": primary["id"],
                              "primary_public_no": primary["public_no"],
                              "state": primary["state"], "closed_at":
                              primary["closed_at"].isoformat() if primary["closed_at"] else None}
        return out


def _department_exists(conn: Any, code: str) -> None:
    if conn.execute(text("SELECT 1 FROM department WHERE code = :c"), {"c": code}).first() is None:
        raise ValidationError(f"department {code!r} does not exist", field="department",
                              value=code)


def transition(engine: Engine, settings: CaseSettings, resolver: Resolves, case_id: int,
               action: str, actor: str, role: str, payload: dict[str, Any],
               now: datetime | None = None, expected_version: int | None = None
               ) -> dict[str, Any]:
    """Take one lifecycle step; returns the case after it (with history)."""
    now = now or datetime.now(UTC)
    calendar = settings.working_calendar
    with engine.begin() as conn:
        row = fetch_case(conn, case_id, lock=True)
        if row is None:
            raise NotFound(f"case {case_id} does not exist", case_id=case_id)
        if expected_version is not None and expected_version != row["version"]:
            raise Conflict(f"case {case_id} is at version {row['version']}, not "
                           f"{expected_version}; reload it and retry", case_id=case_id,
                           version=row["version"])
        facts = CaseFacts(State(row["state"]), row["parked_since"] is not None,
                          row["check_result"], row["department_code"], row["id"])
        if action == Action.DISPATCH.value and not payload.get("department"):
            # Dispatching without naming a department accepts the proposal (采纳建议).
            payload = {**payload, "department": row["proposed_department"]}
        step = plan(facts, action, role, payload, now)
        updates = dict(step.updates)
        details: dict[str, Any] = {}
        pauses = pauses_of(row["parked_intervals"])
        if step.action is Action.DISPATCH:
            _department_exists(conn, payload["department"])
            details = {"proposed": row["proposed_department"], "rule": row["proposal_rule"],
                       "chosen": payload["department"],
                       "override": payload["department"] != row["proposed_department"]}
        elif step.action is Action.SEND_BACK:
            refused = [d for d in (*row["refused_departments"], row["department_code"]) if d]
            again = repropose(resolver, row["lon"], row["lat"], row["category_key"], refused)
            updates.update(refused_departments=refused,
                           proposed_department=again.department_code, proposal_rule=again.rule)
            details = {"refused_by": row["department_code"],
                       "reproposed": again.department_code, "rule": again.rule}
        elif step.action is Action.MERGE:
            primary = fetch_case(conn, updates["primary_case_id"])
            if primary is None or not is_open(primary["state"]) or primary["primary_case_id"]:
                raise Conflict(f"case {updates['primary_case_id']} cannot be a primary case: "
                               "it must exist, be open and not itself merged",
                               primary_case_id=updates["primary_case_id"], allowed=["merge"])
        elif step.action is Action.UNPARK:
            pauses.append((row["parked_since"], now))
            updates["parked_intervals"] = [[a.isoformat(), b.isoformat()] for a, b in pauses]
            updates["parked_seconds"] = row["parked_seconds"] + (
                now - row["parked_since"]).total_seconds()
        if step.stage is not None:
            limit = stage_limit(row["category_key"], step.stage)
            updates.update(stage=step.stage.value, stage_started_at=now, stage_limit=str(limit))
        if step.to_state in (State.CLOSED, State.VOIDED, State.MERGED):
            updates["closed_at"] = now
        elif step.action is Action.REOPEN:
            updates["closed_at"] = None
        if any(k in updates for k in ("stage_limit", "parked_intervals")):
            start = updates.get("stage_started_at", row["stage_started_at"])
            limit = TimeLimit.parse(updates.get("stage_limit", row["stage_limit"]))
            updates["warn_at"], updates["deadline_at"] = stage_marks(calendar, start, limit,
                                                                     pauses)
        if step.action is Action.EXTEND:
            details = {"old_limit": row["stage_limit"], "new_limit": updates["stage_limit"]}
        _write(conn, row, step.to_state.value, updates, now)
        conn.execute(_HISTORY, {
            "case_id": case_id, "at": now, "actor": actor, "role": role,
            "action": step.action.value, "from_state": step.from_state.value,
            "to_state": step.to_state.value, "reason": payload.get("reason") or "",
            "attachments": json.dumps(payload.get("attachments") or []),
            "details": json.dumps({**details, **{k: payload[k] for k in (
                "department", "check_result", "new_limit", "primary_case_id")
                if payload.get(k) is not None}}, default=str)})
        audit.record(conn, actor, f"case.{step.action.value}", f"case:{case_id}",
                     {"role": role, "from": step.from_state.value, "to": step.to_state.value})
        out = case_dict(fetch_case(conn, case_id), calendar, now, _history(conn, case_id))
    return out


_JSON_COLUMNS = {"parked_intervals"}


def _write(conn: Any, row: Any, to_state: str, updates: dict[str, Any], now: datetime) -> None:
    sets = ["state = :state", "updated_at = :now", "version = version + 1"]
    params: dict[str, Any] = {"state": to_state, "now": now, "id": row["id"]}
    for col, value in updates.items():
        if col in _JSON_COLUMNS:
            sets.append(f"{col} = CAST(:{col} AS jsonb)")
            value = json.dumps(value)
        else:
            sets.append(f"{col} = :{col}")
        params[col] = value
    conn.execute(text(f"UPDATE case_record SET {', '.join(sets)} WHERE id = :id"), params)
