"""Evaluations of a period: every party of a kind scored (a ranking), or one party explained
down to the cases behind each figure — both from the same facts and the same counting, with
and without the approved appeals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, text

from gridcore.calendar import WorkingCalendar
from gridcore.errors import NotFound, ValidationError
from gridcore.evaluation import EvaluationModel, Kind, Period
from gridcore.evaluation.model import OPTIONAL_DATA
from gridcore.health import ScoreTable, score_grids
from layers.evaluation import groups, store
from layers.evaluation.facts import fact_params, load_facts, stored_source
from layers.evaluation.patrol import patrol_columns

AREA_LEVELS = {"district": 6, "street": 9, "community": 12}


@dataclass
class Evaluation:
    """One kind (and area level) for one period: parties, names, the scores after and before
    appeals, the counts behind them, and what could not be counted."""

    kind: Kind
    period: Period
    level: str | None
    keys: list[str]
    names: dict[str, str]
    after: ScoreTable
    before: ScoreTable
    counts: dict[str, dict[str, float]]
    counts_before: dict[str, dict[str, float]]
    no_data: dict[str, str] = field(default_factory=dict)  # indicator → why
    members: dict[str, list[int]] = field(default_factory=dict)  # one party's cases


def check_level(kind: str, level: str | None) -> str | None:
    if kind != "area":
        return None
    level = level or "street"
    if level not in AREA_LEVELS:
        raise ValidationError(f"area evaluations are by {', '.join(AREA_LEVELS)}, not "
                              f"{level!r}", field="level", value=level,
                              allowed=list(AREA_LEVELS))
    return level


def parties(conn: Connection, kind: str, level: str | None) -> dict[str, str]:
    """Every party of the kind with its name: departments, areas of the level, workers."""
    if kind == "department":
        sql, params = "SELECT code, name FROM department ORDER BY code", {}
    elif kind == "area":
        sql = "SELECT code, name FROM admin_area WHERE length(code) = :n ORDER BY code"
        params = {"n": AREA_LEVELS[str(level)]}
    else:
        sql, params = "SELECT code, name FROM grid_worker WHERE active ORDER BY code", {}
    return {r[0]: r[1] for r in conn.execute(text(sql), params)}


def _extra(conn: Connection, kind: str, window: Any, cal: WorkingCalendar,
           model: EvaluationModel) -> dict[str, Any]:
    if kind == "department":  # whistles and assisting tasks are counted by their own time
        return {"start": window.start, "end": window.end}
    if kind != "worker":
        return {}
    return {"verify_min": cal.limit_minutes(model.verify_limit)}


def _score(kind: Kind, period: Period, level: str | None, names: dict[str, str],
           counts: dict[str, dict[str, float]], before: dict[str, dict[str, float]],
           extra_columns: dict[str, np.ndarray], no_data: dict[str, str]) -> Evaluation:
    keys = sorted(set(names) | set(counts))
    model = kind.model

    def table(counted: dict[str, dict[str, float]]) -> ScoreTable:
        cols = groups.columns(kind.key, keys, counted)
        cols.update(extra_columns)  # in the order of keys already
        for measure in kind.measures:  # data the city does not record: undefined, not zero
            if measure.key in no_data and measure.requires:
                for name in OPTIONAL_DATA[measure.requires]:
                    cols[name] = np.full(len(keys), np.nan)
        return score_grids(model, keys, cols)

    return Evaluation(kind, period, level, keys, {k: names.get(k, k) for k in keys},
                      table(counts), table(before), counts, before, no_data)


def _no_data(conn: Connection, kind: Kind, model: EvaluationModel,
             keys: list[str], window: Any) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    no_data: dict[str, str] = {}
    extra: dict[str, np.ndarray] = {}
    for measure in kind.measures:
        if measure.requires == "patrol":
            found = patrol_columns(conn, model.patrol, keys, window)
            if found is None:
                no_data[measure.key] = "no patrol data: no patrol track table " \
                                       f"({model.patrol.get('table')}) in this database"
            elif keys and np.isnan(found["grid_m2"]).all():
                no_data[measure.key] = "no patrol data: no account of the phone app is " \
                                       "linked to " + ("this worker" if len(keys) == 1 else
                                                       "any of these workers") + \
                                       " (gridcore users add --worker-code)"
            else:
                extra.update(found)
    return no_data, extra


def evaluate(engine: Engine, model: EvaluationModel, period: Period, cal: WorkingCalendar,
             wanted: list[tuple[str, str | None]]) -> dict[str, Evaluation]:
    """Every party of each (kind, level) in ``wanted`` — one cohort of facts for all."""
    window = period.window(cal.timezone)
    stored = store.refresh(engine, cal, model)
    out = {}
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL enable_mergejoin = off"))
        # the stored facts of one kind are counted inline; more kinds share a table of them
        source = None
        if stored and len(wanted) == 1:
            source = stored_source(conn, window, cal, model)
        else:
            load_facts(conn, window, cal, model, stored=stored)
        for kind_key, level in wanted:
            kind, level = model.kind(kind_key), check_level(kind_key, level)
            digits = AREA_LEVELS.get(str(level), 0)
            extra = _extra(conn, kind_key, window, cal, model)
            names = parties(conn, kind_key, level)
            after, before = groups.count_both(conn, kind_key, digits, extra=extra,
                                              source=source)
            keys = sorted(set(names) | set(after))
            no_data, extra_cols = _no_data(conn, kind, model, keys, window)
            out[f"{kind_key}:{level}" if level else kind_key] = _score(
                kind, period, level, names, after, before, extra_cols, no_data)
    return out


def _cohort_filter(conn: Connection, kind: str, level: str | None, code: str,
                   stored: bool = False, reach: Any = None, end: Any = None
                   ) -> tuple[str, dict[str, Any]]:
    """One party's cohort: SQL over the case (``c.``), or over the stored facts (``f.``)."""
    if kind == "department" and stored:
        # its cases, those it sent back, and those it was called to (吹哨) or assists (协同):
        # fetched first by index, then read by case id
        cases = [r[0] for r in conn.execute(text(
            "SELECT case_id FROM case_eval_fact WHERE department_code = :p "
            "AND created_at >= :reach AND created_at < :end UNION "
            "SELECT case_id FROM case_eval_fact WHERE send_back_by IS NOT NULL "
            "AND created_at >= :reach AND created_at < :end "
            "AND send_back_by @> ARRAY[CAST(:p AS text)] UNION "
            "SELECT case_id FROM case_whistle WHERE department_code = :p UNION "
            "SELECT case_id FROM case_task WHERE department_code = :p"),
            {"p": code, "reach": reach, "end": end})]
        return "AND f.case_id = ANY(:party_cases)", {"party_cases": cases}
    row = "f" if stored else "c"
    if kind == "department":
        return ("AND (c.department_code = :party_code OR (c.refused_departments <> '{}' "
                "AND c.refused_departments @> ARRAY[CAST(:party_code AS varchar)]) "
                "OR EXISTS (SELECT 1 FROM case_whistle w WHERE w.case_id = c.id "
                "AND w.department_code = :party_code) "
                "OR EXISTS (SELECT 1 FROM case_task k WHERE k.case_id = c.id "
                "AND k.department_code = :party_code))", {"party_code": code})
    if kind == "area":
        return f"AND {row}.{level}_code = :party_code", {"party_code": code}
    grids = [r[0] for r in conn.execute(text(
        "SELECT code FROM unit_grid WHERE gen_to IS NULL AND :w = ANY(worker_codes)"),
        {"w": code})]
    return f"AND {row}.grid_code = ANY(:party_grids)", {"party_grids": grids}


