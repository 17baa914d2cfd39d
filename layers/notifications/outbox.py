"""The outbox (``case_event``): domain events written in the transaction of the change they
report. The desk migration's statement trigger NOTIFYs ``gridcore_events`` with the new ids,
delivered to every listener when (and only if) the transaction commits."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, text

from gridcore.events import CaseEvent, EventKind

_INSERT = text("""
INSERT INTO case_event (at, kind, case_id, public_no, grid_code, category_key,
    department_code, assignee, state, actor, details)
SELECT e.at, e.kind, e.case_id, e.public_no, e.grid_code, e.category_key, e.department_code,
    e.assignee, e.state, e.actor, e.details
FROM jsonb_to_recordset(CAST(:events AS jsonb)) AS e (at timestamptz, kind text, case_id bigint,
    public_no text, grid_code text, category_key text, department_code text, assignee text,
    state text, actor text, details jsonb)
RETURNING id
""")
COLUMNS = ("id, at, kind, case_id, public_no, grid_code, category_key, department_code, "
           "assignee, state, actor, details")


def write(conn: Connection, events: Sequence[CaseEvent]) -> list[int]:
    """Append ``events`` in ``conn``'s transaction; their ids."""
    if not events:
        return []
    records = [{"at": e.at, "kind": e.kind.value, "case_id": e.case_id,
                "public_no": e.public_no, "grid_code": e.grid_code,
                "category_key": e.category_key, "department_code": e.department_code,
                "assignee": e.assignee, "state": e.state, "actor": e.actor,
                "details": e.details} for e in events]
    payload = orjson.dumps(records, default=str).decode()
    return [int(r[0]) for r in conn.execute(_INSERT, {"events": payload})]


def event_of(row: Mapping[str, Any] | Any) -> CaseEvent:
    return CaseEvent(EventKind(row["kind"]), int(row["case_id"]), row["at"], row["public_no"],
                     row["grid_code"], row["category_key"], row["department_code"],
                     row["assignee"], row["state"], row["actor"] or "",
                     dict(row["details"] or {}), int(row["id"]))


def fetch(conn: Connection, ids: Iterable[int] = (), after: int | None = None,
          limit: int = 500, case_id: int | None = None) -> list[CaseEvent]:
    """Events by id, or those after ``after`` (oldest first, at most ``limit``)."""
    wanted = sorted(set(ids))
    params: dict[str, Any]
    if wanted:
        sql, params = f"SELECT {COLUMNS} FROM case_event WHERE id = ANY(:ids) ORDER BY id", \
            {"ids": wanted}
    else:
        clauses = ["id > :after"]
        params = {"after": after or 0, "limit": limit}
        if case_id is not None:
            clauses.append("case_id = :case_id")
            params["case_id"] = case_id
        sql = (f"SELECT {COLUMNS} FROM case_event WHERE {' AND '.join(clauses)} "
               "ORDER BY id LIMIT :limit")
    return [event_of(r) for r in conn.execute(text(sql), params).mappings()]


def latest_id(conn: Connection) -> int:
    return int(conn.execute(text("SELECT coalesce(max(id), 0) FROM case_event")).scalar_one())


def parse_ids(payload: str) -> tuple[list[int], tuple[int, int] | None]:
    """A NOTIFY payload: ``"12,13,15"`` or, for a big statement, the range ``"12-900"``."""
    payload = payload.strip()
    if "-" in payload:
        low, high = payload.split("-", 1)
        return [], (int(low), int(high))
    return [int(p) for p in payload.split(",") if p.strip().isdigit()], None


def fetch_range(conn: Connection, low: int, high: int) -> list[CaseEvent]:
    return [event_of(r) for r in conn.execute(text(
        f"SELECT {COLUMNS} FROM case_event WHERE id BETWEEN :a AND :b ORDER BY id"),
        {"a": low, "b": high}).mappings()]
