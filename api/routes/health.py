"""City health check (城市体检) over HTTP: one grid's explained health, rankings, choropleths
(GeoJSON, an offline HTML map, a PNG for reports). ``api/routes/probes.py`` is the *service*
health check; this module is the city's."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any
from urllib.parse import urlencode

import numpy as np
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from api import i18n, pages
from api.deps import CaseSettingsDep, ReadEngineDep
from api.naming import health_name, level_name
from api.ogc import base_url
from api.pages import request_language
from api.security.identity import require_area
from basemaps.cartography import Labels, MapText, choropleth_figure, figure_png
from gridcore.calendar import WorkingCalendar
from gridcore.errors import ValidationError
from gridcore.health import GridScore, HealthModel, Window
from gridcore.health.classes import classify
from gridcore.health.model import AGGREGATES
from gridcore.settings import CaseSettings
from layers.health.scores import LEVELS, Health, check_level, score, score_with_previous, scored
from layers.health.shapes import names, shapes

router = APIRouter(tags=["city health 城市体检"])
WindowQ = Annotated[str, Query(description="2026-09-01/2026-10-01 or 30d (h, d, w)")]
LevelQ = Annotated[str, Query(description="grid | community | street | district")]
WeightsQ = Annotated[str | None, Query(description="index weights, e.g. risk:2,safety:1")]
GEOJSON = "application/geo+json"


@cache
def _category_keys() -> tuple[str, ...]:
    from gridcore.taxonomy import Taxonomy

    return tuple(sorted(c.key for c in Taxonomy.default()))


@cache
def _model() -> HealthModel:
    return HealthModel.default()


def model_for(weights: str | None) -> HealthModel:
    if not weights:
        return _model()
    parsed: dict[str, float] = {}
    for part in weights.split(","):
        key, _, value = part.partition(":")
        try:
            parsed[key.strip()] = float(value)
        except ValueError:
            raise ValidationError(f"weights {weights!r} must look like risk:2,safety:1",
                                  field="weights", value=weights) from None
    return _model().with_weights(parsed)


def _window(spec: str, calendar: WorkingCalendar) -> Window:
    return Window.parse(spec, datetime.now(UTC), calendar.timezone)


def _opt(x: float) -> float | None:
    return None if x is None or np.isnan(x) else round(float(x), 6)


def _links(request: Request, level: str, code: str, window: Window,
           names: list[str]) -> dict[str, str]:
    """Where the records behind each aggregate are: /cases for case counts (same area and
    window), the OGC items of parts and 9+X records (by grid; an area's parts are its grids')."""
    root = base_url(request) + "/"
    out = {}
    for name in names:
        if name in AGGREGATES:
            layer, params = AGGREGATES[name][1], dict(AGGREGATES[name][2])
        elif name.startswith("cases_"):
            layer = "cases"
            params = {"category": ",".join(c for c in _category_keys()
                                           if c.startswith(name[6:]))}
        elif name.startswith("parts_"):
            cls = name.rsplit("_", 1)[1]
            layer, params = "parts", {"class_code": cls}
            if name.startswith("parts_bad_"):
                params["state"] = "damaged,missing"
        else:
            layer, params = "entities", {"area": name.split("_", 1)[1]}
        if layer == "cases":
            query = {level: code, "since": window.start.isoformat(),
                     "until": window.end.isoformat(), **params}
            out[name] = f"{root}cases?{urlencode(query)}"
        elif layer in ("parts", "entities"):
            where = {"grid_code": code} if level == "grid" else {}
            out[name] = f"{root}collections/{layer}/items?{urlencode({**where, **params})}"
    return out


def _explain(request: Request, health: Health, previous: Health, level: str, code: str,
             window: Window) -> dict[str, Any]:
    now, before = health.table.explain(code), None
    if code in previous.table.codes:
        before = previous.table.explain(code)
    model = health.table.model
    prev_terms = {t.indicator: t for t in before.terms} if before else {}
    terms = []
    lang = request_language(request)
    for term in now.terms:
        item = term.as_dict()
        item["name"] = health_name(lang, term.indicator, model)
        was = prev_terms.get(term.indicator)
        item["previous_value"] = was.value if was else None
        item["links"] = _links(request, level, code, window, sorted(term.inputs))
        terms.append(item)
    indices: list[dict[str, Any]] = [
        {"key": i.key, "name": health_name(lang, i.key, model), "name_zh": i.name_zh,
         "name_en": i.name_en, "weight": i.weight, "score": now.indices[i.key],
         "previous": before.indices[i.key] if before else None,
         "driver": _driver(now, i.key, lang, model)}
        for i in model.indices]
    for idx in indices:
        idx["change"] = (idx["score"] - idx["previous"]
                         if idx["score"] is not None and idx["previous"] is not None else None)
    total_change = (now.total - before.total if before and before.total is not None
                    and now.total is not None else None)
    return {"code": code, "level": level,
            "window": {"start": window.start.isoformat(), "end": window.end.isoformat()},
            "previous_window": {"start": window.previous().start.isoformat(),
                                "end": window.previous().end.isoformat()},
            "total": now.total, "previous_total": before.total if before else None,
            "change": total_change, "driver": _driver(now, "total", lang, model),
            "indices": indices, "terms": terms,
            "aggregates": health.aggregates.row(code),
            "handling_p90": _p90(health, lang),
            "links": _links(request, level, code, window, ["cases", "parts"])}


def _p90(health: Health, lang: str) -> dict[str, Any]:
    """How the window's p90 of handling time was counted — exact, or estimated from the
    running totals' histograms within a bound (layers/health/long.py) — and a sentence
    saying so."""
    p90 = dict(health.aggregates.p90)
    exact = p90["method"] == "exact"
    p90["note"] = i18n.translate(lang, "health.p90_exact" if exact else "health.p90_sketch",
                                 bound=round(100 * p90["relative_error"], 1))
    return p90


def _driver(score: GridScore, index: str, lang: str, model: HealthModel
            ) -> dict[str, Any] | None:
    """The term that costs ``index`` (or the total) most points, named."""
    term = score.driver(index)
    if term is None:
        return None
    lost = term.lost_total if index == "total" else term.lost
    return {"indicator": term.indicator, "name": health_name(lang, term.indicator, model),
            "value": term.value, "points_lost": round(lost, 3)}


@router.get("/grids/{code}/health", summary="One grid's explained health (城市体检)")
def grid_health(request: Request, engine: ReadEngineDep, cases: CaseSettingsDep, code: str,
                window: WindowQ = "30d", weights: WeightsQ = None) -> dict[str, Any]:
    require_area(request, code)  # a grid outside the caller's areas is not found
    cal = cases.working_calendar
    w, model = _window(window, cal), model_for(weights)
    health = scored(engine, model, w, "grid", code, cal)
    previous = score(engine, model, w.previous(), "grid", cal)
    return _explain(request, health, previous, "grid", code, w)


@router.get("/health/areas/{level}/{code}", summary="One community/street/district's health")
def area_health(request: Request, engine: ReadEngineDep, cases: CaseSettingsDep, level: str,
                code: str, window: WindowQ = "30d", weights: WeightsQ = None
                ) -> dict[str, Any]:
    require_area(request, code)
    cal = cases.working_calendar
    w, model = _window(window, cal), model_for(weights)
    health = scored(engine, model, w, level, code, cal)
    previous = score(engine, model, w.previous(), level, cal)
    return _explain(request, health, previous, level, code, w)


def _aligned(codes: list[str], other: list[str], column: np.ndarray) -> np.ndarray:
    """``column`` (one value per code of ``other``) at each of ``codes``, NaN where absent:
    the previous window's scores beside this window's (the same keys, unless a grid changed
    in between)."""
    if codes == other:
        return np.asarray(column, dtype=float)
    at = {c: i for i, c in enumerate(other)}
    return np.array([column[at[c]] if c in at else np.nan for c in codes], dtype=float)


@router.get("/health/rankings", summary="Worst, best and most improved grids or areas")
def rankings(request: Request, engine: ReadEngineDep, cases: CaseSettingsDep,
             window: WindowQ = "30d",
             level: LevelQ = "grid",
             index: str = "total", limit: Annotated[int, Query(ge=1, le=500)] = 10,
             weights: WeightsQ = None) -> dict[str, Any]:
    check_level(level)
    cal = cases.working_calendar
    w, model = _window(window, cal), model_for(weights)
    model.check_index(index)
    now_health, before_health = score_with_previous(engine, model, w, level, cal)
    now, before = now_health.table, before_health.table
    values = now.column(index)
    prev = _aligned(now.codes, before.codes, before.column(index))
    change = values - prev
    reverse = index in {i.key for i in model.indicators} and not next(
        i for i in model.indicators if i.key == index).higher_is_better

    lang = request_language(request)
    asc = np.argsort(np.where(np.isnan(values), np.inf, values), kind="stable")
    worst, best = (asc[::-1], asc) if reverse else (asc, asc[::-1])
    improved = np.argsort(np.where(np.isnan(change), np.inf, change * (1 if reverse else -1)),
                          kind="stable")
    # the first ``limit`` defined of each order, picked in numpy (a Python loop over 60,000
    # grids, three times, cost a tenth of a second and more at 10 M — benchmarks/README.md)
    picks = [order[~np.isnan(col[order])][:limit]
             for order, col in ((worst, values), (best, values), (improved, change))]
    with engine.connect() as conn:
        named = names(conn, level, sorted({now.codes[i] for p in picks for i in p}))

    def rows(picked: np.ndarray) -> list[dict[str, Any]]:
        return [{"code": now.codes[i], "name": named.get(now.codes[i], now.codes[i]),
                 "score": _opt(values[i]), "previous": _opt(prev[i]),
                 "change": _opt(change[i]),
                 "driver": _driver(now.explain(now.codes[i]), index, lang, model)}
                for i in picked]

    return {"level": level, "index": index, "name": health_name(lang, index, model),
            "window": str(w), "previous_window": str(w.previous()),
            "count": len(now.codes), "worst": rows(picks[0]), "best": rows(picks[1]),
            "most_improved": rows(picks[2]),
            "handling_p90": _p90(now_health, lang),
            "previous_handling_p90": _p90(before_health, lang)}


def _collection(engine: ReadEngineDep, cases: CaseSettings, index: str, window: str, level: str,
                scheme: str, k: int, breaks: str | None, weights: str | None,
                lang: str = i18n.DEFAULT_LANGUAGE, area: str = ""
                ) -> tuple[dict[str, Any], Window]:
    """The choropleth of a level (classes over all its keys; features only inside ``area``,
    a code prefix, when given: a briefing maps one district)."""
    check_level(level)
    cal = cases.working_calendar
    w, model = _window(window, cal), model_for(weights)
    model.check_index(index)
    try:
        cuts = [float(b) for b in breaks.split(",")] if breaks else None
    except ValueError:
        raise ValidationError("breaks must be numbers, e.g. 40,60,80,100", field="breaks",
                              value=breaks) from None
    health = score(engine, model, w, level, cal)
    table = health.table
    values = table.column(index)
    indicator = next((i for i in model.indicators if i.key == index), None)
    defined = values[~np.isnan(values)]
    counts = (indicator is not None and indicator.unit == "件"
              and bool(np.all(defined == np.round(defined))))  # whole-number class breaks
    classes = classify(values, scheme, k, cuts,
                       higher_is_better=indicator is None or indicator.higher_is_better,
                       no_data_label=i18n.translate(lang, "health.no_data"), integer=counts)
    colours = {c["class"]: c["colour"] for c in classes.legend}
    with engine.connect() as conn:
        geoms = shapes(conn, level, area)
    pos = {c: i for i, c in enumerate(table.codes)}
    features: list[dict[str, Any]] = []
    xs: list[float] = []
    ys: list[float] = []
    for shape in geoms:
        i = pos.get(shape["key"])
        if i is None:
            continue
        geometry = json.loads(shape["geometry"])
        cls = classes.classes[i]
        props = {"code": shape["key"], "name": shape["name"], "score": _opt(values[i]),
                 "class": cls, "colour": colours[cls],
                 **{x.key: _opt(table.index_scores[x.key][i]) for x in model.indices},
                 "total": _opt(table.total[i])}
        features.append({"type": "Feature", "id": shape["key"], "geometry": geometry,
                         "properties": props})
        _extent(geometry["coordinates"], xs, ys)
    note = (i18n.translate(lang, "health.legend_merged", requested=classes.requested,
                           merged=classes.merged) if classes.merged else None)
    body = {"type": "FeatureCollection", "index": index, "level": level, "scheme": scheme,
            "name": health_name(lang, index, model),
            "window": {"start": w.start.isoformat(), "end": w.end.isoformat()},
            "bins": classes.bins, "legend": classes.legend, "legend_note": note,
            "handling_p90": _p90(health, lang), "features": features}
    if xs:
        body["bbox"] = [min(xs), min(ys), max(xs), max(ys)]
    return body, w


def _extent(coords: Any, xs: list[float], ys: list[float]) -> None:
    if coords and isinstance(coords[0], int | float):
        xs.append(coords[0])
        ys.append(coords[1])
        return
    for c in coords:
        _extent(c, xs, ys)


SchemeQ = Annotated[str, Query(description="quantiles | natural_breaks | fixed")]
BreaksQ = Annotated[str | None, Query(description="fixed upper bounds, e.g. 40,60,80,100")]
KQ = Annotated[int, Query(description="number of classes (2–9)")]


@router.get("/health/choropleth", summary="Scores as GeoJSON with classes and legend",
            responses={200: {"content": {"application/geo+json": {}}}})
def choropleth(request: Request, engine: ReadEngineDep, cases: CaseSettingsDep,
               index: str = "total", window: WindowQ = "30d",
               level: LevelQ = "grid", scheme: SchemeQ = "quantiles", k: KQ = 5,
               breaks: BreaksQ = None, weights: WeightsQ = None) -> Response:
    body, _ = _collection(engine, cases, index, window, level, scheme, k, breaks, weights,
                          request_language(request))
    return JSONResponse(body, media_type=GEOJSON)


def _window_label(spec: str, lang: str) -> str:
    days = re.fullmatch(r"(\d+)d", spec)
    return (i18n.translate(lang, "health.last_days", n=days[1]) if days
            else spec.replace("/", " – "))


PAGE_PARAMS = ("scheme", "k", "breaks", "weights")  # kept across the selectors' choices


@router.get("/health/map", summary="The health choropleth as an offline HTML map",
            response_class=HTMLResponse)
def health_map(request: Request, cases: CaseSettingsDep, index: str = "total",
               window: WindowQ = "30d", level: LevelQ = "grid", scheme: SchemeQ = "quantiles",
               k: KQ = 5, breaks: BreaksQ = None, weights: WeightsQ = None) -> HTMLResponse:
    """The page's chrome; its script fetches the scores from ``/health/choropleth`` (with
    the caller's token), so the page itself reads no data and needs no sign-in."""
    check_level(level)
    model = model_for(weights)
    model.check_index(index)
    w = _window(window, cases.working_calendar)
    lang = request_language(request)
    params = {"index": index, "window": window, "level": level, "scheme": scheme, "k": str(k),
              **({"breaks": breaks} if breaks else {}), **({"weights": weights} if weights else {})}
    windows = list(dict.fromkeys([window, "7d", "30d", "90d", str(w.previous())]))
    name = health_name(lang, index, model)
    tooltip = [{"key": "score", "label": i18n.translate(lang, "health.score")},
               *({"key": key, "label": health_name(lang, key, model)}
                 for key in model.index_keys())]
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    title = i18n.translate(lang, "health.title", index=name, level=level_name(lang, level),
                           start=w.start.date().isoformat(), end=w.end.date().isoformat())

    def label(text: str) -> str:
        return i18n.as_label(lang, text)

    return pages.render(
        request, "health_map.html", title=label(title), back=here,
        legend_title=label(i18n.translate(lang, "health.legend_title", index=name)),
        selected={"index": index, "window": window, "level": level},
        windows=[(v, label(_window_label(v, lang))) for v in windows],
        indices=[(key, label(health_name(lang, key, model))) for key in model.index_keys()],
        indicators=[(i.key, label(health_name(lang, i.key, model)))
                    for i in model.indicators],
        levels=[(v, label(level_name(lang, v))) for v in LEVELS],
        kept=[(param, params[param]) for param in PAGE_PARAMS if param in params],
        config={"params": params, "tooltip": tooltip})


