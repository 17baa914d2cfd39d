"""The intelligence room over HTTP: classification suggestions (智能分类), the learned dispatch
proposal beside the rules (智能派遣), similar cases (相似案例推荐) and the forecast with its
warnings (未诉先办 / 全域预警). Every answer names the model that made it and says it is a
suggestion: a person decides.

Who may call what (until the access table of issue 18 lands; then one line each there):
- ``POST /classify``: whoever may report (case.report: grid workers, dispatchers, admins);
- ``POST /similar``, ``GET /cases/{id}/similar``: any reader (case.read), answers scoped;
- ``GET /cases/{id}/dispatch-proposal``: dispatchers and admins (dispatch.propose);
- ``GET /forecast``, ``GET /forecast/warnings``: forecast.read, rows scoped to the caller's
  areas.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import Connection, Engine, text

from api.deps import EngineDep
from api.security.identity import Viewer
from gridcore.errors import NotFound, ValidationError
from gridcore.intelligence.classify import decide
from gridcore.intelligence.dispatch import DispatchModel, combine
from gridcore.intelligence.errors import NotFitted
from gridcore.intelligence.features import Report
from layers.db.partitions import report_time

# The rooms behind these routes (pandas, scipy, scikit-learn: about a third of the app's
# import) are imported at their first use: every server process, CLI and test server imports
# this module, and most of them never answer an intelligence route.
if TYPE_CHECKING:
    from layers.intelligence.models import ActiveModels
    from layers.intelligence.similar_cases import SimilarCases

router = APIRouter(tags=["intelligence 智能"])
# The model proposes a department on its own from this confidence; below it a dispatcher
# chooses among its top 3 (the rules, when one applies, always win).
DISPATCH_THRESHOLD = 0.5
SUGGESTION = "a suggestion from a model trained on the case history: a person decides"
NO_EVIDENCE = {
    "unknown_words": "no suggestion: none of the words is known to the model trained on the "
                     "case history, so they say nothing about the class",
    "near_prior": "no suggestion: the words known to the model do not point to any class (its "
                  "answer is no different from its answer to no text at all)"}


T = TypeVar("T")


def _per_process(request: Request, name: str, make: Callable[[], T]) -> T:
    """One object of this server process (made at first use), kept on the app's state."""
    state = request.app.state
    if getattr(state, name, None) is None:
        setattr(state, name, make())
    found: T = getattr(state, name)
    return found


def _active(request: Request) -> ActiveModels:
    from layers.intelligence.models import ActiveModels

    return _per_process(request, "intel_models",
                        lambda: ActiveModels(request.app.state.engine))


def _similar(request: Request) -> SimilarCases:
    from layers.intelligence.similar_cases import SimilarCases

    settings = request.app.state.settings
    return _per_process(request, "similar_cases", lambda: SimilarCases(
        request.app.state.engine, settings.intelligence.index_root(settings.database.data_dir)))


def _forecasts() -> ModuleType:
    """layers.intelligence.forecasts (pandas, scipy), imported at the first forecast asked."""
    from layers.intelligence import forecasts

    return forecasts


def _none(kind: str) -> str:
    return (f"no active {kind} model yet: nothing to suggest (an administrator runs "
            f"`gridcore learn --kind {kind}` on the case history)")


def _loaded(request: Request, kind: str) -> tuple[Any, object] | None:
    """The active model of ``kind``, or None when there is none yet — an empty answer that
    says so (a service without a trained model is not broken). A stored model this process
    cannot read (another scikit-learn) is the service's fault: its 503 stands."""
    try:
        return _active(request).get(kind)
    except NotFitted:
        return None


def _names(engine: Engine, keys: list[str]) -> dict[str, tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT key, name_zh, name_en FROM category WHERE key = "
                                 "ANY(:k)"), {"k": keys}).all()
    return {r.key: (r.name_zh, r.name_en) for r in rows}


class ClassifyIn(BaseModel):
    text: str = Field(min_length=1, max_length=5000, description="title and description")
    k: int = Field(3, ge=1, le=10)


