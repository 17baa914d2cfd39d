"""Counting the facts (``eval_fact``) per party: departments, areas of a level, grid workers —
and, for one party's explanation, the cases behind each count (the same conditions: the
counts and their case lists come from one definition, :data:`CONDITIONS`).

Each count runs with the approved appeals (申诉) applied or without them (the "before
appeals" figures): an approved appeal waives one penalty of one case for one party —
``department/D_WATER/overdue`` takes that case out of that department's timeliness counts and
nobody else's.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from sqlalchemy import Connection, text

from gridcore.evaluation import AGGREGATES

# The flags every count reads, per case, with its waivers (:appeals false: none). "columns":
# the fact columns a kind's conditions read beside the flags (a department's rows are read
# three times — its cases, its send-backs, its calls and tasks — so they carry no more).
_FLAGS = """
SELECT {columns}, coalesce(w.waived, '{{}}') AS waived,
       f.handled OR (f.unhandled_at_end AND f.dispatched AND f.handle_used_end > f.h_limit
                     AND f.handle_used_start <= f.h_limit) AS due,
       f.handle_min <= f.h_limit AS handled_in_time,
       f.closed OR (f.open_at_end AND f.close_used_end > f.limit_min
                    AND f.close_used_start <= f.limit_min) AS close_due,
       f.close_min <= f.limit_min AS closed_in_time
FROM eval_fact f
LEFT JOIN (SELECT case_id, array_agg(party_kind || '/' || party_code || '/' || penalty)
                  AS waived
           FROM appeal WHERE state = 'approved' AND CAST(:appeals AS boolean)
           GROUP BY case_id) w ON w.case_id = f.id
"""
_DEPARTMENT_COLUMNS = ("f.id, f.department_code, f.refused, f.reworks, f.handled, "
                       "f.dispatched_in, f.closed, f.caller_case, f.cb_reached, f.cb_resolved, "
                       "f.cb_satisfied")

# A department's rows, part by part: its own cases, the send-backs (退回) it made, and its
# part beside the lead — a whistle's call (吹哨报到) blown in the period, reported by its
# deadline or not; an assisting task (协同) given in it, done by its deadline or not (a
# released task is not the department's to answer for). The part's name, or None where the
# rows carry it in their column "part".
_DEPARTMENT_PARTS: list[tuple[str | None, str]] = [
    ("case", """
    SELECT x.*, x.department_code AS key, 'case' AS part,
           ('department/' || x.department_code || '/overdue') = ANY(x.waived) AS w_overdue,
           ('department/' || x.department_code || '/rework') = ANY(x.waived) AS w_rework,
           false AS w_send_back, CAST(NULL AS boolean) AS ok
    FROM x WHERE x.department_code IS NOT NULL"""),
    ("refusal", """
    SELECT x.*, r AS key, 'refusal' AS part, false AS w_overdue, false AS w_rework,
           ('department/' || r || '/send_back') = ANY(x.waived) AS w_send_back,
           CAST(NULL AS boolean) AS ok
    FROM x, unnest(x.refused) AS r WHERE x.refused <> '{}'"""),
    (None, """
    SELECT x.*, p.department_code AS key, p.part, false AS w_overdue, false AS w_rework,
           false AS w_send_back, p.ok
    FROM x JOIN (
        SELECT case_id, department_code, 'whistle' AS part, blown_at AS at,
               coalesce(reported_at <= deadline_at, false) AS ok FROM case_whistle
        UNION ALL
        SELECT case_id, department_code, 'task', created_at,
               coalesce(done_at <= deadline_at, false) FROM case_task WHERE state <> 'released'
    ) p ON p.case_id = x.id AND p.at >= :start AND p.at < :end"""),
]

# Per kind: the rows one party's figures are counted over (a CTE "rows" with a column "key"
# and the waiver flags), then aggregate → the condition a row must meet to count.
_ROWS = {
    "department": f"""
