"""The write of case intake: the case row, its first history row, its photos, its audit row and
its domain event (the outbox, ``layers.notifications.outbox``), in ONE statement run as its own
transaction, for one report or for a group of concurrent ones.

Each report becomes one JSON record of :data:`FIELDS`; the statement reads a JSON array of them
(one parameter: psycopg2 interpolating 40 separate parameters per report was measurably slower;
benchmarks/README.md, "Design figures").
Reports without photos — nearly all — are written together, a group filed at the same moment
sharing one statement and one commit. A report with photos runs alone, on the statement that
also inserts ``case_photo`` rows; the others' statement has no photo insert at all, which
PostgreSQL would otherwise set up (open the table and its indexes) on every call to write
nothing.

A group that fails (a grid deleted under one report, a deadlock between two processes' racing
resends) is written again report by report, so each gets its own error or its own row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from gridcore.events import EventKind
from layers.db.prepared import Prepared
from layers.schema.cases import case_record
from layers.schema.notifications import CHANNEL

# One report's record: name → PostgreSQL type (the statement's jsonb_to_recordset columns)
FIELDS = {
    "id": "bigint", "key": "text", "hash": "text", "category": "text", "description": "text",
    "lon": "float8", "lat": "float8", "crs": "text", "x": "float8", "y": "float8",
    "grid_id": "bigint", "grid_code": "text", "community": "text", "street": "text",
    "district": "text", "h3": "text", "part": "text", "source": "text", "reporter": "text",
    "filed_by": "text",
    "proposed": "text", "rule": "text", "now": "timestamptz", "lim": "text",
    "warn": "timestamptz", "deadline": "timestamptz", "intake": "jsonb", "actor": "text",
    "role": "text", "attachments": "jsonb", "details": "jsonb", "audit": "jsonb",
    "photos": "jsonb", "caller": "text", "location_source": "text", "address": "text",
    "category_source": "text",
}

# case_record column ← the record's field (the id is the one intake's read reserved:
# ``layers.cases.survey``). The stored row handed back takes these values from the record itself
# (they are what the statement stored) and reads back only what the database makes: the public
# number, and every column left to its default: decoding all 45 returned columns (five
# timestamps) cost the client and the server more than the rest of the answer
# (benchmarks/README.md, "Design figures").
FROM_RECORD = {
    "id": "id", "idempotency_key": "key", "payload_hash": "hash", "category_key": "category",
    "description": "description", "input_crs": "crs", "input_x": "x", "input_y": "y",
    "grid_id": "grid_id", "grid_code": "grid_code", "community_code": "community",
    "street_code": "street", "district_code": "district", "h3": "h3", "part_code": "part",
    "source": "source", "reporter": "reporter", "filed_by": "filed_by",
    "proposed_department": "proposed",
    "proposal_rule": "rule", "stage_started_at": "now", "stage_limit": "lim",
    "warn_at": "warn", "deadline_at": "deadline", "created_at": "now", "updated_at": "now",
    "caller": "caller",
    "location_source": "location_source", "address": "address",
    "category_source": "category_source",
}
CONSTANTS = {"state": "reported", "stage": "dispatch"}
# Columns only an imported case fills (layers.exchange.imports.cases): NULL here, not read back
IMPORT_ONLY = ("source_system", "source_id", "origin")

_SQL = """
WITH r AS MATERIALIZED (
    -- the events' NOTIFY is this writer's, after the commit (migration 0024, _notify below)
    SELECT r.* FROM (SELECT set_config('gridcore.notify_after_commit', 'on', true)) AS later,
         jsonb_to_recordset(CAST(:reports AS jsonb)) AS r (%(fields)s)
), k AS (
-- the case registry holds the keys unique across the time partitions (migration 0019)
INSERT INTO case_key (id, created_at, idempotency_key, district_code)
SELECT id, now, key, district FROM r
ORDER BY key  -- two processes' batches take their keys in one order: no deadlock between them
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING idempotency_key
), c AS (
INSERT INTO case_record (%(insert_columns)s, geom, intake)
SELECT %(insert_values)s, ST_SetSRID(ST_MakePoint(lon, lat), 4326), intake
FROM r JOIN k ON k.idempotency_key = r.key
ORDER BY key
RETURNING %(columns)s
), h AS (
INSERT INTO case_history (case_id, at, actor, role, action, from_state, to_state, attachments,
    details)
SELECT r.id, r.now, r.actor, r.role, 'report', NULL, 'reported', r.attachments, r.details
FROM c JOIN r ON r.key = c.idempotency_key
), a AS (
INSERT INTO audit_log (at, actor, action, target, details)
SELECT r.now, r.actor, 'case.report', 'case:' || r.id, r.audit
FROM c JOIN r ON r.key = c.idempotency_key
), e AS (
INSERT INTO case_event (at, kind, case_id, public_no, grid_code, category_key, actor, state,
    details)
SELECT r.now, '%(new)s', r.id, c.public_no, r.grid_code, r.category, r.actor, 'reported',
    jsonb_build_object('source', r.source, 'proposed', r.proposed)
FROM c JOIN r ON r.key = c.idempotency_key
RETURNING id
)%(photos)s
SELECT c.*, (SELECT array_agg(id ORDER BY id) FROM e) AS event_ids FROM c
"""
_PHOTOS_CTE = """, p AS (
INSERT INTO case_photo (case_id, path, sha256, content_type, size_bytes)
SELECT r.id, f.path, f.sha256, f.content_type, f.size_bytes
FROM c JOIN r ON r.key = c.idempotency_key,
     jsonb_to_recordset(r.photos) AS f (path text, sha256 text, content_type text,
                                        size_bytes int)
)"""
# What the database makes (the intake document and the geometry are the caller's already)
_MADE = [column.name for column in case_record.columns
         if column.name not in (*FROM_RECORD, *CONSTANTS, *IMPORT_ONLY, "intake", "geom")]
_PARTS = {
    "fields": ", ".join(f"{name} {kind}" for name, kind in FIELDS.items()),
    "insert_columns": ", ".join([*FROM_RECORD, *CONSTANTS]),
    "insert_values": ", ".join([*FROM_RECORD.values(), *(f"'{v}'" for v in CONSTANTS.values())]),
    "columns": ", ".join(["idempotency_key", *_MADE]),
    "new": EventKind.NEW.value,
}
_WITH_PHOTOS = Prepared("gridcore_case_write_photos",
                        _SQL % {**_PARTS, "photos": _PHOTOS_CTE})
_BARE = Prepared("gridcore_case_write", _SQL % {**_PARTS, "photos": ""})


# The NOTIFY of the events a write stored (the listeners of every server process: the live
# pages, the webhooks), sent once the write has committed. In the write's own transaction it
# took PostgreSQL's one notify lock through the commit's WAL flush, so that every two writes
# committed one after the other (migration 0024). In autocommit (intake) this statement is a
# transaction that writes nothing: its commit waits for no flush (synchronous_commit off is
# its own). Inside a caller's transaction it is queued for that commit, as the trigger's was,
# and the trigger notifies the transaction's later writers again.
_NOTIFY = Prepared("gridcore_case_notify", f"""
SELECT set_config('synchronous_commit', 'off', true), pg_notify('{CHANNEL}', :ids)""")
_NOTIFY_IN_TRANSACTION = Prepared("gridcore_case_notify_tx", f"""
SELECT set_config('gridcore.notify_after_commit', 'off', true),
       CASE WHEN :ids <> '' THEN pg_notify('{CHANNEL}', :ids) END""")
_PAYLOAD_MAX = 7900  # NOTIFY payloads stop at 8000 bytes: a longer list goes as its range


def _notify(conn: Connection, event_ids: list[int]) -> None:
    ids = ",".join(str(i) for i in sorted(event_ids))
    if len(ids) > _PAYLOAD_MAX:
        ids = f"{min(event_ids)}-{max(event_ids)}"
    if not getattr(conn.connection.dbapi_connection, "autocommit", False):
        _NOTIFY_IN_TRANSACTION.rows(conn, {"ids": ids})
    elif ids:
        _NOTIFY.rows(conn, {"ids": ids})


def _run(statement: Prepared, conn: Connection, reports: Sequence[dict[str, Any]]
         ) -> list[dict[str, Any] | None]:
    """Each report's stored row, or None where its key was taken (a racing resend won)."""
    rows = statement.rows(conn, {"reports": orjson.dumps(reports, default=str).decode()})
    _notify(conn, [i for i in (rows[0].pop("event_ids") if rows else None) or []])
    for row in rows[1:]:
        row.pop("event_ids")
    made = {row["idempotency_key"]: row for row in rows}
    return [None if r["key"] not in made else _stored(r, made[r["key"]]) for r in reports]