def explain(engine: Engine, model: EvaluationModel, period: Period, cal: WorkingCalendar,
            kind_key: str, code: str, level: str | None = None) -> Evaluation:
    """One party: its figures (after and before appeals) and the cases behind each count.
    Scores use target normalisation only, so one party's score needs no other party."""
    kind, level = model.kind(kind_key), check_level(kind_key, level)
    digits = AREA_LEVELS.get(str(level), 0)
    window = period.window(cal.timezone)
    stored = store.refresh(engine, cal, model)
    with engine.begin() as conn:
        names = parties(conn, kind_key, level)
        if code not in names:
            raise NotFound(f"no {level or kind_key} {code!r}", kind=kind_key, code=code)
        where, params = _cohort_filter(conn, kind_key, level, code, stored,
                                       window.start - timedelta(days=model.reach_days),
                                       window.end)
        source = None
        if stored:
            source = stored_source(conn, window, cal, model, where, params)
        else:
            load_facts(conn, window, cal, model, where, params)
        extra = _extra(conn, kind_key, window, cal, model)
        after, before, listed = groups.explained(conn, kind_key, code, digits, extra, source)
        no_data, extra_cols = _no_data(conn, kind, model, [code], window)
    result = _score(kind, period, level, {code: names[code]}, after, before, extra_cols,
                    no_data)
    result.members = listed
    return result


def fact_parameters(engine: Engine, model: EvaluationModel, period: Period,
                    cal: WorkingCalendar) -> dict[str, Any]:
    """The parameters the fact query runs with (for tests and the benchmark's EXPLAIN)."""
    with engine.connect() as conn:
        return fact_params(conn, period.window(cal.timezone), cal, model)
