"""Day aggregates of city health (按日汇总): per grid × class × local day of report × local day of
closing, the settled (closed) cases' counts and handling minutes, so a window reads days, not
cases, and its cost does not grow with the years of history.

How they stay equal to a recomputation from the cases:

- every write of ``case_record`` (intake, each lifecycle step, imports, merges) marks the grid's
  days it touched dirty in the same transaction (a statement trigger, migration
  0013_health_days): from the case's report day to ``repeat_days`` later, since a change can
  make a later case of that grid a repeat (重复问题) or not;
- :func:`refresh` recounts the dirty grid days from the cases and clears their marks (on the
  primary, under an advisory lock; city health calls it before reading);
- a window counts from ``health_day`` only whole local days not dirty and cases closed before
  its last whole day; everything else of its cohort — open cases, cases closed later, partial
  days, dirty days — is counted live, case by case, with the window's own end (sql/days.sql);
- the open cases' facts (``health_open``, sql/open.sql: first 立案, first 返工, repeat) are
  counted with the day rows — a refresh recounts the open cases of the dirty grid days, a
  rebuild all — so the short and long paths read a window's open cases of clean grid days as
  rows (at 10 M cases a year's window has ≈ 11,500 of them, two index probes each before).

The aggregates hold for one basis: the working calendar, the classes' time limits and the
repeat reach they were counted with. When the basis differs (limits edited, another calendar),
city health counts from the cases (``cases.sql``) until :func:`rebuild` runs
(``gridcore check --aggregates --repair``); a small database is rebuilt on the spot.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, text

from gridcore.calendar import WorkingCalendar
from gridcore.health import Window
from layers.health import runs
from layers.health.queries import (
    calendar_params,
    category_params,
    dirty_sql,
    handled_sql,
    sql_text,
)

__all__ = ["DayCheck", "basis", "check", "count_open_on", "day_sql", "live_source",
           "open_count_sql", "open_window_sql", "rebuild", "refresh", "settle", "usable"]

# A database with at most this many closed cases is (re)built on the spot when its basis is
# missing or stale (a test city, the demo); a larger one waits for ``check --aggregates
# --repair`` and is counted from the cases meanwhile.
AUTO_REBUILD_MAX = 20_000
# Dirty marks handled by one refresh; the rest stay dirty (counted live) for the next one.
REFRESH_BATCH = 20_000
_LOCK = 0x6864_6179  # "hday": one refresh or rebuild at a time

_COLUMNS = ("c.id, c.grid_code, c.category_key, c.state, c.created_at, c.closed_at, "
            "c.deadline_at, c.parked_since, c.parked_intervals, c.h3")
_INSERT = """INSERT INTO health_day (grid_code, category_key, day, closed_day, cases,
    registered, closed, closed_on_time, reworked, repeat, work_min)
SELECT f.grid_code, f.category_key, (f.created_at AT TIME ZONE :tz)::date,
       (f.closed_at AT TIME ZONE :tz)::date, count(*), count(*) FILTER (WHERE f.registered),
       count(*) FILTER (WHERE f.closed), count(*) FILTER (WHERE f.on_time),
       count(*) FILTER (WHERE f.reworked), count(*) FILTER (WHERE f.repeat),
       coalesce(array_agg(f.work_min ORDER BY f.id) FILTER (WHERE f.closed), '{{}}')
