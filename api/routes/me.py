"""The signed-in user's own lists: worklist (待办), reports filed, and area (for the phone).

Who may call what: every signed-in user (or, in development, the ``X-Role`` / ``X-Actor``
stand-in), each seeing their own: ``GET /me/tasks`` follows the role (``gridcore.worklist``),
``GET /me/reports`` the cases the user filed, ``GET /me/area`` the user's grids.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from api.ogc import url_with
from api.responses import FastJSONResponse
from api.security.identity import Viewer
from gridcore.security.access import Principal
from gridcore.worklist import parse_tasks, worklist_for
from layers.cases.worklist import my_reports, tasks
from layers.grids.area import area_document, area_version

router = APIRouter(prefix="/me", tags=["me"])


def _next(request: Request, cursor: object) -> str | None:
    if cursor is None:
        return None
    # under GRIDCORE_PUBLIC_URL, else relative: the Host header is never written back
    return url_with(request, after=str(cursor))


@router.get("/tasks", summary="My worklist (待办): the cases whose next step is mine, "
                              "soonest deadline first")
def my_tasks(request: Request, viewer: Viewer,
             task: Annotated[str | None, Query(max_length=200, description=(
                 "comma-separated tasks of the role (verify, check, accept, handle, "
                 "feed_back, sent_back, register, dispatch, close, overdue)"))] = None,
             after: Annotated[str | None, Query(max_length=200,
                                                description="the `next` of a page")] = None,
             limit: Annotated[int, Query(ge=1, le=500)] = 50,
             mine: Annotated[bool, Query(description=(
                 "a department's worklist: only the cases I hold (accepted by me or "
                 "assigned to me by my team leader) or nobody holds yet"))] = False) -> Response:
    viewer.require("case.read")
    state = request.app.state
    worklist = worklist_for(viewer.role)
    page = tasks(state.engine, state.settings.cases, viewer, worklist,
                 parse_tasks(task, worklist), after, limit, mine=mine)
    return FastJSONResponse({"role": worklist.role.value, "tasks": list(worklist.tasks),
                             "mine": mine, **page, "next": _next(request, page["next"])},
                            headers={"Cache-Control": "no-store"})


@router.get("/reports", summary="The cases I filed, newest first, and where each stands")
def reports(request: Request, viewer: Viewer,
            after: Annotated[int | None, Query(description="the `next` of a page")] = None,
            limit: Annotated[int, Query(ge=1, le=500)] = 50) -> Response:
    viewer.require("case.read")
    state = request.app.state
    page = my_reports(state.engine, state.settings.cases, viewer, after, limit)
    return FastJSONResponse({**page, "next": _next(request, page["next"])},
                            headers={"Cache-Control": "no-store"})


def _area(request: Request, viewer: Principal) -> tuple[str, dict[str, Any] | None]:
    state = request.app.state
    with state.engine.connect() as conn:
        version = area_version(conn, viewer.scope)
        if request.headers.get("if-none-match") == f'"{version}"':
            return version, None
        return version, area_document(conn, viewer.scope, state.settings.field.area_max_grids)


@router.get("/area", summary="My grids and the city parts in them (GeoJSON), for the phone "
                             "to work offline", response_class=Response,
            responses={200: {"content": {"application/geo+json": {}}},
                       304: {"description": "unchanged"}})
async def area(request: Request, viewer: Viewer) -> Response:
    version, document = await run_in_threadpool(_area, request, viewer)
    headers = {"ETag": f'"{version}"', "Cache-Control": "no-cache"}
    if document is None:
        return Response(status_code=304, headers=headers)
    return FastJSONResponse(document, headers=headers, media_type="application/geo+json")
