"""Monthly briefings (数据简报) for leaders: one Chinese (or English) document with the key
figures against the previous period and the same period last year, the top problem classes and
where they grew, the best and worst departments and streets, the health choropleth and the
hot spots as printable maps, charts, and a one-paragraph summary written from the numbers by a
template (no language model).

HTML through the Jinja2 template ``api/templates/briefing.html`` (autoescaped, no script; its
style sheet is ``api/static/briefing/briefing.css``), PDF through WeasyPrint from the same
HTML: WeasyPrint lays the text out with Pango and embeds the (subset) fonts, WenQuanYi Zen Hei
for Chinese (installed by ``scripts/install.sh``). Maps and charts are PNG images inside the
document (``data:`` URLs: the page needs nothing else from the server).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import numpy as np
from sqlalchemy import Engine

from api import i18n
from api.naming import indicator_name
from api.pages import environment
from api.routes.evaluation import ranking_rows
from api.routes.health import _collection, map_figure
from basemaps.cartography import figure_png
from basemaps.health_map import _cjk_font
from gridcore.calendar import WorkingCalendar
from gridcore.evaluation import EvaluationModel, Period
from gridcore.evaluation.briefing import Compared
from gridcore.evaluation.period import last_day
from gridcore.health.classes import classify
from gridcore.settings import CaseSettings
from layers.evaluation.briefing import BriefingData, briefing_data
from layers.health.shapes import shapes

CSS = resources.files("api").joinpath("static", "briefing", "briefing.css")
TOP = 3


def _png(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def _pct(x: float | None, digits: int = 1) -> str:
    return "—" if x is None else f"{100 * x:.{digits}f}%"


def _signed(x: float | None, unit: str) -> str:
    return "—" if x is None else f"{x:+.1f}{unit}"


def _figure_rows(data: BriefingData, t: Any) -> list[dict[str, str]]:
    rows = []
    for f in data.figures:
        fmt = _pct if f.is_rate else (lambda v: "—" if v is None else f"{v:,.0f}")
        unit = t("briefing.pp") if f.is_rate else "%"
        rows.append({"key": f.key, "name": t(f"briefing.figure.{f.key}"),
                     "value": fmt(f.value), "previous": fmt(f.previous),
                     "year_before": fmt(f.year_before),
                     "vs_previous": _signed(f.vs_previous, unit),
                     "vs_year_before": _signed(f.vs_year_before, unit)})
    return rows


def _font() -> dict[str, Any]:
    family = _cjk_font()
    return {"fontfamily": [family, "sans-serif"]} if family else {}


def rate_bars(rates: list[Compared], attr: str) -> tuple[list[int], list[float]]:
    """Where the bars of one series stand and their heights (%): a figure without a value
    (no cases due in the previous period, say) gets no bar — never a bar of 0.0."""
    at = [i for i, f in enumerate(rates) if getattr(f, attr) is not None]
    return at, [100 * getattr(rates[i], attr) for i in at]


def _chart_figures(data: BriefingData, t: Any) -> tuple[bytes, bool]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    font = _font()
    rates = [f for f in data.figures if f.is_rate]
    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=150)
    x = np.arange(len(rates))
    series = ((t("briefing.this_period"), "value", "#2b6cb0"),
              (t("briefing.previous_period"), "previous", "#90cdf4"),
              (t("briefing.year_before"), "year_before", "#cbd5e0"))
    missing = False
    handles = []
    for i, (label, attr, colour) in enumerate(series):
        at, vals = rate_bars(rates, attr)
        missing = missing or len(at) < len(rates)
        bars = ax.bar(x[at] + (i - 1) * 0.26, vals, 0.26, color=colour)
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
        for gap in sorted(set(range(len(rates))) - set(at)):  # "—" where the table has "—"
            ax.text(gap + (i - 1) * 0.26, 1, "—", ha="center", va="bottom", fontsize=7,
                    color="#4a5568")
        handles.append(Patch(facecolor=colour, label=label))
    if missing:  # the chart leaves a gap (never a 0.0 bar) and says why
        handles.append(Patch(facecolor="none", edgecolor="none",
                             label=t("briefing.chart_missing")))
    ax.set_xticks(x, [t(f"briefing.figure.{f.key}") for f in rates], **font)
    ax.set_xlim(-0.6, len(rates) - 0.4)
    ax.set_ylabel("%")
    ax.set_ylim(0, 110)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(handles=handles, prop={"family": font["fontfamily"]} if font else None,
              fontsize=8, frameon=False, ncols=len(handles), loc="upper center",
              bbox_to_anchor=(0.5, 1.15))
    fig.tight_layout()
    return figure_png(fig), missing


def _chart_classes(data: BriefingData, t: Any, label: Any = str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    font = _font()
    classes = list(reversed(data.classes))
    fig, ax = plt.subplots(figsize=(7, 1.4 + 0.45 * max(1, len(classes))), dpi=150)
    y = np.arange(len(classes))
    ax.barh(y + 0.2, [c.count for c in classes], 0.4, color="#c53030",
            label=t("briefing.this_period"))
    ax.barh(y - 0.2, [c.previous for c in classes], 0.4, color="#feb2b2",
            label=t("briefing.previous_period"))
    ax.set_yticks(y, [label(c.name) for c in classes], **font)
    for yy, c in zip(y, classes, strict=True):
        ax.text(c.count, yy + 0.2, f" {c.count}", va="center", fontsize=7)
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_xlabel(t("briefing.cases_unit"), **font)
    ax.set_xlim(0, max([c.count for c in classes] + [c.previous for c in classes] + [1]) * 1.12)
    ax.legend(prop={"family": font["fontfamily"]} if font else None, fontsize=8,
              frameon=False, ncols=2, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout()
    return figure_png(fig)


def _in_area(body: dict[str, Any], area: str) -> dict[str, Any]:
    features = [f for f in body["features"] if f["id"].startswith(area)]
    return {**body, "features": features}


def _hotspot_body(engine: Engine, data: BriefingData, lang: str, cal: WorkingCalendar
                  ) -> dict[str, Any]:
    with engine.connect() as conn:
        grids = shapes(conn, "grid", data.area_code)
    values = np.array([data.grid_cases.get(g["key"], 0) for g in grids], dtype=float)
    # quantiles, not natural breaks: FisherJenks is O(k·n²) in pure Python without numba
    # (minutes for 20,000 grids); tied counts are merged by classify; counts get whole-number
    # breaks ("2 – 4", never "1 – 1.667")
    classes = classify(values, "quantiles", 5, higher_is_better=False,
                       no_data_label=i18n.translate(lang, "health.no_data"), integer=True)
    colours = {c["class"]: c["colour"] for c in classes.legend}
    import json

    w = data.period.window(cal.timezone)
    return {"level": "grid", "name": i18n.translate(lang, "briefing.hotspot_index"),
            "legend_title": i18n.translate(lang, "briefing.hotspot_index"),
            "window": {"start": w.start.isoformat(), "end": w.end.isoformat()},
            "legend": classes.legend,
            "legend_note": i18n.translate(lang, "health.legend_merged",
                                          requested=classes.requested, merged=classes.merged)
            if classes.merged else None,
            "features": [{"type": "Feature", "id": g["key"],
                          "geometry": json.loads(g["geometry"]),
                          "properties": {"name": g["name"],
                                         "colour": colours[classes.classes[i]]}}
                         for i, g in enumerate(grids)]}


def _parties(ev: Any, lang: str, keys: set[str] | None = None) -> dict[str, list]:
    """The best and the worst (up to TOP each, never the same party in both)."""
    rows = [r for r in ranking_rows(ev, lang, keys) if r["score"] is not None]
    best = rows[:min(TOP, (len(rows) + 1) // 2)]
    return {"best": best, "worst": list(reversed(rows[max(len(best), len(rows) - TOP):]))}


def summary(data: BriefingData, lang: str, departments: dict[str, list],
            children: dict[str, list] | None) -> str:
    """The one paragraph for leaders, from the numbers (a template, no language model)."""
    t = i18n.translate
    fig = {f.key: f for f in data.figures}

    def change(f: Compared) -> str:
        v = f.vs_previous
        if v is None:
            return t(lang, "briefing.no_comparison")
        unit = t(lang, "briefing.pp") if f.is_rate else "%"
        word = "up" if v > 0 else "down" if v < 0 else "flat"
        return t(lang, f"briefing.change_{word}", amount=f"{abs(v):.1f}{unit}")

    parts = [t(lang, "briefing.summary_cases", period=str(data.period), area=data.area_name,
               cases=f"{fig['cases'].value or 0:,.0f}", cases_change=change(fig["cases"]),
               registered=f"{fig['registered'].value or 0:,.0f}"),
             t(lang, "briefing.summary_rates",
               closure=_pct(fig["closure_rate"].value),
               closure_change=change(fig["closure_rate"]),
               on_time=_pct(fig["on_time_rate"].value),
               on_time_change=change(fig["on_time_rate"]),
               rework=_pct(fig["rework_rate"].value))]
    if data.classes:
        top = data.classes[0]
        parts.append(t(lang, "briefing.summary_class", name=top.name, count=top.count,
                       growth=_signed(top.growth_pct, "%")))
        grown = max(data.classes, key=lambda c: c.count - c.previous)
        if grown.count > grown.previous and grown.grew_most_in:
            # the class's name begins the sentence
            parts.append(t(lang, "briefing.summary_growth", name=i18n.as_label(lang, grown.name),
                           by=grown.count - grown.previous, where=grown.grew_most_in))
    if departments["best"] and departments["worst"]:
        best, worst = departments["best"][0], departments["worst"][0]
        driver = worst["driver"]["name"] if worst["driver"] else "—"
        parts.append(t(lang, "briefing.summary_departments", best=best["name"],
                       best_score=f"{best['score']:.1f}", worst=worst["name"],
                       worst_score=f"{worst['score']:.1f}", driver=driver))
    if children and children["best"] and children["worst"]:
        parts.append(t(lang, "briefing.summary_areas", best=children["best"][0]["name"],
                       worst=children["worst"][0]["name"]))
    return "".join(parts)


def briefing_html(engine: Engine, cases: CaseSettings, model: EvaluationModel,
                  period: Period, area: str | None = None, lang: str = "zh-CN",
                  stylesheet: str = "/static/briefing/briefing.css") -> str:
    cal = cases.working_calendar
    data = briefing_data(engine, model, period, cal, area, lang)

    def t(key: str, **values: Any) -> str:
        return i18n.translate(lang, key, **values)

    def label(text: str) -> str:  # a heading, a column's head, a name standing alone
        return i18n.as_label(lang, text)

    def t_label(key: str, **values: Any) -> str:
        return label(t(key, **values))

    made = datetime.now(UTC).astimezone(cal.tz).date().isoformat()
    window = f"{period.first.isoformat()}/{period.after.isoformat()}"
    health_body, _ = _collection(engine, cases, "total", window, "grid", "quantiles", 5, None,
                                 None, lang, data.area_code)
    health_map = figure_png(map_figure(engine, _in_area(health_body, data.area_code), lang,
                                       made))
    hot_map = figure_png(map_figure(engine, _hotspot_body(engine, data, lang, cal), lang,
                                    made))
    chart, chart_missing = _chart_figures(data, t_label)
    departments = _parties(data.departments, lang)
    children = (_parties(data.children, lang, set(data.children.names))
                if data.children is not None else None)
    for rows in (departments, *([children] if children else [])):
        for row in rows["best"] + rows["worst"]:
            row["score_text"] = f"{row['score']:.1f}"
    kind_names = {m.key: indicator_name(lang, f"department.{m.key}", m.indicator.name_zh,
                                        m.indicator.name_en, "eval")
                  for m in data.departments.kind.measures}
    context = {
        "title": t("briefing.title", area=data.area_name, period=str(period)),
        "area": data.area_name, "area_code": data.area_code, "period": str(period),
        "period_start": period.first.isoformat(),
        "period_end": last_day(period).isoformat(),
        "made": made, "summary": summary(data, lang, departments, children),
        "figures": _figure_rows(data, t), "classes": data.classes,
        "departments": departments, "children": children,
        "child_level": t(f"health.level.{data.children.level}") if data.children else "",
        "kind_names": kind_names,
        "chart_figures": _png(chart), "chart_missing": chart_missing,
        "chart_classes": _png(_chart_classes(data, t_label, label)) if data.classes else None,
        "health_map": _png(health_map), "hot_map": _png(hot_map),
        "stylesheet": stylesheet,
    }
    languages = i18n.LANGUAGES
    return environment().get_template("briefing.html").render(
        lang=lang, languages=languages, t=t, label=label, root="", static=lambda p: p,
        **context)


def briefing_pdf(engine: Engine, cases: CaseSettings, model: EvaluationModel,
                 period: Period, area: str | None = None, lang: str = "zh-CN") -> bytes:
    """The same document as a PDF (WeasyPrint; fonts embedded as subsets)."""
    import weasyprint

    html = briefing_html(engine, cases, model, period, area, lang, stylesheet="")
    css = weasyprint.CSS(string=CSS.read_text("utf-8"))
    return bytes(weasyprint.HTML(string=html).write_pdf(stylesheets=[css]))