FROM ({facts}) f
GROUP BY 1, 2, 3, 4"""
# the closed cases of the dirty grid days being refreshed (temporary table day_group): a
# probe per dirty grid day (OFFSET 0 keeps the lateral a probe; as a semi-join of the cases
# the planner went through every closed case — 60 s for four marks at 10 M cases), and each
# case once however the grid's dirty ranges overlap
_GROUP_SOURCE = (f"SELECT DISTINCT ON (c.id) c.* FROM day_group g CROSS JOIN LATERAL ("
                 f"SELECT {_COLUMNS} FROM case_record c WHERE c.grid_code = g.grid_code "
                 "AND c.created_at >= g.t0 AND c.created_at < g.t1 AND c.state = 'closed' "
                 "AND c.closed_at IS NOT NULL OFFSET 0) c")
_CHUNK_SOURCE = (f"SELECT {_COLUMNS} FROM case_record c WHERE c.state = 'closed' "
                 "AND c.closed_at IS NOT NULL AND c.created_at >= :c0 AND c.created_at < :c1")


# An imported case's "imported" row stands for its registration, as in sql/history.sql.
_HIST_PROBE = """SELECT c.id AS case_id, x.*
    FROM cohort c CROSS JOIN LATERAL (
        SELECT min(h.at) FILTER (WHERE h.action IN ('register', 'imported')) AS reg_at,
               coalesce(bool_or(h.action = 'rework'), false) AS reworked
        FROM case_history h
        WHERE h.case_id = c.id AND h.at < :end
          AND h.action IN ('register', 'rework', 'imported')) x"""
# A rebuild goes through the cases in time chunks (CHUNK_DAYS of reports): each reads its
# cases' history as one id range of case_history_case_idx (a million index probes cost ten
# times more) and keeps its sorts and hashes small (all at once, 3 M cases spilled tens of GB).
_HIST_RANGE = """SELECT h.case_id,
           min(h.at) FILTER (WHERE h.action IN ('register', 'imported')) AS reg_at,
           coalesce(bool_or(h.action = 'rework'), false) AS reworked
    FROM case_history h
    WHERE h.case_id BETWEEN (SELECT min(id) FROM cohort) AND (SELECT max(id) FROM cohort)
      AND h.at < :end AND h.action IN ('register', 'rework', 'imported')
    GROUP BY h.case_id"""
CHUNK_DAYS = 60

# (the upper bound on created_at, implied by the row comparison, lets each probe skip the
# later years' partitions)
_REPEAT_PROBE = """(c.h3 IS NOT NULL AND EXISTS (
           SELECT 1 FROM case_record r
           WHERE r.grid_code = c.grid_code AND r.category_key = c.category_key AND r.h3 = c.h3
             AND r.created_at >= c.created_at - make_interval(days => :repeat_days)
             AND r.created_at <= c.created_at
             AND (r.created_at, r.id) < (c.created_at, c.id)
             AND r.state NOT IN ('voided', 'merged')))"""
# An earlier case within the reach exists exactly when the one just before it does: one
# window pass over the cases instead of a probe per case.
_REPEAT_ALL = ("coalesce(rp.prev_at >= c.created_at - make_interval(days => :repeat_days), "
               "false)")
_REPEAT_ALL_JOIN = """LEFT JOIN (
    SELECT r.id, lag(r.created_at) OVER (PARTITION BY r.grid_code, r.category_key, r.h3
                                         ORDER BY r.created_at, r.id) AS prev_at
    FROM case_record r
    WHERE r.grid_code IS NOT NULL AND r.h3 IS NOT NULL AND r.state NOT IN ('voided', 'merged')
      AND r.created_at >= CAST(:c0 AS timestamptz) - make_interval(days => :repeat_days)
      AND r.created_at < :c1
) rp ON rp.id = c.id"""


_OPEN = "c.state NOT IN ('closed', 'voided', 'merged')"
_OPEN_ALL = f"SELECT {_COLUMNS} FROM case_record c WHERE {_OPEN}"
# the open cases of the dirty grid days being refreshed (day_group), each once
_OPEN_GROUP = (f"SELECT DISTINCT ON (c.id) c.* FROM day_group g CROSS JOIN LATERAL ("
               f"SELECT {_COLUMNS} FROM case_record c WHERE c.grid_code = g.grid_code "
               f"AND c.created_at >= g.t0 AND c.created_at < g.t1 AND {_OPEN} OFFSET 0) c")


def _open_part(name: str) -> str:
    body = sql_text("open").split(f"-- {name}\n", 1)[1]
    return body.split("\n-- ", 1)[0]


def open_count_sql(source: str, table: str = "health_open") -> str:
    """Count the facts of the open cases ``source`` selects into ``table`` (sql/open.sql)."""
    return _open_part("count").format(source=source, repeat=_REPEAT_PROBE).replace(
        "INSERT INTO health_open ", f"INSERT INTO {table} ")


def open_window_sql(code_filter: str = "") -> str:
    """A window's open cases of its whole days from their stored facts, as facts.sql's rows
    (clean grid days only: the CTE ``dirty`` of the query it joins)."""
    return _open_part("window").format(code_filter=code_filter.replace("c.grid_code",
                                                                       "o.grid_code"))


def count_open_on(conn: Connection) -> None:
    """Count every open case's facts again (health_open), on the day aggregates' repeat reach;
    none when the day aggregates were never counted."""
    conn.execute(text("DELETE FROM health_open"))
    reach = conn.execute(text("SELECT repeat_days FROM health_day_basis LIMIT 1")).scalar()
    if reach is not None:
        conn.execute(text(open_count_sql(_OPEN_ALL)), {"repeat_days": int(reach)})
    # a table filled at once has no statistics until autovacuum comes by: the planner is told
    # now. (Not the cause of the 60 s first pages seen once after the 10 M migration: without
    # statistics and without autovacuum the first pages took 7–9 s, as with them.)
    conn.execute(text("ANALYZE health_open"))


def facts_sql(cal: WorkingCalendar, source: str, code_filter: str = "",
              whole: bool = False) -> str:
    """The per-case health facts of the cases ``source`` selects (sql/facts.sql); ``whole``:
    the source is every closed case reported in [:c0, :c1), read in passes, not probes."""
    return sql_text("facts").format(
        source=source, code_filter=code_filter, hist=_HIST_RANGE if whole else _HIST_PROBE,
        repeat=_REPEAT_ALL if whole else _REPEAT_PROBE,
        repeat_join=_REPEAT_ALL_JOIN if whole else "", handled=handled_sql(cal))


def basis(conn: Connection, cal: WorkingCalendar, repeat_days: int) -> str:
    """The fingerprint of what the aggregates depend on besides the cases: the calendar, the
    classes' time limits and the repeat reach."""
    limits = conn.execute(text("SELECT key, limits FROM category ORDER BY key")).all()
    blob = json.dumps([repr(cal), [[k, v] for k, v in limits], repeat_days], sort_keys=True,
                      default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def usable(conn: Connection, cal: WorkingCalendar, repeat_days: int) -> bool:
    stored = conn.execute(text("SELECT basis FROM health_day_basis")).scalar()
    return stored is not None and stored == basis(conn, cal, repeat_days)


def _calendar(conn: Connection, cal: WorkingCalendar) -> dict[str, Any]:
    """Calendar arrays spanning every instant a stored case can have (report to closing)."""
    first = conn.execute(text("SELECT min(created_at) FROM case_record")).scalar()
    last = conn.execute(text("SELECT greatest(max(closed_at), now()) FROM case_record "
                             "WHERE state = 'closed'")).scalar()
    first = first or datetime.now(UTC)
    return calendar_params(cal, Window(first, last or first + timedelta(days=1)))


def _params(conn: Connection, cal: WorkingCalendar, repeat_days: int) -> dict[str, Any]:
    return {**_calendar(conn, cal), **category_params(conn, cal), "end": "infinity",
            "repeat_days": repeat_days, "tz": cal.timezone}


def _count_all(conn: Connection, cal: WorkingCalendar, repeat_days: int, table: str) -> None:
    """Count every closed case into ``table`` (health_day or a copy), CHUNK_DAYS of reports
    at a time; chunks start at local midnights, so no grid day is split."""
    first, last = conn.execute(text("SELECT min(created_at), max(created_at) FROM case_record "
                                    "WHERE state = 'closed'")).one()
    if first is None:
        return
    sql = text(_INSERT.replace("INSERT INTO health_day ", f"INSERT INTO {table} ")
               .format(facts=facts_sql(cal, _CHUNK_SOURCE, whole=True)))
    params = _params(conn, cal, repeat_days)
    day = first.astimezone(cal.tz).date()
    while _midnight(day, cal) <= last:
        nxt = day + timedelta(days=CHUNK_DAYS)
        conn.execute(sql, {**params, "c0": _midnight(day, cal), "c1": _midnight(nxt, cal)})
        day = nxt


def _snapshot(engine: Engine) -> Connection:
    """A connection whose transaction reads one snapshot throughout: the dirty marks it
    deletes are exactly those its count has seen."""
    return engine.connect().execution_options(isolation_level="REPEATABLE READ")


@contextmanager
def _locked(engine: Engine, wait: bool) -> Iterator[bool]:
    """Hold the aggregates' lock (one refresh or rebuild at a time) on a connection of its
    own, so that the counting transaction's snapshot is taken after it is held: a rebuild
    that waited for another must see what that one wrote."""
    with engine.connect() as lock:
        if wait:  # pg_advisory_lock returns void once it holds the lock
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


def rebuild(engine: Engine, cal: WorkingCalendar, repeat_days: int = 30) -> int:
    """Count every grid day from the cases again (after a bulk load, or when the basis
    changed). Returns the number of day rows."""
    with _locked(engine, wait=True):
        return _rebuild(engine, cal, repeat_days)


def _rebuild(engine: Engine, cal: WorkingCalendar, repeat_days: int) -> int:
    with _snapshot(engine) as conn:
        conn.execute(text("SET LOCAL statement_timeout = 0"))  # minutes at millions of cases
        conn.execute(text("DELETE FROM health_day"))
        # marks the snapshot sees are settled by this count; later ones stay
        conn.execute(text("DELETE FROM health_dirty"))
        _count_all(conn, cal, repeat_days, "health_day")
        conn.execute(text("DELETE FROM health_day_basis"))
        conn.execute(text("INSERT INTO health_day_basis (basis, repeat_days, built_at) "
                          "VALUES (:b, :r, now())"),
                     {"b": basis(conn, cal, repeat_days), "r": repeat_days})
        count_open_on(conn)
        runs.rebuild_on(conn)
        rows = int(conn.execute(text("SELECT count(*) FROM health_day")).scalar_one())
        conn.commit()
    return rows


def refresh(engine: Engine, cal: WorkingCalendar, repeat_days: int = 30) -> bool:
    """Recount the dirty grid days (up to REFRESH_BATCH marks) on the primary. Returns whether
    the aggregates are usable for this basis afterwards. A standby, or another refresh under
    way, leaves the marks: the window counts those days live."""
    with engine.connect() as conn:
        if conn.execute(text("SELECT pg_is_in_recovery()")).scalar_one():
            return usable(conn, cal, repeat_days)
    with _locked(engine, wait=False) as got, _snapshot(engine) as conn:
        if not got:
            return usable(conn, cal, repeat_days)
        if not usable(conn, cal, repeat_days):
            closed = conn.execute(text(
                "SELECT count(*) FROM (SELECT 1 FROM case_record WHERE state = 'closed' "
                "LIMIT :m) x"), {"m": AUTO_REBUILD_MAX + 1}).scalar_one()
            conn.rollback()
            if closed > AUTO_REBUILD_MAX:
                return False
            _rebuild(engine, cal, repeat_days)
            return True
        ids = [r[0] for r in conn.execute(text(
            "SELECT id FROM health_dirty ORDER BY id LIMIT :m"), {"m": REFRESH_BATCH})]
        if ids:
            _recount(conn, cal, repeat_days, ids)
        else:
            runs.update_grids(conn, [])  # a month begun since: its boundary
        conn.commit()
    return True


def settle(engine: Engine, cal: WorkingCalendar, repeat_days: int = 30) -> int:
    """Recount every dirty grid day now, batch after batch, waiting for a refresh under way
    and without the requests' statement limit: a bulk writer (``gridcore import cases``) pays
    for its own marks instead of the next health page. Returns the marks settled (0 when the
    aggregates are not built for this basis: pages count from the cases until the rebuild)."""
    settled = 0
    while True:
        with _locked(engine, wait=True), _snapshot(engine) as conn:
            conn.execute(text("SET LOCAL statement_timeout = 0"))
            if not usable(conn, cal, repeat_days):
                return settled
            ids = [r[0] for r in conn.execute(text(
                "SELECT id FROM health_dirty ORDER BY id LIMIT :m"), {"m": REFRESH_BATCH})]
            if not ids:
                return settled
            _recount(conn, cal, repeat_days, ids)
            conn.commit()
            settled += len(ids)


def _recount(conn: Connection, cal: WorkingCalendar, repeat_days: int, ids: list[int]) -> None:
    conn.execute(text("""
        CREATE TEMP TABLE day_group ON COMMIT DROP AS
        SELECT grid_code, d0, d1, (d0::timestamp AT TIME ZONE :tz) AS t0,
               ((d1 + 1)::timestamp AT TIME ZONE :tz) AS t1
        FROM (SELECT DISTINCT grid_code, (from_at AT TIME ZONE :tz)::date AS d0,
                     (to_at AT TIME ZONE :tz)::date AS d1
              FROM health_dirty WHERE id = ANY(:ids)) x"""), {"ids": ids, "tz": cal.timezone})
    conn.execute(text("ANALYZE day_group"))
    conn.execute(text("DELETE FROM health_day d USING day_group g WHERE d.grid_code = "
                      "g.grid_code AND d.day BETWEEN g.d0 AND g.d1"))
    conn.execute(text(_INSERT.format(facts=facts_sql(cal, _GROUP_SOURCE))),
                 _params(conn, cal, repeat_days))
    conn.execute(text("DELETE FROM health_open o USING day_group g WHERE o.grid_code = "
                      "g.grid_code AND o.created_at >= g.t0 AND o.created_at < g.t1"))
    conn.execute(text(open_count_sql(_OPEN_GROUP)), {"repeat_days": repeat_days})
    conn.execute(text("DELETE FROM health_dirty WHERE id = ANY(:ids)"), {"ids": ids})
    since = conn.execute(text("SELECT grid_code, min(d0) FROM day_group GROUP BY 1 ORDER BY 1")
                         ).all()
    runs.update_grids(conn, [g for g, _ in since], [d for _, d in since])


def _midnight(day: Any, cal: WorkingCalendar) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=cal.tz)


