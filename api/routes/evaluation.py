"""The evaluation centre (考评中心) over HTTP: the indicators as data, rankings of departments,
areas and grid workers per period, one party explained down to the cases behind each figure,
and appeals (申诉).

Who may call which route is the access table's (api/security/policy.py); who then sees which
party is decided here:

- GET /evaluation — every signed-in role;
- GET /evaluation/department, /evaluation/area — every role (the public ranking); an
  area-scoped user sees the areas in their areas;
- GET /evaluation/worker — dispatchers, managers, analysts, admins (in their areas); a grid
  worker sees their own row;
- GET /evaluation/{kind}/{code} — the party itself (a department's handlers, the worker), or
  dispatchers, managers, analysts and admins whose areas hold it; others get a 404;
- GET /evaluation/appeals[/{id}] — as the party's details (each appeal says whether the caller
  may decide it: ``may_decide``);
- POST /evaluation/appeals — the party (department handler, worker), a manager in whose areas
  it lies, an admin;
- POST /evaluation/appeals/{id}/approve|reject — managers and admins, never the filer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import Engine, text

from api.deps import EngineDep, ReadEngineDep, SettingsDep
from api.i18n import translate
from api.naming import indicator_name
from api.ogc import base_url
from api.pages import request_language
from api.security.identity import Viewer
from gridcore.calendar import city_time
from gridcore.errors import Forbidden, NotFound
from gridcore.evaluation import AGGREGATES, EvaluationModel, Period
from gridcore.evaluation.appeals import AppealRules, filing_closes_at, may_decide, may_file_for
from gridcore.security.access import Principal, Role
from gridcore.settings import Settings
from layers.evaluation.appeals import (
    decide_appeal,
    file_appeal,
    get_appeal,
    list_appeals,
    penalised,
)
from layers.evaluation.evaluate import Evaluation, evaluate, explain
from layers.evaluation.imported import imported_in

router = APIRouter(prefix="/evaluation", tags=["evaluation 考评"])
PeriodQ = Annotated[str, Query(description="2026-11, 2026-Q4, 2026 or 2026-11-03/2026-11-17")]
LevelQ = Annotated[str | None, Query(description="area level: district | street | community")]
Kind = Literal["department", "area", "worker"]
MAX_LISTED = 500
_OVERSEERS = (Role.DISPATCHER, Role.MANAGER, Role.ANALYST, Role.ADMIN)


@cache
def _default_model() -> EvaluationModel:
    return EvaluationModel.default()


def evaluation_model(settings: Settings) -> EvaluationModel:
    path = settings.evaluation.evaluation_indicators
    return _model_from(str(path)) if path else _default_model()


@cache
def _model_from(path: str) -> EvaluationModel:
    import json
    from pathlib import Path

    return EvaluationModel.from_dict(json.loads(Path(path).read_text("utf-8")))


def source_note(model: EvaluationModel, lang: str) -> str:
    """Where the indicators come from, in the caller's language: the shipped indicators' note
    from the message catalogue; a city's own indicator file's note as the city wrote it."""
    if model.source_note == _default_model().source_note:
        return translate(lang, "briefing.source_note")
    return model.source_note


def _opt(x: float | None) -> float | None:
    return None if x is None or np.isnan(x) else round(float(x), 6)


def _worker_areas(engine: Engine, code: str) -> list[str]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(text(
            "SELECT code FROM unit_grid WHERE gen_to IS NULL AND :w = ANY(worker_codes)"),
            {"w": code})]


def _in_areas(principal: Principal, codes: list[str]) -> bool:
    scope = principal.scope
    return scope.city_wide or any(c.startswith(p) for c in codes for p in scope.area_prefixes)


def may_see_details(engine: Engine, principal: Principal, kind: str, code: str) -> bool:
    """The party itself, or someone overseeing it (see the module's table)."""
    if principal.unscoped or principal.role is Role.ADMIN:
        return True
    if kind == "department":
        if principal.role is Role.DEPARTMENT_HANDLER:
            return principal.department == code
        return principal.role in _OVERSEERS and principal.scope.city_wide
    if kind == "worker" and principal.role is Role.GRID_WORKER:
        return principal.name == code
    if principal.role not in _OVERSEERS:
        return False
    return _in_areas(principal, [code] if kind == "area" else _worker_areas(engine, code))


def _visible_rows(engine: Engine, principal: Principal, kind: str, keys: list[str]
                  ) -> set[str]:
    """The parties of a ranking the caller sees."""
    if principal.unscoped or principal.scope.city_wide and principal.role in _OVERSEERS:
        return set(keys)
    if kind == "department":
        return set(keys)  # the public ranking
    if kind == "area":
        if principal.scope.city_wide:
            return set(keys)
        return {k for k in keys if _in_areas(principal, [k])}
    if principal.role is Role.GRID_WORKER:
        return {principal.name} & set(keys)
    if principal.role not in _OVERSEERS:
        raise Forbidden("the grid workers' ranking is for dispatchers, managers, analysts "
                        "and admins", action="evaluation.read")
    return {k for k in keys if may_see_details(engine, principal, kind, k)}


def _period(spec: str) -> Period:
    return Period.parse(spec)


def _terms(ev: Evaluation, code: str, lang: str) -> list[dict[str, Any]]:
    after, before = ev.after.explain(code), ev.before.explain(code)
    prior = {t.indicator: t for t in before.terms}
    out = []
    for term in after.terms:
        m = ev.kind.measure(term.indicator)
        out.append({
            "indicator": term.indicator,
            "name": indicator_name(lang, f"{ev.kind.key}.{term.indicator}", m.indicator.name_zh,
                                   m.indicator.name_en, "eval"),
            "term": m.term, "formula": term.formula, "unit": term.unit,
            "direction": term.direction, "weight": term.weight, "value": _opt(term.value),
            "value_before_appeals": _opt(prior[term.indicator].value),
            "normalised": _opt(term.normalised) if term.weight else None,
            "contribution": round(term.contribution, 4), "points_lost": round(term.lost, 4),
            "inputs": term.inputs, "penalty": m.penalty, "source": m.source,
            "formula_verified": m.verified, "no_data": ev.no_data.get(term.indicator)})
    return out


def _driver(ev: Evaluation, code: str, lang: str) -> dict[str, Any] | None:
    term = ev.after.explain(code).driver(ev.kind.key)
    if term is None:
        return None
    m = ev.kind.measure(term.indicator)
    return {"indicator": term.indicator, "points_lost": round(term.lost, 3),
            "name": indicator_name(lang, f"{ev.kind.key}.{term.indicator}", m.indicator.name_zh,
                                   m.indicator.name_en, "eval"), "value": _opt(term.value)}


def ranking_rows(ev: Evaluation, lang: str, keys: set[str] | None = None,
                 root: str = "/") -> list[dict[str, Any]]:
    """Parties ranked by score (best first; a party without a score last)."""
    scores, before = ev.after.total, ev.before.total
    order = sorted(range(len(ev.keys)), key=lambda i: (np.isnan(scores[i]), -np.nan_to_num(
        scores[i]), ev.keys[i]))
    rows, rank = [], 0
    for i in order:
        code = ev.keys[i]
        rank += 1
        if keys is not None and code not in keys:
            continue
        values = {m.key: _opt(ev.after.values[m.key][i]) for m in ev.kind.measures}
        level = f"&level={ev.level}" if ev.level else ""
        rows.append({"rank": rank if not np.isnan(scores[i]) else None, "code": code,
                     "name": ev.names.get(code, code), "score": _opt(scores[i]),
                     "score_before_appeals": _opt(before[i]),
                     "driver": _driver(ev, code, lang), "values": values,
                     "href": f"{root}evaluation/{ev.kind.key}/{code}?period={ev.period}{level}"})
    return rows


@router.get("", summary="The evaluation indicators (考评指标), defined as data")
def indicators(request: Request, settings: SettingsDep, viewer: Viewer) -> dict[str, Any]:
    viewer.require("evaluation.read")
    model = evaluation_model(settings)
    lang = request_language(request)
    return {"source_note": source_note(model, lang), "reach_days": model.reach_days,
            "verify_limit": str(model.verify_limit),
            "appeals": {"window_working_days": settings.evaluation.appeal_window_days,
                        "decision_working_days": settings.evaluation.appeal_decision_days},
            "kinds": {k.key: {"name_zh": k.name_zh, "name_en": k.name_en,
                              "levels": list(k.levels), "penalties": k.penalties,
                              "aggregates": AGGREGATES[k.key],
                              "indicators": [{**m.as_dict(), "name": indicator_name(
                                  lang, f"{k.key}.{m.key}", m.indicator.name_zh,
                                  m.indicator.name_en, "eval")} for m in k.measures]}
                      for k in model.kinds.values()}}


class AppealIn(BaseModel):
    kind: Kind
    party: str = Field(min_length=1, max_length=40, description="department code, area "
                       "code or grid worker code")
    case_id: int = Field(ge=1)
    penalty: str = Field(min_length=1, max_length=16, description="e.g. overdue, rework")
    period: str = Field(description="the period the penalty counts in, e.g. 2026-11")
    reason: str = Field(min_length=1, max_length=2000)
    attachments: list[str] = Field(default_factory=list, max_length=10)


class DecisionIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


def _rules(settings: Settings) -> AppealRules:
    return AppealRules(settings.evaluation.appeal_window_days,
                       settings.evaluation.appeal_decision_days)


_PARTY_NAMES = {"department": "SELECT code, name FROM department WHERE code = ANY(:codes)",
                "area": "SELECT code, name FROM admin_area WHERE code = ANY(:codes)",
                "worker": "SELECT code, name FROM grid_worker WHERE code = ANY(:codes)"}


def _dressed(engine: Engine, viewer: Principal, rows: list[dict[str, Any]]
             ) -> list[dict[str, Any]]:
    """Appeals as a page shows them: the case's number, the party's name, whether the caller
    may decide the appeal now (``may_decide``: a manager or admin, not its filer, while it is
    filed — what deciding checks) and whether the caller filed it (``filed_by_caller``)."""
    numbers = _public_numbers(engine, {a["case_id"] for a in rows})
    names: dict[tuple[str, str], str] = {}
    with engine.connect() as conn:
        for kind, sql in _PARTY_NAMES.items():
            codes = sorted({a["party_code"] for a in rows if a["party_kind"] == kind})
            if codes:
                names.update({(kind, r[0]): r[1]
                              for r in conn.execute(text(sql), {"codes": codes})})
    return [{**a, "public_no": numbers.get(a["case_id"]),
             "party_name": names.get((a["party_kind"], a["party_code"]), a["party_code"]),
             "may_decide": may_decide(viewer, a["state"], a["filed_by"]),
             "filed_by_caller": a["filed_by"] == viewer.name} for a in rows]


@router.get("/appeals", summary="Appeals (申诉) the caller may see")
def appeals(engine: EngineDep, viewer: Viewer, kind: Kind | None = None,
            party: str | None = None,
            state: Literal["filed", "approved", "rejected"] | None = None
            ) -> dict[str, Any]:
    """Newest first; each with the case's number, the party's name and ``may_decide``."""
    viewer.require("evaluation.details")
    rows = [a for a in list_appeals(engine, kind, party, state)
            if may_see_details(engine, viewer, a["party_kind"], a["party_code"])]
    return {"appeals": _dressed(engine, viewer, rows), "count": len(rows)}


@router.post("/appeals", status_code=201, summary="File an appeal (申诉)")
def post_appeal(body: AppealIn, engine: EngineDep, settings: SettingsDep,
                viewer: Viewer) -> dict[str, Any]:
    viewer.require("appeal.file")
    filed = file_appeal(engine, evaluation_model(settings), settings.cases.working_calendar,
                       _rules(settings), viewer, body.kind, body.party, body.case_id,
                       body.penalty, _period(body.period), body.reason, body.attachments)
    return _dressed(engine, viewer, [filed])[0]


@router.get("/appeals/{appeal_id}", summary="One appeal")
def one_appeal(appeal_id: int, engine: EngineDep, viewer: Viewer) -> dict[str, Any]:
    viewer.require("evaluation.details")
    found = get_appeal(engine, appeal_id)
    if not may_see_details(engine, viewer, found["party_kind"], found["party_code"]):
        raise NotFound(f"appeal {appeal_id} does not exist", appeal_id=appeal_id)
    return _dressed(engine, viewer, [found])[0]


@router.post("/appeals/{appeal_id}/{decision}", summary="Approve or reject an appeal")
def decide(appeal_id: int, decision: Literal["approve", "reject"], body: DecisionIn,
           engine: EngineDep, viewer: Viewer) -> dict[str, Any]:
    viewer.require("appeal.decide")
    found = get_appeal(engine, appeal_id)
    if not may_see_details(engine, viewer, found["party_kind"], found["party_code"]):
        raise NotFound(f"appeal {appeal_id} does not exist", appeal_id=appeal_id)
    return _dressed(engine, viewer, [decide_appeal(engine, viewer, appeal_id, decision,
                                                   body.reason)])[0]


@router.get("/{kind}", summary="A ranking of departments, areas or grid workers")
def ranking(request: Request, kind: Kind, engine: ReadEngineDep, settings: SettingsDep,
            viewer: Viewer, period: PeriodQ, level: LevelQ = None) -> dict[str, Any]:
    viewer.require("evaluation.read")
    model, cal = evaluation_model(settings), settings.cases.working_calendar
    p = _period(period)
    ev = next(iter(evaluate(engine, model, p, cal, [(kind, level)]).values()))
    visible = _visible_rows(engine, viewer, kind, ev.keys)
    lang = request_language(request)
    w = p.window(cal.timezone)
    return {"kind": kind, "level": ev.level,
            "period": {"label": str(p), "start": w.start.isoformat(), "end": w.end.isoformat()},
            "count": len(visible), "no_data": ev.no_data, "source_note": source_note(model, lang),
            "imported": _imported(engine, w.start, w.end, lang),
            "parties": ranking_rows(ev, lang, visible, base_url(request) + "/")}


def _imported(engine: Engine, start: datetime, end: datetime, lang: str) -> dict[str, Any] | None:
    """The window's cases from a legacy system, and what that means for the figures (None
    when there are none)."""
    with engine.connect() as conn:
        systems = imported_in(conn, start, end)
    if not systems:
        return None
    n = sum(systems.values())
    return {"cases": n, "systems": systems,
            "note": translate(lang, "evalboard.imported_note", n=n,
                              systems="、".join(systems) if lang.startswith("zh")
                              else ", ".join(systems))}


def _public_numbers(engine: Engine, ids: set[int]) -> dict[int, str]:
    """The case numbers (C00002796) people know the listed cases by, as every other page
    writes them."""
    if not ids:
        return {}
    with engine.connect() as conn:
        return {r[0]: r[1] for r in conn.execute(
            text("SELECT id, public_no FROM case_record WHERE id = ANY(:ids)"),
            {"ids": sorted(ids)})}


@router.get("/{kind}/{code}", summary="One party's evaluation, explained down to its cases")
def party(request: Request, kind: Kind, code: str, engine: ReadEngineDep, settings: SettingsDep,
          viewer: Viewer, period: PeriodQ, level: LevelQ = None) -> dict[str, Any]:
    viewer.require("evaluation.details")
    if not may_see_details(engine, viewer, kind, code):
        raise NotFound(f"no {kind} {code!r} among the parties you may see", code=code)
    if kind == "area" and level is None:
        level = {6: "district", 9: "street", 12: "community"}.get(len(code))
    model, cal = evaluation_model(settings), settings.cases.working_calendar
    p = _period(period)
    ev = explain(engine, model, p, cal, kind, code, level)
    lang, root = request_language(request), base_url(request) + "/"
    after, before = ev.counts.get(code, {}), ev.counts_before.get(code, {})
    aggregates = {}
    carrying = penalised(kind, ev.members)
    numbers = _public_numbers(engine, {i for ids in ev.members.values()
                                       for i in (ids or [])[:MAX_LISTED]})
    for name, description in AGGREGATES[kind].items():
        ids = ev.members.get(name)
        item: dict[str, Any] = {"description": description, "count": after.get(name),
                                "count_before_appeals": before.get(name)}
        if ids is not None:
            item["cases"] = [{"id": i, "public_no": numbers.get(i), "href": f"{root}cases/{i}"}
                             for i in ids[:MAX_LISTED]]
            item["cases_listed"] = min(len(ids), MAX_LISTED)
        if name in carrying:  # the cases of this list that carry a penalty one may appeal
            item["penalty"] = {"name": carrying[name][0], "case_ids": carrying[name][1]}
        aggregates[name] = item
    w = p.window(cal.timezone)
    closes = filing_closes_at(p, cal, _rules(settings))
    now = datetime.now(UTC)
    score, score_before = ev.after.explain(code).total, ev.before.explain(code).total
    return {"kind": kind, "level": ev.level, "code": code, "name": ev.names.get(code, code),
            "period": {"label": str(p), "start": w.start.isoformat(), "end": w.end.isoformat()},
            "score": _opt(score), "score_before_appeals": _opt(score_before),
            "driver": _driver(ev, code, lang), "terms": _terms(ev, code, lang),
            "aggregates": aggregates, "no_data": ev.no_data,
            "appeals": _dressed(engine, viewer, list_appeals(engine, kind, code, now=now)),
            # whether the caller may appeal this party's penalties, and until when
            "appeal": {"may_file": viewer.may("appeal.file") and may_file_for(viewer, kind, code),
                       "closes_at": closes.isoformat(), "closes": city_time(closes, cal.timezone),
                       "open": w.start <= now <= closes},
            "imported": _imported(engine, w.start, w.end, lang),
            "source_note": source_note(model, lang)}
