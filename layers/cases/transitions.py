"""Lifecycle steps on stored cases: serialised per case (``SELECT … FOR UPDATE``), one
append-only history row per step (with its on-site photos), its audit row and its domain event,
all in one transaction.

The rules are the domain's: :func:`gridcore.lifecycle.plan` says whether this actor may take
this step from this state and what it needs; this module looks up what it needs (the chosen
department, the primary case of a merge, a new dispatch proposal after a send-back, the team
of an assignee), asks :func:`gridcore.lifecycle.changes` for everything the step writes, and
stores that — with the event the step raises (:mod:`gridcore.events`) in the outbox.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, text

from gridcore.coordination import photo_roles
from gridcore.errors import Conflict, NotFound, ValidationError
from gridcore.events import CaseEvent, merged_closed
from gridcore.intake import Photo
from gridcore.lifecycle import (
    TRANSITIONS,
    Action,
    CaseFacts,
    Change,
    Member,
    Plan,
    State,
    accepted_by,
    changes,
    check_assignment,
    check_photos,
    check_primary,
    moves_part,
    plan,
)
from gridcore.settings import CaseSettings
from layers.cases import coordination
from layers.cases.part_state import part_holders, set_part_state
from layers.cases.photos import store_photo
from layers.cases.resolving import Resolves, repropose
from layers.cases.view import case_dict, fetch_case, history_of, pauses_of, photos_of
from layers.db.partitions import report_time
from layers.notifications import outbox
from layers.security import audit

_HISTORY = text("""
INSERT INTO case_history (case_id, at, actor, role, action, from_state, to_state, reason,
    attachments, details)
VALUES (:case_id, :at, :actor, :role, :action, :from_state, :to_state, :reason,
    CAST(:attachments AS jsonb), CAST(:details AS jsonb))
RETURNING id
""")
_PHOTO = text("""
INSERT INTO case_photo (case_id, path, sha256, content_type, size_bytes, history_id)
VALUES (:case_id, :path, :sha256, :content_type, :size_bytes, :history_id)
""")
_JSON_COLUMNS = {"parked_intervals", "close_proposal", "callback"}
# What an event says about its step besides the case's fields.
_EVENT_DETAILS = ("department", "proposed", "override", "refused_by", "reproposed",
                  "primary_case_id", "merged_case_id", "check_result", "new_limit", "assignee")


def facts_of(row: Mapping[str, Any], tasks: tuple[str, ...] = ()) -> CaseFacts:
    """What the domain needs to know about a stored case (``tasks``: the assisting
    departments with open tasks)."""
    return CaseFacts(
        State(row["state"]), row["parked_since"] is not None, row["check_result"],
        row["department_code"], row["id"], category=row["category_key"],
        proposed_department=row["proposed_department"], proposal_rule=row["proposal_rule"],
        refused_departments=tuple(row["refused_departments"] or ()),
        primary_case_id=row["primary_case_id"], parked_since=row["parked_since"],
        parked_intervals=pauses_of(row["parked_intervals"]),
        parked_seconds=row["parked_seconds"], stage_started_at=row["stage_started_at"],
        stage_limit=row["stage_limit"], part_code=row["part_code"], source=row["source"],
        open_tasks=tasks, location_source=row.get("location_source") or "point",
        assignee=row.get("assignee"))


def transition(engine: Engine, settings: CaseSettings, resolver: Resolves, case_id: int,
               action: str, actor: str, role: str, payload: dict[str, Any],
               now: datetime | None = None, expected_version: int | None = None,
               photos: Sequence[Photo] = (), idempotency_key: str | None = None
               ) -> dict[str, Any]:
    """Take one lifecycle step; returns the case after it (with history and photos).
    ``photos``: checked on-site photos of the step (verify, check, handle…: the steps
    :func:`gridcore.lifecycle.check_photos` allows), stored with it. ``idempotency_key``:
    the client's key of this step; a step with a key the case's history already holds was
    taken before (a phone resending after a lost answer) and is answered, not taken again."""
    now = now or datetime.now(UTC)
    calendar = settings.working_calendar
    with engine.begin() as conn:
        if idempotency_key:
            row = fetch_case(conn, case_id, lock=True)
            if row is None:
                raise NotFound(f"case {case_id} does not exist", case_id=case_id)
            if _taken(conn, case_id, idempotency_key, action):
                out = case_dict(row, calendar, now, history_of(conn, case_id),
                                photos_of(conn, case_id))
                return {**out, **coordination.parties(conn, case_id), "replayed": True}
        take_step(conn, settings, resolver, case_id, action, actor, role, payload, now,
                  expected_version, photos=photos, idempotency_key=idempotency_key)
        out = case_dict(fetch_case(conn, case_id), calendar, now, history_of(conn, case_id),
                        photos_of(conn, case_id))
        out.update(coordination.parties(conn, case_id))
        return out


def _taken(conn: Connection, case_id: int, key: str, action: str) -> bool:
    """Has this case's history a step with this key? The same key on another action is the
    client's mistake, not a resend."""
    found = conn.execute(text(
        "SELECT action FROM case_history WHERE case_id = :c "
        "AND details->>'idempotency_key' = :k"), {"c": case_id, "k": key}).scalar()
    if found is not None and found != action:
        raise Conflict(f"idempotency key {key!r} was used for the {found} step of case "
                       f"{case_id}; use a new key for a new step", field="idempotency_key",
                       case_id=case_id)
    return found is not None


