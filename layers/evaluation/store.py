"""Evaluation facts kept per case (考评事实, ``case_eval_fact``): one narrow row per case —
its departments, the instants of its steps and their actors, its reworks and send-backs, its
working-time durations — so that a period's evaluation reads one row per case of its cohort
(``sql/window.sql``) instead of recounting the cohort's history (``sql/facts.sql``).

- every write to a case or its history marks it dirty in the same transaction (statement
  triggers, migration ``0020_eval_facts``);
- :func:`refresh` recounts the dirty cases (on the primary, before an evaluation reads);
- the facts hold for one basis: the working calendar, the classes' time limits and the
  verification limit. When it differs, evaluations recount from the history until
  :func:`rebuild` runs (``gridcore check --evaluation --repair``); a small database is rebuilt
  on the spot;
- :func:`check` compares every stored row with a recount from the history.

The facts describe each case as its whole history says; a period reads the steps taken
before its end from them (``sql/window.sql``). One difference from the recount remains: a case
dispatched again after the period's end counts with its last dispatch (the recount takes the
last one before the end); ``tests/db/test_evaluation_facts.py`` plants it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError

from gridcore.calendar import WorkingCalendar
from gridcore.evaluation import EvaluationModel
from gridcore.health import Window
from layers.evaluation.facts import (
    _ACTIONS,
    _WORKING,
    _parked,
    _sql_file,
    fragment,
    limit_params,
    timed_laterals,
    whole_history_aggregates,
)
from layers.health.queries import calendar_params

__all__ = ["FactCheck", "basis", "check", "rebuild", "refresh", "usable"]

# A database with at most this many cases is (re)built on the spot when its basis is missing
# or stale (a test city, the demo); a larger one waits for ``check --evaluation --repair``.
AUTO_REBUILD_MAX = 20_000
# Dirty marks handled by one refresh; with more left, evaluations recount from the history.
REFRESH_BATCH = 20_000
CHUNK_IDS = 100_000  # a rebuild reads the history in id ranges of this many cases
_LOCK = 0x6576_6673  # "evfs": one refresh or rebuild at a time
SERIALIZATION_FAILURE = "40001"  # SQLSTATE: a REPEATABLE READ write met a newer row

log = logging.getLogger(__name__)
# What the facts count as which step; part of the basis, so facts stored under an older
# counting are recounted (2: an imported case's "imported" row is its registration).
FACTS_VERSION = 2
_INSTANTS = {"reg": "b.reg_at", "closed": "b.closed_end", "disp": "b.disp_at",
             "fb": "b.fb_at", "rep": "b.rep_at", "ver": "b.ver_at", "chk": "b.chk_at"}
COLUMNS = ("case_id, created_at, closed_at, is_closed, category_key, grid_code, "
           "community_code, street_code, district_code, department_code, source, self_handled, "
           "cb_reached, cb_resolved, cb_satisfied, parked_intervals, parked_since, rep_at, "
           "reporter, reporter_role, ver_at, verifier, void_at, reg_at, disp_at, fb_at, "
           "chk_at, checker, rework_at, send_back_at, send_back_by, limit_min, working, "
           "h_limit, h_working, k_limit, k_working, close_min, handle_min, verify_min, "
           "check_min")


@cache
def store_sql(cal: WorkingCalendar, shape: str, source: str) -> str:
    """The facts of the cases ``source`` selects; ``shape`` ``range`` (their history as one
    id range :lo…:hi) or ``probe`` (one index probe per case)."""
    sections = dict(part.split("\n", 1) for part in _sql_file("store").split("\n-- @")[1:])
    body = _sql_file("store").split("\n-- @")[0]
    aggregates = ",\n".join([*whole_history_aggregates(), sections["aggregates"].strip()]
                           ).replace("\n", "\n    ")
    hist = sections[shape].strip().format(aggregates=aggregates, actions=_ACTIONS)
    laterals, marks = timed_laterals(cal, _INSTANTS)
    return body.format(
        source=source, hist=hist, instants=laterals, inputs=fragment("inputs"),
        limits=fragment("limits"),
        parked_reg=_parked(cal, "b.reg_at", "coalesce(b.closed_end, b.reg_at)", "b.working"),
        parked_disp=_parked(cal, "b.disp_at", "coalesce(b.fb_at, b.disp_at)", "b.h_working"),
        **marks)


def basis(conn: Connection, cal: WorkingCalendar, model: EvaluationModel) -> str:
    """The fingerprint of what the durations depend on besides the cases."""
    limits = conn.execute(text("SELECT key, limits FROM category ORDER BY key")).all()
    blob = json.dumps([repr(cal), [[k, v] for k, v in limits], str(model.verify_limit),
                       FACTS_VERSION], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def usable(conn: Connection, cal: WorkingCalendar, model: EvaluationModel) -> bool:
    """The facts are on this basis and no case waits for its recount."""
    stored = conn.execute(text("SELECT basis FROM case_eval_basis")).scalar()
    if stored is None or stored != basis(conn, cal, model):
        return False
    return conn.execute(text("SELECT NOT EXISTS (SELECT 1 FROM case_eval_dirty)")).scalar_one()


def _params(conn: Connection, cal: WorkingCalendar, model: EvaluationModel,
            cases: list[int] | None = None) -> dict[str, Any]:
    """Calendar arrays spanning every instant the counted cases can have (report to now):
    ``cases`` (a refresh's few), or every stored case. The durations are differences on these
    arrays, so where they begin changes no fact. A refresh once bounded them by every case — a
    scan of the whole case table (1.8–3.7 s at 3 M cases) each time intake marked a case."""
    if cases is None:
        first, last = conn.execute(text(
            "SELECT min(created_at), greatest(max(closed_at), max(created_at), now()) "
            "FROM case_record")).one()
    else:
        first, last = conn.execute(text(
            "SELECT min(created_at), greatest(max(closed_at), max(created_at), now()) "
            "FROM case_record WHERE id = ANY(:ids)"), {"ids": cases}).one()
    first = first or datetime.now(UTC)
    last = max(last or first, datetime.now(UTC)) + timedelta(days=2)
    return {**calendar_params(cal, Window(first, last)), **limit_params(conn, cal),
            "day_minutes": cal.day_minutes, "verify_working": model.verify_limit.unit in _WORKING}


def _snapshot(engine: Engine) -> Connection:
    return engine.connect().execution_options(isolation_level="REPEATABLE READ")


@contextmanager
def _locked(engine: Engine, wait: bool) -> Iterator[bool]:
    """The facts' lock (one refresh or rebuild at a time), held on a connection of its own so
    that the counting transaction's snapshot is taken after it is held."""
    with engine.connect() as lock:
        if wait:
            lock.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK})
            got = True
        else:
            got = bool(lock.execute(text("SELECT pg_try_advisory_lock(:k)"),
                                    {"k": _LOCK}).scalar_one())
        lock.commit()
        try:
            yield got
        finally:
            if got:
                lock.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK})
                lock.commit()


