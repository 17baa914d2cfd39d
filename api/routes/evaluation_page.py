"""The evaluation board (考评中心): the managers' page of the departments', areas' and grid
workers' rankings for a month, a quarter or a year, each party explained down to its cases, and
the period's data briefing (数据简报) as PDF. The server renders the chrome in the caller's
language; the page's script reads ``/evaluation/{kind}`` and ``/evaluation/{kind}/{code}`` with
the caller's token, so the page itself reads no data and needs no sign-in (in production it
asks for one when the API does).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from babel.dates import format_skeleton
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from api import pages
from api.deps import SettingsDep
from api.i18n import translate
from api.naming import level_name
from api.routes.evaluation import evaluation_model
from gridcore.evaluation import Period

router = APIRouter(prefix="/evaluation", tags=["evaluation 考评"])

Kind = Literal["department", "area", "worker"]
AREA_LEVELS = ("district", "street", "community")


def period_choices(now: datetime, lang: str) -> list[tuple[str, str]]:
    """The month so far (labelled as in progress), the last twelve months, four quarters and
    two years (this one in progress) before ``now`` (local), newest first in each group: what
    a manager compares."""
    months = [(f"{now.year}-{now.month:02d}", translate(lang, "evalboard.this_month"))]
    quarters = []
    y, m = now.year, now.month
    for _ in range(12):
        m -= 1
        if m == 0:
            y, m = y - 1, 12
        months.append((f"{y}-{m:02d}", format_skeleton("yMMM", date(y, m, 1),
                                                       locale=lang.replace("-", "_"))))
    y, q = now.year, (now.month - 1) // 3 + 1
    for _ in range(4):
        q -= 1
        if q == 0:
            y, q = y - 1, 4
        quarters.append((f"{y}-Q{q}", translate(lang, "evalboard.quarter", year=y, quarter=q)))
    years = [(str(now.year), translate(lang, "evalboard.in_progress", period=translate(
                 lang, "evalboard.year", year=now.year))),
             (str(now.year - 1), translate(lang, "evalboard.year", year=now.year - 1))]
    return months + quarters + years


def default_period(now: datetime) -> str:
    """Last month: the last whole month, the one the evaluation centre ranks and publishes —
    its figures no longer change but for appeals, whose window opens when it ends. The month
    in progress is offered beside it, not chosen for the reader: its figures move every day
    (cases not yet due count for nothing)."""
    y, m = (now.year, now.month - 1) if now.month > 1 else (now.year - 1, 12)
    return f"{y}-{m:02d}"


def _capital(name: str) -> str:
    """An English name as a label: the model's names are lower case (they are used in
    sentences too); the rest of the English UI writes labels with a capital."""
    return name[:1].upper() + name[1:]


@router.get("/board", response_class=HTMLResponse, summary="The evaluation board page (考评中心)")
def board(request: Request, settings: SettingsDep,
          period: Annotated[str | None, Query(max_length=40, description=(
              "2026-11, 2026-Q4, 2026 (default: last month, the last whole one)"))] = None,
          kind: Kind = "department",
          level: Annotated[Literal["district", "street", "community"] | None, Query(
              description="areas' level (default: street)")] = None) -> HTMLResponse:
    lang = pages.request_language(request)
    now = datetime.now(ZoneInfo(settings.cases.city_timezone))
    choices = period_choices(now, lang)
    chosen = period or default_period(now)
    parsed = Period.parse(chosen)  # a ValidationError (400) naming the period
    label = str(parsed)
    window = parsed.window(settings.cases.city_timezone)
    if label not in dict(choices):  # an interval or an older period asked for by its URL
        choices.insert(0, (label, label))
    area_level = (level or "street") if kind == "area" else None
    model = evaluation_model(settings)
    kinds = [(k.key, k.name_zh if lang.startswith("zh") else _capital(k.name_en or k.name_zh))
             for k in model.kinds.values()]
    return pages.render(
        request, "evaluation_board.html",
        back=pages.root_path(request) + "/evaluation/board" + (
            f"?{request.url.query}" if request.url.query else ""),
        periods=choices, kinds=kinds,
        levels=[(v, level_name(lang, v)) for v in AREA_LEVELS],
        selected={"period": label, "kind": kind, "level": area_level},
        in_progress=window.start <= now < window.end,
        timezone=settings.cases.city_timezone,
        config={"period": label, "kind": kind, "level": area_level})