def map_figure(engine: Any, body: dict[str, Any], lang: str, made: str) -> Any:
    """The choropleth ``body`` (of :func:`_collection`) as a printable map: names of the
    areas (the features themselves when few, else the streets over them), scale bar, north
    arrow, legend beside the map, source and dates."""
    import geopandas as gpd

    level = body["level"]
    frame = gpd.GeoDataFrame.from_features(body["features"], crs="EPSG:4326") \
        if body["features"] else gpd.GeoDataFrame({"colour": []}, geometry=[], crs="EPSG:4326")
    labels = None
    if len(frame) and (len(frame) <= 30 or level == "street"):
        labels = Labels(frame[["name", "geometry"]], outline=False)
    elif len(frame):
        with engine.connect() as conn:
            streets = [s for s in shapes(conn, "street")
                       if any(f["id"].startswith(s["key"]) for f in body["features"])]
        labels = Labels(gpd.GeoDataFrame.from_features(
            [{"type": "Feature", "geometry": json.loads(s["geometry"]),
              "properties": {"name": s["name"]}} for s in streets], crs="EPSG:4326"))
    start, end = body["window"]["start"][:10], body["window"]["end"][:10]
    t = i18n.translate
    words = MapText(  # the title and the legend's title stand alone, as on the page
        title=i18n.as_label(lang, t(lang, "health.title", index=body["name"],
                                    level=level_name(lang, level), start=start, end=end)),
        legend_title=i18n.as_label(lang, body.get("legend_title") or t(
            lang, "health.legend_title", index=body["name"])),
        source=t(lang, "health.map_source", start=start, end=end, made=made),
        north=t(lang, "health.north"), legend_note=body.get("legend_note"),
        projection=t(lang, "health.map_projection", crs="{crs}"))
    # the legend's entries stand alone: "No data" in English (the body keeps the catalogue's
    # words, which sentences use too)
    legend = [{**entry, "label": i18n.as_label(lang, entry["label"])} for entry in body["legend"]]
    return choropleth_figure(frame, legend, words, labels)


