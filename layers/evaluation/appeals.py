"""Appeals (申诉) in storage: filing checks against the data that the case does carry the
penalty for the party in the period, deciding; every step audited in its own transaction."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, text

from gridcore.calendar import WorkingCalendar
from gridcore.errors import Conflict, NotFound, ValidationError
from gridcore.evaluation import EvaluationModel, Period
from gridcore.evaluation.appeals import (
    AppealRules,
    check_decision,
    check_filing,
    clock_colour,
)
from gridcore.security.access import Principal
from layers.evaluation.evaluate import explain
from layers.security import audit

# penalty → the counts a case must be in (without appeals) for the penalty to apply to it
_PENALISED = {
    ("department", "overdue"): ("handled_late", "overdue_unhandled"),
    ("department", "rework"): ("reworked",),
    ("department", "send_back"): ("sent_back_wrongful",),
    ("area", "overdue"): ("close_due",),
    ("area", "rework"): ("reworked",),
    ("worker", "voided"): ("decided_reports",),
    ("worker", "late_verify"): ("verified",),
    ("worker", "late_check"): ("checked",),
    ("worker", "missed"): ("missed",),
}
# One party's explanation (``explain(...).members``): aggregate → (penalty, the aggregate of its
# cases that do not carry it). The cases of the aggregate that carry the penalty — each one a
# case the party may appeal — are those not in the second (None: every case it lists). Only
# these lists name the penalised cases themselves; a worker's voided reports have no list of
# their own (their appeals go through the API). An area's overdue cases are those due to close
# (close_due) that were not closed on time.
APPEALABLE: dict[str, dict[str, tuple[str, str | None]]] = {
    "department": {"handled_late": ("overdue", None), "overdue_unhandled": ("overdue", None),
                   "reworked": ("rework", None), "sent_back_wrongful": ("send_back", None)},
    "area": {"close_due": ("overdue", "closed_on_time"), "reworked": ("rework", None)},
    "worker": {"verified": ("late_verify", "verified_on_time"),
               "checked": ("late_check", "checked_on_time"), "missed": ("missed", None)},
}


def penalised(kind: str, members: dict[str, list[int]]) -> dict[str, tuple[str, list[int]]]:
    """aggregate → (penalty, the ids of its cases that carry it), for the aggregates of
    :data:`APPEALABLE` the explanation lists."""
    out: dict[str, tuple[str, list[int]]] = {}
    for name, (penalty, without) in APPEALABLE.get(kind, {}).items():
        if name not in members:
            continue
        spared = set(members.get(without, [])) if without else set()
        out[name] = (penalty, [i for i in members[name] if i not in spared])
    return out


_COLUMNS = ("id, case_id, party_kind, party_code, penalty, period, reason, attachments, state, "
            "filed_by, filed_role, filed_at, decide_by, decided_by, decided_at, "
            "decision_reason, version")


def appeal_dict(row: Any, now: datetime) -> dict[str, Any]:
    out = dict(row._mapping)
    for k in ("filed_at", "decide_by", "decided_at"):
        out[k] = out[k].astimezone(UTC).isoformat() if out[k] else None
    out["clock"] = clock_colour(row.decide_by, row.decided_at, now)
    return out


def _penalised(engine: Engine, model: EvaluationModel, period: Period, cal: WorkingCalendar,
               kind: str, party: str, penalty: str, case_id: int, level: str | None) -> None:
    listed = explain(engine, model, period, cal, kind, party, level).members
    wanted = _PENALISED[(kind, penalty)]
    # a worker's verify or check in time is in "verified" / "checked" but carries no penalty
    spared = {name: set(listed.get(without, [])) for name, (_, without)
              in APPEALABLE.get(kind, {}).items() if without}
    if not any(case_id in listed.get(name, []) and case_id not in spared.get(name, set())
               for name in wanted):
        raise ValidationError(
            f"case {case_id} carries no {penalty} penalty for {kind} {party} in {period}: "
            f"it is in none of {', '.join(wanted)}", msg_key="appeal_not_penalised",
            field="case_id", value=case_id, penalty=penalty, period=str(period))


def file_appeal(engine: Engine, model: EvaluationModel, cal: WorkingCalendar,
                rules: AppealRules, principal: Principal, kind: str, party: str,
                case_id: int, penalty: str, period: Period, reason: str,
                attachments: list[Any] | None = None, now: datetime | None = None,
                level: str | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    decide_by = check_filing(principal, model.kind(kind), party, penalty, reason, period, now,
                             cal, rules)
    if kind == "area":
        level = {6: "district", 9: "street", 12: "community"}.get(len(party))
        if level is None:
            raise ValidationError("an area appeal names a district (6 digits), street (9) or "
                                  "community (12)", field="party", value=party)
    _penalised(engine, model, period, cal, kind, party, penalty, case_id, level)
    with engine.begin() as conn:
        live = conn.execute(text(
            "SELECT id FROM appeal WHERE case_id = :c AND party_kind = :k AND party_code = :p "
            "AND penalty = :pen AND state IN ('filed', 'approved')"),
            {"c": case_id, "k": kind, "p": party, "pen": penalty}).scalar()
        if live is not None:
            raise Conflict(f"appeal {live} about this case, party and penalty is already "
                           "filed or approved", msg_key="appeal_exists", appeal_id=live)
        row = conn.execute(text(f"""
            INSERT INTO appeal (case_id, party_kind, party_code, penalty, period, reason,
                attachments, filed_by, filed_role, filed_at, decide_by)
            VALUES (:c, :k, :p, :pen, :period, :reason, CAST(:att AS jsonb), :by, :role,
                :now, :decide_by)
            RETURNING {_COLUMNS}"""),
            {"c": case_id, "k": kind, "p": party, "pen": penalty, "period": str(period),
             "reason": reason.strip(), "att": json.dumps(attachments or []),
             "by": principal.name, "role": str(principal.role or ""), "now": now,
             "decide_by": decide_by}).one()
        audit.record(conn, principal.name, "appeal.file", f"appeal:{row.id}",
                     {"case_id": case_id, "party": f"{kind}:{party}", "penalty": penalty,
                      "period": str(period)})
    return appeal_dict(row, now)


def decide_appeal(engine: Engine, principal: Principal, appeal_id: int, action: str,
                  reason: str, now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    with engine.begin() as conn:
        row = _fetch(conn, appeal_id, lock=True)
        state = check_decision(principal, row.state, row.filed_by, action, reason)
        row = conn.execute(text(f"""
            UPDATE appeal SET state = :s, decided_by = :by, decided_at = :now,
                decision_reason = :reason, version = version + 1
            WHERE id = :id RETURNING {_COLUMNS}"""),
            {"s": state.value, "by": principal.name, "now": now, "reason": reason.strip(),
             "id": appeal_id}).one()
        audit.record(conn, principal.name, f"appeal.{action}", f"appeal:{appeal_id}",
                     {"case_id": row.case_id, "party": f"{row.party_kind}:{row.party_code}",
                      "penalty": row.penalty, "reason": reason.strip()})
    return appeal_dict(row, now)


def _fetch(conn: Connection, appeal_id: int, lock: bool = False) -> Any:
    row = conn.execute(text(f"SELECT {_COLUMNS} FROM appeal WHERE id = :id"
                            + (" FOR UPDATE" if lock else "")), {"id": appeal_id}).first()
    if row is None:
        raise NotFound(f"appeal {appeal_id} does not exist", appeal_id=appeal_id)
    return row


def get_appeal(engine: Engine, appeal_id: int, now: datetime | None = None) -> dict[str, Any]:
    with engine.connect() as conn:
        return appeal_dict(_fetch(conn, appeal_id), now or datetime.now(UTC))


def list_appeals(engine: Engine, kind: str | None = None, party: str | None = None,
                 state: str | None = None, party_prefixes: tuple[str, ...] | None = None,
                 now: datetime | None = None, limit: int = 500) -> list[dict[str, Any]]:
    """Appeals, newest first; ``party_prefixes`` limits them to parties in those areas."""
    clauses: list[str] = []
    params: dict[str, Any] = {"limit": limit}
    for col, value in (("party_kind", kind), ("party_code", party), ("state", state)):
        if value:
            clauses.append(f"{col} = :{col}")
            params[col] = value
    if party_prefixes is not None:
        clauses.append("party_code LIKE ANY(:prefixes)")
        params["prefixes"] = [p + "%" for p in party_prefixes]
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT {_COLUMNS} FROM appeal {where} "
                                 "ORDER BY id DESC LIMIT :limit"), params).all()
    return [appeal_dict(r, now or datetime.now(UTC)) for r in rows]