def take_step(conn: Connection, settings: CaseSettings, resolver: Resolves, case_id: int,
              action: str, actor: str, role: str, payload: dict[str, Any], now: datetime,
              expected_version: int | None = None, event_details: dict[str, Any] | None = None,
              photos: Sequence[Photo] = (), idempotency_key: str | None = None) -> Change:
    """One step in ``conn``'s transaction (the supervision sweep takes its supervise steps in
    its own): lock, plan, look up, change, history with photos, audit, event."""
    row = fetch_case(conn, case_id, lock=True)
    if row is None:
        raise NotFound(f"case {case_id} does not exist", case_id=case_id)
    if expected_version is not None and expected_version != row["version"]:
        raise Conflict(f"case {case_id} is at version {row['version']}, not "
                       f"{expected_version}; reload it and retry", case_id=case_id,
                       version=row["version"], msg_key="stale_version")
    facts = facts_of(row, coordination.open_tasks(conn, case_id))
    if action == "self_handle" and photos:  # uploaded: the first before, the rest after
        given = {a.get("role") for a in payload.get("attachments") or [] if isinstance(a, dict)}
        payload = {**payload, "attachments": [
            *(payload.get("attachments") or []),
            *({"role": r, "sha256": p.sha256, "uploaded": True}
              for r, p in zip(photo_roles(len(photos), "before" in given), photos,
                              strict=True))]}
    step = plan(facts, action, role, payload, now)
    accepted_by(step, facts, actor, role)
    check_photos(step, len(photos), settings.max_photos)
    _look_up(conn, step, facts, actor, role)
    reproposal = None
    if step.repropose_without is not None:
        reproposal = repropose(resolver, row["lon"], row["lat"], row["category_key"],
                               step.repropose_without)
    holders = part_holders(conn, facts) if moves_part(step, facts) else ()
    found = (coordination.look_up(conn, step, row, resolver, actor, role)
             if step.side or step.action.value == "self_handle" else {})
    change = changes(step, facts, settings.working_calendar, now, reproposal, holders, found)
    _write(conn, row, change.to_state.value, change.updates, now)
    if change.part_state is not None:
        set_part_state(conn, str(facts.part_code), change.part_state, case_id,
                       step.action.value, actor, now,
                       now.astimezone(settings.working_calendar.tz).date())
    stored = [{"path": store_photo(p, settings.media_dir), "sha256": p.sha256}
              for p in photos]  # content-addressed: a retried step writes the same files
    roles = {a["sha256"]: a["role"] for a in change.attachments
             if isinstance(a, dict) and a.get("uploaded")}
    for file in stored:  # self-handling: the upload's role (before / after) on its file
        if file["sha256"] in roles:
            file["role"] = roles[file["sha256"]]
    attachments = [a for a in change.attachments
                   if not (isinstance(a, dict) and a.get("uploaded"))]
    if change.records:  # an assisting task's feedback keeps its photos too
        coordination.write_records(conn, case_id, change.records, actor, now,
                                   change.reason, [*attachments, *stored])
    key = {"idempotency_key": idempotency_key} if idempotency_key else {}
    history_id = _history(conn, case_id, now, actor, role, step.action.value,
                          step.from_state.value, change.to_state.value, change.reason,
                          [*attachments, *stored], {**change.details, **key})
    for photo, file in zip(photos, stored, strict=True):
        conn.execute(_PHOTO, {"case_id": case_id, "path": file["path"],
                              "sha256": photo.sha256, "content_type": photo.content_type,
                              "size_bytes": len(photo.data), "history_id": history_id})
    for other, other_action, details in change.related:
        state = conn.execute(text("SELECT state FROM case_record WHERE id = :i "
                                  "AND created_at = :at"),
                             {"i": other, "at": report_time(conn, other)}).scalar_one()
        _history(conn, other, now, actor, role, other_action, state, state, change.reason,
                 [], details)
    audit.record(conn, actor, f"case.{step.action.value}", f"case:{case_id}",
                 {"role": role, "from": step.from_state.value, "to": change.to_state.value,
                  **({"photos": len(photos)} if photos else {})})
    outbox.write(conn, _events(conn, row, step, change, actor, now, event_details or {}))
    return change


