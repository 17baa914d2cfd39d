"""Scheduled learning (定期学习): what ``gridcore serve`` runs so the models keep up with the
city — the research showed most of the gain over a static model comes from learning
continuously (benchmarks/README.md, 智能派遣).

Every server process calls ``run_if_due`` now and then; one of them (a database advisory lock)
finds whether the last scheduled learning is older than the interval and, if so, trains the
kinds asked for with ``gridcore learn``'s own rule (a model worse than the active one is stored
and never activated), publishes the similar-case index file, and writes every outcome to the
audit log (actor ``schedule:learn``) and to the server's log. A failed run is recorded too, so a
broken history is not retrained every few minutes: the log says why, an administrator runs
``gridcore learn`` by hand once it is fixed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from layers.intelligence.learning import Learned, learn
from layers.intelligence.similar_files import Published, publish
from layers.security import audit

log = logging.getLogger(__name__)

ACTOR = "schedule:learn"
RUN = "model.learn.scheduled"
_LOCK = 0x6C6561726E  # "learn": one scheduled learning at a time, whatever the processes
# Training shares the machine with the requests: it runs below their priority.
NICE = 10


@dataclass
class ScheduledRun:
    started: datetime
    learned: list[Learned] = field(default_factory=list)
    published: Published | None = None
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "started": self.started.isoformat(), "error": self.error,
            "models": [{"kind": x.kind, "version": x.stored.version if x.stored else None,
                        "activated": x.activated, "why": x.why,
                        "score": x.trained.score if x.trained else None} for x in self.learned],
            "similar_index": None if self.published is None else {
                "version": self.published.folder.name, "cases": self.published.cases,
                "bytes": self.published.size_bytes,
                "seconds": round(self.published.seconds, 1), "mode": self.published.mode,
                "added": self.published.added, "why": self.published.why}}


def last_run(engine: Engine) -> datetime | None:
    with engine.connect() as conn:
        found: datetime | None = conn.execute(text(
            "SELECT max(at) FROM audit_log WHERE actor = :a AND action = :r"),
            {"a": ACTOR, "r": RUN}).scalar()
    return found


def _train(engine: Engine, kinds: list[str], index_root: Path, run: ScheduledRun,
           timezone: str | None) -> None:
    with contextlib.suppress(OSError):  # this thread only (Linux: a thread's own nice)
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
    try:
        models = [k for k in kinds if k != "similar"]
        if models:
            run.learned = learn(engine, models, trained_by=ACTOR, timezone=timezone)
        if "similar" in kinds:
            run.published = publish(engine, index_root)
    except Exception as exc:  # noqa: BLE001  (recorded and logged; the server goes on)
        log.exception("scheduled learning failed")
        run.error = f"{type(exc).__name__}: {exc}"


def run_if_due(engine: Engine, every: timedelta, kinds: list[str], index_root: Path,
               now: datetime | None = None, timezone: str | None = None
               ) -> ScheduledRun | None:
    """Learn if the last scheduled learning is older than ``every`` and no other process is
    learning now; the run, or None when there was nothing to do. ``timezone``: the city's
    (the forecast's weeks begin on Monday 00:00 there; required when it is among ``kinds``)."""
    with engine.connect() as conn:
        if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _LOCK}).scalar():
            return None
        conn.commit()
        try:
            last = last_run(engine)
            now = now or datetime.now(UTC)
            if last is not None and now - last < every:
                return None
            run = ScheduledRun(now)
            worker = threading.Thread(target=_train, args=(engine, kinds, index_root, run,
                                                              timezone),
                                      name="scheduled-learning")
            worker.start()
            worker.join()
            with engine.begin() as tx:
                for x in run.learned:
                    if x.stored is not None:
                        audit.record(tx, ACTOR, "model.learn", f"{x.kind} v{x.stored.version}",
                                     {"activated": x.activated, "why": x.why,
                                      "score": x.trained.score if x.trained else None})
                audit.record(tx, ACTOR, RUN, ",".join(kinds), run.summary())
            for x in run.learned:
                log.info("scheduled learning: %s %s — %s", x.kind,
                         "ACTIVATED" if x.activated else "not activated", x.why)
            if run.published is not None:
                log.info("scheduled learning: similar-case index %s published (%s)",
                         run.published.folder.name, run.published.summary())
            return run
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK})
            conn.commit()