def _insert_all(conn: Connection, cal: WorkingCalendar, model: EvaluationModel,
                table: str) -> None:
    lo, hi = conn.execute(text("SELECT min(id), max(id) FROM case_record")).one()
    if lo is None:
        return
    sql = text(f"INSERT INTO {table} ({COLUMNS})\n"
               + store_sql(cal, "range", "c.id BETWEEN :lo AND :hi"))
    params = _params(conn, cal, model)
    for start in range(lo, hi + 1, CHUNK_IDS):
        conn.execute(sql, {**params, "lo": start, "hi": start + CHUNK_IDS - 1})


def rebuild(engine: Engine, cal: WorkingCalendar, model: EvaluationModel) -> int:
    """Count every case's facts from its history again (after a bulk load, or when the basis
    changed). Returns the number of rows."""
    with _locked(engine, wait=True):
        return _rebuild(engine, cal, model)


def _rebuild(engine: Engine, cal: WorkingCalendar, model: EvaluationModel) -> int:
    with _snapshot(engine) as conn:
        conn.execute(text("SET LOCAL statement_timeout = 0"))  # minutes at millions of cases
        conn.execute(text("DELETE FROM case_eval_fact"))
        conn.execute(text("DELETE FROM case_eval_dirty"))  # what this snapshot sees is counted
        _insert_all(conn, cal, model, "case_eval_fact")
        conn.execute(text("DELETE FROM case_eval_basis"))
        conn.execute(text("INSERT INTO case_eval_basis (basis, built_at) VALUES (:b, now())"),
                     {"b": basis(conn, cal, model)})
        rows = int(conn.execute(text("SELECT count(*) FROM case_eval_fact")).scalar_one())
        conn.commit()
    return rows


def refresh(engine: Engine, cal: WorkingCalendar, model: EvaluationModel) -> bool:
    """Recount the dirty cases (up to REFRESH_BATCH marks) on the primary. Returns whether the
    facts can be read afterwards (right basis, nothing dirty): a standby, another refresh under
    way, more marks than a batch, or a write that raced the recount (its one snapshot cannot
    store a case changed since: the marks stay for the next one) leave evaluations to recount
    from the history."""
    try:
        return _refresh(engine, cal, model)
    except OperationalError as exc:
        if getattr(exc.orig, "pgcode", None) != SERIALIZATION_FAILURE:
            raise
        log.info("evaluation facts: a case changed while its facts were recounted; the "
                 "marks stay for the next refresh (%s)", str(exc.orig).strip())
        return False


