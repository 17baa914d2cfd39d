"""One LISTEN connection per server process: NOTIFYs on ``gridcore_events`` (sent by migration
the desk migration's trigger when a transaction that wrote events commits, in whichever process or
machine) become :class:`gridcore.events.CaseEvent` objects handed to a callback.

A thread owns the connection (psycopg2 delivers notifications to whoever polls its socket).
If the connection breaks, it reconnects with back-off and catches up from the last event id it
delivered (at most ``catch_up`` events), so a database restart loses no notification that the
pages would have shown.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Engine

from gridcore.events import CaseEvent
from layers.notifications import outbox
from layers.schema.notifications import CHANNEL

log = logging.getLogger(__name__)
Deliver = Callable[[Sequence[CaseEvent]], None]


class EventListener:
    """``wanted()`` says whether anyone in this process reads the events themselves (an open
    stream); while nobody does, a NOTIFY is passed on as the ids it names
    (``noticed(last id)``) without reading the rows: under intake every statement that writes
    cases sends one, and each read was a round trip of its own in every server process, more
    statements than intake's own (benchmarks/README.md, "Design figures")."""

    def __init__(self, engine: Engine, deliver: Deliver, catch_up: int = 500,
                 poll_s: float = 1.0, wanted: Callable[[], bool] | None = None,
                 noticed: Callable[[int], None] | None = None) -> None:
        self.engine, self.deliver, self.catch_up, self.poll_s = engine, deliver, catch_up, poll_s
        self.wanted, self.noticed = wanted, noticed
        self.last_id = 0
        self.connected = threading.Event()
        self._stop = threading.Event()
        # stop() writes a byte here so the thread's select returns at once: waiting for the
        # poll's timeout held every server's shutdown (and every reload) for up to poll_s.
        self._wake_r, self._wake_w = os.pipe()
        self._thread: threading.Thread | None = None

    def start(self) -> EventListener:
        self._thread = threading.Thread(target=self._run, name="gridcore-events", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):  # stopped twice: the pipe is closed already
            os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                return  # still closing its connection: it keeps the pipe it may select on
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _run(self) -> None:
        wait = 0.5
        first = True
        while not self._stop.is_set():
            try:
                self._listen(first)
                wait = 0.5
            except Exception as exc:  # noqa: BLE001 - a lost connection is retried, not fatal
                log.warning("event listener: %s; reconnecting in %.1f s", exc, wait)
            self.connected.clear()
            first = False
            self._stop.wait(wait)
            wait = min(wait * 2, 30.0)

    def _listen(self, first: bool) -> None:
        raw = self.engine.raw_connection()
        raw.detach()  # a connection of its own for good, outside the pool
        conn: Any = raw.dbapi_connection
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f"LISTEN {CHANNEL}")
                if first or not self.last_id:
                    cur.execute("SELECT coalesce(max(id), 0) FROM case_event")
                    self.last_id = max(self.last_id, int(cur.fetchone()[0]))
                else:  # what committed while the connection was down
                    self._emit(self._fetch(cur, f"id > {int(self.last_id)} ORDER BY id "
                                                f"LIMIT {int(self.catch_up)}"))
            self.connected.set()
            while not self._stop.is_set():
                ready, _, _ = select.select([conn, self._wake_r], [], [], self.poll_s)
                if not ready or self._stop.is_set():
                    continue
                conn.poll()
                payloads = []
                while conn.notifies:
                    payloads.append(conn.notifies.pop(0).payload)
                if payloads and self._unread(payloads):
                    continue
                if payloads:
                    with conn.cursor() as cur:
                        self._emit(self._events(cur, payloads))
        finally:
            with contextlib.suppress(Exception):  # closing a broken connection
                conn.close()

    def _unread(self, payloads: list[str]) -> bool:
        """Passed on by id alone when nobody reads the events (see the class)."""
        if self.wanted is None or self.noticed is None or self.wanted():
            return False
        last = 0
        for payload in payloads:
            some, span = outbox.parse_ids(payload)
            last = max(last, *some, span[1] if span else 0)
        if last:
            self.last_id = max(self.last_id, last)
            self.noticed(last)
        return True

    def _events(self, cur: Any, payloads: list[str]) -> list[CaseEvent]:
        ids: list[int] = []
        ranges = []
        for payload in payloads:
            some, span = outbox.parse_ids(payload)
            ids += some
            if span:
                ranges.append(span)
        clauses = []
        if ids:
            clauses.append(f"id IN ({','.join(str(int(i)) for i in set(ids))})")
        clauses += [f"id BETWEEN {int(a)} AND {int(b)}" for a, b in ranges]
        return self._fetch(cur, f"({' OR '.join(clauses)}) ORDER BY id") if clauses else []

    @staticmethod
    def _fetch(cur: Any, where: str) -> list[CaseEvent]:
        cur.execute(f"SELECT {outbox.COLUMNS} FROM case_event WHERE {where}")
        names = [d[0] for d in cur.description]
        return [outbox.event_of(dict(zip(names, row, strict=True))) for row in cur.fetchall()]

    def _emit(self, events: list[CaseEvent]) -> None:
        if not events:
            return
        self.last_id = max(self.last_id, max(e.id or 0 for e in events))
        try:
            self.deliver(events)
        except Exception:  # noqa: BLE001 - one bad subscriber must not stop the listener
            log.exception("delivering events failed")
