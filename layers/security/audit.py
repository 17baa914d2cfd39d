"""The audit log (审计日志): append-only, written inside the caller's transaction, and sealed
into a hash chain right after commit.

Every write and every restricted read calls ``record(conn, ...)`` on the connection of its own
transaction, so the audit row commits or rolls back together with the change it describes.
``record`` is a plain insert: chaining inside the writer's transaction would need one global
lock held through every commit's fsync (concurrent writers then commit one at a time:
benchmarks/README.md, "Design figures").
Instead ``seal`` — one sealer at a time, under an advisory lock — gives each committed row the
next chain position and ``hash = sha256(prev_hash + canonical content)``. A background thread
per engine seals every ``SEAL_INTERVAL_S``; ``verify`` seals first, then walks the chain and
reports the first row that was edited or deleted. Between commit and seal (a fraction of a
second) a row is protected by the append-only trigger only.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select, text

from layers.schema.security import audit_log

GENESIS = "0" * 64
# Often, so that each round is short: sealing holds the GIL for every row it seals, and a
# second's worth of intake sealed in one go slowed that process's requests (the p99 at 16
# connections: benchmarks/README.md, "Design figures").
SEAL_INTERVAL_S = 0.2
_LOCK_KEY = 0x6772_6964_6175_6474  # "gridaudt": one sealer per database at a time
_SEAL = text("""
UPDATE audit_log a SET chain_pos = v.pos, prev_hash = v.prev, hash = v.hash
FROM unnest(CAST(:seq AS bigint[]), CAST(:pos AS bigint[]), CAST(:prev AS text[]),
            CAST(:hash AS text[])) AS v (seq, pos, prev, hash)
WHERE a.seq = v.seq""")


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str, ensure_ascii=False))


def canonical(seq: int, at: datetime, actor: str, action: str, target: str,
              details: Any, remote_addr: str | None) -> str:
    """The exact text that is hashed: stable across the jsonb/timestamptz round trip."""
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
    seq = conn.execute(audit_log.insert().values(
        at=datetime.now(UTC), actor=actor, action=action, target=target,
        details=_jsonable(details or {}), remote_addr=remote_addr)
        .returning(audit_log.c.seq)).scalar_one()
    ensure_sealer(conn.engine)
    return int(seq)


def seal(engine: Engine, batch: int = 5000, wait: bool = True) -> int:
    """Chain every committed, unsealed row; returns how many were sealed.

    ``wait=False`` (the background sealers) gives way when another sealer holds the lock:
    every server process runs one, and a sealer queueing behind another would only hold a
    pooled connection to find nothing left to seal."""
    sealed = 0
    while True:
        with engine.begin() as conn:
            if wait:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
            elif not conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"),
                                  {"k": _LOCK_KEY}).scalar_one():
                return sealed
            last = conn.execute(select(audit_log.c.chain_pos, audit_log.c.hash)
                                .where(audit_log.c.chain_pos.is_not(None))
                                .order_by(audit_log.c.chain_pos.desc()).limit(1)).first()
            pos, prev = (last.chain_pos, last.hash) if last else (0, GENESIS)
            rows = conn.execute(select(audit_log).where(audit_log.c.hash.is_(None))
                                .order_by(audit_log.c.seq).limit(batch)).all()
            seals: dict[str, list[Any]] = {"seq": [], "pos": [], "prev": [], "hash": []}
            for row in rows:
                pos += 1
                digest = chain_hash(prev, canonical(row.seq, row.at, row.actor, row.action,
                                                    row.target, row.details, row.remote_addr))
                for key, value in (("seq", row.seq), ("pos", pos), ("prev", prev),
                                   ("hash", digest)):
                    seals[key].append(value)
                prev = digest
            if rows:  # one statement for the batch: a round trip per row would cost more
                conn.execute(_SEAL, seals)
        sealed += len(rows)
        if len(rows) < batch:
            return sealed


_sealers: weakref.WeakKeyDictionary[Engine, threading.Thread] = weakref.WeakKeyDictionary()
_sealers_lock = threading.Lock()


def _seal_loop(engine_ref: weakref.ReferenceType[Engine]) -> None:
    failures = 0
    while failures < 5:  # a database that is gone for good (a dropped test database) ends it
        time.sleep(SEAL_INTERVAL_S)
        engine = engine_ref()
        if engine is None:
            return
        try:
            seal(engine, wait=False)
            failures = 0
        except Exception:  # noqa: BLE001 - a restarting database: try again next round
            failures += 1
        del engine


def ensure_sealer(engine: Engine) -> None:
    """Start the engine's sealer thread unless it runs (for writers that insert audit rows in
    their own SQL instead of through ``record``)."""
    thread = _sealers.get(engine)
    if thread is not None and thread.is_alive():
        return
    with _sealers_lock:
        thread = _sealers.get(engine)
        if thread is None or not thread.is_alive():
            thread = threading.Thread(target=_seal_loop, args=(weakref.ref(engine),),
                                      name="gridcore-audit-sealer", daemon=True)
            _sealers[engine] = thread
            thread.start()


@dataclass(frozen=True)
class ChainReport:
    rows: int
    ok: bool
    first_broken_seq: int | None = None
    reason: str | None = None
    unsealed: int = 0
    first_broken_pos: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "ok": self.ok, "first_broken_seq": self.first_broken_seq,
                "first_broken_pos": self.first_broken_pos, "reason": self.reason,
                "unsealed": self.unsealed}


def verify(engine: Engine, batch: int = 5000, seal_first: bool = True) -> ChainReport:
    """Walk the chain in order; report the first row whose link or content does not hold.
    ``first_broken_seq`` names the row by its sequence number (for a deleted row: the chain
    position that is missing)."""
    if seal_first:
        seal(engine)
    prev, expected, count = GENESIS, 1, 0
    with engine.connect() as conn:
        unsealed = int(conn.execute(select(func.count()).select_from(audit_log)
                                    .where(audit_log.c.hash.is_(None))).scalar_one())
        rows = conn.execution_options(stream_results=True, yield_per=batch).execute(
            select(audit_log).where(audit_log.c.chain_pos.is_not(None))
            .order_by(audit_log.c.chain_pos))
        for row in rows:
            count += 1
            if row.chain_pos != expected:
                return ChainReport(count, False, row.seq,
                                   f"chain position {expected} is missing: a sealed row was "
                                   f"deleted before row {row.seq}", unsealed, expected)
            if row.prev_hash != prev:
                return ChainReport(count, False, row.seq,
                                   f"row {row.seq} does not link to its predecessor", unsealed,
                                   expected)
            digest = chain_hash(prev, canonical(row.seq, row.at, row.actor, row.action,
                                                row.target, row.details, row.remote_addr))
            if digest != row.hash:
                return ChainReport(count, False, row.seq,
                                   f"row {row.seq} was edited (its content no longer matches "
                                   f"its hash)", unsealed, expected)
            prev, expected = row.hash, expected + 1
    return ChainReport(count, True, unsealed=unsealed)


def recent(engine: Engine, limit: int = 100, target: str | None = None) -> list[dict[str, Any]]:
    query = select(audit_log).order_by(audit_log.c.seq.desc()).limit(limit)
    if target is not None:
        query = query.where(audit_log.c.target == target)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]