def _look_up(conn: Connection, step: Plan, facts: CaseFacts, actor: str, role: str) -> None:
    """What the plan needs from storage, checked by the domain."""
    if step.department is not None:
        _department_exists(conn, step.department)
    if step.primary_case_id is not None:
        primary = fetch_case(conn, step.primary_case_id)
        check_primary(step, facts_of(primary) if primary is not None else None)
    if step.assignee is not None:
        check_assignment(step, facts, role, member(conn, actor), member(conn, step.assignee))


def member(conn: Connection, username: str) -> Member | None:
    """A user as a department's teams see them."""
    row = conn.execute(text(
        "SELECT u.username, u.role, u.department_code, u.team_code, u.team_leader, "
        "u.disabled, t.department_code AS team_department FROM app_user u "
        "LEFT JOIN team t ON t.code = u.team_code WHERE u.username = :u"),
        {"u": username}).mappings().first()
    if row is None:
        return None
    return Member(row["username"], row["role"], row["department_code"], row["team_code"],
                  bool(row["team_leader"]), not row["disabled"])


def _events(conn: Connection, before: Mapping[str, Any], step: Plan, change: Change,
            actor: str, now: datetime, extra: dict[str, Any]) -> list[CaseEvent]:
    after = {**before, **change.updates}
    kind = TRANSITIONS[step.action].event
    details = {"action": step.action.value, "from": step.from_state.value,
               "to": change.to_state.value, **extra}
    if change.reason:
        details["reason"] = change.reason
    details.update({k: change.details[k] for k in _EVENT_DETAILS
                    if change.details.get(k) is not None})
    event = CaseEvent(kind, int(before["id"]), now, before["public_no"], before["grid_code"],
                      before["category_key"],
                      after.get("department_code") or before["department_code"],
                      after.get("assignee"), change.to_state.value, actor, details)
    events = [event]
    if step.action is Action.CLOSE:
        merged = conn.execute(text(
            "SELECT id, public_no, grid_code, category_key FROM case_record "
            "WHERE primary_case_id = :i ORDER BY id"), {"i": before["id"]}).all()
        events += merged_closed(event, [tuple(r) for r in merged])
    return events


def _history(conn: Connection, case_id: int, now: datetime, actor: str, role: str,
             action: str, from_state: str | None, to_state: str, reason: str,
             attachments: list[Any], details: dict[str, Any]) -> int:
    return int(conn.execute(_HISTORY, {
        "case_id": case_id, "at": now, "actor": actor, "role": role, "action": action,
        "from_state": from_state, "to_state": to_state, "reason": reason,
        "attachments": json.dumps(attachments),
        "details": json.dumps(details, default=str)}).scalar_one())


def _department_exists(conn: Connection, code: str) -> None:
    if conn.execute(text("SELECT 1 FROM department WHERE code = :c"), {"c": code}).first() is None:
        raise ValidationError(f"department {code!r} does not exist", field="department",
                              value=code, msg_key="unknown_department")


def _write(conn: Connection, row: Any, to_state: str, updates: dict[str, Any],
           now: datetime) -> None:
    """``row``: the case as locked by the step (its id and report time name its partition)."""
    sets = ["state = :state", "updated_at = :now", "version = version + 1"]
    params: dict[str, Any] = {"state": to_state, "now": now, "id": row["id"],
                              "created_at": row["created_at"]}
    for col, value in updates.items():
        if col == "lonlat":  # a place given by the map (locate)
            sets.append("geom = ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)")
            params["lon"], params["lat"] = value
            continue
        if col == "resolution":  # the intake document's resolution, replaced
            sets.append("intake = intake || jsonb_build_object('resolution', "
                        "CAST(:resolution AS jsonb))")
            params["resolution"] = json.dumps(value, default=str)
            continue
        if col in _JSON_COLUMNS:
            sets.append(f"{col} = CAST(:{col} AS jsonb)")
            value = json.dumps(value)
        else:
            sets.append(f"{col} = :{col}")
        params[col] = value
    # the report time as a value: planned on the case's own partition (layers.cases.view)
    conn.execute(text(f"UPDATE case_record SET {', '.join(sets)} WHERE id = :id "
                      "AND created_at = :created_at"), params)
