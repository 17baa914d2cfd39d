"""Data briefings (数据简报) over HTTP: ``GET /briefings/{period}.pdf`` and ``.html``
(``?area=``), for dispatchers, managers, analysts and admins whose areas hold the area."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import ReadEngineDep, SettingsDep
from api.pages import request_language
from api.routes.briefing_doc import briefing_html, briefing_pdf
from api.routes.evaluation import evaluation_model
from api.security.identity import Viewer, require_area
from gridcore.errors import NotFound
from gridcore.evaluation import Period
from layers.evaluation.briefing import briefing_area

router = APIRouter(prefix="/briefings", tags=["briefings 数据简报"])


@router.get("/{name}", summary="A period's data briefing as PDF or HTML",
            responses={200: {"content": {"application/pdf": {}, "text/html": {}}}})
def briefing(request: Request, name: str, engine: ReadEngineDep, settings: SettingsDep,
             viewer: Viewer, area: str | None = None) -> Response:
    viewer.require("briefing.read")
    spec, dot, fmt = name.rpartition(".")
    if not dot or fmt not in ("pdf", "html"):
        raise NotFound(f"no briefing {name!r}: ask for /briefings/2026-11.pdf or .html",
                       name=name)
    period = Period.parse(spec)
    code, _, _ = briefing_area(engine, area)
    require_area(request, code, "briefing.read")
    lang = request_language(request)
    model = evaluation_model(settings)
    headers = {"Content-Language": lang, "Vary": "Accept-Language, Cookie"}
    if fmt == "pdf":
        body = briefing_pdf(engine, settings.cases, model, period, code, lang)
        headers["Content-Disposition"] = f'inline; filename="briefing-{period}-{code}.pdf"'
        return Response(body, media_type="application/pdf", headers=headers)
    root = str(request.scope.get("root_path", "")).rstrip("/")
    return HTMLResponse(briefing_html(engine, settings.cases, model, period, code, lang,
                                      stylesheet=f"{root}/static/briefing/briefing.css"),
                        headers=headers)