WITH x AS ({_FLAGS.format(columns=_DEPARTMENT_COLUMNS)}), rows AS ({
    " UNION ALL ".join(sql for _, sql in _DEPARTMENT_PARTS)}
)""",
    "area": f"""
WITH x AS ({_FLAGS.format(columns="f.*")}), rows AS (
    SELECT x.*, left(x.grid_code, :n) AS key, 'case' AS part,
           ('area/' || left(x.grid_code, :n) || '/overdue') = ANY(x.waived) AS w_overdue,
           ('area/' || left(x.grid_code, :n) || '/rework') = ANY(x.waived) AS w_rework
    FROM x
)""",
    "worker": f"""
WITH x AS ({_FLAGS.format(columns="f.*")}), roles AS (
    SELECT x.reporter AS key, x.*, 'report' AS part FROM x WHERE x.worker_report
    UNION ALL SELECT x.verifier, x.*, 'verify' FROM x WHERE x.verified_in
    UNION ALL SELECT x.checker, x.*, 'check' FROM x WHERE x.checked_in
    UNION ALL
    SELECT w, x.*, 'grid' FROM x
    JOIN unit_grid g ON g.code = x.grid_code AND g.gen_to IS NULL, unnest(g.worker_codes) w
    WHERE x.registered
), rows AS (
    SELECT roles.*, ('worker/' || key || '/voided') = ANY(waived) AS w_voided,
           ('worker/' || key || '/late_verify') = ANY(waived) AS w_verify,
           ('worker/' || key || '/late_check') = ANY(waived) AS w_check,
           ('worker/' || key || '/missed') = ANY(waived) AS w_missed
    FROM roles WHERE key IN (SELECT code FROM grid_worker)
)""",
}

CONDITIONS: dict[str, dict[str, str]] = {
    "department": {
        "due": "part = 'case' AND due",
        "due_timed": "part = 'case' AND due AND NOT w_overdue",
        "handled": "part = 'case' AND handled",
        "handled_on_time": "part = 'case' AND handled AND handled_in_time",
        "handled_late": "part = 'case' AND handled AND NOT handled_in_time AND NOT w_overdue",
        "overdue_unhandled": "part = 'case' AND due AND NOT handled AND NOT w_overdue",
        "reworked": "part = 'case' AND reworks > 0 AND NOT w_rework",
        "dispatched": "part = 'case' AND dispatched_in",
        "received": "(part = 'case' AND dispatched_in) OR part = 'refusal'",
        "sent_back": "part = 'refusal'",
        "sent_back_wrongful": "part = 'refusal' AND key = department_code AND NOT w_send_back",
        "closed": "part = 'case' AND closed",
        "close_due": "part = 'case' AND close_due",
        "caller_cases": "part = 'case' AND caller_case",
        "callbacks_reached": "part = 'case' AND caller_case AND cb_reached",
        "callbacks_resolved": "part = 'case' AND caller_case AND cb_reached AND cb_resolved",
        "callbacks_satisfied": "part = 'case' AND caller_case AND cb_reached AND cb_satisfied",
        "whistles": "part = 'whistle'",
        "whistles_on_time": "part = 'whistle' AND ok",
        "tasks": "part = 'task'",
        "tasks_on_time": "part = 'task' AND ok",
    },
    "area": {
        "worker_reports": "worker_report",
        "registered": "registered",
        "registered_by_workers": "registered AND reporter_role = 'grid_worker'",
        "close_due": "close_due",
        "close_due_timed": "close_due AND NOT w_overdue",
        "closed": "closed",
        "closed_on_time": "closed AND closed_in_time",
        "reworked": "reworks > 0 AND NOT w_rework",
        "self_handled": "self_handled_in",
        "caller_cases": "caller_case",
        "callbacks_reached": "caller_case AND cb_reached",
        "callbacks_resolved": "caller_case AND cb_reached AND cb_resolved",
        "callbacks_satisfied": "caller_case AND cb_reached AND cb_satisfied",
    },
    "worker": {
        "reports": "part = 'report'",
        "valid_reports": "part = 'report' AND valid",
        "decided_reports": "part = 'report' AND (valid OR (voided AND NOT w_voided))",
        "verified": "part = 'verify'",
        "verified_on_time": "part = 'verify' AND verify_min <= :verify_min",
        "verified_timed": "part = 'verify' AND (verify_min <= :verify_min OR NOT w_verify)",
        "checked": "part = 'check'",
        "checked_on_time": "part = 'check' AND check_min <= k_limit",
        "checked_timed": "part = 'check' AND (check_min <= k_limit OR NOT w_check)",
        "missed": "part = 'grid' AND coalesce(reporter_role, '') <> 'grid_worker' "
                  "AND NOT w_missed",
        "registered_in_grids": "part = 'grid'",
        "self_handled": "part = 'report' AND self_handled_in",
    },
}


# The facts counted: the temporary table eval_fact, or (``source``: SQL and its parameters)
# the stored facts' query inline — one kind counted once needs no table written.
Source = tuple[str, dict[str, Any]] | None


def _from(sql: str, params: dict[str, Any], source: Source) -> tuple[str, dict[str, Any]]:
    if source is None:
        return sql, params
    return sql.replace("FROM eval_fact f", f"FROM ({source[0]}) f"), {**source[1], **params}


def _party(code: str | None) -> str:
    return "" if code is None else "WHERE key = :party"


_WAIVER = re.compile(r"\bw_[a-z_]+\b")


_PART = re.compile(r"\bpart = '([a-z]+)'")


def _on_part(cond: str, part: str | None) -> str:
    """``cond`` over the rows of one part: its tests of the part decided (None: left)."""
    if part is None:
        return cond
    return _PART.sub(lambda m: "true" if m.group(1) == part else "false", cond)


def _count_sql(kind: str, code: str | None, waivers: bool) -> str:
    """The counts per party (the approved appeals applied, then without them; ``waivers``
    false: without them only). A department's parts are counted each on its own, their tests
    of the part decided before a row is read, and summed."""
    conds = list(CONDITIONS[kind].values())
    wanted = ([*conds, *(_WAIVER.sub("false", c) for c in conds)] if waivers
              else [_WAIVER.sub("false", c) for c in conds])
    if kind != "department":
        counts = ", ".join(f"count(*) FILTER (WHERE {c})" for c in wanted)
        return f"{_ROWS[kind]}\nSELECT key, {counts} FROM rows {_party(code)} GROUP BY key"
    parts = []
    for part, rows in _DEPARTMENT_PARTS:
        counts = ", ".join(f"count(*) FILTER (WHERE {_on_part(c, part)}) AS c{i}"
                           for i, c in enumerate(wanted))
        parts.append(f"SELECT key, {counts} FROM ({rows}) r {_party(code)} GROUP BY key")
    sums = ", ".join(f"sum(c{i})" for i in range(len(wanted)))
    flags = _FLAGS.format(columns=_DEPARTMENT_COLUMNS)
    return (f"WITH x AS ({flags})\nSELECT key, {sums} FROM (\n"
            + "\nUNION ALL\n".join(parts) + "\n) k GROUP BY key")


def _any_waiver(conn: Connection) -> bool:
    return bool(conn.execute(text(
        "SELECT EXISTS (SELECT 1 FROM appeal WHERE state = 'approved')")).scalar_one())


def count_both(conn: Connection, kind: str, level_digits: int = 0, code: str | None = None,
               extra: dict[str, Any] | None = None, source: Source = None
               ) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """party → aggregate → count, with the approved appeals applied and without them, in one
    pass over the facts loaded in this transaction (without appeals every waiver is false).
    With no approved appeal at all (the usual month) both are the same counts: counted once,
    without the waivers' flags."""
    names = list(CONDITIONS[kind])
    waivers = _any_waiver(conn)
    sql, params = _from(_count_sql(kind, code, waivers),
                        {"appeals": waivers, "n": level_digits, "party": code, **(extra or {})},
                        source)
    result = conn.execute(text(sql), params)
    with_appeals: dict[str, dict[str, float]] = {}
    without: dict[str, dict[str, float]] = {}
    for row in result:
        if row[0] is None:
            continue
        values = [float(v or 0) for v in row[1:]]
        with_appeals[row[0]] = dict(zip(names, values[:len(names)], strict=True))
        without[row[0]] = dict(zip(names, values[-len(names):], strict=True))
    return with_appeals, without


