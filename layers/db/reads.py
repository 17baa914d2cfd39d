"""Where a read goes: a hot standby that has caught up, or the primary (读写分离).

``ReadRouter.engine()`` hands a read-only route the engine of a replica
(``GRIDCORE_READ_DATABASE_URL``, one or more) when that replica

- is up and a standby, and its replay lag, as the monitor last measured it (every
  ``GRIDCORE_REPLICA_CHECK_INTERVAL_S``), is within ``GRIDCORE_REPLICA_MAX_LAG_S``; and
- has replayed the primary's WAL at least up to where it stood when the read began
  (``pg_current_wal_lsn()`` on the primary, then ``pg_last_wal_replay_lsn()`` on the replica,
  polled for up to ``GRIDCORE_REPLICA_WAIT_MS``).

The second condition is what keeps reads fresh: a read routed to a replica sees every write
committed before it started (the tile after a report, the health after a step, a caller's own
write), the same guarantee the primary gives, at the price of two tiny queries. Otherwise the
primary answers — a replica down, too far behind or slow to catch up never fails a request.
Writes, and the answers of writes (a report's case, the case after a step), never come here:
they use the primary engine as before. Replicas are tried in turn (round robin).

Lag is measured as PostgreSQL documents for a standby: zero when it has replayed all the
primary has written, else the age of the last transaction it replayed.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, make_url, text
from sqlalchemy.exc import DBAPIError

from gridcore.settings import DatabaseSettings
from layers.db.engine import make_engine

log = logging.getLogger("gridcore.reads")

_LAG_SQL = text("""
SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text,
       CASE WHEN pg_last_wal_replay_lsn() >= CAST(:lsn AS pg_lsn) THEN 0.0
            ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END