@router.post("/classify", summary="Suggest the class of a report from its words (智能分类)")
def classify(body: ClassifyIn, request: Request, engine: EngineDep,
             viewer: Viewer) -> dict[str, Any]:
    viewer.require("case.report")
    if not body.text.strip():
        raise ValidationError("the text is empty: nothing to classify", field="text")
    loaded = _loaded(request, "classify")
    if loaded is None:
        return {"suggestion": True, "model": None, "threshold": None, "confident": False,
                "no_evidence": False, "evidence": None, "suggestions": [],
                "note": _none("classify")}
    row, model = loaded
    title, _, rest = body.text.strip().partition("\n")
    report = Report(title, rest)
    suggestions = model.suggest(report, k=body.k)  # type: ignore[attr-defined]
    evidence = model.evidence(report)  # type: ignore[attr-defined]
    threshold = row.threshold
    decision = decide(suggestions, threshold if threshold is not None else 1.01, evidence)
    if decision.no_evidence:
        # the top class of words the model does not know is its prior, not an opinion: none
        return {"suggestion": True, "model": row.public(), "threshold": threshold,
                "confident": False, "no_evidence": True, "evidence": evidence.public(),
                "suggestions": [], "note": NO_EVIDENCE[evidence.basis]}
    names = _names(engine, [s.category for s in suggestions])
    return {
        "suggestion": True, "note": SUGGESTION, "model": row.public(),
        "threshold": threshold,
        "confident": decision.filed,  # above the model's filing threshold
        "no_evidence": False, "evidence": evidence.public(),
        "suggestions": [{"category": s.category, "name_zh": names.get(s.category, ("", ""))[0],
                         "name_en": names.get(s.category, ("", ""))[1],
                         "probability": round(s.probability, 4), "drivers": list(s.drivers)}
                        for s in suggestions]}


def predicted_category(request: Request, description: str) -> str:
    """Intake without a class (智能分类 at intake): the class the active model is confident
    about (at least its filing threshold, chosen so that 95 % of such held-out reports were
    right); otherwise a 422 naming the class field, with the top 3 as suggestions."""
    if not description.strip():
        raise ValidationError("category is required when there is no description to classify",
                              field="category")
    loaded = _loaded(request, "classify")
    if loaded is None:
        raise ValidationError("category is required: no classification model is active to "
                              "suggest one", field="category")
    row, model = loaded
    title, _, rest = description.strip().partition("\n")
    report = Report(title, rest)
    suggestions = model.suggest(report, k=3)  # type: ignore[attr-defined]
    evidence = model.evidence(report)  # type: ignore[attr-defined]
    threshold = row.threshold if row.threshold is not None else 1.01
    decision = decide(suggestions, threshold, evidence)
    if decision.filed and decision.category is not None:
        return decision.category
    if decision.no_evidence:
        raise ValidationError(
            f"category is required: the description gives the classifier nothing to go on: "
            f"{NO_EVIDENCE[evidence.basis].removeprefix('no suggestion: ')}; choose a "
            f"category", field="category", threshold=threshold, model_version=row.version,
            no_evidence=True, evidence=evidence.public(), suggestions=[])
    raise ValidationError(
        f"category is required: the classifier is not confident enough "
        f"({decision.confidence:.0%} < {threshold:.0%}); choose one of the suggestions",
        field="category", threshold=threshold, model_version=row.version,
        no_evidence=False, evidence=evidence.public(),
        suggestions=[{"category": x.category, "probability": round(x.probability, 4),
                      "drivers": list(x.drivers)} for x in suggestions])