@router.get("/health/choropleth.png", summary="The same choropleth as a PNG for reports",
            response_class=Response)
def health_png(request: Request, engine: ReadEngineDep, cases: CaseSettingsDep,
               index: str = "total", window: WindowQ = "30d",
               level: LevelQ = "grid", scheme: SchemeQ = "quantiles", k: KQ = 5,
               breaks: BreaksQ = None, weights: WeightsQ = None) -> Response:
    lang = request_language(request)
    body, _ = _collection(engine, cases, index, window, level, scheme, k, breaks, weights,
                          lang)
    made = datetime.now(UTC).astimezone(cases.working_calendar.tz).date().isoformat()
    png = figure_png(map_figure(engine, body, lang, made))
    return Response(png, media_type="image/png", headers={"Content-Language": lang,
                                                          "Vary": "Accept-Language, Cookie"})


def grid_health_summary(engine: Any, code: str, window: str = "30d",
                        calendar: WorkingCalendar | None = None) -> dict[str, Any] | None:
    """A grid's health in brief for the one map's grid panel (``app.state.grid_health``);
    ``calendar``: the city's (the default calendar's when not given)."""
    cal = calendar if calendar is not None else WorkingCalendar.chinese()
    w, model = _window(window, cal), _model()
    table = score(engine, model, w, "grid", cal).table
    if code not in table.codes:
        return None
    now = table.explain(code)
    return {"window": str(w), "total": now.total,
            "indices": [{"key": i.key, "name_zh": i.name_zh, "name_en": i.name_en,
                         "score": now.indices[i.key]}
                        for i in model.indices],
            "href": f"grids/{code}/health?{urlencode({'window': window})}"}
