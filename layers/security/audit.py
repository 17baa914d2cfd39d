"""The audit log (审计日志): append-only, written inside the caller's transaction, and sealed
into a hash chain right after commit.

Every write and every restricted read calls ``record(conn, ...)`` on the connection of its own
transaction, so the audit row commits or rolls back together with the change it describes.
``record`` is a plain insert: chaining inside the writer's transaction would need one global
lock held through every commit's fsync (concurrent writers then commit one at a time:
benchmarks/README.md, "Design figures").
Instead ``seal`` — one sealer at a time, under an advisory lock — gives each committed row the
next chain position and ``hash = sha256(prev_hash + canonical content)``, through the database
function ``gridcore_audit_seal`` (the application role has no UPDATE on ``audit_log``:
``layers/db/roles.py``). A background thread per engine seals every ``SEAL_INTERVAL_S`` and
appends each new head to the anchor file (``layers.security.anchor``) when one is configured.
``verify`` never seals: it walks what is there, reports the first row that was edited or
deleted, and checks the chain against the newest anchor, so that a truncated log, a cut tail
or a chain rewritten and hashed again from some row on are found too. Between commit and seal
(a fraction of a second) a row is protected by the append-only triggers only.
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
from layers.security.anchor import Anchor, AnchorFile, Head, database_identity

GENESIS = "0" * 64
# Often, so that each round is short: sealing holds the GIL for every row it seals, and a
# second's worth of intake sealed in one go slowed that process's requests (the p99 at 16
# connections: benchmarks/README.md, "Design figures").
SEAL_INTERVAL_S = 0.2
_LOCK_KEY = 0x6772_6964_6175_6474  # "gridaudt": one sealer per database at a time
_SEAL = text("SELECT gridcore_audit_seal(CAST(:seq AS bigint[]), CAST(:pos AS bigint[]), "
             "CAST(:prev AS text[]), CAST(:hash AS text[]))")


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
    """Chain every committed, unsealed row; returns how many were sealed (and anchors the new
    head when the engine has an anchor file: :func:`configure_anchor`).

    ``wait=False`` (the background sealers) gives way when another sealer holds the lock:
    every server process runs one, and a sealer queueing behind another would only hold a
    pooled connection to find nothing left to seal."""
    # Sealing and anchoring the head it made are one step within the process: a caller that
    # seals (and then reads the anchor) waits for a background sealer that got there first to
    # have anchored, instead of finding nothing to seal and no anchor yet.
    lock = _seal_lock(engine)
    if not lock.acquire(blocking=wait):
        return 0
    try:
        sealed, head = _seal(engine, batch, wait)
        anchor = _anchors.get(engine)
        if anchor is not None and head is None and wait:
            # Another process (or another engine of this one) sealed first, and it may have no
            # anchor file: an explicit seal still leaves the chain's head anchored here.
            head = _unanchored_head(engine, anchor)
        if head is not None and anchor is not None:
            anchor.append(Head(database_of(engine), *head))
        return sealed
    finally:
        lock.release()


def _unanchored_head(engine: Engine, anchor: AnchorFile) -> tuple[int, str] | None:
    """The chain's head when ``anchor`` has not recorded it yet, else None."""
    with engine.connect() as conn:
        last = conn.execute(select(audit_log.c.chain_pos, audit_log.c.hash)
                            .where(audit_log.c.chain_pos.is_not(None))
                            .order_by(audit_log.c.chain_pos.desc()).limit(1)).first()
    if last is None:
        return None
    latest, _ = anchor.latest(database_of(engine))
    return None if latest is not None and latest.pos >= last.chain_pos else (
        int(last.chain_pos), str(last.hash))


def _seal_lock(engine: Engine) -> threading.Lock:
    with _sealers_lock:
        lock = _seal_locks.get(engine)
        if lock is None:
            lock = _seal_locks[engine] = threading.Lock()
        return lock


def _seal(engine: Engine, batch: int, wait: bool) -> tuple[int, tuple[int, str] | None]:
    sealed, head = 0, None
    while True:
        with engine.begin() as conn:
            if wait:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
            elif not conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"),
                                  {"k": _LOCK_KEY}).scalar_one():
                return sealed, head
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
                head = (pos, prev)
        sealed += len(rows)
        if len(rows) < batch:
            return sealed, head