def count(conn: Connection, kind: str, appeals: bool, level_digits: int = 0,
          code: str | None = None, extra: dict[str, Any] | None = None
          ) -> dict[str, dict[str, float]]:
    """party → aggregate → count (``appeals``: with the approved appeals applied)."""
    after, before = count_both(conn, kind, level_digits, code, extra)
    return after if appeals else before


def members(conn: Connection, kind: str, code: str, level_digits: int = 0,
            extra: dict[str, Any] | None = None, source: Source = None
            ) -> dict[str, list[int]]:
    """aggregate → the ids of the cases it counts, for one party (appeals applied)."""
    flags = ", ".join(f"({cond}) AS {name}" for name, cond in CONDITIONS[kind].items())
    sql = f"{_ROWS[kind]}\nSELECT id, {flags} FROM rows {_party(code)} ORDER BY id"
    sql, params = _from(sql, {"appeals": True, "n": level_digits, "party": code,
                              **(extra or {})}, source)
    result = conn.execute(text(sql), params)
    out: dict[str, list[int]] = {name: [] for name in CONDITIONS[kind]}
    names = list(CONDITIONS[kind])
    for row in result:
        for name, flag in zip(names, row[1:], strict=True):
            if flag:
                out[name].append(int(row[0]))
    return out


def explained(conn: Connection, kind: str, code: str, level_digits: int = 0,
              extra: dict[str, Any] | None = None, source: Source = None
              ) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]],
                         dict[str, list[int]]]:
    """One party in one pass over its rows: its counts with the approved appeals applied and
    without them (as :func:`count_both`) and the cases behind each (as :func:`members`)."""
    names = list(CONDITIONS[kind])
    after = [f"({cond}) AS a_{name}" for name, cond in CONDITIONS[kind].items()]
    before = [f"({_WAIVER.sub('false', cond)}) AS b_{name}"
              for name, cond in CONDITIONS[kind].items()]
    sql, params = _from(f"{_ROWS[kind]}\nSELECT id, {', '.join(after + before)} FROM rows "
                        f"{_party(code)} ORDER BY id",
                        {"appeals": True, "n": level_digits, "party": code, **(extra or {})},
                        source)
    listed: dict[str, list[int]] = {name: [] for name in names}
    with_appeals = dict.fromkeys(names, 0.0)
    without = dict.fromkeys(names, 0.0)
    rows = 0
    for row in conn.execute(text(sql), params):
        rows += 1
        flags = row[1:]
        for i, name in enumerate(names):
            if flags[i]:
                listed[name].append(int(row[0]))
                with_appeals[name] += 1
            if flags[len(names) + i]:
                without[name] += 1
    if not rows:
        return {}, {}, listed
    return {code: with_appeals}, {code: without}, listed


def columns(kind: str, keys: list[str], counted: dict[str, dict[str, float]]
            ) -> dict[str, np.ndarray]:
    """The counts as columns in the order of ``keys`` (absent = 0)."""
    return {name: np.array([counted.get(k, {}).get(name, 0.0) for k in keys], dtype=float)
            for name in AGGREGATES[kind] if name in CONDITIONS[kind]}
