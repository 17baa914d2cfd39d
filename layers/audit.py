"""The audit log (审计日志): append-only and hash-chained, written inside the caller's transaction.

Every write and every restricted read calls ``record(conn, ...)`` on the connection of its own
transaction, so the audit row commits or rolls back together with the change it describes.
Each row's hash is ``sha256(prev_hash + canonical row content)``; editing or deleting any row
breaks the chain at that row, which ``verify`` reports. Appends are serialised by a
transaction-scoped advisory lock so two writers never chain to the same predecessor.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, select, text

from layers.security_tables import audit_log

GENESIS = "0" * 64
_LOCK_KEY = 0x6772_6964_6175_6474  # "gridaudt": one chain per database


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str, ensure_ascii=False))


def canonical(seq: int, at: datetime, actor: str, action: str, target: str,
              details: Any, remote_addr: str | None) -> str:
    """The exact bytes that are hashed: stable across the jsonb/timestamptz round trip."""
    return json.dumps({
        "seq": seq, "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": actor, "action": action, "target": target, "details": details,
        "remote_addr": remote_addr,
    }, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def chain_hash(prev_hash: str, content: str) -> str:
    return hashlib.sha256((prev_hash + content).encode()).hexdigest()


def record(conn: Connection, actor: str, action: str, target: str = "",
           details: dict[str, Any] | None = None, remote_addr: str | None = None) -> int:
    """Append one audit row in ``conn``'s transaction; returns its sequence number."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    last = conn.execute(select(audit_log.c.seq, audit_log.c.hash)
                        .order_by(audit_log.c.seq.desc()).limit(1)).first()
    seq, prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
    at = datetime.now(UTC)
    body = _jsonable(details or {})
    digest = chain_hash(prev, canonical(seq, at, actor, action, target, body, remote_addr))
    conn.execute(audit_log.insert().values(
        seq=seq, at=at, actor=actor, action=action, target=target, details=body,
        remote_addr=remote_addr, prev_hash=prev, hash=digest))
    return seq


@dataclass(frozen=True)
class ChainReport:
    rows: int
    ok: bool
    first_broken_seq: int | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "ok": self.ok, "first_broken_seq": self.first_broken_seq,
                "reason": self.reason}


def verify(engine: Engine, batch: int = 5000) -> ChainReport:
    """Walk the chain in order; report the first row whose link or content does not hold."""
    prev, expected_seq, count = GENESIS, 1, 0
    with engine.connect() as conn:
        rows = conn.execution_options(stream_results=True, yield_per=batch).execute(
            select(audit_log).order_by(audit_log.c.seq))
        for row in rows:
            count += 1
            if row.seq != expected_seq:
                return ChainReport(count, False, expected_seq,
                                   f"row {expected_seq} is missing (next row is {row.seq})")
            if row.prev_hash != prev:
                return ChainReport(count, False, row.seq,
                                   f"row {row.seq} does not link to row {row.seq - 1}")
            digest = chain_hash(prev, canonical(row.seq, row.at, row.actor, row.action,
                                                row.target, row.details, row.remote_addr))
            if digest != row.hash:
                return ChainReport(count, False, row.seq,
                                   f"row {row.seq} was edited (its content no longer matches "
                                   f"its hash)")
            prev, expected_seq = row.hash, row.seq + 1
    return ChainReport(count, True)


def recent(engine: Engine, limit: int = 100, target: str | None = None) -> list[dict[str, Any]]:
    query = select(audit_log).order_by(audit_log.c.seq.desc()).limit(limit)
    if target is not None:
        query = query.where(audit_log.c.target == target)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]
