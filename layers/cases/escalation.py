"""The system's escalation sweep (自动升级): an overdue case held by a community's or a street's
team goes up a level by itself when its class says so (``gridcore/data/escalation.csv``). Each
case is one ``escalate`` step by the actor ``system`` with the reason, like a person's; a case
that cannot go higher (the top level, a city department) is reported and left to supervision.

Each server process runs the sweep every ``GRIDCORE_ESCALATION_INTERVAL_S`` (``api.background``)
and ``gridcore cases escalate-overdue`` runs it from cron; an advisory lock lets one sweep at a
time, and each step names the case's version, so a case moved meanwhile is left, never
escalated twice. Every escalation is a step with its history row and audit row."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine, text

from gridcore.coordination import auto_escalated
from gridcore.errors import Conflict
from gridcore.settings import CaseSettings
from layers.cases.resolving import Resolves
from layers.cases.transitions import transition

log = logging.getLogger(__name__)
_SWEEP_LOCK = 74_210_024  # one escalation sweep at a time, whichever process runs it

_OVERDUE = """
SELECT c.id, c.version, c.deadline_at, c.department_code FROM case_record c
JOIN department d ON d.code = c.department_code
WHERE c.state IN ('dispatched', 'accepted', 'rework') AND c.parked_since IS NULL
  AND c.deadline_at < :now AND c.category_key = ANY(:categories)
  AND d.level IN ('community', 'street')
ORDER BY c.deadline_at, c.id LIMIT :limit
"""


@dataclass
class Sweep:
    escalated: list[int] = field(default_factory=list)
    left: dict[int, str] = field(default_factory=dict)  # case id → why it stayed
    skipped: bool = False  # another process was sweeping


def escalate_overdue(engine: Engine, settings: CaseSettings, resolver: Resolves,
                     now: datetime | None = None, limit: int = 1000) -> Sweep:
    """Escalate every overdue case whose class escalates by itself (oldest deadline first)."""
    now = now or datetime.now(UTC)
    categories = sorted(auto_escalated())
    out = Sweep()
    if not categories:
        return out
    with engine.connect() as lock:
        if not lock.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _SWEEP_LOCK}).scalar():
            out.skipped = True
            return out
        lock.commit()
        try:
            _escalate(engine, settings, resolver, now, categories, limit, out)
        finally:
            lock.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _SWEEP_LOCK})
            lock.commit()
    if out.escalated:
        log.info("escalation sweep: %d case(s) escalated: %s", len(out.escalated),
                 ", ".join(map(str, out.escalated)))
    return out


def _escalate(engine: Engine, settings: CaseSettings, resolver: Resolves, now: datetime,
              categories: list[str], limit: int, out: Sweep) -> None:
    with engine.connect() as conn:
        rows = conn.execute(text(_OVERDUE), {"now": now, "categories": categories,
                                             "limit": limit}).all()
    for row in rows:
        tz = settings.working_calendar.tz
        reason = (f"overdue since {row.deadline_at.astimezone(tz):%Y-%m-%d %H:%M %z} at "
                  f"{row.department_code}: escalated by the system (自动升级)")
        try:
            transition(engine, settings, resolver, row.id, "escalate", "system", "system",
                       {"reason": reason, "auto": True}, now=now,
                       expected_version=row.version)
        except Conflict as exc:  # moved on meanwhile, or nowhere higher to go
            out.left[row.id] = str(exc)
            continue
        out.escalated.append(row.id)