def _refresh(engine: Engine, cal: WorkingCalendar, model: EvaluationModel) -> bool:
    with engine.connect() as conn:  # the usual case in one round trip: nothing to do
        stored, dirty, standby = conn.execute(text(
            "SELECT (SELECT basis FROM case_eval_basis LIMIT 1), "
            "EXISTS (SELECT 1 FROM case_eval_dirty), pg_is_in_recovery()")).one()
        if stored is not None and not dirty and stored == basis(conn, cal, model):
            return True
        if standby:
            return usable(conn, cal, model)
    with _locked(engine, wait=False) as got, _snapshot(engine) as conn:
        if not got:
            return usable(conn, cal, model)
        stored = conn.execute(text("SELECT basis FROM case_eval_basis")).scalar()
        if stored is None or stored != basis(conn, cal, model):
            cases = conn.execute(text(
                "SELECT count(*) FROM (SELECT 1 FROM case_record LIMIT :m) x"),
                {"m": AUTO_REBUILD_MAX + 1}).scalar_one()
            conn.rollback()
            if cases > AUTO_REBUILD_MAX:
                return False
            _rebuild(engine, cal, model)
            return True
        marks = conn.execute(text("SELECT id, case_id FROM case_eval_dirty ORDER BY id "
                                  "LIMIT :m"), {"m": REFRESH_BATCH}).all()
        if marks:
            _recount(conn, cal, model, [m[0] for m in marks],
                     sorted({m[1] for m in marks}))
        conn.commit()
        return usable(conn, cal, model)


def catch_up(engine: Engine, cal: WorkingCalendar, model: EvaluationModel,
             batches: int = 50) -> bool:
    """Refresh batch after batch until the facts can be read again (the server's background
    job, 考评事实补算). A burst of writes leaves more marks than one refresh takes — the first
    supervision sweep of the 10 M megacity supervised 10,348 cases at once, and 34,165 marks
    still waited after three evaluations had counted 20,000 each — and until they are counted
    every evaluation recounts from the history (16 s instead of 1.4 s there). Stops when the
    facts are current, or when a refresh gets no further (another process holds the lock, a
    standby, a basis that only ``gridcore check --evaluation --repair`` rebuilds on a big
    database)."""
    left = None
    for _ in range(batches):
        if refresh(engine, cal, model):
            return True
        with engine.connect() as conn:
            now_left = int(conn.execute(text("SELECT count(*) FROM case_eval_dirty"))
                           .scalar_one())
        if left is not None and now_left >= left:
            return False
        left = now_left
    return False


def _recount(conn: Connection, cal: WorkingCalendar, model: EvaluationModel,
             marks: list[int], cases: list[int]) -> None:
    conn.execute(text("DELETE FROM case_eval_fact WHERE case_id = ANY(:ids)"), {"ids": cases})
    conn.execute(text(f"INSERT INTO case_eval_fact ({COLUMNS})\n"
                      + store_sql(cal, "probe", "c.id = ANY(:ids)")),
                 {**_params(conn, cal, model, cases), "ids": cases})
    conn.execute(text("DELETE FROM case_eval_dirty WHERE id = ANY(:m)"), {"m": marks})


@dataclass
class FactCheck:
    """Stored facts against a recount from the history (cases still dirty left out)."""

    rows: int
    dirty: int
    missing: list[int]  # case ids recounted but not stored (or stored differently)
    extra: list[int]  # case ids stored but not recounted (or recounted differently)
    basis_ok: bool

    @property
    def ok(self) -> bool:
        return self.basis_ok and not self.missing and not self.extra

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "rows": self.rows, "dirty": self.dirty,
                "basis_ok": self.basis_ok, "missing": self.missing[:50],
                "extra": self.extra[:50]}


def check(engine: Engine, cal: WorkingCalendar, model: EvaluationModel,
          refresh_first: bool = True) -> FactCheck:
    """Every stored fact row against a recount of all cases from their history."""
    if refresh_first:
        refresh(engine, cal, model)
    with _snapshot(engine) as conn:
        conn.execute(text("SET LOCAL statement_timeout = 0"))
        stored = conn.execute(text("SELECT basis FROM case_eval_basis")).scalar()
        basis_ok = stored is not None and stored == basis(conn, cal, model)
        conn.execute(text("CREATE TEMP TABLE eval_recount (LIKE case_eval_fact) "
                          "ON COMMIT DROP"))
        _insert_all(conn, cal, model, "eval_recount")
        dirty = int(conn.execute(text(
            "SELECT count(DISTINCT case_id) FROM case_eval_dirty")).scalar_one())
        clean = "WHERE case_id NOT IN (SELECT case_id FROM case_eval_dirty)"

        def diff(a: str, b: str) -> list[int]:
            return [r[0] for r in conn.execute(text(
                f"SELECT case_id FROM (SELECT {COLUMNS} FROM {a} {clean} EXCEPT "
                f"SELECT {COLUMNS} FROM {b} {clean}) d ORDER BY case_id LIMIT 1000"))]

        missing = diff("eval_recount", "case_eval_fact")
        extra = diff("case_eval_fact", "eval_recount")
        rows = int(conn.execute(text("SELECT count(*) FROM case_eval_fact")).scalar_one())
        conn.rollback()
    return FactCheck(rows, dirty, missing, extra, basis_ok)
