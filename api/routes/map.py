"""The dispatchers' map (一张图) at ``/map``, its static files and the small JSON it needs.

Everything the page loads is served from here (MapLibre GL JS is vendored under
``api/static/vendor``): government networks are often offline, so no CDN, no web fonts, no
remote glyphs — labels are HTML.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from api import pages
from api.deps import CaseSettingsDep, ReadEngineDep, read_engine_sync
from api.layer_view import open_layer_view
from api.routes.static_files import static_response
from api.security.identity import request_scope
from api.security.identity import viewer_principal as viewer_of
from basemaps.providers import basemap_config
from gridcore.errors import NotFound, ValidationError
from gridcore.queues import Bucket
from layers.cases import queue as case_queue
from layers.cases.queries import CaseFilter
from layers.ogc import map_queries
from layers.ogc import search as map_search

router = APIRouter(prefix="/map", tags=["map"])
# A grid's health (城市体检) comes from the health routes; the app factory registers their
# function: ``app.state.grid_health(engine, grid_code, calendar=…) -> {...} | None``.
GridHealth = Callable[..., dict[str, Any] | None]


@router.get("", response_class=HTMLResponse, summary="The dispatchers' map page")
def page(request: Request) -> HTMLResponse:
    settings = request.app.state.settings
    return pages.render(request, "map.html", timezone=settings.cases.city_timezone,
                        dev=settings.security.trusts_role_headers)


@router.get("/static/{path:path}", include_in_schema=False)
def static(path: str, request: Request) -> Response:
    return static_response(request, path)


@router.get("/config", summary="Basemaps, collections, filter choices and lifecycle roles")
def config(request: Request) -> dict[str, Any]:
    from gridcore.events import SUBSCRIBABLE
    from gridcore.lifecycle import STEP_ROLES, TRANSITIONS, State
    from gridcore.queues import Bucket

    with open_layer_view(request) as cat:
        choices = map_queries.filter_choices(cat.connection)
        collections = {cid: {"title": c.title, "min_zoom": c.tile_min_zoom,
                             "h3_below": c.h3_aggregate_below,
                             "filterable": sorted(c.filterable)}
                       for cid, c in cat.collections.items()}
        versions = cat.versions
    return {"basemaps": basemap_config(request.app.state.settings.map),
            "collections": collections, "versions": versions, **choices,
            "states": [s.value for s in State], "roles": [r.value for r in STEP_ROLES],
            "actions": {t.action.value: {"zh": t.zh, "requires": list(t.requires)}
                        for t in TRANSITIONS.values()},
            "buckets": [b.value for b in Bucket], "event_kinds": list(SUBSCRIBABLE),
            "timezone": request.app.state.settings.cases.city_timezone}


@router.get("/versions", summary="Layer versions: poll this to refresh changed layers")
def versions(request: Request) -> dict[str, int]:
    with open_layer_view(request) as cat:
        return cat.versions


@router.get("/grids/{code}", summary="A grid: hierarchy, workers, open cases, health")
def grid(code: str, request: Request) -> dict[str, Any]:
    scope = request_scope(request)  # signed in (or the development stand-in)
    tz = request.app.state.settings.cases.working_calendar.tz
    with open_layer_view(request) as cat:
        found = map_queries.grid_details(cat.connection, code, tz)
    if found is None:
        raise NotFound(f"no current grid {code!r}", grid_code=code)
    if not scope.covers_grid(code):
        # a grid outside the caller's areas: not its cases, not its workers' names and phones
        found["open_cases"], found["open_case_count"] = [], 0
        found["workers"] = [{"code": w["code"], "active": w["active"]}
                            for w in found["workers"]]
    health: GridHealth | None = getattr(request.app.state, "grid_health", None)
    state = request.app.state
    found["health"] = health(read_engine_sync(request), code,
                             calendar=state.settings.cases.working_calendar) if health else None
    return found


@router.get("/search", summary="Search case numbers, codes, class and area names, descriptions")
def search(request: Request, q: str = Query(min_length=1, max_length=60),
           limit: int = Query(20, ge=1, le=50)) -> dict[str, Any]:
    scope = request_scope(request, "features.read")  # grids and parts: anyone's; cases: scoped
    with open_layer_view(request) as cat:
        return {"q": q, "hits": map_search.search(cat.connection, q, scope, limit)}


@router.get("/queue", summary="The dispatcher's queue: counts per bucket and one bucket's page")
def queue(request: Request, engine: ReadEngineDep, settings: CaseSettingsDep,
          bucket: Bucket = Bucket.VERIFY, category: str | None = None,
          department: str | None = None, area: str | None = None,
          colour: Literal["green", "yellow", "red"] | None = None,
          after: str | None = Query(None, max_length=60),
          limit: int = Query(50, ge=1, le=200)) -> dict[str, Any]:
    scope = request_scope(request)
    f = CaseFilter(category=category, department=department, area=area, colour=colour,
                   scope=scope)
    counts = case_queue.counts(engine, f)
    rows, cursor = case_queue.page(engine, settings, f, bucket, after, limit)
    return {"bucket": bucket.value, "counts": counts, "cases": rows, "next": cursor}


@router.get("/cases/{case_id}/actions", summary="The lifecycle steps a role may take now")
def case_actions(case_id: int, request: Request,
                 role: str | None = Query(None, description="a role (default: the caller's)")
                 ) -> dict[str, Any]:
    from gridcore.security.access import Role
    from layers.cases.coordination_view import offered_steps
    from layers.cases.view import fetch_case

    principal = viewer_of(request)
    try:
        who = Role(role) if role else principal.role
    except ValueError:
        raise ValidationError(f"unknown role {role!r}", field="role", value=role) from None
    if who is None:
        raise ValidationError("name a role", field="role")
    with open_layer_view(request) as cat:
        row = map_queries.case_facts_row(cat.connection, case_id)
        if row is None or not principal.scope.covers_case(row.grid_code, row.department_code):
            raise NotFound(f"case {case_id} does not exist", case_id=case_id)
        # the steps follow the coordination state too (报到 only while a whistle waits…)
        actions, _ = offered_steps(cat.connection, fetch_case(cat.connection, case_id), who,
                                   principal.scope.department)
    return {"case_id": case_id, "state": row.state, "role": who.value, "version": row.version,
            "actions": actions}
