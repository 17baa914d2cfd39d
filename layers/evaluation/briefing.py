"""What a briefing (数据简报) reads: the area, its key figures for a period, the previous
period and a year earlier, problem classes and where they grew, rankings of departments and
of the area's streets (or communities), and cases per grid for the hot-spot map."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, text

from gridcore.calendar import WorkingCalendar
from gridcore.errors import NotFound, ValidationError
from gridcore.evaluation import EvaluationModel, Period
from gridcore.evaluation.briefing import ClassGrowth, Compared, ratio, top_classes
from layers.evaluation.evaluate import AREA_LEVELS, Evaluation, evaluate, explain

CHILD = {"district": "street", "street": "community", "community": None}
_COUNT_BY = """
SELECT {group} AS key, count(*) FROM case_record c
WHERE c.created_at >= :start AND c.created_at < :end AND left(c.grid_code, :n) = :area
  AND c.state NOT IN ('voided', 'merged')
GROUP BY 1"""


@dataclass
class BriefingData:
    period: Period
    area_code: str
    area_name: str
    level: str
    figures: list[Compared]
    classes: list[ClassGrowth]
    departments: Evaluation
    children: Evaluation | None
    grid_cases: dict[str, int] = field(default_factory=dict)
    totals: dict[str, Any] = field(default_factory=dict)


def briefing_area(engine: Engine, area: str | None) -> tuple[str, str, str]:
    """(code, name, level) of the briefing's area: the one given, or the only district."""
    with engine.connect() as conn:
        if area is None:
            rows = conn.execute(text(
                "SELECT code, name FROM admin_area WHERE level = 'district' ORDER BY code"
            )).all()
            if len(rows) != 1:
                raise ValidationError("name the area of the briefing (--area / ?area=): this "
                                      f"city has {len(rows)} districts", field="area")
            return rows[0][0], rows[0][1], "district"
        row = conn.execute(text("SELECT code, name, level FROM admin_area WHERE code = :c"),
                           {"c": area}).first()
    if row is None:
        raise NotFound(f"no area {area!r}", field="area", code=area)
    return row[0], row[1], row[2]


def _counts(engine: Engine, period: Period, cal: WorkingCalendar, area: str,
            group: str) -> dict[str, int]:
    w = period.window(cal.timezone)
    with engine.connect() as conn:
        return {r[0]: int(r[1]) for r in conn.execute(text(_COUNT_BY.format(group=group)), {
            "start": w.start, "end": w.end, "n": len(area), "area": area})}


def _figures(engine: Engine, model: EvaluationModel, period: Period, cal: WorkingCalendar,
             area: str, level: str) -> tuple[list[Compared], dict[str, Any]]:
    values: dict[str, list[float | None]] = {k: [] for k in (
        "cases", "registered", "closure_rate", "on_time_rate", "rework_rate")}
    totals: dict[str, Any] = {}
    for p in (period, period.previous(), period.year_before()):
        counts = explain(engine, model, p, cal, "area", area, level).counts.get(area, {})
        cases = sum(_counts(engine, p, cal, area, "'all'").values())
        values["cases"].append(float(cases))
        values["registered"].append(counts.get("registered", 0.0))
        values["closure_rate"].append(ratio(counts.get("closed"), counts.get("close_due")))
        values["on_time_rate"].append(ratio(counts.get("closed_on_time"),
                                            counts.get("close_due_timed")))
        values["rework_rate"].append(ratio(counts.get("reworked"), counts.get("closed")))
        totals.setdefault("counts", counts)
    figures = [Compared(k, v[0], v[1], v[2], k.endswith("_rate")) for k, v in values.items()]
    return figures, totals


def _classes(engine: Engine, period: Period, cal: WorkingCalendar, area: str,
             child_digits: int | None, lang: str = "zh-CN") -> list[ClassGrowth]:
    now = _counts(engine, period, cal, area, "c.category_key")
    before = _counts(engine, period.previous(), cal, area, "c.category_key")
    with engine.connect() as conn:
        # the class names in the reader's language (an English briefing said 路灯 and 暴露垃圾)
        column = "coalesce(nullif(name_en, ''), name_zh)" if lang == "en" else "name_zh"
        names = {r[0]: r[1] for r in conn.execute(text(f"SELECT key, {column} FROM category"))}
        child_names = {r[0]: r[1] for r in conn.execute(text(
            "SELECT code, name FROM admin_area WHERE code LIKE :a"), {"a": area + "%"})}
    top = top_classes(now, before, names)
    if not child_digits:
        return top
    out = []
    group = f"left(c.grid_code, {int(child_digits)}) || '|' || c.category_key"
    by_now = _counts(engine, period, cal, area, group)
    by_before = _counts(engine, period.previous(), cal, area, group)
    for cls in top:
        growth = {k.split("|")[0]: v - by_before.get(k, 0) for k, v in by_now.items()
                  if k.endswith("|" + cls.category)}
        if growth:
            where, by = max(growth.items(), key=lambda kv: (kv[1], kv[0]))
            if by > 0:
                cls = ClassGrowth(cls.category, cls.name, cls.count, cls.previous,
                                  child_names.get(where, where), by)
        out.append(cls)
    return out


def briefing_data(engine: Engine, model: EvaluationModel, period: Period,
                  cal: WorkingCalendar, area: str | None = None,
                  lang: str = "zh-CN") -> BriefingData:
    code, name, level = briefing_area(engine, area)
    if level not in AREA_LEVELS:
        raise ValidationError(f"briefings are for a district, street or community, not a "
                              f"{level}", field="area", value=code)
    child = CHILD[level]
    wanted: list[tuple[str, str | None]] = [("department", None)]
    if child:
        wanted.append(("area", child))
    evaluated = evaluate(engine, model, period, cal, wanted)
    children = evaluated.get(f"area:{child}") if child else None
    if children is not None:  # only the area's own streets / communities
        keep = [k for k in children.keys if k.startswith(code)]
        children.names = {k: children.names[k] for k in keep}
    figures, totals = _figures(engine, model, period, cal, code, level)
    return BriefingData(period, code, name, level, figures,
                        _classes(engine, period, cal, code, AREA_LEVELS.get(str(child)), lang),
                        evaluated["department"], children,
                        _counts(engine, period, cal, code, "c.grid_code"), totals)