def _case(engine: Engine, case_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        at = report_time(conn, case_id)  # planned on the case's own year
        row = None if at is None else conn.execute(text(
            "SELECT id, coalesce(description, '') AS text, category_key AS category, "
            "created_at AS at, origin->>'category' AS subtype, grid_code AS grid, "
            "community_code AS community, street_code AS street, district_code AS district, "
            "department_code, proposed_department, proposal_rule, refused_departments, state "
            "FROM case_record WHERE id = :i AND created_at = :at"),
            {"i": case_id, "at": at}).mappings().first()
    if row is None:
        raise NotFound(f"no case {case_id}", case_id=case_id)
    return dict(row)


def _readable(viewer: Any, case: dict[str, Any]) -> None:
    if not viewer.scope.covers_case(case["grid"], case["department_code"]):
        raise NotFound(f"no case {case['id']}", case_id=case["id"])  # as if it did not exist


@router.get("/cases/{case_id}/similar",
            summary="The most similar earlier cases and how they ended (相似案例推荐)")
def similar_to_case(case_id: int, request: Request, engine: EngineDep, viewer: Viewer,
                    k: Annotated[int, Query(ge=1, le=50)] = 10) -> dict[str, Any]:
    viewer.require("case.read")
    case = _case(engine, case_id)
    _readable(viewer, case)
    items = _similar(request).for_text(
        case["text"], viewer.scope, k=k, category=case["category"],
        place=case["grid"] or case["community"], before=case["at"], exclude=(case_id,))
    return {"case_id": case_id, "note": "earlier cases you may read, most similar first: "
            "words, then the same class, place and recency", "items": items}


class SimilarIn(BaseModel):
    text: str = Field(min_length=1, max_length=5000)
    category: str | None = None
    grid_code: str | None = None
    k: int = Field(10, ge=1, le=50)


@router.post("/similar", summary="Cases like a new report, and how they were handled")
def similar_to_text(body: SimilarIn, request: Request, viewer: Viewer) -> dict[str, Any]:
    viewer.require("case.read")
    items = _similar(request).for_text(body.text, viewer.scope, k=body.k,
                                       category=body.category, place=body.grid_code,
                                       before=datetime.now().astimezone())
    return {"note": "this was handled before like this: earlier cases you may read",
            "items": items}


class _RuleAnswer:
    def __init__(self, department: str | None, reason: str) -> None:
        self.department_code = department
        self.reason = reason


def _evidence(score: Any) -> dict[str, Any] | None:
    """The reason as data, for pages that say it in their own language: the most specific
    level (grid, community, street, district, class…) with enough cases, how many of them went
    to this department, and how often it sent such cases back there."""
    e = score.evidence
    return None if e is None else {"level": e.level, "cases_there": e.cases_there,
                                   "cases_total": e.cases_total, "sent_back": e.refusals}


@router.get("/cases/{case_id}/dispatch-proposal",
            summary="Which department: the rules (权责清单) first, else the learned model")
def dispatch_proposal(case_id: int, request: Request, engine: EngineDep,
                      viewer: Viewer) -> dict[str, Any]:
    viewer.require("dispatch.propose")
    case = _case(engine, case_id)
    _readable(viewer, case)
    refused = tuple(case["refused_departments"] or ())
    rule_dept = case["proposed_department"] if case["proposed_department"] not in refused \
        else None
    rule = _RuleAnswer(rule_dept, case["proposal_rule"] or "no dispatch rule applies")
    loaded = _loaded(request, "dispatch")
    row, model = loaded if loaded is not None else (None, None)
    why = _none("dispatch") + "; the rules alone"
    prediction = None
    fed = 0
    if isinstance(model, DispatchModel) and row is not None:
        from gridcore.intelligence.training import dispatch_case
        from layers.intelligence.live import LiveDispatch

        live = _per_process(request, "live_dispatch", LiveDispatch)
        with live.lock:
            fed = live.catch_up(engine, model, row.trained_at)
            prediction = model.predict(dispatch_case({**case, "department": None}), k=3,
                                       exclude=refused)
        why = (f"model {row.version} proposes at ≥ {DISPATCH_THRESHOLD:.0%}; its case "
               f"memory has learnt {fed} dispatch steps since it was trained")
    decision = combine(rule if rule_dept else None, prediction, DISPATCH_THRESHOLD)
    with engine.connect() as conn:
        names: dict[str, str] = {r.code: r.name for r in conn.execute(
            text("SELECT code, name FROM department"))}
    return {
        "case_id": case_id, "suggestion": True, "note": SUGGESTION,
        "decision": {"department": decision.department,
                     "department_name": names.get(decision.department or ""),
                     "source": decision.source,  # rule | model | none
                     "confidence": None if decision.confidence is None
                     else round(decision.confidence, 4),
                     "reason": decision.reason},
        "rule": {"department": rule_dept, "reason": rule.reason},
        "model": None if prediction is None else {
            **(row.public() if row else {}),
            "candidates": [{"department": c.department, "department_name": names.get(
                c.department), "probability": round(c.probability, 4), "reason": c.reason(),
                "evidence": _evidence(c)} for c in prediction.candidates]},
        "model_note": why, "excluded": list(refused)}


def _forecast_model(request: Request, viewer: Any) -> Any:
    viewer.require("forecast.read")
    loaded = _loaded(request, "forecast")
    return None if loaded is None else loaded[0]


LevelQ = Annotated[str, Query(pattern="^(grid|community)$")]
WEEK_DOC = ("A week is the city's: it begins on Monday 00:00 in the city's time zone "
            "(`GRIDCORE_CITY_TIMEZONE`). Each row's `week` is the date (YYYY-MM-DD) of that "
            "Monday; the answer's `week` object says it again with the aware instants the "
            "week runs between (`start`, `end` exclusive) and the `timezone`. Versions before "
            "2026-12 counted weeks from Monday 00:00 UTC; `week` keeps its form, a date.")


def _week(request: Request, conn: Connection, model_id: int) -> dict[str, Any] | None:
    """The forecast week of a model as the answers state it (the city's Monday, its instants)."""
    forecasts = _forecasts()
    return forecasts.week_answer(forecasts.forecast_week(conn, model_id),
                                 request.app.state.settings.cases.city_timezone)


@router.get("/forecast", summary="Expected cases next week per area × class (未诉先办)",
            description="The patrol list, highest expectation first; `format=geojson` gives "
                        "the same rows as a FeatureCollection of the areas (the map layer). "
                        + WEEK_DOC,
            responses={200: {"content": {"application/json": {},
                                         "application/geo+json": {}}}})
def forecast_list(request: Request, engine: EngineDep, viewer: Viewer,
                  level: LevelQ = "community", category: str | None = None,
                  limit: Annotated[int, Query(ge=1, le=5000)] = 50,
                  format: Annotated[str, Query(pattern="^(json|geojson)$")] = "json",
                  ) -> Any:
    row = _forecast_model(request, viewer)
    geo = format == "geojson"
    items: list[dict[str, Any]] = []
    week = None
    if row is not None:
        with engine.connect() as conn:
            items = _forecasts().ranked(conn, row.id, level, viewer.scope, category=category,
                                     limit=limit, geometry=geo)
            week = _week(request, conn, row.id)
    for i in items:
        i["week"] = i["week"].isoformat()
        i["expected"] = round(float(i["expected"]), 4)
    about = {"model": row.public() if row else None, "level": level, "suggestion": True,
             "week": week,  # the city's Monday and the week's instants (WEEK_DOC)
             "note": "expected cases of the week, highest first: where to patrol" if row
             else _none("forecast")}
    if geo:
        features = [{"type": "Feature", "id": f"{i['area_code']}-{i['category_key']}",
                     "geometry": json.loads(i.pop("geometry")) if i.get("geometry") else None,
                     "properties": i} for i in items]
        return JSONResponse({"type": "FeatureCollection", **about, "features": features},
                            media_type="application/geo+json")
    return {**about, "metrics": row.metrics.get("scores") if row else None, "items": items}


@router.get("/forecast/warnings",
            summary="Areas running far above their expectation this week (全域预警)",
            description="The observed cases of the forecast week (from its Monday 00:00 to "
                        "the next in the city's time zone, so far) against the expectation. "
                        + WEEK_DOC)
def forecast_warnings(request: Request, engine: EngineDep, viewer: Viewer,
                      level: LevelQ = "community",
                      alpha: Annotated[float, Query(gt=0, lt=0.5)] = 1e-3) -> dict[str, Any]:
    row = _forecast_model(request, viewer)
    if row is None:
        return {"model": None, "level": level, "alpha": alpha, "week": None,
                "note": _none("forecast"), "items": []}
    timezone = request.app.state.settings.cases.city_timezone
    with engine.connect() as conn:
        items = _forecasts().week_warnings(conn, row.id, level, viewer.scope, alpha=alpha,
                                        timezone=timezone)
        week = _week(request, conn, row.id)
    return {"model": row.public(), "level": level, "alpha": alpha, "week": week,
            "note": "observed cases of the forecast week against the expectation (Poisson "
                    "upper tail below alpha)", "items": items}
