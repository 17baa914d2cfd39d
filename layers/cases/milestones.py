"""The milestones of cases (案卷节点时间) an analyst needs to recompute the rates: reported,
verified, registered, (last) dispatched, handled (first feedback), checked (first on-site
check), closed, and the current stage's deadline — from the case history."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from sqlalchemy import Engine, text

from layers.schema.cases import MILESTONE_COLUMNS, MILESTONES_LATERAL

__all__ = ["MILESTONE_COLUMNS", "milestones"]

def milestones(engine: Engine, ids: list[int]) -> dict[int, dict[str, Any]]:
    """Case id → its milestones (ISO instants in UTC, None when not reached)."""
    if not ids:
        return {}
    sql = (f"SELECT c.id, c.created_at AS reported_at, m.verified_at, m.registered_at, "
           f"m.dispatched_at, m.handled_at, m.checked_at, c.closed_at, c.deadline_at "
           f"FROM case_record c {MILESTONES_LATERAL} WHERE c.id = ANY(:ids)")
    with engine.connect() as conn:
        rows = conn.execute(text(sql), {"ids": list(ids)}).mappings().all()
    return {r["id"]: {k: r[k].astimezone(UTC).isoformat() if r[k] else None
                      for k in MILESTONE_COLUMNS} for r in rows}