def window_params(window: Window, cal: WorkingCalendar) -> dict[str, Any]:
    """The window's whole local days [first_day, last_day) and their instants; a window
    shorter than a day has none (all of it is counted live)."""
    start, end = window.start.astimezone(cal.tz), window.end.astimezone(cal.tz)
    first = start.date() + timedelta(days=0 if start == _midnight(start.date(), cal) else 1)
    last = end.date()
    if last <= first:
        first = last = end.date()
        return {"first_day": first, "last_day": last, "day_from": window.end,
                "day_to": window.end}
    return {"first_day": first, "last_day": last, "day_from": _midnight(first, cal),
            "day_to": _midnight(last, cal)}


# The cases reported in a window's whole days and closed after them: every later closing
# (a window ending now: today's), or (long.py) those of the day rows straddling its end.
_CLOSED_AFTER = ("SELECT {cols} FROM case_record c WHERE c.state = 'closed' "
                 "AND c.closed_at >= :day_to AND c.created_at >= :day_from "
                 "AND c.created_at < :day_to")
# OFFSET 0 keeps the lateral a probe per straddling row (a few thousand): flattened, the
# planner hashed every case closed since :day_to — two million for last year's window.
_CLOSED_AFTER_STRADDLING = (
    "SELECT c.* FROM straddle s CROSS JOIN LATERAL (SELECT {cols} FROM case_record c "
    "WHERE c.grid_code = s.grid_code AND c.category_key = s.category_key "
    "AND c.created_at >= (s.day::timestamp AT TIME ZONE :tz) "
    "AND c.created_at < ((s.day + 1)::timestamp AT TIME ZONE :tz) "
    "AND c.state = 'closed' AND c.closed_at >= :day_to OFFSET 0) c")