""")
_CAUGHT_UP_SQL = text("SELECT pg_last_wal_replay_lsn() >= CAST(:lsn AS pg_lsn)")


@dataclass
class Replica:
    """One replica: its engine and what the monitor last saw."""

    name: str  # host:port/database, no password
    engine: Engine
    state: str = "unknown"  # streaming | lagging | down | not a standby | unknown
    lag_s: float | None = None
    lag_bytes: int | None = None
    checked_at: float | None = None
    error: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def usable(self) -> bool:
        return self.state == "streaming"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state, "lag_s": self.lag_s,
                "lag_bytes": self.lag_bytes, "error": self.error or None,
                "checked_s_ago": None if self.checked_at is None
                else round(time.monotonic() - self.checked_at, 3)}


def replica_name(url: str) -> str:
    u = make_url(url)
    host = u.host or u.query.get("host") or "localhost"
    port = u.port or u.query.get("port") or 5432
    return f"{host}:{port}/{u.database}"


class ReadRouter:
    """The primary engine and the replicas' engines, with a monitor of the replicas' lag."""

    def __init__(self, primary: Engine, settings: DatabaseSettings,
                 replicas: list[Engine] | None = None) -> None:
        self.primary = primary
        self.settings = settings
        engines = replicas if replicas is not None else [
            make_engine(settings, url=url, start_cluster=False) for url in settings.read_urls()]
        self.replicas = [Replica(replica_name(str(e.url)), e) for e in engines]
        self._turn = itertools.count()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lsn_lock = threading.Lock()
        self._lsn_conn: Any = None

    @property
    def enabled(self) -> bool:
        return bool(self.replicas)

    # -- the monitor -------------------------------------------------------------------------
    def start(self) -> None:
        """Check every replica now, then every ``replica_check_interval_s`` in a thread."""
        if not self.replicas or self._thread is not None:
            return
        self.check()
        self._thread = threading.Thread(target=self._run, name="gridcore-replicas",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self._lsn_lock:
            self._close_lsn_conn()
        for r in self.replicas:
            r.engine.dispose()

    def _run(self) -> None:
        while not self._stop.wait(self.settings.replica_check_interval_s):
            try:
                self.check()
            except Exception:  # noqa: BLE001 - the monitor must outlive any one failure
                log.exception("replica check failed")

    def check(self) -> list[Replica]:
        """Measure every replica's state and lag against the primary's WAL position now."""
        try:
            lsn = self.primary_lsn()
        except DBAPIError:
            lsn = None  # the primary is down: the replicas' lag cannot be measured
        for r in self.replicas:
            self._check_one(r, lsn)
        return self.replicas

    def _check_one(self, r: Replica, lsn: str | None) -> None:
        try:
            with r.engine.connect() as conn:
                standby, replayed, lag = conn.execute(_LAG_SQL, {"lsn": lsn or "0/0"}).one()
        except DBAPIError as exc:
            r.state, r.lag_s, r.lag_bytes = "down", None, None
            r.error = str(exc.orig or exc).strip().splitlines()[0]
            r.engine.dispose()  # connections to a server that went away are no use
        else:
            r.error = ""
            if not standby or replayed is None:
                r.state, r.lag_s, r.lag_bytes = "not a standby", None, None
            else:
                r.lag_s = max(float(lag or 0.0), 0.0)
                r.lag_bytes = _lsn_int(lsn) - _lsn_int(replayed) if lsn else None
                if r.lag_bytes is not None:
                    r.lag_bytes = max(r.lag_bytes, 0)
                too_far = r.lag_s > self.settings.replica_max_lag_s
                r.state = "lagging" if too_far else "streaming"
        r.checked_at = time.monotonic()

    # -- the primary's position --------------------------------------------------------------
    def primary_lsn(self) -> str:
        """The primary's current WAL position, on one dedicated autocommit connection (no pool
        checkout per read)."""
        with self._lsn_lock:
            for attempt in (1, 2):
                try:
                    if self._lsn_conn is None:
                        dbapi: Any = self.primary.dialect.dbapi
                        cargs, cparams = self.primary.dialect.create_connect_args(
                            self.primary.url)
                        self._lsn_conn = dbapi.connect(*cargs, **cparams)
                        self._lsn_conn.autocommit = True
                    with self._lsn_conn.cursor() as cur:
                        cur.execute("SELECT pg_current_wal_lsn()::text")
                        return str(cur.fetchone()[0])
                except Exception as exc:
                    self._close_lsn_conn()
                    if attempt == 2:
                        raise DBAPIError("SELECT pg_current_wal_lsn()", None, exc) from exc
        raise AssertionError("unreachable")

    def _close_lsn_conn(self) -> None:
        if self._lsn_conn is not None:
            with contextlib.suppress(Exception):
                self._lsn_conn.close()
            self._lsn_conn = None

    # -- choosing ----------------------------------------------------------------------------
    def engine(self) -> Engine:
        """The engine for one read that must see every write committed before now."""
        if not self.replicas:
            return self.primary
        usable = [r for r in self._in_turn() if r.usable]
        if not usable:
            return self.primary
        try:
            lsn = self.primary_lsn()
        except DBAPIError:
            return self.primary  # the primary's own error will tell the caller
        deadline = time.monotonic() + self.settings.replica_wait_ms / 1000.0
        for r in usable:
            if self._caught_up(r, lsn, deadline):
                return r.engine
        return self.primary

    def _in_turn(self) -> list[Replica]:
        k = next(self._turn) % len(self.replicas)
        return self.replicas[k:] + self.replicas[:k]

    def _caught_up(self, r: Replica, lsn: str, deadline: float) -> bool:
        pause = 0.001
        try:
            with r.engine.connect() as conn:
                while True:
                    if conn.execute(_CAUGHT_UP_SQL, {"lsn": lsn}).scalar():
                        return True
                    if time.monotonic() + pause > deadline:
                        return False
                    time.sleep(pause)
                    pause = min(pause * 2, 0.02)
        except DBAPIError as exc:
            r.state, r.error = "down", str(exc.orig or exc).strip().splitlines()[0]
            return False

    def status(self) -> list[dict[str, Any]]:
        return [r.as_dict() for r in self.replicas]


def _lsn_int(lsn: str) -> int:
    high, low = lsn.split("/")
    return (int(high, 16) << 32) + int(low, 16)
