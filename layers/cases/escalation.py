"""The system's escalation sweep (自动升级): an overdue case held by a community's or a street's
team goes up a level by itself when its class says so (``gridcore/data/escalation.csv``). Each
case is one ``escalate`` step by the actor ``system`` with the reason, like a person's; a case
that cannot go higher (the top level, a city department) is reported and left to supervision."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine, text

from gridcore.coordination import auto_escalated
from gridcore.errors import Conflict
from gridcore.settings import CaseSettings
from layers.cases.resolving import Resolves
from layers.cases.transitions import transition

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


def escalate_overdue(engine: Engine, settings: CaseSettings, resolver: Resolves,
                     now: datetime | None = None, limit: int = 1000) -> Sweep:
    """Escalate every overdue case whose class escalates by itself (oldest deadline first)."""
    now = now or datetime.now(UTC)
    categories = sorted(auto_escalated())
    out = Sweep()
    if not categories:
        return out
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
    return out
