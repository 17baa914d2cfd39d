"""The supervision sweep (预警 · 自动督办) in storage: find the open cases whose clock reached its
warning mark or its deadline and has not been signalled for that clock, and let the domain
(:func:`gridcore.supervision.signals`) decide what is due — a YELLOW or RED event, and an
automatic supervise step taken by the system (history, audit row and SUPERVISED event like a
manager's).

Exactly once, with any number of server processes sweeping: each case is locked (``FOR UPDATE
SKIP LOCKED``: a case another sweep holds is left to it) and judged again under the lock, and
the marks that say "signalled for this deadline" are written in the same transaction as the
events and the step. ``now`` is injectable: tests and ``gridcore supervise --now`` move the
clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, text

from gridcore.events import CaseEvent, EventKind
from gridcore.lifecycle import Action, State
from gridcore.security.access import Role
from gridcore.settings import CaseSettings
from gridcore.supervision import (
    AUTO_SUPERVISE_REASON,
    AutoSupervision,
    ClockState,
    marks,
    signals,
)
from layers.cases.resolving import Resolves
from layers.cases.transitions import take_step
from layers.notifications import outbox
from layers.schema.cases import OPEN_SQL

SYSTEM = "system"
# Cases not yet signalled for their current clock whose warning mark has passed (the clock
# of a parked case stands at the moment it was parked).
_DUE = f"""
SELECT id, created_at FROM case_record
WHERE {OPEN_SQL} AND deadline_at IS NOT NULL
  AND warn_at <= least(:now, coalesce(parked_since, :now))
  AND (warned_for IS DISTINCT FROM deadline_at OR overdue_for IS DISTINCT FROM deadline_at)
ORDER BY warn_at LIMIT :batch
"""
_LOCK = """
SELECT id, public_no, state, category_key, grid_code, department_code, assignee, warn_at,
    deadline_at, parked_since, supervised, warned_for, overdue_for
FROM case_record WHERE id = :id AND created_at = :at FOR UPDATE SKIP LOCKED
"""
# One sweeper at a time across processes (the others find the work done); the locks and marks
# alone would already keep it exactly-once.
_SWEEP_LOCK = 74_210_001


@dataclass
class SweepResult:
    warned: list[int] = field(default_factory=list)
    overdue: list[int] = field(default_factory=list)
    supervised: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[int]]:
        return {"warned": self.warned, "overdue": self.overdue, "supervised": self.supervised}


def sweep(engine: Engine, settings: CaseSettings, resolver: Resolves,
          policy: AutoSupervision, now: datetime | None = None, batch: int = 500
          ) -> SweepResult:
    """Signal every clock due at ``now``; returns the case ids warned, overdue, supervised."""
    now = now or datetime.now(UTC)
    result = SweepResult()
    with engine.connect() as conn:
        if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"),
                            {"k": _SWEEP_LOCK}).scalar():
            return result
        try:
            while True:
                ids = [(r.id, r.created_at)
                       for r in conn.execute(text(_DUE), {"now": now, "batch": batch})]
                conn.commit()
                done = 0
                for case_id, at in ids:
                    with engine.begin() as tx:
                        done += _one(tx, settings, resolver, policy, case_id, at, now, result)
                if len(ids) < batch or not done:
                    return result
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _SWEEP_LOCK})
            conn.commit()


def _one(conn: Connection, settings: CaseSettings, resolver: Resolves,
         policy: AutoSupervision, case_id: int, at: datetime, now: datetime,
         result: SweepResult) -> int:
    # ``at``, the report time as a value: planned on the case's own year (fetch_case)
    row = conn.execute(text(_LOCK), {"id": case_id, "at": at}).mappings().first()
    if row is None:  # another sweep holds it
        return 0
    clock = ClockState(State(row["state"]), row["category_key"], row["warn_at"],
                       row["deadline_at"], row["parked_since"], row["supervised"],
                       row["warned_for"], row["overdue_for"])
    due = signals(clock, now, policy)
    if not due:
        return 0
    written = marks(clock, due)
    conn.execute(text(f"UPDATE case_record SET {', '.join(f'{k} = :{k}' for k in written)} "
                      "WHERE id = :id AND created_at = :at"), {**written, "id": case_id, "at": at})
    tz = settings.working_calendar.tz
    details: dict[str, Any] = {"deadline": row["deadline_at"].astimezone(tz).isoformat(),
                               "warn_at": row["warn_at"].astimezone(tz).isoformat()
                               if row["warn_at"] else None}
    kind = EventKind.RED if due.overdue else EventKind.YELLOW
    outbox.write(conn, [CaseEvent(kind, case_id, now, row["public_no"], row["grid_code"],
                                  row["category_key"], row["department_code"],
                                  row["assignee"], row["state"], SYSTEM,
                                  {**details, "colour": kind.value})])
    (result.overdue if due.overdue else result.warned).append(case_id)
    if due.supervise:
        take_step(conn, settings, resolver, case_id, Action.SUPERVISE.value, SYSTEM,
                  Role.SYSTEM.value, {"reason": AUTO_SUPERVISE_REASON}, now,
                  event_details={"automatic": True})
        result.supervised.append(case_id)
    return 1
