"""The facts behind every evaluation figure: one row per case of the period's cohort
(``sql/facts.sql``) in a temporary table, counted per party by :mod:`layers.evaluation.groups`.

Working time is counted in SQL against the city's calendar passed in as arrays (the same
arrays and working-minute expression as city health, ``layers.health.queries``), so holidays,
make-up days, working hours and parked time are those the case clocks use.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from importlib import resources
from typing import Any

from sqlalchemy import Connection, text

from gridcore.calendar import WorkingCalendar
from gridcore.evaluation import EvaluationModel
from gridcore.health import Window
from gridcore.taxonomy import LimitUnit, Stage, TimeLimit
from layers.health.queries import calendar_params, cumulative

_WORKING = (LimitUnit.WORKING_HOURS, LimitUnit.WORKING_DAYS)
# instant name → its SQL expression in the "base" row
INSTANTS = {"reg": "b.reg_at", "closed": "b.closed_at", "disp": "b.disp_at", "fb": "b.fb_at",
            "rep": "b.rep_at", "ver": "b.ver_at", "chk": "b.chk_at",
            "start": "CAST(:start AS timestamptz)", "end": "CAST(:end AS timestamptz)"}


@cache
def _sql_file(name: str) -> str:
    return (resources.files("layers.evaluation") / "sql" / f"{name}.sql").read_text("utf-8")


def _minutes(t: Any) -> float:
    return float(t.hour * 60 + t.minute + t.second / 60)


def _inline(cal: WorkingCalendar, expr: str) -> str:
    """Cumulative working minutes at the instant ``expr`` (inline, for parked intervals)."""
    local = f"(({expr}) AT TIME ZONE :tz)"
    day = f"({local}::date - cal.first + 1)"
    tod = f"(date_part('epoch', {local}::time) / 60.0)"
    intra = " + ".join(f"least(greatest({tod} - {_minutes(a)}, 0), "
                       f"{_minutes(b) - _minutes(a)})" for a, b in cal.hours)
    return f"(cal.cum[{day}] + CASE WHEN cal.workday[{day}] THEN {intra} ELSE 0 END)"


def _parked(cal: WorkingCalendar, start: str, end: str, working: str) -> str:
    """Parked (挂账) minutes inside [start, end): the recorded intervals and a still open one,
    clipped to the span; working minutes when ``working`` holds, else calendar minutes."""
    return f"""CASE WHEN b.parked_intervals = '[]'::jsonb AND b.parked_since IS NULL THEN 0
       ELSE coalesce((SELECT sum(CASE WHEN {working}
                                      THEN {_inline(cal, 'u.pe')} - {_inline(cal, 'u.ps')}
                                      ELSE date_part('epoch', u.pe - u.ps) / 60.0 END)
            FROM (SELECT greatest(v.ps, {start}) AS ps, least(v.pe, {end}) AS pe
                  FROM (SELECT (e ->> 0)::timestamptz AS ps, (e ->> 1)::timestamptz AS pe
                        FROM jsonb_array_elements(b.parked_intervals) AS e
                        UNION ALL
                        SELECT b.parked_since, CAST('infinity' AS timestamptz)
                        WHERE b.parked_since IS NOT NULL) v) u
            WHERE u.pe > u.ps), 0) END"""


_ACTIONS = ", ".join(f"'{a}'" for a in ("report", "verify", "void", "register", "imported",
                                         "dispatch", "feed_back", "check", "rework", "extend",
                                         "send_back"))


def fragment(name: str) -> str:
    """A piece of SQL shared by facts.sql and store.sql (its heading comment left out):
    ``inputs`` (the calendar and limit CTEs), ``limits`` (the "base" step's limit columns)."""
    return "\n".join(line for line in _sql_file(name).splitlines()
                     if not line.startswith("--"))


def whole_history_aggregates() -> list[str]:
    """history.sql's per-case aggregates that do not depend on the window's start (what the
    stored facts keep of the whole history; store.sql adds the reworks' and send-backs' times)."""
    section = _sql_file("history").split("\n-- @aggregates\n", 1)[1].split("\n-- @", 1)[0]
    return [a for a in section.strip().split(",\n") if ":start" not in a]


def history_sql(shape: str) -> str:
    """The cohort's history: ``range`` (a whole city: one scan of the cohort's id range) or
    ``probe`` (one party: one index probe per case)."""
    sections = dict(part.split("\n", 1) for part in
                    _sql_file("history").split("\n-- @")[1:])
    aggregates = sections["aggregates"].strip().replace("\n", "\n    ")
    return sections[shape].strip().format(aggregates=aggregates, actions=_ACTIONS)


def timed_laterals(cal: WorkingCalendar, instants: dict[str, str]
                   ) -> tuple[str, dict[str, str]]:
    """Lateral joins giving each instant's local day and minute of day, and per instant
    ``w_<name>`` its cumulative working minutes (the "timed" step of facts.sql and store.sql)."""
    laterals = []
    marks: dict[str, str] = {}
    for name, expr in instants.items():
        laterals.append(
            f"CROSS JOIN LATERAL (SELECT ({expr}) AT TIME ZONE :tz AS l) AS {name}_l\n"
            f"    CROSS JOIN LATERAL (SELECT {name}_l.l::date - cal.first + 1 AS {name}_day, "
            f"date_part('epoch', {name}_l.l::time) / 60.0 AS {name}_tod) AS {name}_x")
        marks[f"w_{name}"] = cumulative(cal, f"{name}_x.{name}")
    return "\n    ".join(laterals), marks


@cache
def fact_sql(cal: WorkingCalendar, party_filter: str = "") -> str:
    """The cohort's facts recounted from its history (sql/facts.sql)."""
    laterals, marks = timed_laterals(cal, INSTANTS)
    end = "CAST(:end AS timestamptz)"
    return _sql_file("facts").format(
        instants=laterals, party_filter=party_filter, inputs=fragment("inputs"),
        limits=fragment("limits"),
        hist=history_sql("probe" if party_filter else "range"),
        parked_reg=_parked(cal, "b.reg_at", f"least(b.closed_at, {end})", "b.working"),
        parked_disp=_parked(cal, "b.disp_at", f"least(b.fb_at, {end})", "b.h_working"),
        **marks)


@cache
def window_sql(cal: WorkingCalendar, party_filter: str = "") -> str:
    """The cohort's facts read from the stored per-case facts (sql/window.sql): the working
    time used by the window's end or start only for a case still open at its end."""
    end, start = "CAST(:end AS timestamptz)", "CAST(:start AS timestamptz)"

    def parked(since: str, working: str) -> str:
        return _parked(cal, since, end, working).replace("b.parked_", "t.parked_")

    def used(at: str, since: str, working: str, park: bool) -> str:
        minus = f" - {parked(since, working)}" if park else ""
        return (f"(CASE WHEN {working} THEN {_inline(cal, at)} - {_inline(cal, since)}{minus} "
                f"ELSE date_part('epoch', {at} - {since}) / 60.0{minus} END)")

    open_close = "(t.reg_before_end AND (t.closed_end IS NULL OR t.closed_end >= :end))"
    open_handle = "(t.disp_before_end AND (t.fb_at IS NULL OR t.fb_at >= :end))"
    return _sql_file("window").format(
        party_filter=party_filter,
        used_close_end=f"CASE WHEN {open_close} THEN "
                       f"{used(end, 't.reg_at', 't.working', True)} END",
        used_close_start=f"CASE WHEN {open_close} THEN "
                         f"{used(start, 't.reg_at', 't.working', False)} END",
        used_handle_end=f"CASE WHEN {open_handle} THEN "
                        f"{used(end, 't.disp_at', 't.h_working', True)} END",
        used_handle_start=f"CASE WHEN {open_handle} THEN "
                          f"{used(start, 't.disp_at', 't.h_working', False)} END")


def limit_params(conn: Connection, cal: WorkingCalendar) -> dict[str, Any]:
    """Per class: the whole-case limit (立案→结案, the sum of the stage limits) and the
    handling and check limits, each in minutes and whether it runs on working time."""
    keys, total, working, h_min, h_work, k_min, k_work = [], [], [], [], [], [], []
    for key, limits in conn.execute(text("SELECT key, limits FROM category")):
        parsed = {s: TimeLimit.parse(limits[s.value]) for s in Stage if s.value in limits}
        handle, check = parsed.get(Stage.HANDLE), parsed.get(Stage.CHECK)
        keys.append(key)
        total.append(sum(cal.limit_minutes(v) for v in parsed.values()))
        working.append(handle is None or handle.unit in _WORKING)
        h_min.append(cal.limit_minutes(handle) if handle else None)
        h_work.append(handle is None or handle.unit in _WORKING)
        k_min.append(cal.limit_minutes(check) if check else None)
        k_work.append(check is None or check.unit in _WORKING)
    return {"cat_keys": keys, "cat_minutes": total, "cat_working": working,
            "h_minutes": h_min, "h_working": h_work, "k_minutes": k_min, "k_working": k_work}


def fact_params(conn: Connection, window: Window, cal: WorkingCalendar,
                model: EvaluationModel) -> dict[str, Any]:
    reach = window.start - timedelta(days=model.reach_days)
    verify = model.verify_limit
    return {"start": window.start, "end": window.end, "reach": reach, "tz": cal.timezone,
            "day_minutes": cal.day_minutes, "verify_min": cal.limit_minutes(verify),
            "verify_working": verify.unit in _WORKING,
            **calendar_params(cal, Window(reach, window.end)), **limit_params(conn, cal)}


def stored_source(conn: Connection, window: Window, cal: WorkingCalendar,
                  model: EvaluationModel, party_filter: str = "",
                  params: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """The cohort's facts as a query over the stored per-case facts, with its parameters,
    for counting inline (layers.evaluation.groups ``source``) instead of a temporary table."""
    return window_sql(cal, party_filter), {**fact_params(conn, window, cal, model),
                                           **(params or {})}


def load_facts(conn: Connection, window: Window, cal: WorkingCalendar, model: EvaluationModel,
               party_filter: str = "", params: dict[str, Any] | None = None,
               stored: bool = False) -> int:
    """Fill the temporary table ``eval_fact`` (dropped at commit: call inside a transaction)
    with the cohort's facts — from the stored per-case facts when ``stored`` (the caller made
    sure they are current: layers.evaluation.store.refresh), else recounted from the history;
    ``party_filter`` narrows the cohort (SQL over ``c.``, the case, for the recount; over
    ``f.``, the stored facts, otherwise), with its parameters in ``params``. Returns the
    number of rows."""
    conn.execute(text("DROP TABLE IF EXISTS pg_temp.eval_fact"))
    body = window_sql(cal, party_filter) if stored else fact_sql(cal, party_filter)
    sql = "CREATE TEMP TABLE eval_fact ON COMMIT DROP AS\n" + body
    conn.execute(text(sql), {**fact_params(conn, window, cal, model), **(params or {})})
    return int(conn.execute(text("SELECT count(*) FROM eval_fact")).scalar_one())
