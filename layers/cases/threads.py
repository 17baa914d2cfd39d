"""What the dispatcher and the parties read and write beside the steps: the 待定位 queue (reports
waiting for a place) and a case's consultation thread (会商), visible to every party."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, text

from gridcore.errors import NotFound, ValidationError
from gridcore.settings import CaseSettings
from layers.cases.details import class_names
from layers.cases.view import CASE_COLUMNS, case_dict
from layers.db.partitions import report_time
from layers.schema.cases import OPEN_SQL

MAX_BODY = 4000
MAX_ATTACHMENTS = 10


def unlocated(engine: Engine, settings: CaseSettings, limit: int = 100,
              now: datetime | None = None) -> tuple[list[dict[str, Any]], int]:
    """Open cases without a place, oldest first, each with its address, its class's names and
    the candidates the geocoder offered at intake (so the dispatcher starts from them on the
    map); and how many wait in all (the page holds at most ``limit``)."""
    now = now or datetime.now(UTC)
    where = f"c.geom IS NULL AND {OPEN_SQL}"
    with engine.connect() as conn:
        rows: list[Any] = list(conn.execute(text(
            f"SELECT {CASE_COLUMNS} FROM case_record c "
            f"WHERE {where} ORDER BY c.created_at, c.id LIMIT :n"), {"n": limit}).mappings())
        total = len(rows) if len(rows) < limit else int(conn.execute(text(
            f"SELECT count(*) FROM case_record c WHERE {where}")).scalar_one())
    cases = []
    for row in rows:
        case = case_dict(row, settings.working_calendar, now)
        case["context"] = {"category_names": class_names(row["category_key"])}
        cases.append(case)
    return cases, total


def _exists(conn: Any, case_id: int) -> None:
    if report_time(conn, case_id) is None:  # the registry holds every stored case
        raise NotFound(f"case {case_id} does not exist", case_id=case_id)


def messages(engine: Engine, case_id: int, after: int = 0) -> list[dict[str, Any]]:
    """The case's consultation thread, in order (``after``: only messages after that id)."""
    with engine.connect() as conn:
        _exists(conn, case_id)
        rows = conn.execute(text(
            "SELECT id, at, author, role, department_code AS department, body, attachments "
            "FROM case_message WHERE case_id = :c AND id > :a ORDER BY id"),
            {"c": case_id, "a": after}).mappings()
        return [{**r, "at": r["at"].isoformat()} for r in rows]


def post_message(engine: Engine, case_id: int, author: str, role: str,
                 department: str | None, body: str, attachments: list[dict[str, Any]],
                 now: datetime | None = None) -> dict[str, Any]:
    """Add a message to the thread (a party's word in the consultation, 会商)."""
    body = body.strip()
    if not body:
        raise ValidationError("a message needs a body", field="body")
    if len(body) > MAX_BODY:
        raise ValidationError(f"a message is at most {MAX_BODY} characters", field="body")
    if len(attachments) > MAX_ATTACHMENTS:
        raise ValidationError(f"at most {MAX_ATTACHMENTS} attachments", field="attachments")
    with engine.begin() as conn:
        _exists(conn, case_id)
        row = conn.execute(text(
            "INSERT INTO case_message (case_id, at, author, role, department_code, body, "
            "attachments) VALUES (:c, :at, :au, :r, :d, :b, CAST(:a AS jsonb)) "
            "RETURNING id, at, author, role, department_code AS department, body, attachments"),
            {"c": case_id, "at": now or datetime.now(UTC), "au": author, "r": role,
             "d": department, "b": body, "a": json.dumps(attachments)}).mappings().one()
    return {**row, "at": row["at"].isoformat()}


def with_links(case_id: int, message: dict[str, Any]) -> dict[str, Any]:
    """A message as the API answers it: its photos by URL, never by their path on disk."""
    out, n = [], 0
    for a in message.get("attachments") or []:
        if isinstance(a, dict) and "sha256" in a and "path" in a:
            n += 1
            url = f"/cases/{case_id}/messages/{message['id']}/photos/{n}"
            out.append({"name": a.get("name"), "content_type": a.get("content_type"),
                        "size_bytes": a.get("size_bytes"), "n": n, "url": url})
        else:
            out.append(a)
    return {**message, "attachments": out}


def message_photo(engine: Engine, case_id: int, message_id: int, n: int) -> dict[str, Any]:
    """The n-th photo (1-based) attached to a message of the case's thread, or NotFound."""
    with engine.connect() as conn:
        attachments = conn.execute(text(
            "SELECT attachments FROM case_message WHERE id = :m AND case_id = :c"),
            {"m": message_id, "c": case_id}).scalar()
    photos = [a for a in attachments or [] if isinstance(a, dict) and "sha256" in a
              and "path" in a]
    if not 1 <= n <= len(photos):
        raise NotFound(f"message {message_id} of case {case_id} has no photo {n}",
                       case_id=case_id, message_id=message_id, n=n)
    return dict(photos[n - 1])