def live_source(straddling: bool = False, open_facts: bool = False) -> str:
    """A window's live cases, in disjoint index ranges: its partial first and last days,
    its open cases, those closed after its whole days, and those of its dirty grid days
    (``straddling``: found from the CTE ``straddle``, and the dirty days' cases whatever
    their closing, as long.py counts). ``open_facts`` (with ``straddling``): the open cases
    of the clean grid days are left out — read from their facts (:func:`open_window_sql`) —
    and those of the dirty grid days counted with the dirty days' other cases."""
    cols = _COLUMNS
    dirty_closing = "" if straddling else "AND c.closed_at < :day_to "
    dirty_states = ("c.state NOT IN ('voided', 'merged')" if open_facts and straddling
                    else f"c.state = 'closed' {dirty_closing}")
    parts = [
        f"SELECT {cols} FROM case_record c WHERE c.created_at >= :start "
        "AND c.created_at < :day_from",
        f"SELECT {cols} FROM case_record c WHERE c.created_at >= :day_to "
        "AND c.created_at < :end",
        f"SELECT {cols} FROM case_record c WHERE c.created_at >= :day_from "
        f"AND c.created_at < :day_to AND {_OPEN}",
        (_CLOSED_AFTER_STRADDLING if straddling else _CLOSED_AFTER).format(cols=cols),
        f"SELECT {cols} FROM case_record c WHERE {dirty_states} "
        "AND c.created_at >= :day_from AND c.created_at < :day_to AND c.id IN ("
        "SELECT k.id FROM dirty x JOIN case_record k ON k.grid_code = x.grid_code "
        "AND k.created_at >= (x.d0::timestamp AT TIME ZONE :tz) "
        "AND k.created_at < ((x.d1 + 1)::timestamp AT TIME ZONE :tz))",
    ]
    if open_facts and straddling:
        del parts[2]
    return "\n    UNION ALL\n    ".join(parts)


