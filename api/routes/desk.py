"""The department workbench (部门工作台) at ``/desk``: the page, and the team a leader assigns
cases within (``GET /desk/team``). Its worklist is ``GET /me/tasks``; its steps are the
lifecycle's (``POST /cases/{id}/{action}``, with photos as multipart)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from api import pages
from api.deps import EngineDep
from api.security.identity import CurrentUser
from layers.cases.queries import assigned_counts
from layers.security.teams import department_name, team_of

router = APIRouter(prefix="/desk", tags=["desk"])


@router.get("", response_class=HTMLResponse, summary="The department workbench page")
def page(request: Request) -> HTMLResponse:
    settings = request.app.state.settings
    return pages.render(request, "desk.html", timezone=settings.cases.city_timezone,
                        dev=settings.security.trusts_role_headers)


@router.get("/team", summary="My department and team (班组): members, leader, open cases each")
async def my_team(user: CurrentUser, engine: EngineDep) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        team = team_of(engine, user.name)
        department = {"code": user.department,
                      "name": department_name(engine, user.department)}
        if team is None:
            return {"team": None, "department": department,
                    "me": {"username": user.name, "leader": False}}
        loads = assigned_counts(engine, [m["username"] for m in team["members"]])
        for m in team["members"]:
            m["open_cases"] = loads.get(m["username"], 0)
        leader = next((m["leader"] for m in team["members"] if m["username"] == user.name),
                      False)
        return {"team": team, "department": department,
                "me": {"username": user.name, "leader": leader}}

    return await run_in_threadpool(read)