_sealers: weakref.WeakKeyDictionary[Engine, threading.Thread] = weakref.WeakKeyDictionary()
_anchors: weakref.WeakKeyDictionary[Engine, AnchorFile] = weakref.WeakKeyDictionary()
_seal_locks: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
_databases: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()


def configure_anchor(engine: Engine, anchor: AnchorFile | None) -> None:
    """Anchor every head the engine's sealing makes in ``anchor`` (None: stop)."""
    if anchor is None:
        _anchors.pop(engine, None)
    else:
        _anchors[engine] = anchor


def database_of(engine: Engine) -> str:
    """The identity anchors name the engine's database by (``name:oid``)."""
    found = _databases.get(engine)
    if found is None:
        with engine.connect() as conn:
            found = _databases[engine] = database_identity(conn)
    return found


def head(engine: Engine) -> Head | None:
    """The sealed chain's last position and hash (None for an empty chain)."""
    with engine.connect() as conn:
        last = conn.execute(select(audit_log.c.chain_pos, audit_log.c.hash)
                            .where(audit_log.c.chain_pos.is_not(None))
                            .order_by(audit_log.c.chain_pos.desc()).limit(1)).first()
    return None if last is None else Head(database_of(engine), int(last.chain_pos), last.hash)
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
    anchored_pos: int | None = None  # the anchor checked against (None: no anchor)
    anchored_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "ok": self.ok, "first_broken_seq": self.first_broken_seq,
                "first_broken_pos": self.first_broken_pos, "reason": self.reason,
                "unsealed": self.unsealed, "anchored_pos": self.anchored_pos,
                "anchored_at": self.anchored_at}


def verify(engine: Engine, anchor: Anchor | None = None, batch: int = 5000) -> ChainReport:
    """Walk the chain in order as it is (nothing is sealed here); report the first row whose
    link or content does not hold, then check the chain against ``anchor`` (the newest
    anchored head): its position must still be there, with its hash. ``first_broken_seq``
    names the row by its sequence number (for a deleted row: the chain position that is
    missing)."""
    prev, expected, count = GENESIS, 1, 0
    at_anchor: str | None = None
    unsealed = 0

    def report(ok: bool, seq: int | None = None, reason: str | None = None,
               pos: int | None = None) -> ChainReport:
        return ChainReport(count, ok, seq, reason, unsealed, pos,
                           anchor.pos if anchor else None, anchor.at if anchor else None)

    with engine.connect() as conn:
        unsealed = int(conn.execute(select(func.count()).select_from(audit_log)
                                    .where(audit_log.c.hash.is_(None))).scalar_one())
        rows = conn.execution_options(stream_results=True, yield_per=batch).execute(
            select(audit_log).where(audit_log.c.chain_pos.is_not(None))
            .order_by(audit_log.c.chain_pos))
        for row in rows:
            count += 1
            if row.chain_pos != expected:
                return report(False, row.seq, f"chain position {expected} is missing: a "
                              f"sealed row was deleted before row {row.seq}", expected)
            if row.prev_hash != prev:
                return report(False, row.seq,
                              f"row {row.seq} does not link to its predecessor", expected)
            digest = chain_hash(prev, canonical(row.seq, row.at, row.actor, row.action,
                                                row.target, row.details, row.remote_addr))
            if digest != row.hash:
                return report(False, row.seq, f"row {row.seq} was edited (its content no "
                              f"longer matches its hash)", expected)
            if anchor is not None and row.chain_pos == anchor.pos:
                at_anchor = row.hash
            prev, expected = row.hash, expected + 1
    if anchor is not None and anchor.pos > 0:
        if count < anchor.pos:
            return report(False, None, f"the chain ends at position {count} but position "
                          f"{anchor.pos} was anchored at {anchor.at}: sealed rows were "
                          f"deleted (the log truncated or its tail cut)", count + 1)
        if at_anchor != anchor.hash:
            return report(False, None, f"position {anchor.pos} no longer has the hash "
                          f"anchored at {anchor.at}: the log was rewritten and hashed again",
                          anchor.pos)
    return report(True)


def recent(engine: Engine, limit: int = 100, target: str | None = None) -> list[dict[str, Any]]:
    query = select(audit_log).order_by(audit_log.c.seq.desc()).limit(limit)
    if target is not None:
        query = query.where(audit_log.c.target == target)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]
