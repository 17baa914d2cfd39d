"""City-part state (部件状态) driven by cases: the lifecycle (``gridcore.lifecycle.
part_state_after``) decides the part's new state, this module stores it with a history row
naming the case and step that caused it (``part_state_history``), in the step's transaction."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Connection, text

from gridcore.lifecycle import PART_HOLDING_STATES, CaseFacts

_HOLDING_SQL = "(" + ", ".join(f"'{s.value}'" for s in sorted(PART_HOLDING_STATES)) + ")"
_HOLDERS = text(f"""
SELECT category_key FROM case_record
WHERE part_code = :part AND id <> :case_id AND state IN {_HOLDING_SQL}
ORDER BY id DESC""")
_SET = text("""
WITH old AS (SELECT code, state FROM city_part WHERE code = :part FOR UPDATE),
upd AS (
    UPDATE city_part p SET state = :state, changed_on = :on
    FROM old WHERE p.code = old.code AND old.state <> :state
    RETURNING p.code, old.state AS from_state)
INSERT INTO part_state_history (part_code, at, from_state, to_state, case_id, action, actor)
SELECT code, :at, from_state, :state, :case_id, :action, :actor FROM upd""")


def part_holders(conn: Connection, facts: CaseFacts) -> tuple[str, ...]:
    """The categories of the other registered, open cases on the case's part, newest first."""
    rows = conn.execute(_HOLDERS, {"part": facts.part_code, "case_id": facts.case_id})
    return tuple(r[0] for r in rows)


def set_part_state(conn: Connection, part_code: str, state: str, case_id: int, action: str,
                   actor: str, at: datetime, on: date) -> None:
    """Put the part in ``state`` (``on``: the city's date, the part's ``changed_on``) and
    record the change; nothing when it already is, or when the part no longer exists."""
    conn.execute(_SET, {"part": part_code, "state": state, "case_id": case_id,
                        "action": action, "actor": actor, "at": at, "on": on})