def day_sql(cal: WorkingCalendar, code_filter: str, families: list[str]) -> str:
    """A window's aggregates per key from the day rows and the live cases (sql/days.sql);
    ``code_filter`` is over ``c.grid_code``, ``families`` the class-family columns."""
    fams = "".join(f", coalesce(sum(c.cases) FILTER (WHERE left(c.category_key, 3) = "
                   f"'{f[6:]}'), 0) AS \"{f}\"" for f in families)
    return sql_text("days").format(
        facts=facts_sql(cal, live_source(straddling=True), code_filter),
        stored_filter=code_filter.replace("c.grid_code", "d.grid_code"), families=fams,
        dirty=dirty_sql(), straddle=dirty_sql("straddle"))


@dataclass
class DayCheck:
    """The stored day rows against a recount from the cases."""

    rows: int
    dirty: int
    missing: list[dict[str, Any]]  # in the recount, not stored (or stored differently)
    extra: list[dict[str, Any]]  # stored, not in the recount (or differently)
    run_check: runs.RunCheck | None = None  # the running totals against the day rows
    # the open cases' facts (health_open) against a recount: as missing and extra
    open_missing: list[dict[str, Any]] = field(default_factory=list)
    open_extra: list[dict[str, Any]] = field(default_factory=list)
    open_rows: int = 0

    @property
    def ok(self) -> bool:
        return not self.missing and not self.extra and not self.open_missing and \
            not self.open_extra and (self.run_check is None or self.run_check.ok)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "rows": self.rows, "dirty": self.dirty,
                "missing": self.missing, "extra": self.extra,
                "open_facts": {"rows": self.open_rows, "missing": self.open_missing,
                               "extra": self.open_extra},
                "running_totals": self.run_check.as_dict() if self.run_check else None}