def _stored(record: dict[str, Any], made: dict[str, Any]) -> dict[str, Any]:
    row = {column: record.get(field) for column, field in FROM_RECORD.items()}
    row.update(CONSTANTS, lon=record["lon"], lat=record["lat"])
    row.update(dict.fromkeys(IMPORT_ONLY))
    row.update(made)
    return row


def write_cases(conn: Connection, reports: Sequence[dict[str, Any]]
                ) -> list[dict[str, Any] | None | DBAPIError]:
    """Store reports' records (:data:`FIELDS`, with Python values: ``now``, ``warn`` and
    ``deadline`` are datetimes): for each, its stored row (without ``intake`` and ``geom``,
    with ``lon`` and ``lat``), None when a racing resend's row holds its key, or
    the database's error when it alone could not be stored."""
    outcomes: list[dict[str, Any] | None | DBAPIError] = [None] * len(reports)
    bare = [i for i, r in enumerate(reports) if not r.get("photos")]
    for i, report in enumerate(reports):
        if report.get("photos"):
            outcomes[i] = _one(_WITH_PHOTOS, conn, report)
    if len(bare) == 1:
        outcomes[bare[0]] = _one(_BARE, conn, reports[bare[0]])
    elif bare:
        try:
            for i, row in zip(bare, _run(_BARE, conn, [reports[i] for i in bare]), strict=True):
                outcomes[i] = row
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise
            for i in bare:  # one by one: each report gets its own error or its own row
                outcomes[i] = _one(_BARE, conn, reports[i])
    return outcomes


def _one(statement: Prepared, conn: Connection, report: dict[str, Any]
         ) -> dict[str, Any] | None | DBAPIError:
    try:
        return _run(statement, conn, [report])[0]
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise
        return exc