def check(engine: Engine, cal: WorkingCalendar, repeat_days: int = 30,
          limit: int = 20) -> DayCheck:
    """Refresh, then recount every grid day from the cases and compare with ``health_day``
    (grid days still dirty after the refresh are left out: they are counted live)."""
    refresh(engine, cal, repeat_days)
    with _snapshot(engine) as conn:
        conn.execute(text("SET LOCAL statement_timeout = 0"))
        conn.execute(text("CREATE TEMP TABLE health_day_check (LIKE health_day) "
                          "ON COMMIT DROP"))
        _count_all(conn, cal, repeat_days, "health_day_check")
        dirty = int(conn.execute(text("SELECT count(*) FROM health_dirty")).scalar_one())
        clean = ("NOT EXISTS (SELECT 1 FROM health_dirty x WHERE x.grid_code = t.grid_code "
                 "AND t.day BETWEEN (x.from_at AT TIME ZONE :tz)::date "
                 "AND (x.to_at AT TIME ZONE :tz)::date)")
        cols = ("grid_code, category_key, day, closed_day, cases, registered, closed, "
                "closed_on_time, reworked, repeat, work_min")

        def diff(a: str, b: str) -> list[dict[str, Any]]:
            sql = (f"SELECT * FROM (SELECT {cols} FROM {a} t WHERE {clean} EXCEPT "
                   f"SELECT {cols} FROM {b} t WHERE {clean}) d "
                   "ORDER BY grid_code, day, category_key LIMIT :limit")
            return [{k: (str(v) if k in ("day", "closed_day") else v) for k, v in r.items()}
                    for r in conn.execute(text(sql), {"tz": cal.timezone, "limit": limit})
                    .mappings()]

        missing, extra = diff("health_day_check", "health_day"), diff("health_day",
                                                                      "health_day_check")
        rows = int(conn.execute(text("SELECT count(*) FROM health_day")).scalar_one())
        run_check = runs.check_on(conn, "health_day", limit)
        conn.execute(text("CREATE TEMP TABLE health_open_check (LIKE health_open INCLUDING "
                          "ALL) ON COMMIT DROP"))
        conn.execute(text(open_count_sql(_OPEN_ALL, "health_open_check")),
                     {"repeat_days": repeat_days})
        open_clean = ("NOT EXISTS (SELECT 1 FROM health_dirty x WHERE x.grid_code = "
                      "t.grid_code AND (t.created_at AT TIME ZONE :tz)::date BETWEEN "
                      "(x.from_at AT TIME ZONE :tz)::date AND (x.to_at AT TIME ZONE :tz)::date)")

        def open_diff(a: str, b: str) -> list[dict[str, Any]]:
            sql = (f"SELECT * FROM (SELECT * FROM {a} t WHERE {open_clean} EXCEPT "
                   f"SELECT * FROM {b} t WHERE {open_clean}) d ORDER BY case_id LIMIT :limit")
            return [dict(r) for r in conn.execute(text(sql), {"tz": cal.timezone,
                                                              "limit": limit}).mappings()]

        open_missing = open_diff("health_open_check", "health_open")
        open_extra = open_diff("health_open", "health_open_check")
        open_rows = int(conn.execute(text("SELECT count(*) FROM health_open")).scalar_one())
        conn.rollback()
    return DayCheck(rows, dirty, missing, extra, run_check, open_missing, open_extra,
                    open_rows)
